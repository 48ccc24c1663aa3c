// Every judge of the data package (the GRPO reward, held-out evaluation and distillation all call
// verifyBatch) against the adversarial corpus, on both engines: no attack scores, every gold does,
// nothing crashes or hangs the worker.
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adversarialCorpus,
  adversarialQuestions,
  judgeEngines,
} from '../../../test-support/adversarial.js';
import { verifyBatch } from './verify.js';

const { task: target } = adversarialCorpus;
const judges = adversarialQuestions('adversarial', 'eval');

for (const { engine, skip } of judgeEngines) {
  describe.skipIf(skip !== false)(`adversarial answers, ${engine} engine${skip || ''}`, () => {
    let sandbox: Sandbox;
    beforeAll(async () => {
      sandbox = await Sandbox.create({ engine, workers: 1 });
    }, 60_000);
    afterAll(async () => {
      await sandbox.close();
    });

    it('scores no attack and every gold, on every judge', async () => {
      const accepted: Record<string, string[]> = {};
      const rejectedGolds: Record<string, string[]> = {};
      for (const judge of judges) {
        const results = await verifyBatch(
          sandbox,
          [...judge.attacks, ...judge.golds].map((answer) => ({
            task: judge.task,
            completion: `<answer>${answer}</answer>`,
          })),
          { timeoutMs: 2000 },
        );
        accepted[judge.name] = judge.attacks.filter((_, i) => results[i]!.correct);
        rejectedGolds[judge.name] = judge.golds
          .map((gold, i) => ({ gold, result: results[judge.attacks.length + i]! }))
          .filter(({ result }) => !result.correct)
          .map(({ gold, result }) => `${JSON.stringify(gold)}: ${result.reason}`);
      }
      // The counts are the before/after figure; printed so a run shows them.
      console.log(
        `adversarial answers accepted (${engine}):`,
        Object.fromEntries(Object.entries(accepted).map(([name, list]) => [name, list.length])),
      );
      expect(accepted).toEqual({ output: [], state: [], input: [], coverage: [], path: [] });
      expect(rejectedGolds).toEqual({ output: [], state: [], input: [], coverage: [], path: [] });
      // The worker still judges plainly after the corpus: wrong fails, right passes.
      const after = await verifyBatch(sandbox, [
        { task: judges[0]!.task, completion: `<answer>${target.wrongOutput}</answer>` },
        { task: judges[0]!.task, completion: `<answer>${target.output}</answer>` },
      ]);
      expect(after.map((result) => result.correct)).toEqual([false, true]);
    }, 300_000);
  });
}
