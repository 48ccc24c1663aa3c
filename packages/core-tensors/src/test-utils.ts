import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { Rng } from '@codereasoner/common';
import { availableBackends, initBackend, type BackendName } from './backend.js';
import type { ModelConfig } from './config.js';

/** The small model of the generation tests (grouped-query: 4 query / 2 key-value heads, head dim 8). */
export const tinyModelConfig: Partial<ModelConfig> = {
  vocabSize: 61,
  hiddenSize: 32,
  intermediateSize: 48,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 64,
};

/** Seeded normal tensor for tests. */
export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = rng.normal() * scale;
  return tf.tensor(data, shape);
}

/**
 * Central finite differences of a scalar function of `inputs` at `count` seeded coordinates of each
 * input, compared with tf.grads. Returns the worst relative error (|a - n| / max(|a|, |n|, floor)).
 */
export function gradientCheck(
  f: (...xs: tf.Tensor[]) => tf.Scalar,
  inputs: tf.Tensor[],
  options: { count?: number; step?: number; floor?: number; seed?: number } = {},
): { worst: number; checked: number } {
  const count = options.count ?? 12;
  const step = options.step ?? 1e-2;
  const floor = options.floor ?? 1e-3;
  const rng = new Rng(options.seed ?? 11);
  const analytic = tf.tidy(() =>
    tf
      .grads(f)(inputs)
      .map((g) => g.dataSync()),
  );
  let worst = 0;
  let checked = 0;
  inputs.forEach((input, which) => {
    const base = input.dataSync().slice();
    for (let c = 0; c < count; c++) {
      const i = rng.int(base.length);
      const evaluate = (delta: number): number =>
        tf.tidy(() => {
          const data = base.slice();
          data[i] = data[i]! + delta;
          const perturbed = inputs.map((x, j) => (j === which ? tf.tensor(data, input.shape) : x));
          return f(...perturbed).dataSync()[0]!;
        });
      const numeric = (evaluate(step) - evaluate(-step)) / (2 * step);
      const a = analytic[which]![i]!;
      const error = Math.abs(a - numeric) / Math.max(Math.abs(a), Math.abs(numeric), floor);
      worst = Math.max(worst, error);
      checked++;
    }
  });
  return { worst, checked };
}

/**
 * Moves every weight of `weights` (e.g. `model.parameters`, `model.adapterParameters`)
 * deterministically: 'add' adds N(0, stddev²) noise (a change of the weights, as after an optimizer
 * step), 'replace' sets the weight to the noise (weights far from the initialisation, so the
 * next-token distributions are peaked). The k-th weight not skipped draws with `seed(k)`, or with
 * `seed` itself when it is a number.
 */
export function perturbWeights(
  weights: Iterable<[string, tf.Variable]>,
  options: {
    mode: 'add' | 'replace';
    stddev: number;
    seed: number | ((index: number) => number);
    /** Weights left as they are, by name. */
    skip?: (name: string) => boolean;
  },
): void {
  let index = 0;
  for (const [name, variable] of weights) {
    if (options.skip?.(name) === true) continue;
    const seed = typeof options.seed === 'number' ? options.seed : options.seed(index);
    index++;
    const next = tf.tidy(() => {
      const noise = tf.randomNormal(variable.shape, 0, options.stddev, 'float32', seed);
      return options.mode === 'add' ? tf.add(variable, noise) : noise;
    });
    variable.assign(next);
    next.dispose();
  }
}

/** The backends that run the JS/wasm kernels (wasm and cpu) among those that initialise here. */
export async function jsBackends(): Promise<BackendName[]> {
  return (await availableBackends()).filter((b) => b === 'wasm' || b === 'cpu');
}

/**
 * `describe.each(backends)` with every block's set-up: the block's backend initialised before its
 * tests, and a leak check after them (as many tensors as before the first test: every test must
 * dispose what it makes, CONVENTIONS 11). `title` takes the backend's name at `%s`.
 */
export function describeOnBackends(
  title: string,
  backends: readonly BackendName[],
  body: (backend: BackendName) => void,
): void {
  describe.each(backends)(title, (backend) => {
    let baseline = 0;
    beforeAll(async () => {
      await initBackend({ backend });
      baseline = tf.memory().numTensors;
    });
    afterAll(() => {
      expect(tf.memory().numTensors, `tensors left on the ${backend} backend`).toBe(baseline);
    });
    body(backend);
  });
}

/** max |a − b| over max |b|: an engine's values against the reference's, relative to its scale. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

/**
 * The rows each decode step of `generate` computes when finished rows are dropped once
 * `compactAfter` of them collected (0: never), worked out from the outputs alone: per batch of
 * `batchSize` prompts, the decode steps after the prefill (a step runs after every new token
 * but the last).
 */
export function rowsPerDecodeStep(
  outputs: readonly { tokens: readonly number[]; finishReason: 'stop' | 'length' }[],
  batchSize: number,
  compactAfter: number,
): number[][] {
  const batches: number[][] = [];
  for (let start = 0; start < outputs.length; start += batchSize) {
    const part = outputs.slice(start, start + batchSize);
    const stops = part.map((o) => (o.finishReason === 'stop' ? o.tokens.length : Infinity));
    const steps: number[] = [];
    let rows = part.length;
    for (let token = 1; token < Math.max(...part.map((o) => o.tokens.length)); token++) {
      const finished = stops.filter((n) => n <= token).length;
      if (compactAfter > 0 && finished - (part.length - rows) >= compactAfter)
        rows = part.length - finished;
      steps.push(rows);
    }
    batches.push(steps);
  }
  return batches;
}

/**
 * Six prompts of 70, 9, 40, 15, 6 and 48 tokens (ids below 61): a batch left-padded to 70 whose
 * rows, on a model with peaked distributions, stop at many different steps.
 */
export function raggedPrompts(): number[][] {
  const long = Array.from({ length: 70 }, (_, i) => (i * 17) % 61);
  return [
    long,
    long.slice(0, 9),
    long.slice(30, 100),
    long.slice(5, 20),
    [4, 8, 15, 16, 23, 42],
    long.slice(12, 60),
  ];
}
