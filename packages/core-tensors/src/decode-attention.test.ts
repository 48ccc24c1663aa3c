import { describe, expect, it } from 'vitest';
import { DecodeAttention } from './decode-attention.js';
import { simdLoopsModuleBytes } from './wasm-simd.js';
import { ropeTables } from './layers.js';
import { Rng } from '@codereasoner/common';

function random(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/**
 * Float64 reference written from the definition: RoPE (rotate half) on q and the new k, softmax of
 * scaled q·k over visible keys, weighted sum of v.
 */
function reference(
  shape: { batch: number; heads: number; kvHeads: number; headDim: number },
  past: { k: Float32Array; v: Float32Array; time: number },
  qkv: Float32Array,
  positions: Int32Array,
  cos: Float32Array,
  sin: Float32Array,
  mask: Float32Array,
  scale: number,
): Float64Array {
  const { batch, heads, kvHeads, headDim: hd } = shape;
  const width = (heads + 2 * kvHeads) * hd;
  const keys = past.time + 1;
  const half = hd / 2;
  const rope = (x: ArrayLike<number>, p: number): number[] =>
    Array.from({ length: hd }, (_, i) =>
      i < half
        ? x[i]! * cos[p * hd + i]! - x[i + half]! * sin[p * hd + i]!
        : x[i]! * cos[p * hd + i]! + x[i - half]! * sin[p * hd + i]!,
    );
  const out = new Float64Array(batch * heads * hd);
  for (let b = 0; b < batch; b++) {
    const row = qkv.subarray(b * width, (b + 1) * width);
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / (heads / kvHeads));
      const q = rope(row.subarray(h * hd, (h + 1) * hd), positions[b]!);
      const keyAt = (s: number): ArrayLike<number> =>
        s < past.time
          ? past.k.subarray(
              ((b * kvHeads + g) * past.time + s) * hd,
              ((b * kvHeads + g) * past.time + s + 1) * hd,
            )
          : rope(row.subarray((heads + g) * hd, (heads + g + 1) * hd), positions[b]!);
      const valueAt = (s: number): ArrayLike<number> =>
        s < past.time
          ? past.v.subarray(
              ((b * kvHeads + g) * past.time + s) * hd,
              ((b * kvHeads + g) * past.time + s + 1) * hd,
            )
          : row.subarray((heads + kvHeads + g) * hd, (heads + kvHeads + g + 1) * hd);
      const scores: number[] = [];
      for (let s = 0; s < keys; s++) {
        const k = keyAt(s);
        scores.push(
          mask[b * keys + s]! > 0 ? q.reduce((a, x, i) => a + x * k[i]!, 0) * scale : -Infinity,
        );
      }
      const max = Math.max(...scores);
      const weights = scores.map((x) => Math.exp(x - max));
      const total = weights.reduce((a, x) => a + x, 0);
      for (let s = 0; s < keys; s++) {
        const v = valueAt(s);
        for (let i = 0; i < hd; i++)
          out[(b * heads + h) * hd + i]! += (weights[s]! / total) * v[i]!;
      }
    }
  }
  return out;
}

describe('DecodeAttention', () => {
  it('the assembled module is valid WebAssembly with SIMD here (Node 20+)', () => {
    const api = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } })
      .WebAssembly;
    expect(api.validate(simdLoopsModuleBytes())).toBe(true);
  });

  it.each([
    { name: 'grouped-query', batch: 3, heads: 4, kvHeads: 2, headDim: 8 },
    { name: 'multi-head', batch: 2, heads: 3, kvHeads: 3, headDim: 12 },
  ])(
    'SIMD and JS loops equal a float64 reference within 1e-5 over several steps ($name)',
    ({ batch, heads, kvHeads, headDim }) => {
      const rng = new Rng(7);
      const time = 5;
      const steps = 4;
      const capacity = time + steps;
      const shape = { layers: 2, batch, heads, kvHeads, headDim, capacity };
      const simd = new DecodeAttention(shape);
      const js = new DecodeAttention(shape, { simd: false });
      expect(simd.simd).toBe(true);
      expect(js.simd).toBe(false);
      const positionsMax = 32;
      // real tables: the rotate-half layout repeats each frequency in both halves
      const { cos, sin } = ropeTables(positionsMax, headDim, 10000);
      let k = random(batch * kvHeads * time * headDim, rng);
      let v = random(batch * kvHeads * time * headDim, rng);
      for (const a of [simd, js]) a.fill(1, k, v, time);
      const width = (heads + 2 * kvHeads) * headDim;
      for (let step = 0; step < steps; step++) {
        const keys = time + step + 1;
        const qkv = random(batch * width, rng);
        const positions = Int32Array.from({ length: batch }, (_, b) => keys - 1 + b);
        // row 0 hides its first key (left padding); the new key is always visible
        const mask = Float32Array.from({ length: batch * keys }, (_, i) => (i === 0 ? 0 : 1));
        const expected = reference(
          shape,
          { k, v, time: keys - 1 },
          qkv,
          positions,
          cos,
          sin,
          mask,
          0.3,
        );
        for (const a of [simd, js]) {
          const got = a.step(1, qkv, positions, cos, sin, mask, keys - 1, 0.3);
          let worst = 0;
          got.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - expected[i]!))));
          if (worst > 1e-5)
            console.log('step', step, a.simd, worst, got.slice(0, 4), expected.slice(0, 4));
          expect(worst).toBeLessThan(1e-5);
        }
        // the reference's cache grows by the rotated k and raw v of this step, as the module's
        const grow = (old: Float32Array, at: (b: number, g: number) => number[]): Float32Array => {
          const next = new Float32Array(batch * kvHeads * keys * headDim);
          for (let r = 0; r < batch * kvHeads; r++) {
            next.set(
              old.subarray(r * (keys - 1) * headDim, (r + 1) * (keys - 1) * headDim),
              r * keys * headDim,
            );
            next.set(at(Math.floor(r / kvHeads), r % kvHeads), (r * keys + keys - 1) * headDim);
          }
          return next;
        };
        const half = headDim / 2;
        k = grow(k, (b, g) => {
          const x = qkv.subarray(
            b * width + (heads + g) * headDim,
            b * width + (heads + g + 1) * headDim,
          );
          const p = positions[b]! * headDim;
          return Array.from({ length: headDim }, (_, i) =>
            i < half
              ? x[i]! * cos[p + i]! - x[i + half]! * sin[p + i]!
              : x[i]! * cos[p + i]! + x[i - half]! * sin[p + i]!,
          );
        });
        v = grow(v, (b, g) =>
          Array.from(
            qkv.subarray(
              b * width + (heads + kvHeads + g) * headDim,
              b * width + (heads + kvHeads + g + 1) * headDim,
            ),
          ),
        );
      }
    },
  );

  it('rejects a slot beyond the capacity and positions outside the rotary table', () => {
    const a = new DecodeAttention({
      layers: 1,
      batch: 1,
      heads: 1,
      kvHeads: 1,
      headDim: 4,
      capacity: 2,
    });
    const qkv = new Float32Array(12);
    const table = new Float32Array(8);
    expect(() => a.step(0, qkv, Int32Array.of(0), table, table, new Float32Array(3), 2, 1)).toThrow(
      /capacity/,
    );
    expect(() => a.step(0, qkv, Int32Array.of(5), table, table, new Float32Array(2), 1, 1)).toThrow(
      /rotary table/,
    );
    expect(
      () =>
        new DecodeAttention({ layers: 1, batch: 1, heads: 1, kvHeads: 1, headDim: 6, capacity: 2 }),
    ).toThrow(/multiple of 4/);
    const shape = { layers: 24, batch: 16, heads: 14, kvHeads: 2, headDim: 64, capacity: 1024 };
    expect(DecodeAttention.supports(shape)).toBe(true);
    expect(DecodeAttention.supports({ ...shape, headDim: 6 })).toBe(false);
    expect(DecodeAttention.supports({ ...shape, capacity: 32768 })).toBe(false);
  });
});
