import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM, ConfigValidationError, tf } from '@codereasoner/core-tensors';
import type { GrpoConfigInput } from './config.js';
import { GrpoDatasetError, GrpoResumeError, RewardFunctionError } from './errors.js';
import { isTimingMetric, type GrpoStepMetrics } from './metrics.js';
import type { RewardSpec } from './rewards.js';
import { GrpoTrainer, type GrpoTrainerOptions } from './trainer.js';
import {
  FIRST_TOKEN_REWARD,
  TINY_CONFIG,
  TINY_DATASET,
  emitAReward,
  setUpBackend,
  tinyPolicy,
  tinyTokenizer,
} from './__fixtures__/tiny.js';

const tokenizer = tinyTokenizer();
const emitA = emitAReward(tokenizer);
const firstToken = FIRST_TOKEN_REWARD;
const base = TINY_CONFIG;
const dirs: string[] = [];

beforeAll(setUpBackend);
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'grpo-trainer-'));
  dirs.push(dir);
  return dir;
}

function trainer(
  overrides: Partial<GrpoTrainerOptions> & { config?: GrpoConfigInput },
  policy?: CausalLM,
): GrpoTrainer {
  return new GrpoTrainer({
    policy: policy ?? tinyPolicy(tokenizer),
    tokenizer,
    rewards: [firstToken],
    dataset: TINY_DATASET,
    ...overrides,
    config: { ...base, ...overrides.config },
  });
}

function withoutTiming(m: GrpoStepMetrics): Record<string, unknown> {
  return Object.fromEntries(Object.entries(m).filter(([k]) => !isTimingMetric(k)));
}

async function weights(policy: CausalLM): Promise<number[]> {
  const out: number[] = [];
  for (const v of policy.parameters.values()) out.push(...(await v.data()));
  return out;
}

describe('GrpoTrainer', () => {
  it('gives the same metrics and weights for the same seed, and others for another seed', async () => {
    const runs = [];
    for (const seed of [7, 7, 8]) {
      const policy = tinyPolicy(tokenizer);
      const t = trainer({ config: { maxSteps: 3, seed } }, policy);
      const result = await t.train();
      runs.push({ metrics: result.metrics.map(withoutTiming), weights: await weights(policy) });
      t.dispose();
      policy.dispose();
    }
    expect(runs[0]!.metrics).toHaveLength(3);
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]!.metrics).not.toEqual(runs[0]!.metrics);
    const initial = tinyPolicy(tokenizer);
    expect(runs[0]!.weights).not.toEqual(await weights(initial));
    initial.dispose();
  });

  it('reports every metric of a step, per reward function too', async () => {
    const half: RewardSpec = {
      name: 'half',
      weight: 2,
      fn: ({ rows }) => rows.map((_, i) => (i % 2 === 0 ? 0.5 : null)),
    };
    const seen: GrpoStepMetrics[] = [];
    const { metrics } = await new GrpoTrainer({
      policy: tinyPolicy(tokenizer),
      tokenizer,
      rewards: [emitA, half],
      dataset: TINY_DATASET,
      config: { ...base, maxSteps: 1, beta: 0.1 },
      onMetrics: (m) => seen.push(m),
    }).train();
    const m = metrics[0]!;
    expect(seen).toEqual(metrics);
    expect(Object.keys(m).sort()).toEqual(
      [
        'step',
        'epoch',
        'num_updates',
        'learning_rate',
        'loss',
        'policy_loss',
        'kl',
        'entropy',
        'grad_norm',
        'reward',
        'reward_std',
        'frac_reward_zero_std',
        'frac_reward_unscorable',
        'clip_ratio/low_mean',
        'clip_ratio/high_mean',
        'clip_ratio/region_mean',
        'completions/mean_length',
        'completions/min_length',
        'completions/max_length',
        'completions/clipped_ratio',
        'completions/count',
        'dynamic_sampling/generation_batches',
        'dynamic_sampling/kept_groups',
        'dynamic_sampling/dropped_groups',
        'num_tokens',
        'time/generation_s',
        'time/reward_s',
        'time/training_s',
        'time/step_s',
        'tokens_per_second/rollout',
        'tokens_per_second/training',
        'rewards/emit_a/mean',
        'rewards/emit_a/std',
        'rewards/emit_a/null_frac',
        'rewards/half/mean',
        'rewards/half/std',
        'rewards/half/null_frac',
      ].sort(),
    );
    expect(m.step).toBe(1);
    expect(m.num_updates).toBe(1);
    expect(m.epoch).toBe(0.5); // 2 prompts of 4
    expect(m['completions/count']).toBe(8);
    expect(m['rewards/half/null_frac']).toBe(0.5);
    expect(m['rewards/half/mean']).toBe(0.5);
    // The first update is on-policy and the policy still equals the reference: ratio 1, KL exactly 0.
    expect(m.kl).toBe(0);
    expect(m['clip_ratio/region_mean']).toBe(0);
    expect(m['completions/min_length']).toBeGreaterThanOrEqual(1);
    expect(m['completions/max_length']).toBeLessThanOrEqual(6);
    expect(m['time/generation_s']).toBeGreaterThan(0);
    expect(m['tokens_per_second/training']).toBeGreaterThan(0);
  });

  it('runs mu passes and several updates per generation batch, with KL > 0 once the policy moved', async () => {
    const t = trainer({
      rewards: [firstToken],
      config: {
        maxSteps: 2,
        numIterations: 2,
        stepsPerGeneration: 2,
        microBatchSize: 3,
        beta: 0.05,
        epsilon: 0.05,
      },
    });
    const { metrics, updates } = await t.train();
    expect(updates).toBe(8);
    expect(metrics.map((m) => m.num_updates)).toEqual([4, 8]);
    expect(metrics[1]!.kl).toBeGreaterThan(0);
    t.dispose();
  });

  it('follows the warm-up and cosine schedules, reporting the rate each step used', async () => {
    const constant = trainer({ config: { maxSteps: 3, warmupSteps: 2, learningRate: 0.01 } });
    expect((await constant.train()).metrics.map((m) => m.learning_rate)).toEqual([
      0.005, 0.01, 0.01,
    ]);
    constant.dispose();
    // cosine, 3 updates, 1 warm-up: 0.01, then progress 0 and 1/2 of the decay to 0.
    const cosine = trainer({
      config: {
        maxSteps: 3,
        warmupSteps: 1,
        learningRate: 0.01,
        lrSchedule: 'cosine',
        minLearningRateRatio: 0,
      },
    });
    const rates = (await cosine.train()).metrics.map((m) => m.learning_rate);
    expect(rates[0]).toBe(0.01);
    expect(rates[1]).toBeCloseTo(0.01, 15);
    expect(rates[2]).toBeCloseTo(0.005, 15);
    cosine.dispose();
  });

  it('masks truncated completions out of the loss', async () => {
    // maxCompletionLength 2: nearly every completion is cut; with all of them masked nothing is trained.
    const policy = tinyPolicy(tokenizer);
    const before = await weights(policy);
    const t = trainer(
      {
        config: {
          maxSteps: 1,
          maxCompletionLength: 2,
          maskTruncatedCompletions: true,
          weightDecay: 0,
        },
      },
      policy,
    );
    const { metrics } = await t.train();
    expect(metrics[0]!['completions/clipped_ratio']).toBe(1);
    expect(metrics[0]!.grad_norm).toBe(0);
    expect(await weights(policy)).toEqual(before);
    t.dispose();
  });

  it('dynamic sampling drops all-equal groups and samples more prompts, within its budget', async () => {
    // Only the chat prompt row gets a reward that varies; the others always score 1.
    const varies: RewardSpec = {
      name: 'varies',
      fn: ({ rows, completionIds }) =>
        rows.map((row, i) => (Array.isArray(row['prompt']) ? completionIds[i]![0]! % 7 : 1)),
    };
    const t = trainer({
      rewards: [varies],
      config: {
        maxSteps: 1,
        generationBatchSize: 4,
        dynamicSampling: true,
        maxGenerationBatches: 8,
      },
    });
    const { metrics } = await t.train();
    const m = metrics[0]!;
    expect(m['dynamic_sampling/kept_groups']).toBe(1);
    expect(m['dynamic_sampling/dropped_groups']).toBe(m['dynamic_sampling/generation_batches'] - 1);
    expect(m['dynamic_sampling/generation_batches']).toBeGreaterThan(1);
    expect(m.frac_reward_zero_std).toBeCloseTo(
      m['dynamic_sampling/dropped_groups'] / m['dynamic_sampling/generation_batches'],
      12,
    );
    t.dispose();

    const starved = trainer({
      config: {
        maxSteps: 1,
        generationBatchSize: 4,
        dynamicSampling: true,
        maxGenerationBatches: 2,
      },
      rewards: [{ name: 'flat', fn: ({ rows }) => rows.map(() => 1) }],
    });
    const r = await starved.train();
    expect(r.metrics[0]!['dynamic_sampling/generation_batches']).toBe(2);
    expect(r.metrics[0]!['dynamic_sampling/kept_groups']).toBe(0);
    expect(r.updates).toBe(0);
    starved.dispose();
  });

  it('resumes after a crash with the same metrics and weights as an uninterrupted run', async () => {
    const straightPolicy = tinyPolicy(tokenizer);
    const straight = trainer(
      { outDir: await tempDir(), config: { maxSteps: 5, saveSteps: 2, beta: 0.05 } },
      straightPolicy,
    );
    const expected = (await straight.train()).metrics;
    straight.dispose();

    const outDir = await tempDir();
    let rewardCalls = 0;
    const counted: RewardSpec = {
      name: 'first_token',
      fn: (input) => ((rewardCalls += 1), firstToken.fn(input)),
    };
    // Crash 1: a failing reward at step 3 (after the step-2 checkpoint).
    const crashing: RewardSpec = {
      name: 'first_token',
      fn: (input) => {
        if (input.step === 3) throw new Error('sandbox crashed');
        return firstToken.fn(input);
      },
    };
    const first = trainer({
      outDir,
      rewards: [crashing],
      config: { maxSteps: 5, saveSteps: 2, beta: 0.05 },
    });
    await expect(first.train()).rejects.toThrow(RewardFunctionError);
    first.dispose();
    // Crash 2: the callback throws after step 3 was journaled and trained, before it was checkpointed.
    const second = trainer({
      outDir,
      rewards: [counted],
      config: { maxSteps: 5, saveSteps: 2, beta: 0.05 },
      onMetrics: (m) => {
        if (m.step === 3) throw new Error('power cut');
      },
    });
    await expect(second.train()).rejects.toThrow('power cut');
    expect(rewardCalls).toBe(1);
    second.dispose();
    // Resume: step 3 comes back from the journal (no generation or reward), step 4 and 5 are new.
    const resumedPolicy = tinyPolicy(tokenizer, 99); // other initial weights: the checkpoint must overwrite them
    const third = trainer(
      { outDir, rewards: [counted], config: { maxSteps: 5, saveSteps: 2, beta: 0.05 } },
      resumedPolicy,
    );
    const result = await third.train();
    third.dispose();
    expect(result.resumedFromStep).toBe(2);
    expect(result.replayedSteps).toBe(1);
    expect(rewardCalls).toBe(3);
    expect(result.metrics.map(withoutTiming)).toEqual(expected.slice(2).map(withoutTiming));
    expect(await weights(resumedPolicy)).toEqual(await weights(straightPolicy));

    const lines = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GrpoStepMetrics);
    expect(lines.map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    expect(lines.map(withoutTiming)).toEqual(expected.map(withoutTiming));
    const journal = (await readFile(join(outDir, 'rollouts.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number });
    expect(journal.map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    expect((await readdir(join(outDir, 'checkpoints'))).sort()).toEqual([
      'step-00000004',
      'step-00000005',
    ]);
    expect(await readdir(join(outDir, 'reference'))).toContain('model.safetensors');

    // A finished run resumes to nothing to do.
    const again = trainer({ outDir, config: { maxSteps: 5, saveSteps: 2, beta: 0.05 } });
    expect((await again.train()).metrics).toEqual([]);
    again.dispose();
    straightPolicy.dispose();
    resumedPolicy.dispose();
  });

  it('refuses to resume with different settings', async () => {
    const outDir = await tempDir();
    const t = trainer({ outDir, config: { maxSteps: 1 } });
    await t.train();
    t.dispose();
    const other = trainer({ outDir, config: { maxSteps: 2, learningRate: 5e-3 } });
    await expect(other.train()).rejects.toThrow(GrpoResumeError);
    await expect(other.train()).rejects.toThrow(/learningRate: checkpoint 0.01, now 0.005/);
    other.dispose();
    // maxSteps may grow: the run continues.
    const longer = trainer({ outDir, config: { maxSteps: 2 } });
    const r = await longer.train();
    expect(r.resumedFromStep).toBe(1);
    expect(r.metrics.map((m) => m.step)).toEqual([2]);
    longer.dispose();
  });

  it('stops the step with an error naming the source when the loss is NaN, before any update', async () => {
    const policy = tinyPolicy(tokenizer);
    const norm = policy.parameters.get('model.norm.weight')!;
    norm.assign(tf.fill(norm.shape, Number.NaN));
    const embeddings = await policy.parameters.get('model.embed_tokens.weight')!.data();
    const t = trainer({ config: { maxSteps: 1 } }, policy);
    await expect(t.train()).rejects.toThrow(
      expect.objectContaining({
        name: 'NonFiniteValueError',
        code: 'GRPO_NON_FINITE',
        source: 'loss (step 1, iteration 1, update 1, micro-batch 1)',
      }),
    );
    expect(await policy.parameters.get('model.embed_tokens.weight')!.data()).toEqual(embeddings);
    t.dispose();
    policy.dispose();
  });

  it('checks its inputs and names the bad row', () => {
    const policy = tinyPolicy(tokenizer);
    const make = (o: Partial<GrpoTrainerOptions>) => () =>
      new GrpoTrainer({
        policy,
        tokenizer,
        rewards: [emitA],
        dataset: TINY_DATASET,
        config: base,
        ...o,
      });
    expect(make({ dataset: [{ prompt: 'ok' }, { prompt: 'x'.repeat(60) }] })).toThrow(
      GrpoDatasetError,
    );
    expect(make({ dataset: [{ prompt: 'ok' }, { prompt: 'x'.repeat(60) }] })).toThrow(
      /dataset\[1\]: the prompt has 60 tokens; with maxCompletionLength 6 that exceeds the model's context of 64/,
    );
    expect(make({ dataset: [{ prompt: 3 as never }] })).toThrow(
      /dataset\[0\]: prompt must be a string or an array/,
    );
    expect(make({ dataset: [] })).toThrow(ConfigValidationError);
    expect(make({ policy: policy.clone() })).toThrow(/no trainable variables/);
    expect(make({ config: { numGenerations: 3, generationBatchSize: 8 } })).toThrow(
      /does not hold whole groups/,
    );
    policy.dispose();
  });

  it('stops between steps when aborted and checkpoints where it stopped', async () => {
    const outDir = await tempDir();
    const controller = new AbortController();
    const t = trainer({
      outDir,
      signal: controller.signal,
      config: { maxSteps: 5, saveSteps: 0 },
      onMetrics: (m) => m.step === 2 && controller.abort(),
    });
    const r = await t.train();
    t.dispose();
    expect(r.stopped).toBe('aborted');
    expect(r.steps).toBe(2);
    expect(r.checkpoint).toMatch(/step-00000002$/);
  });

  it('gives the same run on two worker threads as in-process, and resumes on them', async () => {
    const config = { maxSteps: 4, saveSteps: 2, beta: 0.05, numIterations: 2, microBatchSize: 2 };
    const run = async (workers: number, outDir?: string) => {
      const policy = tinyPolicy(tokenizer);
      const t = trainer({ config: { ...config, workers }, ...(outDir ? { outDir } : {}) }, policy);
      const result = await t.train();
      t.dispose();
      const out = {
        result,
        metrics: result.metrics.map(withoutTiming),
        weights: await weights(policy),
      };
      policy.dispose();
      return out;
    };
    const alone = await run(1);
    const threaded = await run(2, await tempDir());
    expect(alone.result.workers).toBe(1);
    expect(threaded.result.workers).toBe(2);
    // Whole generation batches per thread and gradients summed in micro-batch order: here not even
    // the rounding differs (in general a run is reproducible for a given worker count).
    expect(threaded.metrics).toEqual(alone.metrics);
    expect(threaded.weights).toEqual(alone.weights);

    // Crash after step 3 (checkpoint at 2), resume on threads: same metrics and weights.
    const outDir = await tempDir();
    const crashing = trainer({
      outDir,
      config: { ...config, workers: 2 },
      onMetrics: (m) => {
        if (m.step === 3) throw new Error('power cut');
      },
    });
    await expect(crashing.train()).rejects.toThrow('power cut');
    crashing.dispose();
    const resumed = await run(2, outDir);
    expect(resumed.result.resumedFromStep).toBe(2);
    expect(resumed.metrics).toEqual(alone.metrics.slice(2));
    expect(resumed.weights).toEqual(alone.weights);
  }, 60_000);

  it('frees every tensor it made', async () => {
    const policy = tinyPolicy(tokenizer);
    const before = tf.memory().numTensors;
    const t = trainer({ config: { maxSteps: 2, beta: 0.1, numIterations: 2 } }, policy);
    await t.train();
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    policy.dispose();
  });

  it('never samples ids the tokenizer lacks when the model vocabulary is padded wider', async () => {
    // 259 tokenizer ids, 459 model ids: random logits put ~40% of the mass on padded ids.
    const policy = CausalLM.create(
      {
        vocabSize: tokenizer.vocabSize + 200,
        hiddenSize: 32,
        intermediateSize: 64,
        numHiddenLayers: 1,
        numAttentionHeads: 2,
        numKeyValueHeads: 1,
        maxPositionEmbeddings: 64,
      },
      { seed: 1 },
    );
    const outDir = await tempDir();
    const t = trainer({ outDir, config: { maxSteps: 2, beta: 0.1, temperature: 1.5 } }, policy);
    const result = await t.train();
    t.dispose();
    policy.dispose();
    const ids = (await readFile(join(outDir, 'rollouts.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .flatMap((l) =>
        (JSON.parse(l) as { groups: { completions: { ids: number[] }[] }[] }).groups.flatMap((g) =>
          g.completions.flatMap((c) => c.ids),
        ),
      );
    expect(ids.length).toBeGreaterThan(40);
    expect(Math.max(...ids)).toBeLessThan(tokenizer.vocabSize);
    // Log-probs are over the same (tokenizer) distribution the samples came from: on-policy ratio 1.
    expect(result.metrics.every((m) => Number.isFinite(m.loss))).toBe(true);
  });

  it('trains LoRA adapters only, with the base (adapters off) as the reference policy', async () => {
    const policy = tinyPolicy(tokenizer);
    policy.addAdapters(
      { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] },
      { seed: 1 },
    );
    const baseBefore = await weights(policy);
    const outDir = await tempDir();
    const t = trainer({ outDir, config: { maxSteps: 2, beta: 0.1, numIterations: 2 } }, policy);
    const result = await t.train();
    t.dispose();
    expect(result.metrics.at(-1)!.kl).toBeGreaterThan(0);
    expect(await weights(policy)).toEqual(baseBefore);
    const b = [...policy.adapterParameters].find(([n]) => n.includes('lora_B'))![1];
    expect(Math.max(...Array.from(b.dataSync(), Math.abs))).toBeGreaterThan(0);
    // No copy of the base is saved as a reference model.
    expect(await readdir(outDir)).not.toContain('reference');
    policy.dispose();
  });
});
