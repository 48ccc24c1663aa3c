import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM, type Logger } from '@codereasoner/core-tensors';
import type { GrpoConfigInput } from './config.js';
import { GrpoTrainEngineError } from './errors.js';
import type { GrpoStepMetrics } from './metrics.js';
import { GrpoTrainer } from './trainer.js';
import {
  FIRST_TOKEN_REWARD,
  TINY_CONFIG,
  TINY_DATASET,
  setUpBackend,
  tinyTokenizer,
} from './__fixtures__/tiny.js';

const tokenizer = tinyTokenizer();
const dirs: string[] = [];

beforeAll(setUpBackend);
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Two layers, vocabulary padded past the tokenizer's 259 ids (the vocabLimit the log-probs use). */
function policy(seed = 1): CausalLM {
  return CausalLM.create(
    {
      vocabSize: 272,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      maxPositionEmbeddings: 64,
    },
    { seed },
  );
}

/**
 * Temperature ≠ 1, small learning rate (see below); most completions of a fresh policy run to
 * maxCompletionLength, so truncated completions stay in the loss here (onnx-update.test.ts
 * covers completions left out of it).
 */
const CONFIG: GrpoConfigInput = {
  ...TINY_CONFIG,
  temperature: 0.8,
  maxCompletionLength: 5,
  microBatchSize: 3,
  learningRate: 1e-3,
};

function logger(lines: string[]): Logger {
  const keep = (message: string) => void lines.push(message);
  return { info: keep, warn: keep, debug: () => undefined };
}

async function run(config: GrpoConfigInput, model: CausalLM, outDir?: string) {
  const lines: string[] = [];
  const trainer = new GrpoTrainer({
    policy: model,
    tokenizer,
    rewards: [FIRST_TOKEN_REWARD],
    dataset: TINY_DATASET,
    config: { ...CONFIG, ...config },
    logger: logger(lines),
    ...(outDir === undefined ? {} : { outDir }),
  });
  try {
    return { result: await trainer.train(), lines };
  } finally {
    trainer.dispose();
  }
}

function flatWeights(model: CausalLM): Float32Array[] {
  return [...model.parameters.values()].map((v) => v.dataSync() as Float32Array);
}

const FIGURES: (keyof GrpoStepMetrics)[] = [
  'loss',
  'policy_loss',
  'entropy',
  'grad_norm',
  'reward',
];

describe("GrpoTrainer with trainEngine 'onnx'", () => {
  it('gives the losses and weights of the tfjs engine within float32 tolerance over 3 steps', async () => {
    const tfjsPolicy = policy();
    const onnxPolicy = policy();
    const a = await run({ maxSteps: 3, trainEngine: 'tfjs' }, tfjsPolicy);
    const b = await run({ maxSteps: 3, trainEngine: 'onnx' }, onnxPolicy);
    expect(a.result.trainEngine).toBe('tfjs');
    expect(b.result.trainEngine).toBe('onnx');
    expect(b.lines).toContain('grpo: policy gradients computed with onnx (trainEngine onnx)');
    expect(b.result.metrics).toHaveLength(3);
    // the same rollouts (the policies stayed within rounding of each other) …
    for (const [i, m] of b.result.metrics.entries()) {
      const want = a.result.metrics[i]!;
      for (const key of ['completions/mean_length', 'completions/clipped_ratio'] as const)
        expect(m[key], `step ${m.step} ${key}`).toBe(want[key]);
      expect(want.grad_norm).toBeGreaterThan(0.1);
      // … and the same figures: relative 1e-4 (entropy, grad norm) or 1e-6 absolute (losses near 0)
      for (const key of FIGURES) {
        const x = m[key] as number;
        const y = want[key] as number;
        expect(Math.abs(x - y), `step ${m.step} ${key}`).toBeLessThan(1e-6 + 1e-4 * Math.abs(y));
      }
    }
    // AdamW's first steps move each weight by about ±learningRate whatever the gradient's size,
    // so an entry whose gradient is rounding noise could move by 2e-3 the other way; none did by
    // more than 1e-5 here (a wrong gradient moves many entries by ~1e-3 per step).
    const wa = flatWeights(tfjsPolicy);
    const wb = flatWeights(onnxPolicy);
    const start = flatWeights(policy());
    let moved = 0;
    wa.forEach((values, k) => {
      for (let i = 0; i < values.length; i++) {
        expect(Math.abs(wb[k]![i]! - values[i]!)).toBeLessThan(1e-5);
        moved = Math.max(moved, Math.abs(values[i]! - start[k]![i]!));
      }
    });
    expect(moved).toBeGreaterThan(1e-3);
    tfjsPolicy.dispose();
    onnxPolicy.dispose();
  }, 120_000);

  it("refuses what the graph cannot compute with GrpoTrainEngineError; 'auto' trains those on tfjs and says why", async () => {
    const lora = policy();
    lora.addAdapters({ r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'] }, { seed: 1 });
    const refusals: [GrpoConfigInput, CausalLM, RegExp][] = [
      [{ numIterations: 2 }, policy(), /off-policy \(numIterations 2, stepsPerGeneration 1\)/],
      [{ stepsPerGeneration: 2 }, policy(), /off-policy \(numIterations 1, stepsPerGeneration 2\)/],
      [{ beta: 0.04 }, policy(), /beta is 0.04: the KL term is not in the graph/],
      [{}, lora, /the model has LoRA adapters/],
    ];
    for (const [config, model, reason] of refusals) {
      const make = () =>
        new GrpoTrainer({
          policy: model,
          tokenizer,
          rewards: [FIRST_TOKEN_REWARD],
          dataset: TINY_DATASET,
          config: { ...CONFIG, ...config, trainEngine: 'onnx' },
        });
      expect(make).toThrow(GrpoTrainEngineError);
      expect(make).toThrow(reason);
      expect(make).toThrow(/use trainEngine 'tfjs' \(or 'auto', which falls back to it\)/);
    }
    const auto = await run({ maxSteps: 1, beta: 0.04, trainEngine: 'auto' }, policy());
    expect(auto.result.trainEngine).toBe('tfjs');
    expect(auto.lines.filter((l) => l.startsWith('grpo: trainEngine'))).toEqual([
      "grpo: trainEngine 'auto' trains on tfjs: beta is 0.04: the KL term is not in the graph",
    ]);
    const onnx = await run({ maxSteps: 1, trainEngine: 'auto' }, policy());
    expect(onnx.result.trainEngine).toBe('onnx');
    for (const [, model] of refusals) model.dispose();
  }, 120_000);

  it('resumes a tfjs run on onnx (the engine is not part of what must match)', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'grpo-onnx-'));
    dirs.push(outDir);
    const first = await run({ maxSteps: 2, saveSteps: 1, trainEngine: 'tfjs' }, policy(), outDir);
    expect(first.result.steps).toBe(2);
    const resumed = await run(
      { maxSteps: 3, saveSteps: 1, trainEngine: 'onnx' },
      policy(9),
      outDir,
    );
    expect(resumed.result.resumedFromStep).toBe(2);
    expect(resumed.result.trainEngine).toBe('onnx');
    expect(resumed.result.metrics.map((m) => m.step)).toEqual([3]);
  }, 120_000);
});
