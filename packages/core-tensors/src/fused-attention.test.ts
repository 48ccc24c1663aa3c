import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Rng } from '@codereasoner/common';
import { blockModuleBytes, FusedAttention, prepareBias, visibleSpans } from './fused-attention.js';
import { attentionBias, groupedQueryAttention } from './layers.js';
import { CausalLM } from './model.js';
import { computeGradients } from './optimizer.js';
import { DEFAULT_MODEL_CONFIG } from './config.js';
import { describeOnBackends, jsBackends } from './test-utils.js';

/*
 * The fused training attention against the definition, in float64: P = softmax(scale·q·kᵀ + bias)
 * per row, out = P·v; for an output gradient dO: dV = Pᵀ·dO, dP = dO·vᵀ,
 * dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = scale·dS·k, dK = scale·dSᵀ·q (grouped heads summed).
 */

interface Case {
  name: string;
  batch: number;
  heads: number;
  kvHeads: number;
  time: number;
  headDim: number;
  /** Key mask per row (0 padding, else a segment number), length `time`. */
  mask: number[][];
}

function random(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

function reference(
  c: Case,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  bias: Float32Array,
  dO: Float32Array,
): { out: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { batch: B, heads: H, kvHeads: K, time: T, headDim: D } = c;
  const S = T;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(B * H * T * D);
  const dq = new Float64Array(B * H * T * D);
  const dk = new Float64Array(B * K * S * D);
  const dv = new Float64Array(B * K * S * D);
  const G = H / K;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / G);
      const qi = (t: number, d: number) => ((b * H + h) * T + t) * D + d;
      const ki = (s: number, d: number) => ((b * K + g) * S + s) * D + d;
      for (let t = 0; t < T; t++) {
        // keys with a bias of −1e9 weigh 0; a row that sees no key (a padding query before any
        // real key) weighs all keys equally, which is what float32 makes of −1e9 + a score
        const seen: boolean[] = [];
        for (let s = 0; s < S; s++) seen.push(bias[(b * T + t) * S + s]! > -1e8);
        const none = !seen.includes(true);
        const z = new Float64Array(S);
        for (let s = 0; s < S; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qi(t, d)]! * k[ki(s, d)]!;
          z[s] = none ? 0 : seen[s] ? dot * scale + bias[(b * T + t) * S + s]! : -Infinity;
        }
        const max = Math.max(...z);
        const p = z.map((x) => Math.exp(x - max));
        const total = p.reduce((a, x) => a + x, 0);
        for (let s = 0; s < S; s++) p[s] = p[s]! / total;
        const dp = new Float64Array(S);
        for (let s = 0; s < S; s++) {
          for (let d = 0; d < D; d++) {
            out[qi(t, d)] = out[qi(t, d)]! + p[s]! * v[ki(s, d)]!;
            dp[s] = dp[s]! + dO[qi(t, d)]! * v[ki(s, d)]!;
            dv[ki(s, d)] = dv[ki(s, d)]! + p[s]! * dO[qi(t, d)]!;
          }
        }
        let pdp = 0;
        for (let s = 0; s < S; s++) pdp += p[s]! * dp[s]!;
        for (let s = 0; s < S; s++) {
          const ds = p[s]! * (dp[s]! - pdp);
          for (let d = 0; d < D; d++) {
            dq[qi(t, d)] = dq[qi(t, d)]! + scale * ds * k[ki(s, d)]!;
            dk[ki(s, d)] = dk[ki(s, d)]! + scale * ds * q[qi(t, d)]!;
          }
        }
      }
    }
  return { out, dq, dk, dv };
}

/** max |a − e| / max(1, max |e|): an absolute error on the scale of the values. */
function error(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let size = 1;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    size = Math.max(size, Math.abs(expected[i]!));
  }
  return worst / size;
}

function biasOf(c: Case): Float32Array {
  const bias = attentionBias(c.mask.flat(), c.batch, c.time, c.time);
  const values = bias.dataSync() as Float32Array;
  bias.dispose();
  return values;
}

const CASES: Case[] = [
  {
    // rows: full, left-padded by 3, two packed segments then padding; T not a multiple of 4
    name: 'causal, left padding, packed segments, grouped-query (H 4, K 2), hd 16',
    batch: 3,
    heads: 4,
    kvHeads: 2,
    time: 11,
    headDim: 16,
    mask: [
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
      [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 2, 2, 2, 2, 2, 0, 0],
    ],
  },
  {
    name: 'multi-head, hd 32, 2 rows of 37',
    batch: 2,
    heads: 2,
    kvHeads: 2,
    time: 37,
    headDim: 32,
    mask: [
      Array.from({ length: 37 }, () => 1),
      Array.from({ length: 37 }, (_, i) => (i < 5 ? 0 : 1)),
    ],
  },
  {
    name: 'head dim 6 (not a multiple of 8: the JS loops), 3 query heads per kv head',
    batch: 1,
    heads: 3,
    kvHeads: 1,
    time: 9,
    headDim: 6,
    mask: [[0, 1, 1, 2, 2, 2, 3, 3, 3]],
  },
];

// float32 products and the f32x4 exp polynomial (relative error ~1e-7) against float64
const TOLERANCE = 2e-5;

describe('FusedAttention against the float64 definition', () => {
  it('the assembled block module is valid WebAssembly with SIMD here (Node 20+), for head dims 8-128', () => {
    const api = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } })
      .WebAssembly;
    for (const hd of [8, 16, 32, 64, 128]) expect(api.validate(blockModuleBytes(hd))).toBe(true);
  });

  it('visible spans: causal rows end at themselves, padding is skipped, a row that sees nothing keeps all keys', () => {
    const mask = [0, 0, 1, 1, 2];
    const bias = biasOf({
      name: '',
      batch: 1,
      heads: 1,
      kvHeads: 1,
      time: 5,
      headDim: 4,
      mask: [mask],
    });
    expect(Array.from(visibleSpans(bias, 1, 5, 5))).toEqual([0, 5, 0, 5, 2, 3, 2, 4, 4, 5]);
  });

  for (const c of CASES)
    for (const simd of [true, false])
      it(`${c.name}: values and dQ, dK, dV within ${TOLERANCE} (${simd ? 'SIMD' : 'JS'} loops)`, () => {
        const rng = new Rng(7);
        const { batch: B, heads: H, kvHeads: K, time: T, headDim: D } = c;
        const q = random(B * H * T * D, rng);
        const k = random(B * K * T * D, rng);
        const v = random(B * K * T * D, rng);
        const dO = random(B * H * T * D, rng);
        const bias = biasOf(c);
        const kernel = new FusedAttention({ simd });
        expect(kernel.simdFor(D)).toBe(simd && D % 8 === 0);
        const shape = { batch: B, heads: H, kvHeads: K, queryLength: T, keyLength: T, headDim: D };
        const prepared = prepareBias(bias, B, T, T);
        const scale = 1 / Math.sqrt(D);
        const { out, rowStats } = kernel.forward(shape, q, k, v, prepared, scale);
        const grads = kernel.backward(shape, q, k, v, prepared, scale, out, rowStats, dO);
        const expected = reference(c, q, k, v, bias, dO);
        expect(error(out, expected.out)).toBeLessThan(TOLERANCE);
        expect(error(grads.dq, expected.dq)).toBeLessThan(TOLERANCE);
        expect(error(grads.dk, expected.dk)).toBeLessThan(TOLERANCE);
        expect(error(grads.dv, expected.dv)).toBeLessThan(TOLERANCE);
      });

  it('rejects a bias prepared for another shape and mismatched heads', () => {
    const kernel = new FusedAttention();
    const prepared = prepareBias(new Float32Array(2 * 4 * 4), 2, 4, 4);
    const shape = { batch: 1, heads: 2, kvHeads: 1, queryLength: 4, keyLength: 4, headDim: 8 };
    const x = new Float32Array(2 * 4 * 8);
    expect(() => kernel.forward(shape, x, x, x, prepared, 1)).toThrow(/prepared for \[2, 4, 4\]/);
    const bad = { ...shape, batch: 2, heads: 3, kvHeads: 2 };
    expect(() => kernel.forward(bad, x, x, x, prepared, 1)).toThrow(/multiple of kvHeads/);
  });
});

describeOnBackends('fused attention through tfjs on the %s backend', await jsBackends(), () => {
  it("groupedQueryAttention 'fused' equals 'reference': values and the gradients of q, k, v", () => {
    const c = CASES[0]!;
    const rng = new Rng(3);
    const { batch: B, heads: H, kvHeads: K, time: T, headDim: D } = c;
    tf.tidy(() => {
      const q = tf.tensor4d(random(B * H * T * D, rng), [B, H, T, D]);
      const k = tf.tensor4d(random(B * K * T * D, rng), [B, K, T, D]);
      const v = tf.tensor4d(random(B * K * T * D, rng), [B, K, T, D]);
      const w = tf.tensor4d(random(B * H * T * D, rng), [B, H, T, D]);
      const bias = attentionBias(c.mask.flat(), B, T, T);
      const loss = (path: 'fused' | 'reference') => (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) =>
        tf.sum<tf.Tensor>(
          tf.mul(
            groupedQueryAttention(
              qi as tf.Tensor4D,
              ki as tf.Tensor4D,
              vi as tf.Tensor4D,
              bias,
              path,
            ),
            w,
          ),
        ) as tf.Scalar;
      const fused = groupedQueryAttention(q, k, v, bias, 'fused');
      const plain = groupedQueryAttention(q, k, v, bias, 'reference');
      expect(error(fused.dataSync(), plain.dataSync())).toBeLessThan(TOLERANCE);
      const gf = tf.grads(loss('fused'))([q, k, v]);
      const gr = tf.grads(loss('reference'))([q, k, v]);
      for (let i = 0; i < 3; i++)
        expect(error(gf[i]!.dataSync(), gr[i]!.dataSync())).toBeLessThan(TOLERANCE);
    });
  });

  it('a training step: the same loss and gradients as the reference path (packed segments, padding, grouped-query)', () => {
    const config = { ...DEFAULT_MODEL_CONFIG, numHiddenLayers: 2, maxPositionEmbeddings: 64 };
    const model = CausalLM.create(config, { seed: 5 });
    try {
      const ids = tf.tensor2d(
        [
          [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
          [0, 0, 0, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11],
          [20, 21, 22, 23, 24, 30, 31, 32, 33, 34, 35, 0, 0],
        ],
        [3, 13],
        'int32',
      );
      const mask = tf.tensor2d([
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0],
      ]);
      const step = (path: 'fused' | 'reference') => {
        model.attention = path;
        const { loss, grads } = computeGradients(model, () =>
          tf.tidy(() => tf.neg(tf.mean(model.tokenLogProbs(ids, mask).logProbs)) as tf.Scalar),
        );
        const values = Object.fromEntries(
          Object.entries(grads).map(([name, g]) => [name, g.dataSync() as Float32Array]),
        );
        tf.dispose(grads);
        return { loss, values };
      };
      const fused = step('fused');
      const plain = step('reference');
      expect(Math.abs(fused.loss - plain.loss)).toBeLessThan(1e-5);
      expect(Object.keys(fused.values).sort()).toEqual(Object.keys(plain.values).sort());
      for (const name of Object.keys(plain.values))
        expect(error(fused.values[name]!, plain.values[name]!), name).toBeLessThan(1e-5);
      tf.dispose([ids, mask]);
    } finally {
      model.dispose();
    }
  }, 60_000);

  it('clone keeps the attention path', () => {
    const model = CausalLM.create({ ...DEFAULT_MODEL_CONFIG, numHiddenLayers: 1 }, { seed: 1 });
    expect(model.attention).toBe('fused');
    model.attention = 'reference';
    const copy = model.clone();
    expect(copy.attention).toBe('reference');
    copy.dispose();
    model.dispose();
  });
});
