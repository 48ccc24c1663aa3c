import { beforeAll, expect, it } from 'vitest';
import { tf } from '@codereasoner/core-tensors';
import { meanOf } from './metrics.js';
import { GrpoTrainer } from './trainer.js';
import { TINY_DATASET, setUpBackend, tinyPolicy, tinyTokenizer } from './__fixtures__/tiny.js';

beforeAll(setUpBackend);

it('learns a toy task: mean reward for emitting one particular token rises over the steps', async () => {
  const tokenizer = tinyTokenizer();
  const target = tokenizer.encode('a')[0]!;
  const before = tf.memory().numTensors;
  const policy = tinyPolicy(tokenizer);
  const maxCompletionLength = 8;
  const trainer = new GrpoTrainer({
    policy,
    tokenizer,
    config: {
      numGenerations: 8,
      generationBatchSize: 32,
      maxCompletionLength,
      maxSteps: 30,
      learningRate: 3e-2,
      seed: 3,
    },
    // One point per `a` token, so the best completion is eight of them (p(a) starts near 1/259).
    rewards: [
      {
        name: 'emit_a',
        fn: ({ completionIds }) =>
          completionIds.map((ids) => ids.filter((t) => t === target).length / maxCompletionLength),
      },
    ],
    dataset: TINY_DATASET,
  });
  const { metrics } = await trainer.train();
  const curve = metrics.map((m) => m.reward);
  const first = meanOf(curve.slice(0, 5));
  const last = meanOf(curve.slice(-5));
  console.log('toy reward curve', curve.map((r) => r.toFixed(3)).join(' '));
  expect(first).toBeLessThan(0.05);
  expect(last).toBeGreaterThan(0.6);
  expect(metrics.at(-1)!['rewards/emit_a/mean']).toBe(curve.at(-1));
  // Entropy falls as the policy concentrates on the rewarded token.
  expect(metrics.at(-1)!.entropy).toBeLessThan(metrics[0]!.entropy - 1);
  trainer.dispose();
  policy.dispose();
  // No tensor outlives the run: model, optimizer moments and every step's intermediates are freed.
  expect(tf.memory().numTensors).toBe(before);
  // A hang cap, not a speed check: 30 steps take seconds, more on a loaded machine.
}, 120_000);
