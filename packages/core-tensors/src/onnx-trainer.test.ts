import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Rng } from '@codereasoner/common';
import { resolveModelConfig, type ModelConfig } from './config.js';
import { CausalLM, ModelInputError, parameterNameOf } from './model.js';
import { onnxRuntimeStatus } from './onnx-engine.js';
import { computeGradients } from './optimizer.js';
import { OnnxTrainPool } from './onnx-train-pool.js';
import { OnnxTrainStep, onnxTrainFeeds, type OnnxTrainBatch } from './onnx-trainer.js';
import { buildTrainGraph } from './onnx-train-graph.js';
import {
  describeOnBackends,
  jsBackends,
  perturbWeights,
  relativeError,
  tinyModelConfig as tiny,
} from './test-utils.js';

/**
 * Tolerance of the ONNX step against the tfjs gradients: float32 sums in a different order (and
 * onnxruntime's blocked products) differ by ~1e-6 of a value's scale, so every entry must lie
 * within 1e-4 of its tensor's largest magnitude (2e-5 relative for the loss), far below what any
 * wrong formula gives (a flipped sign or a missing term moves entries by their own size).
 */
const RELATIVE_TOLERANCE = 1e-4;

/**
 * Three rows of 12: two examples packed in a row (segments 1 and 2), one example then padding,
 * one full example; targets weighted 0, 0.5 or 1 (a loss weight mask, as SFT's assistant mask).
 */
function packedBatch(vocab: number, seed: number): OnnxTrainBatch {
  const batch = 3;
  const time = 12;
  const rng = new Rng(seed);
  const inputIds = Int32Array.from({ length: batch * time }, () => Math.floor(rng.next() * vocab));
  const attentionMask = Float32Array.from([
    ...[1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2],
    ...[1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
    ...[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  ]);
  for (let i = 0; i < inputIds.length; i++) if (attentionMask[i] === 0) inputIds[i] = 0;
  const targetWeights = Float32Array.from({ length: batch * (time - 1) }, () => {
    const u = rng.next();
    return u < 0.3 ? 0 : u < 0.5 ? 0.5 : 1;
  });
  return { inputIds, attentionMask, batch, time, targetWeights, divisor: 7 };
}

/** Weights far from the initial N(0, 0.02) (and norms, biases away from 1 and 0), so no gradient is near zero by accident. */
function trainedLikeModel(config: Partial<ModelConfig>, seed: number): CausalLM {
  const model = CausalLM.create(config, { seed });
  perturbWeights(model.parameters, {
    mode: 'add',
    stddev: 0.2,
    seed: (k) => seed * 100 + k,
  });
  return model;
}

/** The tfjs path's loss and gradients: −Σ weight · log p / divisor through `tokenLogProbs`, as SFT's loss. */
function tfjsStep(model: CausalLM, data: OnnxTrainBatch) {
  const { batch, time } = data;
  const { loss, grads } = computeGradients(model, () =>
    tf.tidy(() => {
      const ids = tf.tensor2d(data.inputIds, [batch, time], 'int32');
      const mask = tf.tensor2d(data.attentionMask, [batch, time]);
      const weights = tf.tensor2d(data.targetWeights!, [batch, time - 1]);
      const { logProbs } = model.tokenLogProbs(ids, mask, { targetMask: weights });
      return tf.div(tf.neg(tf.sum(tf.mul(logProbs, weights))), data.divisor!) as tf.Scalar;
    }),
  );
  const gradients = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(grads)) {
    gradients.set(parameterNameOf(name), g.dataSync() as Float32Array);
    g.dispose();
  }
  return { loss, gradients };
}

function weightsOf(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.parameters].map(([name, v]) => [name, v.dataSync() as Float32Array]));
}

const cases: [string, Partial<ModelConfig>][] = [
  ['grouped-query (4/2 heads), tied head', { ...tiny, tieWordEmbeddings: true }],
  [
    'qwen2 q/k/v biases, grouped-query, untied head',
    { ...tiny, architecture: 'qwen2', tieWordEmbeddings: false },
  ],
  [
    'multi-head, one layer, untied head',
    { ...tiny, numKeyValueHeads: 4, numHiddenLayers: 1, tieWordEmbeddings: false },
  ],
  [
    'three layers, one key-value head, qwen2, tied',
    {
      ...tiny,
      architecture: 'qwen2',
      numHiddenLayers: 3,
      numKeyValueHeads: 1,
      tieWordEmbeddings: true,
    },
  ],
];

it('loads onnxruntime-node here (an optional dependency that installs with the workspace)', () => {
  // Not a skip: the parity tests below must run wherever the workspace is installed, CI included.
  expect(onnxRuntimeStatus()).toEqual({ available: true });
});

it('onnxTrainFeeds refuses a malformed batch with what was wrong', () => {
  const config = resolveModelConfig(tiny);
  const batch = packedBatch(config.vocabSize, 1);
  const feeds = (change: Partial<OnnxTrainBatch>) => () =>
    onnxTrainFeeds(config, { ...batch, ...change });
  expect(feeds({ batch: 4 })).toThrow(ModelInputError);
  expect(feeds({ batch: 4 })).toThrow(/batch·time = 48 entries, got 36 and 36/);
  expect(feeds({ targetWeights: new Float32Array(3) })).toThrow(/targetWeights must hold/);
  const outside = Int32Array.from(batch.inputIds);
  outside[1] = 1000;
  expect(feeds({ inputIds: outside, targetWeights: undefined })).toThrow(
    /token id 1000 at \[0, 1\] is outside the vocabulary/,
  );
  expect(feeds({ targetWeights: new Float32Array(33), divisor: undefined })).toThrow(
    /divisor must be > 0, got 0/,
  );
  // the rows kept: real targets with a non-zero weight, b·T + t of the predicting position
  const kept = onnxTrainFeeds(config, {
    ...batch,
    targetWeights: new Float32Array(33).fill(1),
    divisor: undefined,
  });
  // row 1 has 8 real tokens: 7 targets; rows 0 and 2 have 11 each
  expect(kept.rows.length).toBe(11 + 7 + 11);
  expect(kept.rows.slice(11, 18)).toEqual(BigInt64Array.from([12, 13, 14, 15, 16, 17, 18], BigInt));
  expect(kept.lossWeights[0]).toBeCloseTo(1 / 29, 7);
});

describeOnBackends('the onnx training step against tfjs on %s', await jsBackends(), () => {
  it.each(cases)(
    '%s: the loss and every weight gradient match within 1e-4 of their scale',
    async (_title, config) => {
      const model = trainedLikeModel(config, 3);
      const data = packedBatch(model.config.vocabSize, 11);
      const expected = tfjsStep(model, data);
      const step = await OnnxTrainStep.create(model.config, 1);
      try {
        const got = await step.run(weightsOf(model), data);
        expect(Math.abs(got.loss - expected.loss) / Math.abs(expected.loss)).toBeLessThan(2e-5);
        expect([...got.gradients.keys()].sort()).toEqual([...expected.gradients.keys()].sort());
        for (const [name, want] of expected.gradients) {
          const error = relativeError(got.gradients.get(name)!, want);
          expect(error, name).toBeLessThan(RELATIVE_TOLERANCE);
        }
      } finally {
        await step.release();
        model.dispose();
      }
    },
  );
});

it.each([1, 5, 16])(
  'attention in %i query chunks (1: the whole square; 5: uneven; 16: more chunks than the 12 positions, run on the unchunked graph) matches tfjs within 1e-4',
  async (attentionChunks) => {
    const model = trainedLikeModel(cases[0]![1], 3);
    const data = packedBatch(model.config.vocabSize, 11);
    const expected = tfjsStep(model, data);
    const step = await OnnxTrainStep.create(model.config, 1, { attentionChunks });
    try {
      const got = await step.run(weightsOf(model), data);
      expect(Math.abs(got.loss - expected.loss) / Math.abs(expected.loss)).toBeLessThan(2e-5);
      for (const [name, want] of expected.gradients)
        expect(relativeError(got.gradients.get(name)!, want), name).toBeLessThan(
          RELATIVE_TOLERANCE,
        );
    } finally {
      await step.release();
      model.dispose();
    }
  },
);

it('gives the same gradients on every run with 2 threads, where ids repeat across a large batch', async () => {
  // 8 × 512 tokens of 8 distinct ids at hidden 64: large enough that onnxruntime splits a
  // scatter over its threads. The embedding rows were once a ScatterND 'add' in the graph, whose
  // threads lost each other's updates to a shared row: a different gradient every run (seen).
  const model = trainedLikeModel(
    { ...tiny, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 1, vocabSize: 64 },
    5,
  );
  const batch = 8;
  const time = 512;
  const rng = new Rng(9);
  const data: OnnxTrainBatch = {
    inputIds: Int32Array.from({ length: batch * time }, () => Math.floor(rng.next() * 8)),
    attentionMask: new Float32Array(batch * time).fill(1),
    batch,
    time,
  };
  const one = await OnnxTrainStep.create(model.config, 1);
  const two = await OnnxTrainStep.create(model.config, 2);
  try {
    const weights = weightsOf(model);
    const reference = (await one.run(weights, data)).gradients;
    const runs = [];
    for (let r = 0; r < 4; r++) runs.push((await two.run(weights, data)).gradients);
    for (const gradients of runs.slice(1))
      for (const [name, values] of gradients) expect(values, name).toEqual(runs[0]!.get(name));
    for (const [name, values] of runs[0]!)
      expect(relativeError(values, reference.get(name)!), name).toBeLessThan(1e-6);
  } finally {
    await one.release();
    await two.release();
    model.dispose();
  }
}, 120_000);

const backends = await jsBackends();

describe('the GRPO form of the graph: temperature, vocabLimit, row log-probs and entropy', () => {
  const limit = 40; // of 61 ids
  const temperature = 0.7;
  /** Targets below the limit, signed weights (advantages), some rows of weight 0 kept by targetMask. */
  function grpoBatch(seed: number): OnnxTrainBatch {
    const data = packedBatch(limit, seed);
    const rng = new Rng(seed + 1);
    const targetMask = new Float32Array(data.batch * (data.time - 1));
    const targetWeights = new Float32Array(targetMask.length);
    for (let k = 0; k < targetMask.length; k++) {
      const u = rng.next();
      targetMask[k] = u < 0.2 ? 0 : 1;
      targetWeights[k] = targetMask[k] === 0 || u < 0.4 ? 0 : u < 0.7 ? -0.3 : 0.8;
    }
    return { ...data, targetMask, targetWeights, divisor: 1 };
  }

  /** tfjs: −Σ weight · log p with `tokenLogProbs`' temperature and vocabLimit, its log-probs and entropy. */
  function tfjsGrpoStep(model: CausalLM, data: OnnxTrainBatch) {
    const { batch, time } = data;
    let logProbs: Float32Array | undefined;
    let entropy: Float32Array | undefined;
    const { loss, grads } = computeGradients(model, () =>
      tf.tidy(() => {
        const ids = tf.tensor2d(data.inputIds, [batch, time], 'int32');
        const mask = tf.tensor2d(data.attentionMask, [batch, time]);
        const weights = tf.tensor2d(data.targetWeights!, [batch, time - 1]);
        const out = model.tokenLogProbs(ids, mask, {
          targetMask: tf.tensor2d(data.targetMask!, [batch, time - 1]),
          temperature,
          vocabLimit: limit,
          entropy: true,
        });
        logProbs = out.logProbs.dataSync() as Float32Array;
        entropy = out.entropy!.dataSync() as Float32Array;
        return tf.div(tf.neg(tf.sum(tf.mul(out.logProbs, weights))), data.divisor!) as tf.Scalar;
      }),
    );
    const gradients = new Map<string, Float32Array>();
    for (const [name, g] of Object.entries(grads)) {
      gradients.set(parameterNameOf(name), g.dataSync() as Float32Array);
      g.dispose();
    }
    return { loss, gradients, logProbs: logProbs!, entropy: entropy! };
  }

  it('keeps weight-0 rows under a targetMask and refuses a targetMask of the wrong size', () => {
    const config = resolveModelConfig(tiny);
    const data = grpoBatch(4);
    const feeds = onnxTrainFeeds(config, data);
    let expected = 0;
    for (let i = 0; i < data.batch; i++)
      for (let j = 0; j < data.time - 1; j++)
        if (data.attentionMask[i * data.time + j + 1]! > 0 && data.targetMask![i * 11 + j]! > 0)
          expected += 1;
    expect(feeds.rows.length).toBe(expected);
    expect([...feeds.lossWeights].filter((w) => w === 0).length).toBeGreaterThan(0);
    expect(() => onnxTrainFeeds(config, { ...data, targetMask: new Float32Array(5) })).toThrow(
      /targetMask must hold batch·\(time − 1\) = 33 entries, got 5/,
    );
  });

  it('refuses a temperature or a vocabLimit it cannot use, and a target past the limit', async () => {
    const config = resolveModelConfig(tiny);
    expect(() => buildTrainGraph(config, { temperature: 0 })).toThrow(/temperature must be/);
    expect(() => buildTrainGraph(config, { vocabLimit: 62 })).toThrow(/vocabLimit must be/);
    const step = await OnnxTrainStep.create(config, 1, { vocabLimit: 10 });
    const model = CausalLM.create(tiny, { seed: 1 });
    try {
      await expect(step.run(weightsOf(model), grpoBatch(2))).rejects.toThrow(
        /target token id \d+ is outside vocabLimit 10/,
      );
    } finally {
      await step.release();
      model.dispose();
    }
  });

  describeOnBackends('against tfjs on %s', backends, () => {
    it.each(cases)(
      '%s: loss, gradients, log-probs and entropy match within 1e-4 of their scale',
      async (_title, config) => {
        const model = trainedLikeModel(config, 3);
        const data = grpoBatch(11);
        const expected = tfjsGrpoStep(model, data);
        const step = await OnnxTrainStep.create(model.config, 1, {
          temperature,
          vocabLimit: limit,
          logProbs: true,
          entropy: true,
        });
        try {
          const feeds = onnxTrainFeeds(model.config, data);
          const got = await step.run(weightsOf(model), feeds);
          expect(Math.abs(got.loss - expected.loss) / Math.abs(expected.loss)).toBeLessThan(2e-5);
          for (const [name, want] of expected.gradients)
            expect(relativeError(got.gradients.get(name)!, want), name).toBeLessThan(
              RELATIVE_TOLERANCE,
            );
          // the head's ids past the limit get no gradient (a tied embedding's rows do, from tokens)
          const head = model.config.tieWordEmbeddings ? undefined : 'lm_head.weight';
          if (head !== undefined) {
            const g = got.gradients.get(head)!;
            const v = model.config.vocabSize;
            for (let r = 0; r < model.config.hiddenSize; r++)
              for (let c = limit; c < v; c++) expect(g[r * v + c]).toBe(0);
          }
          // the rows' figures, at their [b, t] positions
          const at = [...feeds.rows].map((r) => {
            const flat = Number(r);
            return Math.floor(flat / data.time) * (data.time - 1) + (flat % data.time);
          });
          const wantLogProbs = Float32Array.from(at, (o) => expected.logProbs[o]!);
          const wantEntropy = Float32Array.from(at, (o) => expected.entropy[o]!);
          expect(relativeError(got.logProbs!, wantLogProbs)).toBeLessThan(RELATIVE_TOLERANCE);
          expect(relativeError(got.entropy!, wantEntropy)).toBeLessThan(RELATIVE_TOLERANCE);
        } finally {
          await step.release();
          model.dispose();
        }
      },
    );
  });
});

it('without options builds the same graph as with temperature 1 and the whole vocabulary', () => {
  const config = resolveModelConfig(tiny);
  expect(
    buildTrainGraph(config, { temperature: 1, vocabLimit: config.vocabSize, logProbs: false }),
  ).toEqual(buildTrainGraph(config));
});

/** Rows `from`..`to` of a batch (with its divisor), as SFT cuts a micro-batch into shards. */
function rowsOf(data: OnnxTrainBatch, from: number, to: number): OnnxTrainBatch {
  const { time } = data;
  return {
    ...data,
    inputIds: data.inputIds.slice(from * time, to * time),
    attentionMask: data.attentionMask.slice(from * time, to * time),
    targetWeights: data.targetWeights!.slice(from * (time - 1), to * (time - 1)),
    batch: to - from,
  };
}

describe('OnnxTrainPool', () => {
  const config = { ...tiny, numKeyValueHeads: 2, tieWordEmbeddings: true };

  it('sums single-thread runs in batch order: 2 worker threads give the serial sum bit for bit, on every run', async () => {
    const model = trainedLikeModel(config, 4);
    const vocab = model.config.vocabSize;
    // batches of different sizes and lengths, so the threads finish in a different order than
    // they started: the sum must not depend on it
    const packed = packedBatch(vocab, 21);
    const long = { ...packedBatch(vocab, 22), divisor: 7 };
    const batches = [rowsOf(packed, 0, 1), rowsOf(packed, 1, 3), long, rowsOf(packed, 2, 3)];
    const weights = weightsOf(model);
    const serial = await OnnxTrainStep.create(model.config, 1);
    const expected = { loss: 0, gradients: new Map<string, Float32Array>() };
    try {
      for (const batch of batches) {
        const result = await serial.run(weights, batch);
        expected.loss += result.loss;
        for (const [name, values] of result.gradients) {
          const sum = expected.gradients.get(name);
          if (sum === undefined) expected.gradients.set(name, values.slice());
          else for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + values[i]!;
        }
      }
    } finally {
      await serial.release();
    }
    for (const workers of [2, 1]) {
      const pool = await OnnxTrainPool.create(model.config, workers);
      try {
        expect(pool.size).toBe(workers);
        for (let run = 0; run < 3; run++) {
          const got = await pool.run(weights, batches);
          expect(got.loss).toBe(expected.loss);
          expect([...got.gradients.keys()]).toEqual([...expected.gradients.keys()]);
          for (const [name, values] of expected.gradients)
            expect(got.gradients.get(name), `${workers} workers, run ${run}: ${name}`).toEqual(
              values,
            );
        }
      } finally {
        await pool.release();
      }
    }
    model.dispose();
  }, 120_000);

  it('shards of one batch sum to the whole batch’s tfjs loss and gradients', async () => {
    const model = trainedLikeModel(config, 6);
    const data = packedBatch(model.config.vocabSize, 12);
    const expected = tfjsStep(model, data);
    const pool = await OnnxTrainPool.create(model.config, 2);
    try {
      const got = await pool.run(weightsOf(model), [rowsOf(data, 0, 2), rowsOf(data, 2, 3)]);
      expect(Math.abs(got.loss - expected.loss) / Math.abs(expected.loss)).toBeLessThan(2e-5);
      for (const [name, want] of expected.gradients)
        expect(relativeError(got.gradients.get(name)!, want), name).toBeLessThan(
          RELATIVE_TOLERANCE,
        );
    } finally {
      await pool.release();
      model.dispose();
    }
  }, 120_000);

  it('a worker thread that dies fails the next run with MODEL_WORKER_CRASHED, and release() still returns', async () => {
    const model = CausalLM.create(config, { seed: 1 });
    const pool = await OnnxTrainPool.create(model.config, 2);
    // the thread's handle is private: a test reaches in to end it as a crash would
    const { worker } = (pool as unknown as { workers: { worker: Worker }[] }).workers[1]!;
    await worker.terminate();
    await expect(
      pool.run(weightsOf(model), [
        packedBatch(model.config.vocabSize, 1),
        packedBatch(model.config.vocabSize, 2),
      ]),
    ).rejects.toMatchObject({ code: 'MODEL_WORKER_CRASHED', workerIndex: 1 });
    await pool.release();
    model.dispose();
  }, 120_000);

  it('refuses a bad worker count, a missing weight, and runs after release, saying what to do', async () => {
    const model = CausalLM.create(config, { seed: 1 });
    await expect(OnnxTrainPool.create(model.config, 0)).rejects.toThrow(
      /workers must be an integer ≥ 1, got 0/,
    );
    const pool = await OnnxTrainPool.create(model.config, 2);
    const weights = weightsOf(model);
    weights.delete('model.norm.weight');
    await expect(pool.run(weights, [packedBatch(model.config.vocabSize, 1)])).rejects.toThrow(
      /missing weight model\.norm\.weight/,
    );
    // a batch the worker refuses comes back as the worker's error, and the pool still works
    await expect(
      pool.run(weightsOf(model), [{ ...packedBatch(model.config.vocabSize, 1), batch: 5 }]),
    ).rejects.toThrow(/onnx training worker 0: .*must hold batch·time = 60 entries/);
    const ok = await pool.run(weightsOf(model), [packedBatch(model.config.vocabSize, 1)]);
    expect(Number.isFinite(ok.loss)).toBe(true);
    await pool.release();
    await expect(pool.run(weightsOf(model), [])).rejects.toThrow(/run after release/);
    model.dispose();
  }, 120_000);
});
