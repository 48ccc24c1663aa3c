import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableBackends, initBackend, type BackendName } from './backend.js';
import { applyRope, attentionBias, groupedQueryAttention, rmsNorm, ropeTables, rotateHalfMatrix } from './layers.js';
import { gradientCheck, randomTensor } from './test-utils.js';

// One conformance suite, run on every backend that initialises here (wasm and cpu on this machine).
const backends: BackendName[] = await availableBackends();

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThan(tolerance);
}

function referenceAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: number[],
  [b, h, t, hd]: number[],
  kvHeads: number,
  s: number,
): Float64Array {
  const out = new Float64Array(b * h * t * hd);
  const groups = h / kvHeads;
  for (let bi = 0; bi < b; bi++)
    for (let hi = 0; hi < h; hi++) {
      const kv = Math.floor(hi / groups);
      for (let ti = 0; ti < t; ti++) {
        const scores: number[] = [];
        for (let si = 0; si < s; si++) {
          const visible = si <= ti + (s - t) && mask[bi * s + si]! > 0;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[((bi * h + hi) * t + ti) * hd + d]! * k[((bi * kvHeads + kv) * s + si) * hd + d]!;
          scores.push(visible ? dot / Math.sqrt(hd) : -Infinity);
        }
        const max = Math.max(...scores);
        const exps = scores.map((x) => (x === -Infinity ? 0 : Math.exp(x - max)));
        const total = exps.reduce((a, c) => a + c, 0);
        for (let d = 0; d < hd; d++) {
          let acc = 0;
          for (let si = 0; si < s; si++) acc += (exps[si]! / total) * v[((bi * kvHeads + kv) * s + si) * hd + d]!;
          out[((bi * h + hi) * t + ti) * hd + d] = acc;
        }
      }
    }
  return out;
}

describe.each(backends)('layers on the %s backend', (backend) => {
  let baseline = 0;
  beforeAll(async () => {
    await initBackend({ backend });
    baseline = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('RMSNorm matches the float64 reference', () => {
    tf.tidy(() => {
      const x = randomTensor([3, 8], 1);
      const w = randomTensor([8], 2);
      const xs = x.dataSync();
      const ws = w.dataSync();
      const expected = new Float64Array(24);
      for (let r = 0; r < 3; r++) {
        let ms = 0;
        for (let c = 0; c < 8; c++) ms += xs[r * 8 + c]! ** 2 / 8;
        for (let c = 0; c < 8; c++) expected[r * 8 + c] = (xs[r * 8 + c]! / Math.sqrt(ms + 1e-5)) * ws[c]!;
      }
      close(rmsNorm(x, w as tf.Tensor1D, 1e-5).dataSync(), expected, 1e-5);
    });
  });

  it('RoPE rotates pairs (i, i + d/2) by position·θ^(-2i/d) and preserves norms', () => {
    tf.tidy(() => {
      const hd = 8;
      const { cos, sin } = ropeTables(6, hd, 10000);
      const x = randomTensor([1, 6, 2, hd], 3);
      const cosT = tf.reshape(tf.tensor2d(cos, [6, hd]), [1, 6, 1, hd]);
      const sinT = tf.reshape(tf.tensor2d(sin, [6, hd]), [1, 6, 1, hd]);
      const out = applyRope(x, cosT, sinT, rotateHalfMatrix(hd)).dataSync();
      const xs = x.dataSync();
      for (let p = 0; p < 6; p++)
        for (let head = 0; head < 2; head++)
          for (let i = 0; i < hd / 2; i++) {
            const angle = p * Math.pow(10000, (-2 * i) / hd);
            const base = (p * 2 + head) * hd;
            const a = xs[base + i]!;
            const b = xs[base + i + hd / 2]!;
            expect(out[base + i]!).toBeCloseTo(a * Math.cos(angle) - b * Math.sin(angle), 5);
            expect(out[base + i + hd / 2]!).toBeCloseTo(b * Math.cos(angle) + a * Math.sin(angle), 5);
          }
    });
  });

  it('grouped-query attention with causal + padding masks matches the float64 reference', () => {
    tf.tidy(() => {
      const [b, h, kvHeads, t, hd] = [2, 4, 2, 5, 4];
      const q = randomTensor([b, h, t, hd], 4) as tf.Tensor4D;
      const k = randomTensor([b, kvHeads, t, hd], 5) as tf.Tensor4D;
      const v = randomTensor([b, kvHeads, t, hd], 6) as tf.Tensor4D;
      const mask = [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]; // second row left-padded by two
      const out = groupedQueryAttention(q, k, v, attentionBias(mask, b, t, t));
      const expected = referenceAttention(q.dataSync() as Float32Array, k.dataSync() as Float32Array, v.dataSync() as Float32Array, mask, [b, h, t, hd], kvHeads, t);
      const actual = out.dataSync();
      // Rows of fully padded queries are meaningless; compare the rest.
      for (let bi = 0; bi < b; bi++)
        for (let hi = 0; hi < h; hi++)
          for (let ti = 0; ti < t; ti++) {
            if (mask[bi * t + ti] === 0) continue;
            for (let d = 0; d < hd; d++) {
              const i = ((bi * h + hi) * t + ti) * hd + d;
              expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(1e-5);
            }
          }
    });
  });

  it('attention with fewer queries than keys (a decoding step) sees every earlier key', () => {
    tf.tidy(() => {
      const q = randomTensor([1, 2, 1, 4], 7) as tf.Tensor4D;
      const k = randomTensor([1, 1, 6, 4], 8) as tf.Tensor4D;
      const v = randomTensor([1, 1, 6, 4], 9) as tf.Tensor4D;
      const mask = [1, 1, 1, 1, 1, 1];
      const out = groupedQueryAttention(q, k, v, attentionBias(mask, 1, 1, 6)).dataSync();
      const expected = referenceAttention(q.dataSync() as Float32Array, k.dataSync() as Float32Array, v.dataSync() as Float32Array, mask, [1, 2, 1, 4], 1, 6);
      close(out, expected, 1e-5);
    });
  });

  it('gradient of RMSNorm matches finite differences', () => {
    const x = randomTensor([4, 6], 10);
    const w = randomTensor([6], 11);
    const r = randomTensor([4, 6], 12);
    const { worst } = gradientCheck((xi, wi) => tf.sum(tf.mul(rmsNorm(xi!, wi as tf.Tensor1D, 1e-5), r)), [x, w]);
    tf.dispose([x, w, r]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('gradient of RoPE matches finite differences', () => {
    const hd = 8;
    const { cos, sin } = ropeTables(5, hd, 10000);
    const cosT = tf.tensor4d(cos, [1, 5, 1, hd]);
    const sinT = tf.tensor4d(sin, [1, 5, 1, hd]);
    const rotate = rotateHalfMatrix(hd);
    const x = randomTensor([1, 5, 2, hd], 13);
    const r = randomTensor([1, 5, 2, hd], 14);
    const { worst } = gradientCheck((xi) => tf.sum(tf.mul(applyRope(xi!, cosT, sinT, rotate), r)), [x]);
    tf.dispose([cosT, sinT, rotate, x, r]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('gradient of grouped-query attention w.r.t. q, k and v matches finite differences', () => {
    const [b, h, kvHeads, t, hd] = [2, 4, 2, 4, 4];
    const q = randomTensor([b, h, t, hd], 15);
    const k = randomTensor([b, kvHeads, t, hd], 16);
    const v = randomTensor([b, kvHeads, t, hd], 17);
    const r = randomTensor([b, h, t, hd], 18);
    const bias = attentionBias([1, 1, 1, 1, 1, 1, 1, 0], b, t, t);
    const { worst, checked } = gradientCheck(
      (qi, ki, vi) => tf.sum(tf.mul(groupedQueryAttention(qi as tf.Tensor4D, ki as tf.Tensor4D, vi as tf.Tensor4D, bias), r)),
      [q, k, v],
      { count: 10 },
    );
    tf.dispose([q, k, v, r, bias]);
    expect(checked).toBe(30);
    expect(worst).toBeLessThan(2e-2);
  });

  it('trains through an embedding lookup (gather gradient = UnsortedSegmentSum)', () => {
    const table = tf.tidy(() => tf.variable(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2])));
    const ids = tf.tensor1d([2, 0, 2], 'int32');
    const { grads, value } = tf.variableGrads(() => tf.sum(tf.gather(table, ids)), [table]);
    expect(Array.from(grads[table.name]!.dataSync())).toEqual([1, 1, 0, 0, 2, 2]);
    expect(value.dataSync()[0]).toBe(5 + 6 + 1 + 2 + 5 + 6);
    tf.dispose([table, ids, value, ...Object.values(grads)]);
  });
});
