import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@codereasoner/core-tensors';
import { goldenSuite, weightHash } from '../../../test-support/golden.js';
import type { GrpoConfigInput } from './config.js';
import { isTimingMetric } from './metrics.js';
import type { RewardSpec } from './rewards.js';
import { GrpoTrainer } from './trainer.js';
import {
  FIRST_TOKEN_REWARD,
  TINY_CONFIG,
  TINY_DATASET,
  emitAReward,
  tinyPolicy,
  tinyTokenizer,
} from './__fixtures__/tiny.js';

/*
 * Numerics guard. `__fixtures__/golden-metrics.json` was written by the trainer as it was BEFORE
 * it was split into modules (main at 3942a71, one 1,230-line trainer.ts with its own in-process
 * gradient loop), running the scenarios below on the wasm backend. Every logged figure except the
 * timings, and a hash of every trained weight, must stay bit-for-bit what that code produced: a
 * refactor that changes a sum's order, a mask or a seed fails here.
 *
 * Re-record (CR_RECORD_GOLDEN=1) only for a change that is meant to change the numbers, and say
 * so in the commit; then `cr run-all` gives another held-out table too.
 */

const tokenizer = tinyTokenizer();
const emitA = emitAReward(tokenizer);
// Scores half the completions only (null elsewhere): unscorable groups and per-function nulls.
const sparse: RewardSpec = {
  name: 'sparse',
  weight: 2,
  fn: ({ completionIds }) => completionIds.map((ids, i) => (i % 2 === 0 ? ids.length / 6 : null)),
};
// No score for one prompt's group at all: unscorable groups.
const notHello: RewardSpec = {
  name: 'not_hello',
  fn: ({ prompts, completionIds }) =>
    completionIds.map((ids, i) => (prompts[i] === 'hello' ? null : (ids[0]! % 5) / 5)),
};

interface Scenario {
  config: GrpoConfigInput;
  rewards: RewardSpec[];
  lora?: boolean;
  outDir?: boolean;
}

const SCENARIOS: Record<string, Scenario> = {
  'on-policy': { config: { maxSteps: 3 }, rewards: [FIRST_TOKEN_REWARD, emitA] },
  'off-policy, KL, several updates and micro-batches': {
    config: {
      maxSteps: 3,
      beta: 0.05,
      numIterations: 2,
      stepsPerGeneration: 2,
      microBatchSize: 2,
      lrSchedule: 'cosine',
      warmupSteps: 2,
      weightDecay: 0.01,
      maxGradNorm: 0.5,
    },
    rewards: [FIRST_TOKEN_REWARD, sparse],
    outDir: true,
  },
  'dynamic sampling, masked truncation, sequence-level ratios': {
    config: {
      maxSteps: 3,
      dynamicSampling: true,
      maxGenerationBatches: 3,
      maskTruncatedCompletions: true,
      importanceSamplingLevel: 'sequence',
      lossType: 'dapo',
      epsilonHigh: 0.28,
      numIterations: 2,
      temperature: 1.3,
      topK: 50,
    },
    rewards: [emitA],
  },
  'dr_grpo, batch-scaled rewards, top-p': {
    config: { maxSteps: 3, lossType: 'dr_grpo', scaleRewards: 'batch', topP: 0.9, beta: 0.02 },
    rewards: [notHello],
  },
  'LoRA with dropout, reference = base': {
    config: { maxSteps: 2, beta: 0.1, numIterations: 2, microBatchSize: 4 },
    rewards: [FIRST_TOKEN_REWARD],
    lora: true,
  },
  'two worker threads': {
    config: { maxSteps: 2, beta: 0.05, numIterations: 2, microBatchSize: 2, workers: 2 },
    rewards: [FIRST_TOKEN_REWARD],
  },
};

interface Recorded {
  metrics: Record<string, unknown>[];
  weights: string;
  updates: number;
  workers: number;
}

async function runScenario(scenario: Scenario): Promise<Recorded> {
  const policy = tinyPolicy(tokenizer);
  // The records are bit for bit the reference attention ops' (the fused kernel agrees only within
  // float32 rounding), so this test keeps guarding the trainer, not the attention path; clones
  // (the KL reference model) and worker replicas inherit it.
  policy.attention = 'reference';
  if (scenario.lora === true)
    policy.addAdapters(
      { r: 2, alpha: 4, dropout: 0.1, targetModules: ['q_proj', 'v_proj'] },
      { seed: 3 },
    );
  const outDir =
    scenario.outDir === true ? await mkdtemp(join(tmpdir(), 'grpo-golden-')) : undefined;
  try {
    const trainer = new GrpoTrainer({
      policy,
      tokenizer,
      rewards: scenario.rewards,
      dataset: TINY_DATASET,
      config: { ...TINY_CONFIG, ...scenario.config },
      ...(outDir === undefined ? {} : { outDir }),
    });
    const result = await trainer.train();
    trainer.dispose();
    return {
      metrics: result.metrics.map((m) =>
        Object.fromEntries(Object.entries(m).filter(([k]) => !isTimingMetric(k))),
      ),
      weights: weightHash(policy),
      updates: result.updates,
      workers: result.workers,
    };
  } finally {
    policy.dispose();
    if (outDir !== undefined) await rm(outDir, { recursive: true, force: true });
  }
}

goldenSuite({
  title: 'GrpoTrainer numerics (golden record of the pre-split trainer)',
  golden: new URL('./__fixtures__/golden-metrics.json', import.meta.url),
  scenarios: SCENARIOS,
  run: runScenario,
  initWasm: () => initBackend({ backend: 'wasm' }),
  backend: () => tf.getBackend(),
});
