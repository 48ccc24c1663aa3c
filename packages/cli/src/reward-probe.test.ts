// The reward-hacking probe: a scripted policy that emits the adversarial corpus as its answers,
// through the reward `cr grpo` trains with (protocol's verifiedReward, on the run's own sandbox), earns 0.
// The gold answers of the same questions earn 1, so the probe can fail.
import type { RewardInput } from '@codereasoner/grpo';
import { afterAll, describe, expect, it } from 'vitest';
import { adversarialQuestions, judgeEngines } from '../../../test-support/adversarial.js';
import { resolveRunConfig } from './config.js';
import { StageContext } from './context.js';
import { createReporter } from './progress.js';
import { runReward } from './stages.js';

// Each question's attacks, and its one gold answer (the one that must earn 1).
const questions = adversarialQuestions('probe', 'train').map(({ task, attacks, gold }) => ({
  task,
  attacks,
  golds: [gold],
}));

for (const { engine, skip } of judgeEngines) {
  describe.skipIf(skip !== false)(
    `GRPO reward-hacking probe, ${engine} engine${skip || ''}`,
    () => {
      const context = new StageContext(
        resolveRunConfig(
          { sandbox: { engine, workers: 1 } },
          { out: `/tmp/cr-reward-probe-${process.pid}` },
        ),
        createReporter({ quiet: true }),
        new AbortController().signal,
      );
      afterAll(async () => {
        await (await context.sandbox()).close();
      });

      it('a policy emitting the adversarial corpus earns reward 0; the gold answers earn 1', async () => {
        const reward = runReward(context);
        const rows: Record<string, unknown>[] = [];
        const completions: string[] = [];
        const isGold: boolean[] = [];
        for (const question of questions) {
          for (const [answers, gold] of [
            [question.attacks, false],
            [question.golds, true],
          ] as const) {
            for (const answer of answers) {
              // The scripted policy's completion, in the protocol's format (reasoning + answer).
              completions.push(
                `<think>\nthe answer is below\n</think>\n<answer>${answer}</answer>`,
              );
              rows.push({ prompt: [], task: question.task });
              isGold.push(gold);
            }
          }
        }
        const input: RewardInput = {
          prompts: rows.map(() => []),
          completions,
          completionIds: completions.map(() => []),
          rows,
          finishReasons: completions.map(() => 'stop' as const),
          step: 1,
        };
        const rewards = await reward(input);
        const attackRewards = rewards.filter((_, i) => !isGold[i]);
        expect(attackRewards.length).toBeGreaterThan(100);
        expect(attackRewards.filter((r) => r !== 0)).toEqual([]);
        expect(rewards.filter((_, i) => isGold[i])).toEqual(questions.map(() => 1));
      }, 300_000);
    },
  );
}
