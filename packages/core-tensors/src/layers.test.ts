import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { availableBackends, type BackendName } from './backend.js';
import {
  batchedMatMul,
  embeddingLookup,
  linear,
  linearConstant,
  linearTransposed,
  pickedLogSoftmax,
  slicedAttention,
  transposeLast2,
} from './fast-ops.js';
import {
  applyRope,
  applyRopeAt,
  attentionBias,
  groupedQueryAttention,
  rmsNorm,
  ropeTables,
  rotateHalfMatrix,
} from './layers.js';
import { describeOnBackends, gradientCheck, randomTensor } from './test-utils.js';

// One conformance suite, run on every backend that initialises here (wasm and cpu on this machine).
const backends: BackendName[] = await availableBackends();

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++)
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThan(tolerance);
}

function referenceAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: number[],
  [b, h, t, hd]: [number, number, number, number],
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
          for (let d = 0; d < hd; d++)
            dot +=
              q[((bi * h + hi) * t + ti) * hd + d]! * k[((bi * kvHeads + kv) * s + si) * hd + d]!;
          scores.push(visible ? dot / Math.sqrt(hd) : -Infinity);
        }
        const max = Math.max(...scores);
        const exps = scores.map((x) => (x === -Infinity ? 0 : Math.exp(x - max)));
        const total = exps.reduce((a, c) => a + c, 0);
        for (let d = 0; d < hd; d++) {
          let acc = 0;
          for (let si = 0; si < s; si++)
            acc += (exps[si]! / total) * v[((bi * kvHeads + kv) * s + si) * hd + d]!;
          out[((bi * h + hi) * t + ti) * hd + d] = acc;
        }
      }
    }
  return out;
}

describeOnBackends('layers on the %s backend', backends, () => {
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
        for (let c = 0; c < 8; c++)
          expected[r * 8 + c] = (xs[r * 8 + c]! / Math.sqrt(ms + 1e-5)) * ws[c]!;
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
            expect(out[base + i + hd / 2]!).toBeCloseTo(
              b * Math.cos(angle) + a * Math.sin(angle),
              5,
            );
          }
    });
  });

  // t = 5 takes the batched path, t = 9 (groups·t ≥ 16) the sliced XNNPACK path with its custom gradient.
  it.each([5, 9])(
    'grouped-query attention with causal + padding masks matches the float64 reference (t = %i)',
    (t) => {
      tf.tidy(() => {
        const [b, h, kvHeads, hd] = [2, 4, 2, 4];
        const q = randomTensor([b, h, t, hd], 4) as tf.Tensor4D;
        const k = randomTensor([b, kvHeads, t, hd], 5) as tf.Tensor4D;
        const v = randomTensor([b, kvHeads, t, hd], 6) as tf.Tensor4D;
        const mask = [...new Array<number>(t).fill(1), 0, 0, ...new Array<number>(t - 2).fill(1)]; // second row left-padded by two
        const out = groupedQueryAttention(q, k, v, attentionBias(mask, b, t, t));
        const expected = referenceAttention(
          q.dataSync() as Float32Array,
          k.dataSync() as Float32Array,
          v.dataSync() as Float32Array,
          mask,
          [b, h, t, hd],
          kvHeads,
          t,
        );
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
    },
  );

  it('attention with fewer queries than keys (a decoding step) sees every earlier key', () => {
    tf.tidy(() => {
      const q = randomTensor([1, 2, 1, 4], 7) as tf.Tensor4D;
      const k = randomTensor([1, 1, 6, 4], 8) as tf.Tensor4D;
      const v = randomTensor([1, 1, 6, 4], 9) as tf.Tensor4D;
      const mask = [1, 1, 1, 1, 1, 1];
      const out = groupedQueryAttention(q, k, v, attentionBias(mask, 1, 1, 6)).dataSync();
      const expected = referenceAttention(
        q.dataSync() as Float32Array,
        k.dataSync() as Float32Array,
        v.dataSync() as Float32Array,
        mask,
        [1, 2, 1, 4],
        1,
        6,
      );
      close(out, expected, 1e-5);
    });
  });

  it('gradient of RMSNorm matches finite differences', () => {
    const x = randomTensor([4, 6], 10);
    const w = randomTensor([6], 11);
    const r = randomTensor([4, 6], 12);
    const { worst } = gradientCheck(
      (xi, wi) => tf.sum(tf.mul(rmsNorm(xi!, wi as tf.Tensor1D, 1e-5), r)),
      [x, w],
    );
    tf.dispose([x, w, r]);
    expect(worst).toBeLessThan(2e-2);
  });

  it('RoPE at explicit positions (the fused kernel) equals gathering the tables, and its gradient checks', () => {
    const hd = 8;
    const { cos, sin } = ropeTables(10, hd, 10000);
    const cosTable = tf.tensor2d(cos, [10, hd]);
    const sinTable = tf.tensor2d(sin, [10, hd]);
    const rotate = rotateHalfMatrix(hd);
    const positions = tf.tensor1d([0, 3, 9, 1, 1, 4], 'int32');
    const x = randomTensor([2, 3, 2, hd], 33) as tf.Tensor4D;
    const r = randomTensor([2, 3, 2, hd], 34);
    tf.tidy(() => {
      const expected = applyRope(
        x,
        tf.reshape(tf.gather(cosTable, positions), [2, 3, 1, hd]),
        tf.reshape(tf.gather(sinTable, positions), [2, 3, 1, hd]),
        rotate,
      );
      close(
        applyRopeAt(x, positions, cosTable, sinTable, rotate).dataSync(),
        expected.dataSync(),
        1e-6,
      );
    });
    const { worst } = gradientCheck(
      (xi) =>
        tf.sum(tf.mul(applyRopeAt(xi as tf.Tensor4D, positions, cosTable, sinTable, rotate), r)),
      [x],
    );
    tf.dispose([cosTable, sinTable, rotate, positions, x, r]);
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
    const { worst } = gradientCheck(
      (xi) => tf.sum(tf.mul(applyRope(xi!, cosT, sinT, rotate), r)),
      [x],
    );
    tf.dispose([cosT, sinT, rotate, x, r]);
    expect(worst).toBeLessThan(2e-2);
  });

  it.each([4, 9])(
    'gradient of grouped-query attention w.r.t. q, k and v matches finite differences (t = %i)',
    (t) => {
      const [b, h, kvHeads, hd] = [2, 4, 2, 4];
      const q = randomTensor([b, h, t, hd], 15);
      const k = randomTensor([b, kvHeads, t, hd], 16);
      const v = randomTensor([b, kvHeads, t, hd], 17);
      const r = randomTensor([b, h, t, hd], 18);
      const bias = attentionBias([...new Array<number>(2 * t - 1).fill(1), 0], b, t, t);
      const { worst, checked } = gradientCheck(
        (qi, ki, vi) =>
          tf.sum(
            tf.mul(
              groupedQueryAttention(qi as tf.Tensor4D, ki as tf.Tensor4D, vi as tf.Tensor4D, bias),
              r,
            ),
          ),
        [q, k, v],
        { count: 10 },
      );
      tf.dispose([q, k, v, r, bias]);
      expect(checked).toBe(30);
      expect(worst).toBeLessThan(2e-2);
    },
  );

  it('transposes the last two axes across block boundaries', () => {
    tf.tidy(() => {
      const x = randomTensor([3, 33, 65], 20);
      expect(Array.from(transposeLast2(x).dataSync())).toEqual(
        Array.from(tf.transpose(x, [0, 2, 1]).dataSync()),
      );
      const m = randomTensor([70, 5], 21);
      expect(Array.from(transposeLast2(m).dataSync())).toEqual(
        Array.from(tf.transpose(m).dataSync()),
      );
    });
  });

  it('batched products per slice equal tf.matMul', () => {
    tf.tidy(() => {
      const a = randomTensor([5, 17, 9], 22) as tf.Tensor3D;
      const b = randomTensor([5, 9, 13], 23) as tf.Tensor3D;
      close(batchedMatMul(a, b).dataSync(), tf.matMul(a, b).dataSync(), 1e-5);
    });
  });

  it('custom-gradient ops give the same values and gradients as plain tf autodiff', () => {
    tf.tidy(() => {
      const x = randomTensor([6, 5], 24) as tf.Tensor2D;
      const w = randomTensor([5, 7], 25) as tf.Tensor2D;
      const e = randomTensor([7, 5], 26) as tf.Tensor2D;
      const r = randomTensor([6, 7], 27);
      const ids = tf.tensor1d([3, 0, 6, 3, 2, 5], 'int32');
      const cases: [
        string,
        (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
        (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
        tf.Tensor[],
      ][] = [
        [
          'linear',
          (a, b) => linear(a as tf.Tensor2D, b as tf.Tensor2D),
          (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
          [x, w],
        ],
        [
          'linearTransposed',
          (a, b) => linearTransposed(a as tf.Tensor2D, b as tf.Tensor2D),
          (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true),
          [x, e],
        ],
        [
          'linearConstant',
          (a) => linearConstant(a as tf.Tensor2D, w),
          (a) => tf.matMul(a as tf.Tensor2D, w),
          [x],
        ],
        [
          'embeddingLookup',
          (a) => tf.matMul(embeddingLookup(a as tf.Tensor2D, ids), w),
          (a) => tf.matMul(tf.gather(a, ids) as tf.Tensor2D, w),
          [e],
        ],
        [
          'pickedLogSoftmax',
          (a, b) =>
            tf.reshape(
              pickedLogSoftmax(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), ids),
              [6, 1],
            ),
          (a, b) =>
            tf.reshape(
              tf.sum(
                tf.mul(
                  tf.logSoftmax(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)),
                  tf.oneHot(ids, 7),
                ),
                1,
              ),
              [6, 1],
            ),
          [x, w],
        ],
      ];
      for (const [name, fast, plain, inputs] of cases) {
        const loss = (f: typeof fast) => (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.mul(f(a, b), name === 'pickedLogSoftmax' ? tf.slice(r, [0, 0], [6, 1]) : r),
          ) as tf.Scalar;
        const fastGrads = tf.grads(loss(fast))(inputs);
        const plainGrads = tf.grads(loss(plain))(inputs);
        close(
          fast(inputs[0]!, inputs[1]!).dataSync(),
          plain(inputs[0]!, inputs[1]!).dataSync(),
          1e-5,
        );
        expect(fastGrads).toHaveLength(inputs.length);
        fastGrads.forEach((g, i) => close(g.dataSync(), plainGrads[i]!.dataSync(), 1e-5));
      }
    });
  });

  it('log-probs stay exact far below the smallest float32 probability', () => {
    tf.tidy(() => {
      const z = tf.tensor2d([
        [100, 0, -100],
        [3, 3, 3],
      ]);
      const lp = pickedLogSoftmax(z, tf.tensor1d([2, 1], 'int32')).dataSync();
      expect(lp[0]).toBeCloseTo(-200, 3);
      expect(lp[1]).toBeCloseTo(-Math.log(3), 6);
    });
  });

  it('sliced attention gradients equal plain autodiff of the same formula', () => {
    tf.tidy(() => {
      const [bk, r, s, hd] = [4, 6, 6, 3];
      const q = randomTensor([bk, r, hd], 28) as tf.Tensor3D;
      const k = randomTensor([bk, s, hd], 29) as tf.Tensor3D;
      const v = randomTensor([bk, s, hd], 30) as tf.Tensor3D;
      const bias = tf.mul(randomTensor([2, 1, 1, 3, s], 31), 3);
      const weights = randomTensor([bk, r, hd], 32);
      const shape = [2, 2, 2, 3, s];
      const plain = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor): tf.Tensor => {
        const scores = tf.add(
          tf.reshape(tf.matMul(qi as tf.Tensor3D, ki as tf.Tensor3D, false, true), shape),
          bias,
        );
        return tf.matMul(
          tf.reshape(tf.softmax(scores), [bk, r, s]) as tf.Tensor3D,
          vi as tf.Tensor3D,
        );
      };
      const fast = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor): tf.Tensor =>
        slicedAttention(qi as tf.Tensor3D, ki as tf.Tensor3D, vi as tf.Tensor3D, bias, shape);
      close(fast(q, k, v).dataSync(), plain(q, k, v).dataSync(), 1e-5);
      const gf = tf.grads((a, b, c) => tf.sum(tf.mul(fast(a!, b!, c!), weights)) as tf.Scalar)([
        q,
        k,
        v,
      ]);
      const gp = tf.grads((a, b, c) => tf.sum(tf.mul(plain(a!, b!, c!), weights)) as tf.Scalar)([
        q,
        k,
        v,
      ]);
      gf.forEach((g, i) => close(g.dataSync(), gp[i]!.dataSync(), 1e-5));
    });
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
