import * as tf from '@tensorflow/tfjs';
import { Rng } from '@codereasoner/common';

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
