import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '@codereasoner/common';
import { initBackend } from './backend.js';
import { resolveModelConfig, type ModelConfig } from './config.js';
import {
  CausalLM,
  ModelInputError,
  parameterSpecs,
  type GenerateOptions,
  type GenerationOutput,
} from './model.js';
import { QWEN25_05B_SETTINGS, QWEN25_05B_SIZES } from '../bench/qwen25-05b.mjs';
import { buildDecoderGraph } from './onnx-graph.js';
import {
  perturbWeights,
  raggedPrompts,
  rowsPerDecodeStep,
  tinyModelConfig as tiny,
} from './test-utils.js';
import {
  ONNX_INITIALIZER_WEIGHTS_MAX_BYTES,
  ONNX_MODEL_MAX_BYTES,
  onnxRuntimeStatus,
  onnxUnsupportedReason,
  onnxWeightsModeFor,
  setOnnxRuntimeLoader,
  type OnnxRuntimeModule,
} from './onnx-engine.js';

/** Prompts of unequal lengths, so every batch is left-padded. */
const prompts = [
  [3, 1, 4, 1, 5],
  [9, 2],
  [6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8],
];

/**
 * A model whose next-token distributions are far from uniform (weights ~N(0, 0.3), non-zero
 * biases): with the initial N(0, 0.02) weights every logit is near 0 and any engine "agrees".
 */
function peakedModel(config: Partial<ModelConfig>, seed: number): CausalLM {
  const model = CausalLM.create(config, { seed });
  perturbWeights(model.parameters, {
    mode: 'replace',
    stddev: 0.3,
    seed: (k) => seed * 100 + k,
    skip: (name) => name.endsWith('norm.weight'),
  });
  return model;
}

/** Float32 bytes of a config's weights, from the model's own parameter list. */
function weightBytes(config: Partial<ModelConfig>): number {
  return parameterSpecs(resolveModelConfig(config)).reduce(
    (sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1) * 4,
    0,
  );
}

/** Qwen2.5-0.5B's config (the sizes the benchmarks use; the 1.5B's differ in width, depth and heads). */
const qwen25_05b: Partial<ModelConfig> = {
  architecture: 'qwen2',
  ...QWEN25_05B_SIZES,
  ...QWEN25_05B_SETTINGS,
};

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug: () => {}, info: () => {}, warn: (m) => warnings.push(m) };
}

function expectSameGeneration(
  actual: GenerationOutput[],
  expected: GenerationOutput[],
  tolerance: number,
): void {
  expect(actual.map((o) => o.tokens)).toEqual(expected.map((o) => o.tokens));
  expect(actual.map((o) => o.finishReason)).toEqual(expected.map((o) => o.finishReason));
  actual.forEach((o, i) =>
    o.logProbs.forEach((x, t) =>
      expect(Math.abs(x - expected[i]!.logProbs[t]!)).toBeLessThanOrEqual(tolerance),
    ),
  );
}

beforeAll(async () => {
  await initBackend();
});

afterEach(() => setOnnxRuntimeLoader(undefined));

describe('the onnx generation engine', () => {
  it('loads onnxruntime-node here (an optional dependency that installs with the workspace)', () => {
    // Not a skip: the parity tests below must run wherever the workspace is installed, CI included.
    expect(onnxRuntimeStatus()).toEqual({ available: true });
  });

  it.each([
    ['grouped-query, tied head', { ...tiny, tieWordEmbeddings: true }],
    ['multi-head, untied head', { ...tiny, numKeyValueHeads: 4, tieWordEmbeddings: false }],
    [
      'qwen2 q/k/v biases, one key-value head',
      { ...tiny, architecture: 'qwen2', numKeyValueHeads: 1, tieWordEmbeddings: false },
    ],
    ['head dim 6, three layers', { ...tiny, hiddenSize: 24, numHiddenLayers: 3 }],
  ] as [string, Partial<ModelConfig>][])(
    'gives the tfjs path tokens and log-probs within 1e-4: %s',
    async (_, config) => {
      const model = peakedModel(config, 7);
      await model.generate(prompts, { maxNewTokens: 1 }); // the tfjs path's fused weights, kept per model
      const baseline = tf.memory().numTensors;
      // weights inside the graph (a new session after they change) or fed with every run
      // (undefined: the default 'auto', which keeps a model this small in the graph)
      for (const onnxWeights of ['initializers', 'inputs', undefined] as const)
        for (const [round, options] of (
          [
            { maxNewTokens: 24, temperature: 1.1, seed: 4, stopTokens: [7, 11] },
            { maxNewTokens: 16, temperature: 0 },
            { maxNewTokens: 20, temperature: 0.8, topK: 20, topP: 0.9, seed: 9, batchSize: 2 },
          ] as GenerateOptions[]
        ).entries()) {
          // the last round after every weight changed: the session must be rebuilt from the new weights
          if (round === 2) perturbWeights(model.parameters, { mode: 'add', stddev: 0.1, seed: 5 });
          const reference = await model.generate(prompts, { ...options, engine: 'tfjs' });
          const onnx = await model.generate(prompts, {
            ...options,
            engine: 'onnx',
            ...(onnxWeights === undefined ? {} : { onnxWeights }),
          });
          const report = model.lastGenerationEngine;
          expect(report?.engine).toBe('onnx');
          expect(report?.onnxWeights).toBe(onnxWeights ?? 'initializers');
          if (round === 1)
            expect(report?.onnxBuildMs).toBe(0); // weights unchanged: session kept
          else expect(report?.onnxBuildMs).toBeGreaterThan(0);
          expectSameGeneration(onnx, reference, 1e-4);
        }
      // the cases must not be vacuous: sampling stopped somewhere and the distributions are peaked
      const sampled = await model.generate(prompts, {
        maxNewTokens: 24,
        temperature: 1.1,
        seed: 4,
        stopTokens: [7, 11],
        engine: 'onnx',
      });
      expect(new Set(sampled.flatMap((o) => o.tokens)).size).toBeGreaterThan(3);
      expect(Math.max(...sampled.flatMap((o) => o.logProbs))).toBeGreaterThan(-Math.log(61) + 1);
      expect(tf.memory().numTensors).toBe(baseline);
      model.dispose();
    },
    120_000,
  );

  it('keeps parity while its KV cache grows chunk by chunk (prompt of 70, 120 new tokens)', async () => {
    const model = peakedModel({ ...tiny, maxPositionEmbeddings: 256 }, 11);
    const long = Array.from({ length: 70 }, (_, i) => (i * 17) % 61);
    const batch = [long, long.slice(0, 9), long.slice(30, 100)];
    for (const options of [
      { maxNewTokens: 120, temperature: 0 },
      { maxNewTokens: 120, temperature: 1, seed: 3 },
    ] as GenerateOptions[]) {
      const reference = await model.generate(batch, { ...options, engine: 'tfjs' });
      const onnx = await model.generate(batch, { ...options, engine: 'onnx' });
      expect(onnx[0]!.tokens).toHaveLength(120);
      expectSameGeneration(onnx, reference, 1e-4);
    }
    model.dispose();
  }, 120_000);

  it('drops finished rows from its batch with the same outputs per row (stop tokens, left padding, cache growth)', async () => {
    const model = peakedModel({ ...tiny, maxPositionEmbeddings: 256 }, 11);
    // prompts of 70, 9, 40, 15, 6 and 48 tokens: a batch left-padded to 70, whose cache of 128
    // slots grows to the capacity 190 at the 59th new token
    const batch = raggedPrompts();
    // every session.run's batch (input_ids' first dimension), through the real runtime
    const require = createRequire(import.meta.url);
    const ort = require('onnxruntime-node') as OnnxRuntimeModule;
    let fed: number[] = [];
    setOnnxRuntimeLoader(() => ({
      ...ort,
      InferenceSession: {
        ...ort.InferenceSession,
        create: async (bytes: Uint8Array, options: object) => {
          const session = await ort.InferenceSession.create(bytes, options);
          const run = session.run.bind(session);
          session.run = ((feeds: Record<string, { dims: readonly number[] }>) => {
            fed.push(feeds['input_ids']!.dims[0]!);
            return run(feeds as never);
          }) as typeof session.run;
          return session;
        },
      } as unknown as OnnxRuntimeModule['InferenceSession'],
    }));
    const spreads: number[][] = [];
    for (const options of [
      { temperature: 0 },
      { temperature: 1, seed: 3 },
      { temperature: 0.7, seed: 8 },
      { temperature: 0.7, seed: 8, batchSize: 4 },
    ] as GenerateOptions[]) {
      const common = { ...options, maxNewTokens: 120, stopTokens: [13] };
      // the tfjs reference path keeps every row: the outputs before any row was dropped
      const reference = await model.generate(batch, {
        ...common,
        engine: 'tfjs',
        decode: 'reference',
      });
      // 0: every row decodes to the batch's end (as before); undefined: the default, every
      // finished row dropped at once; 2: finished rows dropped two at a time
      for (const compactAfter of [0, undefined, 2]) {
        fed = [];
        const onnx = await model.generate(batch, {
          ...common,
          engine: 'onnx',
          ...(compactAfter === undefined ? {} : { compactAfter }),
        });
        expect(model.lastGenerationEngine?.engine).toBe('onnx');
        expectSameGeneration(onnx, reference, 1e-4);
        // each run fed the prefill's rows, then the rows not yet dropped
        const size = options.batchSize ?? batch.length;
        const expected = rowsPerDecodeStep(reference, size, compactAfter ?? 1).flatMap(
          (steps, k) => [Math.min(size, batch.length - k * size), ...steps],
        );
        expect(fed).toEqual(expected);
      }
      spreads.push(reference.map((o) => (o.finishReason === 'stop' ? o.tokens.length : -1)));
    }
    // not vacuous: rows stop at many different steps, before and after the cache grows (59th
    // token), two at the same step, one on its first token, and rows that run to the length
    expect(spreads[0]).toEqual([67, 25, 50, 95, 111, -1]);
    expect(spreads[1]).toEqual([73, 57, 55, 12, 4, 73]);
    expect(spreads[2]).toEqual([23, 1, -1, 20, 103, 82]);
    model.dispose();
  }, 180_000);

  it('serves concurrent calls across a weight change, each with the weights it started with', async () => {
    const model = peakedModel(tiny, 12);
    const options: GenerateOptions = { maxNewTokens: 40, temperature: 1, seed: 6 };
    const before = await model.generate(prompts, { ...options, engine: 'tfjs' });
    const first = model.generate(prompts, { ...options, engine: 'onnx' });
    await new Promise((resolve) => setImmediate(resolve)); // the first call has its session
    for (const variable of model.parameters.values()) {
      const next = tf.tidy(() => tf.mul(variable, 1.2));
      variable.assign(next);
      next.dispose();
    }
    const after = await model.generate(prompts, { ...options, engine: 'tfjs' });
    const second = model.generate(prompts, { ...options, engine: 'onnx' });
    expectSameGeneration(await first, before, 1e-4);
    expectSameGeneration(await second, after, 1e-4);
    expect(after.map((o) => o.tokens)).not.toEqual(before.map((o) => o.tokens));
    // the replaced session was released by its last user; the model still generates
    expectSameGeneration(
      await model.generate(prompts, { ...options, engine: 'onnx' }),
      after,
      1e-4,
    );
    model.dispose();
  }, 60_000);

  it('its prefill logits equal each prompt alone through `logits` within 1e-4 (left padding undone)', async () => {
    const model = peakedModel({ ...tiny, architecture: 'qwen2' }, 3);
    // temperature 1: a greedy step's log-prob is log-softmax of the last position's logits
    const outputs = await model.generate(prompts, {
      maxNewTokens: 1,
      temperature: 0,
      engine: 'onnx',
    });
    prompts.forEach((prompt, i) => {
      const row = tf.tidy(() => {
        const logits = model.logits(tf.tensor2d([prompt], [1, prompt.length], 'int32'));
        return Array.from(
          tf
            .logSoftmax(tf.reshape(tf.slice(logits, [0, prompt.length - 1, 0], [1, 1, -1]), [-1]))
            .dataSync(),
        );
      });
      const best = row.indexOf(Math.max(...row));
      expect(outputs[i]!.tokens).toEqual([best]);
      expect(Math.abs(outputs[i]!.logProbs[0]! - row[best]!)).toBeLessThan(1e-4);
    });
    model.dispose();
  });

  it('falls back to tfjs, with the reason logged once, where onnxruntime-node does not load', async () => {
    setOnnxRuntimeLoader(() => {
      throw new Error('libonnxruntime.so.1: cannot open shared object file\nmore detail');
    });
    const model = peakedModel(tiny, 5);
    const logger = recordingLogger();
    const options: GenerateOptions = { maxNewTokens: 12, temperature: 0.9, seed: 2 };
    const reference = await model.generate(prompts, { ...options, engine: 'tfjs' });
    const fallback = await model.generate(prompts, { ...options, engine: 'onnx', logger });
    expectSameGeneration(fallback, reference, 0);
    expect(model.lastGenerationEngine).toEqual({
      engine: 'tfjs',
      fallbackReason:
        'onnxruntime-node did not load: libonnxruntime.so.1: cannot open shared object file',
    });
    await model.generate(prompts, { ...options, engine: 'onnx', logger });
    await model.generate(prompts, { ...options, engine: 'auto', logger });
    expect(logger.warnings).toEqual([
      'generation falls back from the onnx engine to tfjs: onnxruntime-node did not load: libonnxruntime.so.1: cannot open shared object file',
    ]);
    // a module that loads but is not onnxruntime
    setOnnxRuntimeLoader(() => ({}) as never);
    await model.generate(prompts, { ...options, engine: 'auto' });
    expect(model.lastGenerationEngine?.fallbackReason).toMatch(/no InferenceSession\.create/);
    // a runtime that loads but cannot open the graph (e.g. a build without a kernel it uses)
    const { createRequire } = await import('node:module');
    const real = createRequire(import.meta.url)('onnxruntime-node') as OnnxRuntimeModule;
    setOnnxRuntimeLoader(() => ({
      ...real,
      InferenceSession: {
        create: () =>
          Promise.reject(
            new Error('Could not find an implementation for SimplifiedLayerNormalization'),
          ),
      } as unknown as OnnxRuntimeModule['InferenceSession'],
    }));
    expectSameGeneration(
      await model.generate(prompts, { ...options, engine: 'onnx', logger }),
      reference,
      0,
    );
    expect(model.lastGenerationEngine?.fallbackReason).toBe(
      'onnxruntime could not open the decoder graph: Could not find an implementation for SimplifiedLayerNormalization',
    );
    expect(logger.warnings).toHaveLength(2);
    // the real module again
    setOnnxRuntimeLoader(undefined);
    await model.generate(prompts, { ...options, engine: 'auto' });
    expect(model.lastGenerationEngine?.engine).toBe('onnx');
    model.dispose();
  }, 60_000);

  it('falls back to tfjs for what the graph lacks: Qwen3 q/k norms, active LoRA adapters', async () => {
    const options: GenerateOptions = { maxNewTokens: 10, temperature: 0.7, seed: 1 };
    const qwen3 = peakedModel({ ...tiny, architecture: 'qwen3' }, 4);
    const logger = recordingLogger();
    const reference = await qwen3.generate(prompts, { ...options, engine: 'tfjs' });
    expectSameGeneration(
      await qwen3.generate(prompts, { ...options, engine: 'onnx', logger }),
      reference,
      0,
    );
    expect(qwen3.lastGenerationEngine?.fallbackReason).toMatch(/q\/k norms \(Qwen3\)/);
    expect(logger.warnings).toHaveLength(1);
    qwen3.dispose();

    const model = peakedModel(tiny, 6);
    model.addAdapters(
      { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] },
      { seed: 1 },
    );
    perturbWeights(model.adapterParameters, { mode: 'replace', stddev: 0.3, seed: 8 });
    const withAdapters = await model.generate(prompts, { ...options, engine: 'tfjs' });
    expectSameGeneration(
      await model.generate(prompts, { ...options, engine: 'auto' }),
      withAdapters,
      0,
    );
    expect(model.lastGenerationEngine?.fallbackReason).toMatch(/LoRA/);
    // with the adapters disabled the base model runs on onnx, and differs from the adapted one
    model.adaptersEnabled = false;
    const base = await model.generate(prompts, { ...options, engine: 'tfjs' });
    expectSameGeneration(await model.generate(prompts, { ...options, engine: 'auto' }), base, 1e-4);
    expect(model.lastGenerationEngine?.engine).toBe('onnx');
    expect(base.map((o) => o.tokens)).not.toEqual(withAdapters.map((o) => o.tokens));
    model.dispose();
  }, 60_000);

  it('rejects a bad engine, onnxThreads, onnxWeights or compactAfter with ModelInputError', async () => {
    const model = CausalLM.create(tiny);
    await expect(
      model.generate(prompts, { maxNewTokens: 2, engine: 'onnx', onnxThreads: 0 }),
    ).rejects.toThrow(/onnxThreads must be a positive integer/);
    await expect(
      model.generate(prompts, { maxNewTokens: 2, engine: 'native' as never }),
    ).rejects.toThrow(ModelInputError);
    await expect(
      model.generate(prompts, { maxNewTokens: 2, engine: 'onnx', onnxWeights: 'graph' as never }),
    ).rejects.toThrow(/onnxWeights must be 'auto', 'initializers' or 'inputs'/);
    await expect(
      model.generate(prompts, { maxNewTokens: 2, engine: 'onnx', compactAfter: -1 }),
    ).rejects.toThrow(/compactAfter must be a non-negative integer/);
    model.dispose();
  });
});

describe("the onnx engine's weights mode", () => {
  it('keeps weights in the graph up to 2 GiB - 64 MiB and feeds them as inputs above', () => {
    // 2^31 - 2^26, written out: protobuf's 2 GiB message limit less a 64 MiB margin for the graph
    expect(ONNX_INITIALIZER_WEIGHTS_MAX_BYTES).toBe(2_080_374_784);
    expect(ONNX_MODEL_MAX_BYTES).toBe(2_147_483_647);
    const limit = ONNX_INITIALIZER_WEIGHTS_MAX_BYTES;
    expect(onnxWeightsModeFor(limit - 4)).toBe('initializers');
    expect(onnxWeightsModeFor(limit)).toBe('initializers');
    expect(onnxWeightsModeFor(limit + 4)).toBe('inputs');
    expect(onnxWeightsModeFor(limit + 4, 'auto')).toBe('inputs');
    expect(onnxWeightsModeFor(4_000)).toBe('initializers');
    // an explicit mode is kept either side of the limit
    expect(onnxWeightsModeFor(4_000, 'inputs')).toBe('inputs');
    expect(onnxWeightsModeFor(limit + 4, 'initializers')).toBe('initializers');
  });

  it('decides on model configs: Qwen2.5-0.5B in the graph, Qwen2.5-1.5B as inputs, a vocabulary row either side', () => {
    // parameter counts as Hugging Face publishes them for these checkpoints
    expect(weightBytes(qwen25_05b)).toBe(494_032_768 * 4);
    expect(onnxWeightsModeFor(weightBytes(qwen25_05b))).toBe('initializers');
    const qwen25_15b = {
      ...qwen25_05b,
      hiddenSize: 1536,
      intermediateSize: 8960,
      numHiddenLayers: 28,
      numAttentionHeads: 12,
    };
    expect(weightBytes(qwen25_15b)).toBe(1_543_714_304 * 4);
    expect(onnxWeightsModeFor(weightBytes(qwen25_15b))).toBe('inputs');
    // Qwen2.5-0.5B with a larger (tied) vocabulary: each row adds 896 floats. 181,021 rows:
    // 494,032,768 + 29,085 · 896 = 520,092,928 floats ≤ 520,093,696 (the limit / 4); one more row is over.
    expect(weightBytes({ ...qwen25_05b, vocabSize: 181_021 })).toBe(520_092_928 * 4);
    expect(onnxWeightsModeFor(weightBytes({ ...qwen25_05b, vocabSize: 181_021 }))).toBe(
      'initializers',
    );
    expect(onnxWeightsModeFor(weightBytes({ ...qwen25_05b, vocabSize: 181_022 }))).toBe('inputs');
  });

  it("leaves the margin to the graph's structure many times over (24 layers as Qwen2.5-0.5B)", () => {
    const config = resolveModelConfig({ ...tiny, numHiddenLayers: 24, architecture: 'qwen2' });
    const weights = new Map(
      parameterSpecs(config).map((spec) => [
        spec.name,
        new Float32Array(spec.shape.reduce((a, b) => a * b, 1)),
      ]),
    );
    const { bytes } = buildDecoderGraph(config, weights);
    const structure = bytes.length - weightBytes(config);
    expect(structure).toBeGreaterThan(0);
    // the structure does not grow with the widths; 24 layers take tens of KB of the 64 MiB margin
    expect(structure).toBeLessThan(
      (ONNX_MODEL_MAX_BYTES - ONNX_INITIALIZER_WEIGHTS_MAX_BYTES) / 100,
    );
  });

  it('generates the same tokens with the weights in the graph, as inputs and by default', async () => {
    const model = peakedModel({ ...tiny, architecture: 'qwen2' }, 12);
    for (const options of [
      { maxNewTokens: 20, temperature: 0.9, seed: 3, stopTokens: [5] },
      { maxNewTokens: 16, temperature: 0 },
    ] as GenerateOptions[]) {
      const inGraph = await model.generate(prompts, {
        ...options,
        engine: 'onnx',
        onnxWeights: 'initializers',
      });
      expect(model.lastGenerationEngine?.onnxWeights).toBe('initializers');
      const asInputs = await model.generate(prompts, {
        ...options,
        engine: 'onnx',
        onnxWeights: 'inputs',
        onnxThreads: 2,
      });
      expect(model.lastGenerationEngine).toMatchObject({
        engine: 'onnx',
        onnxWeights: 'inputs',
        onnxThreads: 2,
      });
      const byDefault = await model.generate(prompts, { ...options, engine: 'auto' });
      expect(model.lastGenerationEngine).toMatchObject({
        engine: 'onnx',
        onnxWeights: 'initializers',
        onnxThreads: 1,
      });
      expect(inGraph.flatMap((o) => o.tokens).length).toBeGreaterThan(20);
      expectSameGeneration(asInputs, inGraph, 1e-4);
      expectSameGeneration(byDefault, inGraph, 1e-4);
    }
    // The same small graph, with the model's size over the limit (its count overridden, no 2 GB
    // model): the default feeds the weights as inputs; 'initializers' falls back with its reason.
    const reference = await model.generate(prompts, { maxNewTokens: 12, temperature: 0 });
    model.numParameters = () => ONNX_INITIALIZER_WEIGHTS_MAX_BYTES / 4 + 1;
    const large = await model.generate(prompts, {
      maxNewTokens: 12,
      temperature: 0,
      engine: 'auto',
    });
    expect(model.lastGenerationEngine).toMatchObject({ engine: 'onnx', onnxWeights: 'inputs' });
    expectSameGeneration(large, reference, 1e-4);
    const logger = recordingLogger();
    const refused = await model.generate(prompts, {
      maxNewTokens: 12,
      temperature: 0,
      engine: 'onnx',
      onnxWeights: 'initializers',
      logger,
    });
    expect(model.lastGenerationEngine?.engine).toBe('tfjs');
    expect(model.lastGenerationEngine?.fallbackReason).toMatch(
      /the weights \(1\.94 GiB\) exceed a protobuf message's 2 GiB as initializers/,
    );
    expect(logger.warnings).toHaveLength(1);
    expectSameGeneration(refused, reference, 0);
    model.dispose();
  }, 60_000);

  it("still falls back when 'initializers' is asked for above the limit", () => {
    const floats = ONNX_INITIALIZER_WEIGHTS_MAX_BYTES / 4 + 1;
    expect(onnxUnsupportedReason(resolveModelConfig(tiny), floats)).toMatch(
      /exceed a protobuf message's 2 GiB as initializers/,
    );
    expect(onnxUnsupportedReason(resolveModelConfig(tiny), floats - 1)).toBeUndefined();
  });
});
