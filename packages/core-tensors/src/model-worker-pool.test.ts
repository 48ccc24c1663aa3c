import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { LocalChatModel } from './local-chat-model.js';
import { CausalLM, type GenerateOptions, type GenerationEngineReport } from './model.js';
import {
  createModelWorkerPool,
  type GradientShard,
  type ModelWorkerPool,
} from './model-worker-pool.js';
import { AdamW, computeGradients, GradientAccumulator } from './optimizer.js';
import { Rng } from '@codereasoner/common';
import { Tokenizer } from './tokenizer.js';
import { maskedCrossEntropy, type CrossEntropyOptions } from './__fixtures__/worker-losses.js';
import { ModelWorkerError, shardTensor, type ShardData } from './worker-protocol.js';

const LOSSES = new URL('./__fixtures__/worker-losses.ts', import.meta.url);
const CROSS_ENTROPY = { module: LOSSES, exportName: 'maskedCrossEntropy' };
const tokenizer = Tokenizer.train(
  ['<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\nhi<|im_end|>\n'.repeat(10)],
  { vocabSize: 280 },
);
const CONFIG = {
  vocabSize: 288,
  hiddenSize: 32,
  intermediateSize: 64,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  numKeyValueHeads: 1,
  maxPositionEmbeddings: 64,
};

let model: CausalLM;
let pool: ModelWorkerPool;
let inProcess: ModelWorkerPool;

/** Rows of random ids with right padding and a target mask that skips each row's first 3 targets. */
function shardOf(rows: number, seed: number): ShardData {
  const rng = new Rng(seed);
  const time = 16;
  const ids = new Int32Array(rows * time);
  const mask = new Float32Array(rows * time);
  const targets = new Float32Array(rows * (time - 1));
  for (let r = 0; r < rows; r++) {
    const length = 8 + rng.int(time - 7);
    for (let t = 0; t < length; t++) {
      ids[r * time + t] = rng.int(CONFIG.vocabSize);
      mask[r * time + t] = 1;
    }
    for (let t = 3; t < length - 1; t++) targets[r * (time - 1) + t] = 1;
  }
  return {
    ids: { values: ids, shape: [rows, time] },
    mask: { values: mask, shape: [rows, time] },
    targets: { values: targets, shape: [rows, time - 1] },
  };
}

const shards: GradientShard<CrossEntropyOptions>[] = [
  shardOf(2, 1),
  shardOf(3, 2),
  shardOf(1, 3),
  shardOf(2, 4),
  shardOf(2, 5),
].map((data, i) => ({
  data,
  weight: i + 1,
}));

function flat(grads: tf.NamedTensorMap): Map<string, Float32Array> {
  return new Map(Object.entries(grads).map(([name, g]) => [name, g.dataSync() as Float32Array]));
}

function maxAbsDifference(
  a: Map<string, Float32Array>,
  b: Map<string, Float32Array>,
): { difference: number; scale: number } {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let difference = 0;
  let scale = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) {
      difference = Math.max(difference, Math.abs(x[i]! - y[i]!));
      scale = Math.max(scale, Math.abs(y[i]!));
    }
  }
  return { difference, scale };
}

beforeAll(async () => {
  await initBackend();
  model = CausalLM.create(CONFIG, { seed: 3 });
  [pool, inProcess] = await Promise.all([
    createModelWorkerPool({ model, workers: 2 }),
    createModelWorkerPool({ model, workers: 1 }),
  ]);
}, 60_000);

afterAll(async () => {
  await pool?.close();
  await inProcess?.close();
  model?.dispose();
});

describe('createModelWorkerPool', () => {
  it('starts threads on the main thread backend, or none for workers 0 and 1', () => {
    expect(pool.size).toBe(2);
    expect(pool.backend).toBe(tf.getBackend());
    expect(inProcess.size).toBe(0);
  });

  it('sums shard gradients in shard order: equal to computeGradients + GradientAccumulator, bit for bit', async () => {
    const accumulator = new GradientAccumulator();
    let lossSum = 0;
    let weightSum = 0;
    for (const shard of shards) {
      const { loss, grads } = computeGradients(
        model,
        () => maskedCrossEntropy(model, shard.data, { normalizer: 10 }) as tf.Scalar,
      );
      accumulator.add(grads, shard.weight);
      tf.dispose(Object.values(grads));
      lossSum += shard.weight! * loss;
      weightSum += shard.weight!;
    }
    const expected = accumulator.mean();
    accumulator.reset();
    const before = tf.memory().numTensors;
    const result = await pool.computeGradients({
      loss: CROSS_ENTROPY,
      shards,
      options: { normalizer: 10 },
      reduce: 'mean',
    });
    expect(tf.memory().numTensors - before).toBe(Object.keys(result.grads).length);
    expect(Object.keys(result.grads).sort()).toEqual(
      model.trainableVariables.map((v) => v.name).sort(),
    );
    // Same per-shard kernels on the same backend, same summation order: no rounding difference at all.
    expect(maxAbsDifference(flat(result.grads), flat(expected)).difference).toBe(0);
    expect(result.loss).toBeCloseTo(lossSum / weightSum, 12);
    expect(result.shards).toHaveLength(shards.length);
    tf.dispose([...Object.values(result.grads), ...Object.values(expected)]);
  });

  it('equals the gradient of the whole batch in one pass within float32 rounding (rel. 1e-5)', async () => {
    // One batch of all rows vs. shards of it, each normalised by the batch's target count.
    const rows = 6;
    const whole = shardOf(rows, 11);
    const time = whole['ids']!.shape[1]!;
    const split = (from: number, to: number): ShardData =>
      Object.fromEntries(
        Object.entries(whole).map(([name, a]) => {
          const width = a.shape[1]!;
          return [
            name,
            { values: a.values.slice(from * width, to * width), shape: [to - from, width] },
          ];
        }),
      ) as ShardData;
    const count = Array.from(whole['targets']!.values).reduce((a, b) => a + b, 0);
    const reference = computeGradients(
      model,
      () => maskedCrossEntropy(model, whole, { normalizer: count }) as tf.Scalar,
    );
    const result = await pool.computeGradients<CrossEntropyOptions>({
      loss: CROSS_ENTROPY,
      shards: [split(0, 2), split(2, 3), split(3, 6)].map((data) => ({ data })),
      options: { normalizer: count },
    });
    const { difference, scale } = maxAbsDifference(flat(result.grads), flat(reference.grads));
    expect(scale).toBeGreaterThan(0);
    expect(difference / scale).toBeLessThan(1e-5);
    expect(result.loss).toBeCloseTo(reference.loss, 5);
    expect(time).toBe(16);
    tf.dispose([...Object.values(result.grads), ...Object.values(reference.grads)]);
  });

  it('is deterministic, equals the in-process pool, returns outputs, and follows the model after an update', async () => {
    const request = { loss: CROSS_ENTROPY, shards, options: { normalizer: 7, outputs: true } };
    const a = await pool.computeGradients(request);
    const b = await pool.computeGradients(request);
    const c = await inProcess.computeGradients(request);
    const [fa, fb, fc] = [flat(a.grads), flat(b.grads), flat(c.grads)];
    expect(maxAbsDifference(fa, fb).difference).toBe(0);
    expect(maxAbsDifference(fa, fc).difference).toBe(0);
    expect(a.loss).toBe(b.loss);
    expect(a.loss).toBe(c.loss);
    expect(a.shards.map((s) => s.loss)).toEqual(c.shards.map((s) => s.loss));
    const logProbs = a.shards[1]!.outputs['logProbs']!;
    expect(logProbs.shape).toEqual([3, 15]);
    expect(Array.from(logProbs.values)).toEqual(
      Array.from(c.shards[1]!.outputs['logProbs']!.values),
    );
    expect(logProbs.values.some((v) => v < 0)).toBe(true);

    // An optimizer step on the main model reaches the replicas before the next call.
    const optimizer = new AdamW({ learningRate: 1e-2 });
    optimizer.applyGradients(a.grads);
    optimizer.dispose();
    const after = await pool.computeGradients(request);
    const afterInProcess = await inProcess.computeGradients(request);
    expect(after.loss).not.toBe(a.loss);
    expect(after.loss).toBe(afterInProcess.loss);
    expect(maxAbsDifference(flat(after.grads), flat(afterInProcess.grads)).difference).toBe(0);
    tf.dispose([a, b, c, after, afterInProcess].flatMap((r) => Object.values(r.grads)));
  });

  it('generates exactly what the model generates alone, token for token (greedy, seeded, per-prompt seeds)', async () => {
    const rng = new Rng(5);
    const prompts = Array.from({ length: 11 }, () =>
      Array.from({ length: 2 + rng.int(9) }, () => rng.int(CONFIG.vocabSize)),
    );
    const settings: GenerateOptions[] = [
      { maxNewTokens: 12, temperature: 0, batchSize: 3 },
      { maxNewTokens: 12, temperature: 1, seed: 9, batchSize: 4, stopTokens: [5, 6, 7] },
      {
        maxNewTokens: 10,
        temperature: 0.8,
        topP: 0.9,
        topK: 50,
        seeds: prompts.map((_, i) => 100 + i),
        batchSize: 2,
        vocabLimit: 280,
      },
      // the onnx engine in every thread (the logger stays on this side)
      {
        maxNewTokens: 10,
        temperature: 0.9,
        seed: 3,
        batchSize: 3,
        engine: 'onnx',
        logger: console,
      },
    ];
    for (const options of settings) {
      const expected = await model.generate(prompts, options);
      model.lastGenerationEngine = undefined as GenerationEngineReport | undefined;
      const before = tf.memory().numTensors;
      const progress: number[] = [];
      const outputs = await pool.generate(prompts, {
        ...options,
        onProgress: (e) => progress.push(e.completed),
      });
      expect(tf.memory().numTensors).toBe(before);
      // the threads' engine is reported on the main model
      expect(model.lastGenerationEngine?.engine).toBe(options.engine ?? 'tfjs');
      expect(outputs).toEqual(expected);
      expect(progress.at(-1)).toBe(expected.reduce((n, o) => n + o.tokens.length, 0));
    }
    await expect(pool.generate([[1], []], { maxNewTokens: 2 })).rejects.toThrow(
      /prompt 1 is empty/,
    );
  });

  it('serves LocalChatModel with the same texts as the model alone', async () => {
    const requests = [
      {
        messages: [{ role: 'user' as const, content: 'hello' }],
        n: 5,
        maxTokens: 6,
        temperature: 1,
        seed: 4,
      },
      {
        messages: [{ role: 'user' as const, content: 'hello there' }],
        n: 3,
        maxTokens: 6,
        temperature: 0,
      },
    ];
    const alone = await new LocalChatModel(model, tokenizer, { batchSize: 2 }).complete(requests);
    const parallel = await new LocalChatModel(model, tokenizer, {
      batchSize: 2,
      workers: pool,
    }).complete(requests);
    expect(parallel).toEqual(alone);
    const other = CausalLM.create(CONFIG, { seed: 4 });
    expect(() => new LocalChatModel(other, tokenizer, { workers: pool })).toThrow(/another model/);
    other.dispose();
  });

  it('reports a failing loss as a typed error and stays usable', async () => {
    const failing = pool.computeGradients({
      loss: { module: LOSSES, exportName: 'throwingLoss' },
      shards,
    });
    await expect(failing).rejects.toThrow(ModelWorkerError);
    await expect(failing).rejects.toMatchObject({
      code: 'MODEL_WORKER_TASK_FAILED',
      message: /RangeError: loss exploded on purpose/,
    });
    await expect(
      pool.computeGradients({ loss: { module: LOSSES, exportName: 'notAFunction' }, shards }),
    ).rejects.toMatchObject({
      code: 'MODEL_WORKER_LOSS_INVALID',
      message: /no function export 'notAFunction'/,
    });
    await expect(
      pool.computeGradients({ loss: { module: './relative.js' }, shards }),
    ).rejects.toThrow(/file URL or an absolute path/);
    await expect(
      pool.computeGradients({
        loss: CROSS_ENTROPY,
        shards: [{ data: { ids: { values: new Int32Array(3), shape: [2, 2] } } }],
      }),
    ).rejects.toThrow(/has 3 values for shape \[2, 2\]/);
    const ok = await pool.computeGradients({
      loss: CROSS_ENTROPY,
      shards: shards.slice(0, 2),
      options: { normalizer: 1 },
    });
    expect(Number.isFinite(ok.loss)).toBe(true);
    tf.dispose(Object.values(ok.grads));
  });

  it('turns a crashed thread into MODEL_WORKER_CRASHED and still closes cleanly', async () => {
    const doomed = await createModelWorkerPool({ model, workers: 2 });
    const crash = doomed.computeGradients({
      loss: { module: LOSSES, exportName: 'exitingLoss' },
      shards,
    });
    await expect(crash).rejects.toThrow(ModelWorkerError);
    await expect(crash).rejects.toMatchObject({
      code: 'MODEL_WORKER_CRASHED',
      message: /exited with code 7.*create a new one/,
    });
    await expect(doomed.generate([[1, 2]], { maxNewTokens: 1 })).rejects.toMatchObject({
      code: 'MODEL_WORKER_CRASHED',
    });
    await doomed.close();
    await doomed.close();
    await expect(doomed.generate([[1, 2]], { maxNewTokens: 1 })).rejects.toMatchObject({
      code: 'MODEL_WORKER_CLOSED',
    });
  }, 30_000);

  it('lets Node exit without close() once idle (threads are unref-ed between calls)', () => {
    const script = fileURLToPath(new URL('./__fixtures__/pool-exit.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url));
    const started = performance.now();
    const child = spawnSync(process.execPath, ['--import', tsx, script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toMatchObject({ size: 2, tokens: 4 });
    expect(performance.now() - started).toBeLessThan(30_000);
  }, 40_000);

  it('shardTensor keeps the dtype of the array', () => {
    const ids = shardTensor({ values: new Int32Array([1, 2]), shape: [1, 2] });
    const mask = shardTensor({ values: new Float32Array([1, 0]), shape: [2] });
    expect([ids.dtype, mask.dtype]).toEqual(['int32', 'float32']);
    tf.dispose([ids, mask]);
  });
});
