import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderComparison, type CompareRun } from './compare.js';
import { collectLevelAccuracy, levelGrid } from './levels.js';
import { RunDirectory } from './run-dir.js';
import type { RunSummary } from './summary.js';
import { baselinesOf, evaluationOf } from './testing/summary-fixtures.js';

const model = evaluationOf;

function summary(models: RunSummary['evaluation'], withBaselines: boolean): RunSummary {
  return {
    run: '/runs/c',
    stages: [{ stage: 'sft', seconds: 61, finishedAt: '2026-12-06T00:00:00.000Z' }],
    totalSeconds: 61,
    evaluation: models,
    baselines: withBaselines ? baselinesOf(true) : undefined,
    evalTasks: 20,
    benchmarks: [],
    artifacts: {},
    figures: {},
  };
}

describe('renderComparison', () => {
  const runs: CompareRun[] = [
    {
      seed: 1,
      variant: 'chains',
      summary: summary(
        [model('base', 0, 0), model('sft', 0.3, 0.6), model('grpo', 0.4, 0.7)],
        true,
      ),
    },
    {
      seed: 1,
      variant: 'answers',
      summary: summary([model('base', 0, 0), model('sft', 0.1, 0.6)], false),
    },
  ];
  const text = renderComparison(runs, false);

  it('lists each seed’s models beside its baselines', () => {
    expect(text).toMatch(/seed 1 · SFT chains\s+30\.0/);
    expect(text).toMatch(/seed 1 · SFT answers only\s+10\.0/);
    expect(text).toMatch(/seed 1 · GRPO \(after SFT chains\)\s+40\.0/);
    expect(text).toMatch(/seed 1 · baseline: best constant\s+10\.0/);
    // the answers run's untrained model is the chains run's: listed once
    expect(text.match(/base \(untrained\)/g)).toHaveLength(1);
  });

  it('states both claims in points', () => {
    // output: chains 30 − answers 10 = +20; GRPO 40 − SFT 30 = +10; GRPO 40 − best constant 10 = +30
    expect(text).toMatch(/SFT chains − SFT answers only\s+\+20\.0/);
    expect(text).toMatch(/GRPO − SFT chains\s+\+10\.0/);
    expect(text).toMatch(/GRPO − best baseline\s+\+30\.0/);
    expect(renderComparison(runs, true)).toContain('| seed 1 · SFT chains |');
  });
});

describe('collectLevelAccuracy', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('scores models and baselines per difficulty level of the held-out tasks', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cr-levels-'));
    dirs.push(root);
    await mkdir(join(root, 'data', 'tasks'), { recursive: true });
    await mkdir(join(root, 'eval'), { recursive: true });
    const task = (id: string, level: string) => ({
      id,
      programId: `p-${id}`,
      callId: `c-${id}`,
      split: 'eval',
      type: 'output',
      code: 'def f(x):\n    return x\n',
      entryPoint: 'f',
      input: 'f(1)',
      output: '1',
      answer: '1',
      meta: { difficulty: level },
    });
    const tasks = [task('a', 'hard'), task('b', 'basic'), task('c', 'basic'), task('d', 'easy')];
    await writeFile(
      join(root, 'data', 'tasks', 'eval.jsonl'),
      tasks.map((t) => JSON.stringify(t)).join('\n') + '\n',
    );
    const item = (taskId: string, correct: boolean) => ({
      taskId,
      type: 'output',
      completion: '',
      answer: null,
      finishReason: 'stop',
      correct,
      reason: '',
    });
    await writeFile(
      join(root, 'eval', 'sft.json'),
      JSON.stringify({
        items: [item('a', false), item('b', true), item('c', false), item('d', true)],
      }),
    );
    await writeFile(
      join(root, 'eval', 'baselines.json'),
      JSON.stringify({
        items: ['a', 'b', 'c', 'd'].map((taskId) => ({
          taskId,
          type: 'output',
          majority: taskId === 'a',
          bestConstant: taskId !== 'd',
        })),
      }),
    );
    const accuracy = (await collectLevelAccuracy(new RunDirectory(root)))!;
    // easiest first, whatever order the tasks come in
    expect(accuracy.levels).toEqual(['basic', 'easy', 'hard']);
    const grid = levelGrid(accuracy);
    expect(grid.header).toEqual(['model', 'basic (2)', 'easy (1)', 'hard (1)']);
    expect(grid.rows[0]).toEqual(['sft', '50.0', '100.0', '0.0']);
    expect(grid.rows.find((r) => r[0] === 'baseline: best constant')).toEqual([
      'baseline: best constant',
      '100.0',
      '0.0',
      '100.0',
    ]);
    expect(grid.rows.find((r) => r[0] === 'baseline: random (train)')).toEqual([
      'baseline: random (train)',
      '–',
      '–',
      '–',
    ]);
  });
});
