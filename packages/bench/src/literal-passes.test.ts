import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cruxEvalItems, loadCruxEval, scoreCruxEval } from './cruxeval.js';
import { taskMetrics } from './report.js';
import { FIXTURES } from './test-paths.js';

// The official CRUXEval harness runs `assert <gold> == <answer>`, so an expression answer such as
// `0 or True` (or `True or (lambda: f(0))` for -I, which passes the harness's `f(` guard) passes
// every item. Scores stay official; each such pass is flagged and counted.

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
});
afterAll(async () => {
  await sandbox?.close();
});

describe('non-literal passes (CRUXEval, official scoring)', () => {
  it('flags expression answers that pass, and leaves gold literals unflagged', async () => {
    const records = await loadCruxEval(join(FIXTURES, 'cruxeval/cruxeval.jsonl'));
    const items = cruxEvalItems(records, {
      tasks: ['output', 'input'],
      cot: false,
      style: 'official',
    });
    const byId = new Map(records.map((r) => [r.id, r]));
    const completions = items.map((item) => {
      const record = byId.get(item.id)!;
      return item.task === 'output'
        ? ['0 or True[/ANSWER]', `${record.output}[/ANSWER]`]
        : [`True or (lambda: f(0))[/ANSWER]`, `f(${record.input})[/ANSWER]`];
    });
    const verdicts = await scoreCruxEval(sandbox, byId, items, completions, {
      cot: false,
      style: 'official',
    });
    for (const samples of verdicts) {
      // the gamed answer passes, as it does under the official harness, and is flagged
      expect(samples[0]).toMatchObject({ verdict: 'pass', literal: false });
      // the gold answer passes and is a literal (a call of f on literals for -I)
      expect(samples[1]).toMatchObject({ verdict: 'pass', literal: true });
    }

    const output = items
      .map((item, i) => ({ item, samples: verdicts[i]! }))
      .filter(({ item }) => item.task === 'output')
      .map(({ item, samples }) => ({
        key: item.key,
        task: item.task,
        id: item.id,
        answerable: true,
        prompt: [],
        samples: samples.map((v) => ({
          completion: '',
          finishReason: 'stop' as const,
          extracted: v.extracted,
          verdict: v.verdict,
          reason: v.reason,
          ...(v.literal === false ? { literal: false as const } : {}),
        })),
        n: 2,
        c: 2,
      }));
    const metrics = taskMetrics('cruxeval', 'output', output);
    expect(metrics.passedSamples).toBe(12);
    expect(metrics.nonLiteralPasses).toBe(6);

    // strictLiterals: the same expression answers fail, the gold literals still pass
    const strict = await scoreCruxEval(sandbox, byId, items, completions, {
      cot: false,
      style: 'official',
      strictLiterals: true,
    });
    for (const samples of strict) {
      expect(samples[0]).toMatchObject({ verdict: 'fail', literal: false });
      expect(samples[0]!.reason).toContain('not a literal');
      expect(samples[1]).toMatchObject({ verdict: 'pass', literal: true });
    }
  });
});
