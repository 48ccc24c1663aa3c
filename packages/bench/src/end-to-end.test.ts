import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createNullModel, createOracleModel } from './models.js';
import type { ItemRecord } from './report.js';
import { runBenchmark } from './run-benchmark.js';
import { BUNDLED, FIXTURES, NEEDS_SHARED, SHARED_BENCHMARKS } from './test-paths.js';
import type { BenchmarkName, PromptStyle } from './types.js';

// Whole benchmark runs through the sandbox: a hang cap for a loaded machine, not a speed check.
vi.setConfig({ testTimeout: 120_000 });

// The end-to-end check of loaders, prompts, extraction and scoring by execution: the oracle
// (gold answers) must pass every answerable question and the null model (empty answers) none,
// on every benchmark and task, in both prompt styles, direct and CoT.

let sandbox: Sandbox;
let root: string;

beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
  root = await mkdtemp(join(tmpdir(), 'bench-e2e-'));
});

afterAll(async () => {
  await sandbox?.close();
  await rm(root, { recursive: true, force: true });
});

async function items(outDir: string): Promise<ItemRecord[]> {
  return (await readFile(join(outDir, 'items.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ItemRecord);
}

async function run(
  benchmark: BenchmarkName,
  model: 'oracle' | 'null',
  style: PromptStyle,
  cot: boolean,
  extra: { dataPath?: string; ids?: string[]; limit?: number } = {},
) {
  const outDir = join(
    root,
    `${benchmark}-${model}-${style}-${cot}-${extra.ids?.length ?? extra.limit ?? 'all'}`,
  );
  const summary = await runBenchmark({
    benchmark,
    dataPath: extra.dataPath ?? FIXTURES,
    model: model === 'oracle' ? createOracleModel() : createNullModel(),
    sandbox,
    outDir,
    promptStyle: style,
    cot,
    n: model === 'oracle' ? 2 : 1,
    ...(extra.ids === undefined ? {} : { ids: extra.ids }),
    ...(extra.limit === undefined ? {} : { limit: extra.limit }),
    batchSize: 64,
  });
  return { summary, records: await items(outDir) };
}

const STYLES: [PromptStyle, boolean][] = [
  ['official', false],
  ['official', true],
  ['protocol', false],
  ['protocol', true],
];

describe.each(STYLES)('fixtures, %s prompts, CoT %s', (style, cot) => {
  it('CRUXEval: oracle 100 on both tasks, null 0', async () => {
    const oracle = await run('cruxeval', 'oracle', style, cot);
    expect(oracle.summary.items.total).toBe(12);
    for (const task of ['output', 'input']) {
      const answerable = oracle.records.filter((r) => r.task === task && r.answerable);
      expect(
        answerable.every((r) => r.c === r.n && r.samples.every((s) => s.verdict === 'pass')),
      ).toBe(true);
      // every item, the zero-argument input of sample_135 (`f()`) included, is answerable in both styles
      expect(oracle.summary.tasks[task]!.unanswerable).toBe(0);
      // gold answers are literals (a call of f on literals for -I): nothing is flagged
      expect(oracle.summary.tasks[task]!.nonLiteralPasses).toBe(0);
    }
    expect(oracle.summary.headline).toEqual({ 'CRUXEval-O': 100, 'CRUXEval-I': 100 });
    const empty = await run('cruxeval', 'null', style, cot);
    expect(empty.summary.headline).toEqual({ 'CRUXEval-O': 0, 'CRUXEval-I': 0 });
    // An empty -I answer has no call f( and is dropped by the harness's guard.
    if (style === 'official') expect(empty.summary.tasks.input!.skippedSamples).toBe(6);
  });

  it('LiveCodeBench: oracle 100, null 0, export checked against its index', async () => {
    const oracle = await run('livecodebench', 'oracle', style, cot);
    expect(oracle.summary.headline).toEqual({ 'LCB execution': 100 });
    expect(oracle.summary.tasks.output!.passedSamples).toBe(24);
    expect(oracle.summary.livecodebenchIndex).toMatchObject({
      complete: true,
      expected: 12,
      found: 12,
    });
    const empty = await run('livecodebench', 'null', style, cot);
    expect(empty.summary.headline).toEqual({ 'LCB execution': 0 });
  });

  it('REval: oracle 100 on every task and consistency 100; null 0 except official coverage', async () => {
    const oracle = await run('reval', 'oracle', style, cot);
    expect(oracle.summary.excluded).toEqual([]);
    for (const task of ['coverage', 'state', 'path', 'output']) {
      expect(oracle.summary.tasks[task]).toMatchObject({
        score: 100,
        unanswerable: 0,
        items: task === 'output' ? 6 : 22,
      });
    }
    expect(oracle.summary.reval).toEqual({ average: 100, consistency: 100, consistencyPoints: 22 });
    const notExecuted = oracle.records.filter(
      (r) => r.task === 'coverage' && r.samples[0]!.extracted === 'NO',
    ).length;
    expect(notExecuted).toBe(7);

    const empty = await run('reval', 'null', style, cot);
    const coverage = empty.summary.tasks.coverage!;
    if (style === 'official') {
      // REval reads an empty (or, in CoT, a [/THOUGHT]-less) answer as NO: right wherever the line never runs.
      expect(coverage.score).toBeCloseTo((100 * notExecuted) / 22, 10);
      expect(coverage.coverage).toMatchObject({ recall: 0, f1: 0 });
      expect(empty.summary.reval!.consistency).toBeCloseTo((12.5 * notExecuted) / 22, 10);
    } else {
      expect(coverage.score).toBe(0);
      expect(empty.summary.reval!.consistency).toBe(0);
    }
    for (const task of ['state', 'path', 'output'])
      expect(empty.summary.tasks[task]!.score).toBe(0);
  });
});

describe('published CRUXEval data, as the package ships it (subsets; the full run is the bench script)', () => {
  it('CRUXEval: oracle 100 / null 0 on 60 records incl. module-level code and a zero-argument input', async () => {
    const ids = [
      ...Array.from({ length: 50 }, (_, i) => `sample_${i}`),
      'sample_51',
      'sample_135',
      'sample_258',
      'sample_280',
      'sample_799',
    ];
    const oracle = await run('cruxeval', 'oracle', 'official', false, {
      dataPath: BUNDLED,
      ids,
    });
    expect(oracle.summary.headline).toEqual({ 'CRUXEval-O': 100, 'CRUXEval-I': 100 });
    const oracleCot = await run('cruxeval', 'oracle', 'official', true, {
      dataPath: BUNDLED,
      ids,
    });
    expect(oracleCot.summary.headline).toEqual({ 'CRUXEval-O': 100, 'CRUXEval-I': 100 });
    const empty = await run('cruxeval', 'null', 'official', false, {
      dataPath: BUNDLED,
      ids,
    });
    expect(empty.summary.headline).toEqual({ 'CRUXEval-O': 0, 'CRUXEval-I': 0 });
  });
});

describe.runIf(SHARED_BENCHMARKS)(
  `published REval data (subsets; the full run is the bench script)${NEEDS_SHARED}`,
  () => {
    it('REval: oracle 100 / null 0 on function and class problems; numpy programs left out with the reason', async () => {
      const ids = ['DREval/0', 'DREval/1', 'DREval/49', 'DREval/90', 'DREval/108', 'DREval/106'];
      const oracle = await run('reval', 'oracle', 'official', false, {
        dataPath: SHARED_BENCHMARKS!,
        ids,
      });
      for (const task of ['coverage', 'state', 'path', 'output'])
        expect(oracle.summary.tasks[task]!.score).toBe(100);
      expect(oracle.summary.reval!.consistency).toBe(100);
      expect(oracle.summary.excluded.map((e) => e.id)).toEqual([
        'DREval/106#0',
        'DREval/106#1',
        'DREval/106#2',
        'DREval/106#3',
        'DREval/106#4',
      ]);
      expect(oracle.summary.excluded[0]!.reason).toMatch(/cannot be traced here/);
      const empty = await run('reval', 'null', 'official', false, {
        dataPath: SHARED_BENCHMARKS!,
        ids,
      });
      for (const task of ['state', 'path', 'output'])
        expect(empty.summary.tasks[task]!.score).toBe(0);
      expect(empty.summary.tasks.coverage!.coverage!.f1).toBe(0);
    });
  },
);
