import { describe, expect, it } from 'vitest';
import {
  PAPER_ROWS,
  officialCount,
  renderMarkdownReport,
  revalConsistency,
  taskMetrics,
  type BenchmarkSummary,
  type ItemRecord,
} from './report.js';
import { incrementalConsistency } from './reval/items.js';
import type { Verdict } from './types.js';

function record(key: string, verdicts: Verdict[], extra: Partial<ItemRecord> = {}): ItemRecord {
  const [task, ...rest] = key.split('/');
  return {
    key,
    task: task!,
    id: rest.join('/'),
    answerable: true,
    prompt: [],
    samples: verdicts.map((verdict) => ({
      completion: '',
      finishReason: 'stop',
      extracted: null,
      verdict,
      reason: '',
    })),
    ...officialCount('reval', verdicts),
    ...extra,
  };
}

describe('officialCount', () => {
  it('CRUXEval: drops skipped generations, but resets a sample with no pass to all n', () => {
    expect(officialCount('cruxeval', ['pass', 'skipped', 'fail'])).toEqual({ n: 2, c: 1 });
    expect(officialCount('cruxeval', ['skipped', 'fail', 'fail'])).toEqual({ n: 3, c: 0 });
  });

  it('LiveCodeBench: only an all-skipped sample counts all n', () => {
    expect(officialCount('livecodebench', ['skipped', 'fail'])).toEqual({ n: 1, c: 0 });
    expect(officialCount('livecodebench', ['skipped', 'skipped'])).toEqual({ n: 2, c: 0 });
  });
});

describe('taskMetrics', () => {
  it('computes pass@1, pass@5 and coverage precision/recall/F1', () => {
    const crux = [
      {
        ...record('output/sample_0', ['pass', 'fail', 'fail', 'fail', 'fail']),
        ...officialCount('cruxeval', ['pass', 'fail', 'fail', 'fail', 'fail']),
      },
      {
        ...record('output/sample_1', ['fail', 'fail', 'fail', 'fail', 'fail']),
        ...officialCount('cruxeval', ['fail', 'fail', 'fail', 'fail', 'fail']),
      },
    ];
    const m = taskMetrics('cruxeval', 'output', crux);
    expect(m.label).toBe('CRUXEval-O');
    expect(m.score).toBeCloseTo(10, 10);
    expect(m.passAt5).toBeCloseTo(50, 10);

    const cov = [
      record('coverage/a', ['pass'], {}),
      record('coverage/b', ['fail'], {}),
      record('coverage/c', ['pass'], {}),
    ];
    cov[0]!.samples[0]!.extracted = 'YES'; // TP
    cov[1]!.samples[0]!.extracted = 'YES'; // FP
    cov[2]!.samples[0]!.extracted = 'NO'; // TN
    const c = taskMetrics('reval', 'coverage', cov).coverage!;
    expect(c.accuracy).toBeCloseTo(200 / 3, 10);
    expect(c.precision).toBeCloseTo(50, 10);
    expect(c.recall).toBeCloseTo(100, 10);
    expect(c.f1).toBeCloseTo(200 / 3, 10);
  });
});

describe('incremental consistency', () => {
  it('scores 1, 0.5, 0.25, 0.125 for the incremental patterns and 0 otherwise', () => {
    const p = (coverage: boolean, state: boolean, path: boolean, output: boolean) => ({
      coverage,
      state,
      path,
      output,
    });
    expect(incrementalConsistency([p(true, true, true, true)])).toBe(100);
    expect(incrementalConsistency([p(true, true, true, false)])).toBe(50);
    expect(incrementalConsistency([p(true, true, false, false)])).toBe(25);
    expect(incrementalConsistency([p(true, false, false, false)])).toBe(12.5);
    expect(
      incrementalConsistency([
        p(false, true, true, true),
        p(true, false, true, true),
        p(true, true, false, true),
      ]),
    ).toBe(0);
    expect(incrementalConsistency([])).toBeUndefined();
  });

  it('aligns probe items with their group output item', () => {
    const probe = 'DREval/0#0@0:L3:x';
    const records = [
      record(`coverage/${probe}`, ['pass'], { group: 'DREval/0#0' }),
      record(`state/${probe}`, ['pass'], { group: 'DREval/0#0' }),
      record(`path/${probe}`, ['fail'], { group: 'DREval/0#0' }),
      record('output/DREval/0#0', ['fail'], { group: 'DREval/0#0' }),
    ];
    expect(revalConsistency(records)).toEqual({ score: 25, points: 1 });
    expect(revalConsistency(records.slice(0, 3))).toEqual({ score: undefined, points: 0 });
  });
});

describe('renderMarkdownReport', () => {
  it('sets the run beside the paper rows with a per-task table', () => {
    const summary = {
      benchmark: 'cruxeval',
      model: 'my-model',
      settings: {
        promptStyle: 'official',
        cot: false,
        n: 1,
        temperature: 0,
        topP: undefined,
        maxTokens: 100,
        seed: 0,
        tasks: ['output', 'input'],
        ids: undefined,
        limit: 10,
        stop: ['[/ANSWER]'],
      },
      tasks: {
        output: {
          task: 'output',
          label: 'CRUXEval-O',
          items: 10,
          samples: 10,
          score: 40,
          passedSamples: 4,
          skippedSamples: 0,
          unanswerable: 0,
          nonLiteralPasses: 2,
        },
        input: {
          task: 'input',
          label: 'CRUXEval-I',
          items: 10,
          samples: 10,
          score: 30,
          passedSamples: 3,
          skippedSamples: 1,
          unanswerable: 0,
          nonLiteralPasses: 0,
        },
      },
      headline: { 'CRUXEval-O': 40, 'CRUXEval-I': 30 },
      excluded: [],
      notes: [],
    } as unknown as BenchmarkSummary;
    const md = renderMarkdownReport([summary]);
    for (const row of PAPER_ROWS)
      expect(md).toContain(`| ${row.model} (paper) | ${row.cruxevalO.toFixed(1)} |`);
    expect(md).toContain('| **my-model** (this run) | 40.0 | 30.0 | – | – |');
    expect(md).toContain('| CRUXEval-I | 10 | 10 | 30.0 | – | 3 | 1 | 0 |');
    expect(md).toContain('first 10 records');
    expect(md).toContain(
      'Passes whose answer is an expression, not a literal (the official harness accepts them, as in `x or True`): CRUXEval-O 2 of 4.',
    );
  });
});
