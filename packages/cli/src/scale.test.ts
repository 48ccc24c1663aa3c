import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRESETS } from './presets.js';
import {
  accuracyRows,
  budgetList,
  computeRows,
  scaleChart,
  scaledSections,
  sharedKey,
  type ScaleRun,
} from './scale.js';
import type { RunConfig } from './config.js';
import type { RunSummary } from './summary.js';
import { cr } from './testing/spawn-cr.js';
import { baselinesOf, evaluationOf, score } from './testing/summary-fixtures.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

describe('budgetList', () => {
  it('reads distinct positive budgets, ascending', () => {
    expect(budgetList('3, 1,2')).toEqual([1, 2, 3]);
    expect(budgetList('0.5,1')).toEqual([0.5, 1]);
  });

  it.each([
    ['0,1,2', /'0' is not a positive number/],
    ['-1,2', /'-1' is not a positive number/],
    ['1,x', /'x' is not a positive number/],
    ['1,,2', /'' is not a positive number/],
    ['1,2,2', /2 is given twice/],
    ['2', /at least two budgets/],
  ])('refuses %s', (value, message) => {
    expect(() => budgetList(value)).toThrow(message);
  });
});

describe('scaledSections', () => {
  const base = { ...PRESETS.default, preset: 'default' as const };

  it('multiplies the steps and their cadence, and keeps the warm-up', () => {
    // default preset: sft 1080 steps, warmup 12, evalEvery 360, checkpointEvery 120; grpo 240 steps, saveSteps 20
    expect(scaledSections(base, 2)).toEqual({
      sft: { steps: 2160, warmupSteps: 12, evalEvery: 720, checkpointEvery: 240 },
      grpo: { maxSteps: 480, saveSteps: 40 },
    });
    expect(scaledSections(base, 0.5)).toEqual({
      sft: { steps: 540, warmupSteps: 12, evalEvery: 180, checkpointEvery: 60 },
      grpo: { maxSteps: 120, saveSteps: 10 },
    });
  });

  it('scales the steps a GRPO paper preset sets', () => {
    const withPreset = { ...base, grpo: { preset: 'dapo' } };
    // DAPO's preset leaves maxSteps at the package default (100)
    expect(scaledSections(withPreset, 3).grpo.maxSteps).toBe(300);
  });

  it('refuses a budget that leaves no step or no step past the warm-up', () => {
    expect(() => scaledSections(base, 0.001)).toThrow(/at least one step of each/);
    expect(() => scaledSections(base, 0.01)).toThrow(
      /11 SFT steps are not more than the 12 warm-up steps/,
    );
  });

  it('keys the shared outputs on everything but the run directory, GRPO and the scaled SFT steps', () => {
    const at = (budget: number): RunConfig => {
      const sections = scaledSections(base, budget);
      return {
        ...base,
        out: `/runs/budget-${budget}`,
        sft: { ...base.sft, ...sections.sft },
        grpo: { ...base.grpo, ...sections.grpo },
      };
    };
    expect(sharedKey(at(1))).toBe(sharedKey(at(3)));
    expect(sharedKey({ ...at(1), seed: 2 })).not.toBe(sharedKey(at(3)));
    expect(sharedKey({ ...at(1), sft: { ...at(1).sft, reasoning: false } })).not.toBe(
      sharedKey(at(1)),
    );
  });
});

// ---------------------------------------------------------------------------------------------

function summary(budget: number, sft: number, grpo: number): RunSummary {
  const model = (name: string, output: number) => evaluationOf(name, output, 0.5);
  return {
    run: `/runs/budget-${budget}`,
    stages: [
      { stage: 'data', seconds: budget === 1 ? 18 : 0, finishedAt: '' },
      { stage: 'sft', seconds: 300 * budget, finishedAt: '' },
      { stage: 'grpo', seconds: 150 * budget, finishedAt: '' },
      { stage: 'eval', seconds: 30, finishedAt: '' },
    ],
    totalSeconds: (budget === 1 ? 18 : 0) + 450 * budget + 30,
    evaluation: [model('base', 0), model('sft', sft), model('grpo', grpo)],
    baselines: baselinesOf(false),
    evalTasks: 20,
    benchmarks: [],
    artifacts: {},
    figures: {
      data: budget === 1 ? {} : { sharedFrom: '../budget-1' },
      sft: { steps: 540 * budget },
      grpo: { steps: 80 * budget },
    },
  };
}

describe('the scale table and chart', () => {
  const runs: ScaleRun[] = [
    { budget: 1, summary: summary(1, 0.2, 0.3), sftTokens: 1000, grpoTokens: 500 },
    { budget: 2, summary: summary(2, 0.4, 0.5), sftTokens: 2000, grpoTokens: 1000 },
    { budget: 3, summary: summary(3, 0.6, 0.7), sftTokens: 3000, grpoTokens: undefined },
  ];

  it('has a row per budget and model with its steps and accuracy, and the best baseline once', () => {
    const rows = accuracyRows(runs);
    // columns: label, SFT steps, GRPO steps, output input coverage state path overall
    expect(rows[0]).toEqual(['×1 · SFT', '540', '0', '20.0', '–', '50.0', '–', '–', '35.0']);
    expect(rows[3]).toEqual(['×2 · GRPO', '1080', '160', '50.0', '–', '50.0', '–', '–', '50.0']);
    expect(rows[5]![0]).toBe('×3 · GRPO');
    expect(rows[5]![3]).toBe('70.0');
    expect(rows).toHaveLength(7);
    expect(rows[6]).toEqual([
      'best baseline (every budget)',
      '–',
      '–',
      '10.0',
      '–',
      '–',
      '–',
      '–',
      '30.0',
    ]);
  });

  it('shows each budget’s baseline when they differ', () => {
    const other = summary(2, 0.4, 0.5);
    other.baselines!.overall.best = score(7, 20);
    const rows = accuracyRows([runs[0]!, { ...runs[1]!, summary: other }]);
    expect(rows.filter((row) => row[0]!.includes('best baseline')).map((row) => row[0])).toEqual([
      '×1 · best baseline',
      '×2 · best baseline',
    ]);
  });

  it('lists tokens and stage times per budget, a copied stage as shared', () => {
    expect(computeRows(runs)).toEqual([
      ['×1', '540', '80', '1000', '500', '18.0s', '5m00s', '2m30s', '30.0s', '8m18s'],
      ['×2', '1080', '160', '2000', '1000', 'shared', '10m00s', '5m00s', '30.0s', '15m30s'],
      ['×3', '1620', '240', '3000', '–', 'shared', '15m00s', '7m30s', '30.0s', '23m00s'],
    ]);
  });

  it('draws one point per budget on each model line, the baseline dashed, integer budget ticks', () => {
    const svg = scaleChart(runs);
    // two panels (overall, output), each: SFT and GRPO solid with points, best baseline dashed
    const solid = [
      ...svg.matchAll(/<path d="([^"]+)" fill="none" stroke="[^"]+" stroke-width="1.8"\/>/g),
    ];
    expect(solid).toHaveLength(4);
    for (const [, d] of solid) expect(d!.match(/[ML]/g)).toHaveLength(3);
    expect(svg.match(/<circle /g)).toHaveLength(12);
    expect(svg.match(/stroke-dasharray="5 4"/g)).toHaveLength(2);
    const ticks = [...svg.matchAll(/text-anchor="middle">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(ticks.filter((t) => /^[0-9.]+$/.test(t!))).toEqual(['1', '2', '3', '1', '2', '3']);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: the built `cr`, as a user runs it.

function hasCheckpoint(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).some((name) => name.startsWith('step-'));
}

// parsed as `any`, like every JSON file these end-to-end tests read
async function readJson(path: string) {
  return JSON.parse(await readFile(path, 'utf8'));
}

describe('cr scale (tiny preset)', () => {
  it('refuses bad --budgets before anything is written', async () => {
    const out = join(await tempDir('cr-scale-bad-'), 'scale');
    for (const [budgets, message] of [
      ['1,1,2', /1 is given twice/],
      ['0,1,2', /'0' is not a positive number/],
      ['2', /at least two budgets/],
      // the tiny preset's 2 GRPO steps × 0.1 round to none
      ['0.1,1,2', /every budget needs at least one step of each/],
    ] as const) {
      const result = await cr(['scale', '--preset', 'tiny', '--out', out, '--budgets', budgets]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(existsSync(out), budgets).toBe(false);
    }
  });

  it('runs one run per budget with scaled steps, resumes after a kill, and tabulates and charts them', async () => {
    const out = join(await tempDir('cr-scale-'), 'scale');
    const args = ['scale', '--preset', 'tiny', '--out', out, '--budgets', '1,2,3'];
    const budgets = [1, 2, 3];
    const run = (budget: number, ...parts: string[]) => join(out, `budget-${budget}`, ...parts);

    // killed (SIGKILL) once the second budget's SFT has saved a checkpoint
    const killed = await cr(args, {
      killWhen: () => hasCheckpoint(run(2, 'sft', 'train', 'checkpoints')),
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(existsSync(run(1, 'eval', '.done'))).toBe(true);
    expect(existsSync(run(2, 'sft', '.done'))).toBe(false);
    expect(existsSync(run(3))).toBe(false);

    // resumed, with --json: events, then the result, one object per line on stdout
    const finished = await cr([...args, '--json']);
    expect(finished.code, finished.stderr).toBe(0);
    const events = finished.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    // the finished budget is not run again; the second resumes its SFT from its checkpoint; the
    // third starts on the corpus the first built
    expect(
      events.filter((e) => e.type === 'stage-end').map((e) => `${e.stage} ${e.status}`),
    ).toEqual([
      ...['data', 'sft', 'grpo', 'eval'].map((stage) => `${stage} skipped`),
      ...['data skipped', 'sft done', 'grpo done', 'eval done'],
      ...['data skipped', 'sft done', 'grpo done', 'eval done'],
    ]);
    const messages = events.filter((e) => e.type === 'info').map((e) => e.message as string);
    expect(messages).toContainEqual(expect.stringMatching(/sft: resuming from .*budget-2.*step-/));
    expect(messages).toContain('scale: shared data (from ../budget-1)');

    for (const [index, budget] of budgets.entries()) {
      const summary = await readJson(run(budget, 'summary.json'));
      const config = await readJson(run(budget, 'config.json'));
      // the tiny preset: 6 SFT steps (warm-up 2, checkpoint every 3), 2 GRPO steps
      expect(config.sft).toMatchObject({
        steps: 6 * budget,
        warmupSteps: 2,
        checkpointEvery: 3 * budget,
      });
      expect(config.grpo).toMatchObject({ maxSteps: 2 * budget });
      expect(summary.figures.sft.steps).toBe(6 * budget);
      expect(summary.figures.grpo.steps).toBe(2 * budget);
      expect(summary.evaluation.map((e: { model: string }) => e.model)).toEqual([
        'base',
        'sft',
        'grpo',
      ]);
      // every budget scored the same held-out items: the base model's record is the same file
      if (index > 0)
        expect(await readFile(run(budget, 'eval', 'base.json'), 'utf8')).toBe(
          await readFile(run(1, 'eval', 'base.json'), 'utf8'),
        );
    }

    // the table's numbers are each run's summary.json
    const markdown = await readFile(join(out, 'scale.md'), 'utf8');
    const header = markdown.split('\n').find((line) => line.startsWith('| budget · model'))!;
    const columns = header
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
    const row = (label: string) => {
      const line = markdown.split('\n').find((l) => l.startsWith(`| ${label} |`));
      expect(line, label).toBeDefined();
      const cells = line!
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
      return Object.fromEntries(columns.map((column, i) => [column, cells[i]]));
    };
    const pct = (value: number | undefined) =>
      value === undefined ? '–' : (100 * value).toFixed(1);
    for (const budget of budgets) {
      const summary = await readJson(run(budget, 'summary.json'));
      for (const [model, label] of [
        ['sft', 'SFT'],
        ['grpo', 'GRPO'],
      ]) {
        const cells = row(`×${budget} · ${label}`);
        const evaluation = summary.evaluation.find((e: { model: string }) => e.model === model);
        expect(cells['SFT steps']).toBe(String(summary.figures.sft.steps));
        expect(cells['GRPO steps']).toBe(
          model === 'sft' ? '0' : String(summary.figures.grpo.steps),
        );
        expect(cells.overall).toBe(pct(evaluation.overall));
        for (const type of ['output', 'input', 'coverage', 'state', 'path'])
          expect(cells[type], `${budget} ${model} ${type}`).toBe(pct(evaluation.accuracy[type]));
      }
    }
    const baselines = (await readJson(run(1, 'summary.json'))).baselines;
    const best = row('best baseline (every budget)');
    expect(best.overall).toBe(pct(baselines.overall.best.accuracy));
    expect(best.output).toBe(pct(baselines.byType.output?.best.accuracy));

    // the chart: one point per budget on each model line (two panels × SFT, GRPO)
    const svg = await readFile(join(out, 'scale.svg'), 'utf8');
    expect(svg.match(/<circle /g)).toHaveLength(2 * 2 * budgets.length);
    expect(await readFile(join(out, 'scale.html'), 'utf8')).toContain(svg.trim());

    const result = events.at(-1);
    // training tokens: SFT's summed target tokens, GRPO's last num_tokens, per budget
    expect(result.type).toBe('result');
    for (const [index, budget] of budgets.entries()) {
      const sftSteps = (await readFile(run(budget, 'sft', 'train', 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
        .filter((m) => m.kind === 'step');
      const byStep = new Map(sftSteps.map((m) => [m.step, m.targetTokens]));
      expect(byStep.size).toBe(6 * budget);
      expect(result.runs[index].sftTokens).toBe([...byStep.values()].reduce((a, b) => a + b));
      const grpo = (await readFile(run(budget, 'grpo', 'train', 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(result.runs[index].grpoTokens).toBe(grpo.at(-1).num_tokens);
    }
  });
});
