import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Rng } from '@codereasoner/common';
import { linear, linearTransposed } from './fast-ops.js';
import {
  BLOCK_ROWS,
  TransposedProduct,
  transposedProductFits,
  transposedProductModuleBytes,
  transposedProductSimd,
} from './transposed-product.js';
import { wasmApi } from './wasm-simd.js';
import { describeOnBackends, jsBackends } from './test-utils.js';

/*
 * The weight-gradient kernel aᵀ·b (a [K, M], b [K, N]) against (1) each element summed in float32
 * in the order t = 0..K−1 with a rounded product per term, computed here in JS (what a plain
 * product's micro-kernel does: the kernel must equal it bit for bit), (2) the float64 sum, and,
 * through tfjs, (3) the plain formulation tf.matMul(xᵀ, dy): bit for bit on wasm (XNNPACK sums
 * in the same order), within float32 rounding on cpu (its matMul sums in blocks).
 */

function random(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

function inOrderFloat32(a: Float32Array, b: Float32Array, k: number, m: number, n: number) {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let t = 0; t < k; t++)
        sum = Math.fround(sum + Math.fround(a[t * m + i]! * b[t * n + j]!));
      out[i * n + j] = sum;
    }
  return out;
}

function float64(a: Float32Array, b: Float32Array, k: number, m: number, n: number) {
  const out = new Float64Array(m * n);
  const scale = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let sum = 0;
      let abs = 0;
      for (let t = 0; t < k; t++) {
        sum += a[t * m + i]! * b[t * n + j]!;
        abs += Math.abs(a[t * m + i]! * b[t * n + j]!);
      }
      out[i * n + j] = sum;
      scale[i * n + j] = abs;
    }
  return { out, scale };
}

describe('TransposedProduct (WASM SIMD)', () => {
  // Node ≥ 20 (package engines) has WASM SIMD; without it the callers keep the plain product
  it('validates for the model shapes', () => {
    expect(transposedProductSimd()).toBe(true);
    for (const [m, n] of [
      [128, 384],
      [384, 128],
      [2048, 128],
      [896, 4864],
      [4, 8],
    ] as const)
      expect(wasmApi.validate(transposedProductModuleBytes(m, n))).toBe(true);
  });

  // K past one block, a partial last block, one short block; tiles in both directions
  const shapes: [number, number, number][] = [
    [2 * BLOCK_ROWS + 44, 12, 24],
    [BLOCK_ROWS, 8, 16],
    [3, 4, 8],
  ];
  it.each(shapes)(
    'K %i, M %i, N %i: bit for bit the in-order float32 sums; within 1e-5 of the float64 sums',
    (k, m, n) => {
      const rng = new Rng(k + m + n);
      const a = random(k * m, rng);
      const b = random(k * n, rng);
      const out = new Float32Array(m * n);
      const kernel = new TransposedProduct();
      kernel.compute(a, b, k, m, n, out);
      expect(Array.from(out)).toEqual(Array.from(inOrderFloat32(a, b, k, m, n)));
      const exact = float64(a, b, k, m, n);
      for (let i = 0; i < m * n; i++)
        expect(Math.abs(out[i]! - exact.out[i]!)).toBeLessThanOrEqual(1e-5 * exact.scale[i]!);
      // the same instance again (the output region is cleared between calls), and another shape after it
      const again = new Float32Array(m * n);
      kernel.compute(a, b, k, m, n, again);
      expect(Array.from(again)).toEqual(Array.from(out));
    },
  );

  it('rejects shapes it does not serve, with the reason', () => {
    const kernel = new TransposedProduct();
    const x = new Float32Array(6 * 6);
    expect(() => kernel.compute(x, x, 6, 6, 6, new Float32Array(36))).toThrow(/multiple of 4/);
    expect(() =>
      kernel.compute(new Float32Array(10), new Float32Array(16), 2, 4, 8, new Float32Array(32)),
    ).toThrow(/a has 10 values \(expected 2·4\)/);
    expect(transposedProductFits(6, 8)).toBe(false);
    expect(transposedProductFits(8, 12)).toBe(false);
  });
});

describeOnBackends(
  'weight gradients through tfjs on the %s backend',
  await jsBackends(),
  (backend) => {
    /** Equal bit for bit on wasm; on cpu within 1e-5 of each element's Σ|terms|. */
    function expectPlainProduct(got: Float32Array, want: Float32Array, scale: Float64Array): void {
      if (backend === 'wasm') {
        expect(Array.from(got)).toEqual(Array.from(want));
        return;
      }
      for (let i = 0; i < got.length; i++)
        expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-5 * scale[i]!);
    }

    // out 24 fits the kernel's tiles; out 6 does not (the plain formulation runs)
    it.each([
      [300, 12, 24],
      [70, 8, 6],
    ])('linear: dW of x [%i, %i] · w [·, %i] equals the plain product xᵀ·dy', (k, m, n) => {
      const rng = new Rng(5);
      const xv = random(k * m, rng);
      const dyv = random(k * n, rng);
      tf.tidy(() => {
        const x = tf.tensor2d(xv, [k, m]);
        const w = tf.tensor2d(random(m * n, rng), [m, n]);
        const dy = tf.tensor2d(dyv, [k, n]);
        const [, dW] = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
          tf.sum(tf.mul(linear(xi as tf.Tensor2D, wi as tf.Tensor2D), dy)),
        )([x, w]);
        const plain = tf.matMul(tf.transpose(x), dy);
        expectPlainProduct(
          dW!.dataSync() as Float32Array,
          plain.dataSync() as Float32Array,
          float64(xv, dyv, k, m, n).scale,
        );
      });
    });

    it('linearTransposed (tied head): dE [V, d] equals the plain (xᵀ·dy)ᵀ', () => {
      const [k, d, v] = [150, 8, 32];
      const rng = new Rng(6);
      const xv = random(k * d, rng);
      const dyv = random(k * v, rng);
      tf.tidy(() => {
        const x = tf.tensor2d(xv, [k, d]);
        const e = tf.tensor2d(random(v * d, rng), [v, d]);
        const dy = tf.tensor2d(dyv, [k, v]);
        const [, dE] = tf.grads((xi: tf.Tensor, ei: tf.Tensor) =>
          tf.sum(tf.mul(linearTransposed(xi as tf.Tensor2D, ei as tf.Tensor2D), dy)),
        )([x, e]);
        expect(dE!.shape).toEqual([v, d]);
        const plain = tf.transpose(tf.matMul(tf.transpose(x), dy));
        expectPlainProduct(
          dE!.dataSync() as Float32Array,
          plain.dataSync() as Float32Array,
          float64(dyv, xv, k, v, d).scale,
        );
      });
    });
  },
);
