import { describe, expect, it } from 'vitest';
import { renderHtml } from './report.js';
import type { BenchmarkSummary } from '@codereasoner/bench';
import {
  benchmarkLine,
  renderMarkdownSummary,
  renderTerminalSummary,
  type RunSummary,
} from './summary.js';

const dataOnly: RunSummary = {
  run: '/runs/x',
  stages: [{ stage: 'data', seconds: 2.3, finishedAt: '2026-11-24T00:00:00.000Z' }],
  totalSeconds: 2.3,
  evaluation: [],
  baselines: undefined,
  evalTasks: undefined,
  benchmarks: [],
  artifacts: { 'data.manifest': 'data/manifest.json' },
  figures: {},
};

const diversity = (distinct: number, items: number, count: number, answer: string | null) => ({
  items,
  distinct,
  top: { answer, count, share: count / items },
});

/** Two types, 4 items each: a model that says yes to every coverage question and -1 on every path. */
const grpo: RunSummary['evaluation'][number] = {
  model: 'grpo',
  checkpoint: 'grpo/final',
  accuracy: { coverage: 0.75, path: 0.5 },
  counts: { coverage: { correct: 3, total: 4 }, path: { correct: 2, total: 4 } },
  overall: 0.625,
  diversity: {
    byType: { coverage: diversity(1, 4, 4, 'yes'), path: diversity(1, 4, 4, '-1') },
    overall: {
      ...diversity(2, 8, 4, 'yes'),
      top: { answer: 'yes', type: 'coverage', count: 4, share: 0.5 },
    },
  },
  seconds: 1,
};

const score = (correct: number, total: number) => ({ correct, total, accuracy: correct / total });

const baselines: NonNullable<RunSummary['baselines']> = {
  seed: 1,
  trainTasks: 40,
  seconds: 0.5,
  byType: {
    coverage: {
      total: 4,
      majority: { ...score(3, 4), answer: 'yes', trainCount: 15, trainTotal: 20 },
      bestConstant: { ...score(3, 4), answer: 'yes', candidates: 2, exhaustive: true },
      random: score(2, 4),
      best: { ...score(3, 4), baseline: 'majority' },
    },
    path: {
      total: 4,
      majority: { ...score(1, 4), answer: '-1', trainCount: 5, trainTotal: 20 },
      bestConstant: { ...score(2, 4), answer: '3', candidates: 3, exhaustive: true },
      random: score(0, 4),
      best: { ...score(2, 4), baseline: 'bestConstant' },
    },
  },
  overall: {
    majority: score(4, 8),
    bestConstant: score(5, 8),
    random: score(2, 8),
    best: score(5, 8),
  },
};

describe('renderTerminalSummary', () => {
  it('says there is no evaluation yet instead of printing an empty accuracy table', () => {
    const text = renderTerminalSummary(dataOnly, '/runs/x/report.html');
    expect(text).toContain('no evaluation yet');
    expect(text).not.toMatch(/model\s+output\s+input/);
    expect(text).toMatch(/data\s+2\.3s/);
    expect(text).toContain('Report: /runs/x/report.html');
  });

  it('prints the accuracy table once a model was evaluated', () => {
    const evaluated: RunSummary = {
      ...dataOnly,
      evalTasks: 10,
      evaluation: [
        {
          model: 'base',
          checkpoint: 'sft/base',
          accuracy: { output: 0.5, input: 0, coverage: 1, state: 0, path: 0 },
          counts: {} as RunSummary['evaluation'][number]['counts'],
          overall: 0.3,
          diversity: { byType: {}, overall: diversity(1, 10, 10, null) },
          seconds: 1,
        },
      ],
    };
    const text = renderTerminalSummary(evaluated, '/runs/x/report.html');
    expect(text).toContain('Held-out accuracy (%), 10 tasks:');
    expect(text).toMatch(/base\s+50\.0\s+0\.0\s+100\.0\s+0\.0\s+0\.0\s+30\.0/);
    expect(text).toContain('No baselines recorded for this run');
  });

  it('prints every baseline, the best one, each model’s lift over it and its answer diversity', () => {
    const text = renderTerminalSummary(
      { ...dataOnly, evalTasks: 8, evaluation: [grpo], baselines },
      '/r',
    );
    // columns: output input coverage state path overall
    expect(text).toMatch(/\ngrpo\s+–\s+–\s+75\.0\s+–\s+50\.0\s+62\.5\n/);
    expect(text).toMatch(/baseline: majority \(train\)\s+–\s+–\s+75\.0\s+–\s+25\.0\s+50\.0/);
    expect(text).toMatch(/baseline: best constant\s+–\s+–\s+75\.0\s+–\s+50\.0\s+62\.5/);
    expect(text).toMatch(/baseline: random \(train\)\s+–\s+–\s+50\.0\s+–\s+0\.0\s+25\.0/);
    expect(text).toMatch(/best baseline\s+–\s+–\s+75\.0\s+–\s+50\.0\s+62\.5/);
    // 75 − 75, 50 − 50, 62.5 − 62.5: no lift at all
    expect(text).toContain('Lift over the best baseline (points):');
    expect(text).toMatch(/\ngrpo\s+–\s+–\s+\+0\.0\s+–\s+\+0\.0\s+\+0\.0\n/);
    expect(text).toMatch(/\ngrpo\s+–\s+–\s+1\/4 100%\s+–\s+1\/4 100%\s+2\/8 50%\n/);
    expect(text).toMatch(/coverage\s+4\s+yes \(75%\)\s+yes \(2, exhaustive\)\s+majority \(train\)/);
    expect(text).toMatch(/path\s+4\s+-1 \(25%\)\s+3 \(3, exhaustive\)\s+best constant/);
    const legend = text.replace(/\s+/g, ' ');
    expect(legend).toContain('an upper bound for any constant answer');
    expect(legend).toContain('(seed 1)');
    expect(legend).toContain('among the 40 training tasks');
    expect(Math.max(...text.split('\n').map((line) => line.length))).toBeLessThanOrEqual(100);
  });

  it('signs the lift: below the best baseline is negative', () => {
    const worse = {
      ...grpo,
      accuracy: { coverage: 0.5, path: 1 },
      overall: 0.75,
    };
    const text = renderTerminalSummary({ ...dataOnly, evaluation: [worse], baselines }, '/r');
    // 50 − 75 = −25.0, 100 − 50 = +50.0, 75 − 62.5 = +12.5
    expect(text).toMatch(/\ngrpo\s+–\s+–\s+-25\.0\s+–\s+\+50\.0\s+\+12\.5\n/);
  });
});

describe('summary.md and report.html', () => {
  it('show the same baselines, lift and diversity tables', () => {
    const summary: RunSummary = { ...dataOnly, evalTasks: 8, evaluation: [grpo], baselines };
    const markdown = renderMarkdownSummary(summary);
    expect(markdown).toContain('| baseline: best constant | – | – | 75.0 | – | 50.0 | 62.5 |');
    expect(markdown).toContain('### Lift over the best baseline (points)');
    expect(markdown).toContain('| grpo | – | – | +0.0 | – | +0.0 | +0.0 |');
    expect(markdown).toContain('| grpo | – | – | 1/4 100% | – | 1/4 100% | 2/8 50% |');
    const piped = renderMarkdownSummary({
      ...summary,
      baselines: {
        ...baselines,
        byType: {
          ...baselines.byType,
          path: {
            ...baselines.byType.path!,
            bestConstant: { ...baselines.byType.path!.bestConstant, answer: "'a|b'" },
          },
        },
      },
    });
    expect(piped).toContain("| 'a\\|b' (3, exhaustive) |");
    const html = renderHtml(summary, [], []);
    expect(html).toContain(
      '<tr><td>best baseline</td><td>–</td><td>–</td><td>75.0</td><td>–</td><td>50.0</td><td>62.5</td></tr>',
    );
    expect(html).toContain('<h3>Lift over the best baseline (points)</h3>');
    expect(html).toContain('<td>1/4 100%</td>');
    expect(html).toContain('<td>yes (75%)</td>');
  });
});

describe('benchmarkLine', () => {
  it('puts the best constant answer beside the headline scores when the run has baselines', () => {
    const constant = (score: number) => ({
      majority: { answer: "''", frequency: 3, passed: 1, items: 20, score: 5 },
      bestConstant: { answer: 'True', candidates: 10, passed: 2, items: 20, score },
    });
    const bench = {
      benchmark: 'cruxeval',
      headline: { 'CRUXEval-O': 12, 'CRUXEval-I': 3 },
      tasks: { output: { label: 'CRUXEval-O' }, input: { label: 'CRUXEval-I' } },
      baselines: { output: constant(10), input: constant(2.5) },
    } as unknown as BenchmarkSummary;
    expect(benchmarkLine(bench)).toBe(
      'cruxeval: CRUXEval-O 12.0, CRUXEval-I 3.0 (best constant answer: CRUXEval-O 10.0, CRUXEval-I 2.5)',
    );
    expect(benchmarkLine({ ...bench, baselines: undefined })).toBe(
      'cruxeval: CRUXEval-O 12.0, CRUXEval-I 3.0',
    );
  });
});
