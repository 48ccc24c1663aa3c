import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNullModel } from './models.js';
import { runBenchmark } from './run-benchmark.js';
import { FIXTURES } from './test-paths.js';
import type { PromptStyle } from './types.js';

let sandbox: Sandbox;
let root: string;

// Five functions chosen so that the constant baselines can be worked out by hand (below).
const RECORDS = [
  { id: 'sample_0', code: 'def f(x):\n    return x * 0', input: '5', output: '0' },
  { id: 'sample_1', code: 'def f(x):\n    return x - x', input: '3', output: '0' },
  { id: 'sample_2', code: 'def f(x):\n    return x + 1.0', input: '1', output: '2.0' },
  { id: 'sample_3', code: 'def f(x):\n    return x', input: '2', output: '2' },
  { id: 'sample_4', code: 'def f(x):\n    return len(x)', input: "'ab'", output: '2' },
];

beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
  root = await mkdtemp(join(tmpdir(), 'bench-baselines-'));
  await mkdir(join(root, 'cruxeval'));
  await writeFile(
    join(root, 'cruxeval', 'cruxeval.jsonl'),
    RECORDS.map((r) => JSON.stringify(r)).join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await sandbox?.close();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

describe.each<[PromptStyle, boolean]>([
  ['official', false],
  ['official', true],
  ['protocol', false],
])('constant baselines, %s prompts, CoT %s', (style, cot) => {
  it('CRUXEval: the most frequent gold and the best of the most frequent, scored by execution', async () => {
    const outDir = join(root, `out-${style}-${cot}`);
    const summary = await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: root,
      model: createNullModel(),
      sandbox,
      outDir,
      promptStyle: style,
      cot,
    });
    // -O golds: 0 (twice), 2 (twice), 2.0. The majority 0 (first of the tied by code point)
    // passes sample_0 and sample_1; 2 passes sample_2 too (2.0 == 2), sample_3 and sample_4.
    expect(summary.baselines?.output).toEqual({
      majority: { answer: '0', frequency: 2, passed: 2, items: 5, score: 40 },
      bestConstant: { answer: '2', candidates: 3, passed: 3, items: 5, score: 60 },
    });
    // -I golds are all different: 'ab' comes first by code point and passes only sample_4
    // (len('ab') == 2). f(1): 0, 0, 2.0 pass, 1 != 2, len(1) raises: 3 of 5. f(2): 0, 0, 3.0,
    // 2, len(2): 3 of 5 (a tie: the more frequent, then earlier, candidate stays). f(3), f(5): 2.
    expect(summary.baselines?.input).toEqual({
      majority: { answer: "'ab'", frequency: 1, passed: 1, items: 5, score: 20 },
      bestConstant: { answer: '1', candidates: 5, passed: 3, items: 5, score: 60 },
    });
    expect(summary.headline).toEqual({ 'CRUXEval-O': 0, 'CRUXEval-I': 0 });
    const report = await readFile(join(outDir, 'report.md'), 'utf8');
    expect(report).toContain(
      'CRUXEval-O: the most frequent gold answer `0` (2 of 5 questions) scores 40.0; the best of the 3 most frequent, `2`, 60.0',
    );
  });
});

describe('constant baselines', () => {
  it('score only the baselineCandidates most frequent golds, and none with 0', async () => {
    const few = await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: root,
      model: createNullModel(),
      sandbox,
      outDir: join(root, 'out-few'),
      tasks: ['input'],
      baselineCandidates: 2,
    });
    expect(few.baselines?.input?.bestConstant).toEqual({
      answer: '1',
      candidates: 2,
      passed: 3,
      items: 5,
      score: 60,
    });
    const none = await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: root,
      model: createNullModel(),
      sandbox,
      outDir: join(root, 'out-none'),
      baselineCandidates: 0,
    });
    expect(none.baselines).toBeUndefined();
  });

  it('LiveCodeBench: [0] is the only repeated gold output (samples 7 and 11) and passes those two', async () => {
    const summary = await runBenchmark({
      benchmark: 'livecodebench',
      dataPath: FIXTURES,
      model: createNullModel(),
      sandbox,
      outDir: join(root, 'out-lcb'),
    });
    expect(summary.baselines?.output).toEqual({
      majority: { answer: '[0]', frequency: 2, passed: 2, items: 12, score: (100 * 2) / 12 },
      bestConstant: { answer: '[0]', candidates: 10, passed: 2, items: 12, score: (100 * 2) / 12 },
    });
  }, 120_000);

  it('REval has no constant baselines here', async () => {
    const summary = await runBenchmark({
      benchmark: 'reval',
      dataPath: FIXTURES,
      model: createNullModel(),
      sandbox,
      outDir: join(root, 'out-reval'),
      limit: 1,
    });
    expect(summary.baselines).toBeUndefined();
  }, 120_000);
});
