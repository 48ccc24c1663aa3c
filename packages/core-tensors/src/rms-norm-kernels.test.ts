import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@codereasoner/common';
import { availableBackends, initBackend, type BackendName } from './backend.js';
import { rmsNorm } from './layers.js';

/*
 * The RMSNorm kernels (forward, dL/dx, dL/dweight) against the definition computed here one row
 * at a time, each row's sums in float64 in column order and every element's expression in the
 * same order as the kernels document (y = x·r·w; dx = r·dy·w − x·r³·mean(dy·w·x); dw = Σ_rows
 * dy·x·r). The kernels interleave four rows for speed; that must not change a single bit, so
 * the comparison is exact, on row counts with and without a remainder of four. (Seen failing
 * with one row's sum stored in another's slot. A float64 sum taken in another order rarely
 * changes the float32 results, so exactness here does not pin the order of the float64 sums.)
 */

function random(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

function reference(x: Float32Array, w: Float32Array, dy: Float32Array, width: number, eps: number) {
  const rows = x.length / width;
  const y = new Float32Array(x.length);
  const dx = new Float32Array(x.length);
  const dwSum = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let sum = 0;
    let dot = 0;
    for (let j = 0; j < width; j++) {
      sum += x[base + j]! * x[base + j]!;
      dot += dy[base + j]! * w[j]! * x[base + j]!;
    }
    const scale = 1 / Math.sqrt(sum / width + eps);
    const k = scale * scale * scale * (dot / width);
    for (let j = 0; j < width; j++) {
      y[base + j] = x[base + j]! * scale * w[j]!;
      dx[base + j] = scale * dy[base + j]! * w[j]! - x[base + j]! * k;
      dwSum[j]! += dy[base + j]! * x[base + j]! * scale;
    }
  }
  return { y, dx, dw: Float32Array.from(dwSum) };
}

/** Where `got` differs from `want` (bits; -1 if nowhere) and how often: a short message on failure, not a 266k-element diff. */
function differences(got: ArrayLike<number>, want: Float32Array): { first: number; count: number } {
  let first = -1;
  let count = got.length === want.length ? 0 : Math.max(got.length, want.length);
  for (let i = 0; i < Math.min(got.length, want.length); i++)
    if (!Object.is(Math.fround(got[i]!), want[i]!)) {
      if (first < 0) first = i;
      count += 1;
    }
  return { first, count };
}

const backends: BackendName[] = await availableBackends();
const JS_BACKENDS = backends.filter((b) => b === 'wasm' || b === 'cpu');

describe.each(JS_BACKENDS)('RMSNorm kernels on the %s backend', (backend) => {
  let baseline = 0;
  beforeAll(async () => {
    await initBackend({ backend });
    baseline = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it.each([
    [1, 6],
    [3, 6],
    [4, 128],
    [7, 32],
    [9, 128],
    [2083, 128],
  ])('%i rows of %i: values and both gradients equal the definition bit for bit', (rows, width) => {
    const rng = new Rng(rows * 31 + width);
    const eps = 1e-6;
    // rows of different scales, so each row's r differs
    const x = Float32Array.from(random(rows * width, rng), (v, i) => v * (1 + (i % 5)));
    const w = random(width, rng, 0.5);
    const dy = random(rows * width, rng);
    const want = reference(x, w, dy, width, eps);
    const xt = tf.tensor2d(x, [rows, width]);
    const wt = tf.tensor1d(w);
    const dyt = tf.tensor2d(dy, [rows, width]);
    const y = rmsNorm(xt, wt, eps);
    const [dx, dw] = tf.grads((a, b) => rmsNorm(a!, b as tf.Tensor1D, eps))([xt, wt], dyt);
    const none = { first: -1, count: 0 };
    expect(differences(y.dataSync(), want.y)).toEqual(none);
    expect(differences(dx!.dataSync(), want.dx)).toEqual(none);
    expect(differences(dw!.dataSync(), want.dw)).toEqual(none);
    tf.dispose([xt, wt, dyt, y, dx!, dw!]);
  });
});
