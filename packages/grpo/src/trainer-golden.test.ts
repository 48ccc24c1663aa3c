import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf, type CausalLM } from '@codereasoner/core-tensors';
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
const GOLDEN = new URL('./__fixtures__/golden-metrics.json', import.meta.url);
const RECORD = process.env['CR_RECORD_GOLDEN'] === '1';

const tokenizer = tinyTokenizer();
const emitA = emitAReward(tokenizer);
const firstToken = FIRST_TOKEN_REWARD;
const base = TINY_CONFIG;
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
  'on-policy': { config: { maxSteps: 3 }, rewards: [firstToken, emitA] },
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
    rewards: [firstToken, sparse],
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
    rewards: [firstToken],
    lora: true,
  },
  'two worker threads': {
    config: { maxSteps: 2, beta: 0.05, numIterations: 2, microBatchSize: 2, workers: 2 },
    rewards: [firstToken],
  },
};

interface Recorded {
  metrics: Record<string, unknown>[];
  weights: string;
  updates: number;
  workers: number;
}

function weightHash(policy: CausalLM): string {
  const hash = createHash('sha256');
  const named = [...policy.parameters, ...policy.adapterParameters].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  for (const [name, variable] of named) {
    hash.update(name);
    hash.update(Buffer.from((variable.dataSync() as Float32Array).buffer));
  }
  return hash.digest('hex');
}

async function runScenario(scenario: Scenario): Promise<Recorded> {
  const policy = tinyPolicy(tokenizer);
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
      config: { ...base, ...scenario.config },
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

const recorded: Record<string, Recorded> = {};
let golden: { backend: string; scenarios: Record<string, Recorded> } | undefined;

beforeAll(async () => {
  // Golden figures are per backend; wasm is always installed with core-tensors.
  const { active } = await initBackend({ backend: 'wasm' });
  expect(active, 'the golden figures were recorded on the wasm backend').toBe('wasm');
  if (!RECORD) {
    expect(existsSync(GOLDEN), `${GOLDEN.pathname} is missing: it is committed with the test`).toBe(
      true,
    );
    golden = JSON.parse(await readFile(GOLDEN, 'utf8')) as typeof golden;
  }
});

afterAll(async () => {
  if (RECORD)
    await writeFile(
      GOLDEN,
      `${JSON.stringify({ backend: tf.getBackend(), scenarios: recorded }, null, 2)}\n`,
    );
});

describe('GrpoTrainer numerics (golden record of the pre-split trainer)', () => {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(`${name}: the same metrics and weights as the recorded run`, async () => {
      const run = await runScenario(scenario);
      expect(run.metrics.length).toBeGreaterThan(0);
      if (RECORD) {
        recorded[name] = run;
        return;
      }
      const expected = golden!.scenarios[name];
      expect(expected, `no golden record for '${name}'`).toBeDefined();
      expect(run).toEqual(expected);
    }, 120_000);
  }
});
