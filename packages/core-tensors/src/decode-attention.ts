/**
 * Grouped-query attention for one new token per row against a KV cache that lives in its own
 * WebAssembly memory, with the two inner loops (q·k over the cached keys, Σ p·v over the cached
 * values) in WASM SIMD (f32x4). Profiling generation showed these loops at ~90% of a decode
 * step at GRPO/eval context lengths, running as scalar code (JS, or tfjs-wasm's naive batched
 * matmul, which handles every batched or transposed product). The loops are assembled at run time
 * (wasm-simd.ts), so nothing compiled is shipped and installs need only Node; where WASM SIMD is
 * missing the same loops run in JS.
 */

import { moveRows } from './row-compaction.js';
import { simdLoops, wasmApi, type SimdLoops, type WasmMemory } from './wasm-simd.js';

export interface DecodeAttentionShape {
  layers: number;
  batch: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Cache slots per row (prompt + new tokens). */
  capacity: number;
}

/**
 * The KV cache of one `generate` batch and its attention. Memory layout (float32): per layer K
 * then V, each [batch, kvHeads, capacity, headDim]; then scratch for q, scores/weights, acc.
 */
export class DecodeAttention {
  readonly shape: DecodeAttentionShape;
  readonly simd: boolean;
  private readonly memory: WasmMemory;
  private readonly loops: SimdLoops;
  private readonly cacheFloats: number;
  private readonly scratch: number;
  /** Rows `step` computes: `shape.batch`, fewer after `compact`. */
  private rows: number;

  /** Bytes of memory a cache of this shape takes (K and V of every layer, float32). */
  static bytesFor(shape: DecodeAttentionShape): number {
    const { layers, batch, kvHeads, headDim, capacity } = shape;
    return (
      2 * layers * batch * kvHeads * capacity * headDim * 4 + (2 * headDim + capacity + 16) * 4
    );
  }

  /** Whether this class serves the shape: head dims a multiple of 4 (f32x4), the cache under 2 GiB of memory. */
  static supports(shape: DecodeAttentionShape): boolean {
    return shape.headDim % 4 === 0 && DecodeAttention.bytesFor(shape) < 2 ** 31;
  }

  constructor(shape: DecodeAttentionShape, options: { simd?: boolean } = {}) {
    const { layers, batch, kvHeads, headDim, capacity } = shape;
    if (headDim % 4 !== 0) throw new RangeError(`headDim ${headDim} is not a multiple of 4`);
    this.shape = shape;
    this.rows = batch;
    this.cacheFloats = batch * kvHeads * capacity * headDim;
    // scratch: q (headDim) + weights (capacity) + acc (headDim), 16-byte aligned
    this.scratch = 2 * layers * this.cacheFloats * 4;
    const bytes = DecodeAttention.bytesFor(shape);
    this.memory = new wasmApi.Memory({ initial: Math.ceil(bytes / 65536) });
    const { loops, simd } = simdLoops(this.memory, options.simd !== false);
    this.loops = loops;
    this.simd = simd;
  }

  private offset(layer: number, which: 0 | 1): number {
    return (2 * layer + which) * this.cacheFloats;
  }

  /** Copies a prefill's k and v [batch, kvHeads, T, headDim] into slots 0..T-1 of `layer`. */
  fill(layer: number, k: Float32Array, v: Float32Array, time: number): void {
    const { batch, kvHeads, capacity, headDim } = this.shape;
    const f = new Float32Array(this.memory.buffer);
    for (const [which, values] of [
      [0, k],
      [1, v],
    ] as const) {
      const base = this.offset(layer, which);
      for (let r = 0; r < batch * kvHeads; r++)
        f.set(
          values.subarray(r * time * headDim, (r + 1) * time * headDim),
          base + r * capacity * headDim,
        );
    }
  }

  /**
   * Keeps `keep.length` rows for the following steps: new row j is the current row keep[j],
   * moved in place, so keep[j] must be j (the row stays) or a row at or past keep.length (one
   * copy of its keys and values per layer). Generation drops finished rows this way.
   */
  compact(keep: readonly number[]): void {
    const { layers, kvHeads, capacity, headDim } = this.shape;
    const array = new Float32Array(this.memory.buffer);
    const caches = [];
    for (let layer = 0; layer < layers; layer++)
      for (const which of [0, 1] as const) caches.push({ array, base: this.offset(layer, which) });
    moveRows(caches, keep, this.rows, kvHeads * capacity * headDim);
    this.rows = keep.length;
  }

  /**
   * One token per row: qkv [batch, (heads + 2·kvHeads)·headDim] (fused projection), RoPE at
   * positions[b] (cos/sin tables [P, headDim], rotate-half layout), the new k/v written to slot
   * `slot`, attention over slots 0..slot where keyMask [batch, slot + 1] > 0. Returns
   * [batch, heads·headDim].
   */
  step(
    layer: number,
    qkv: Float32Array,
    positions: Int32Array,
    cos: Float32Array,
    sin: Float32Array,
    keyMask: Float32Array,
    slot: number,
    scale: number,
  ): Float32Array {
    const { heads, kvHeads, headDim: hd, capacity } = this.shape;
    const batch = this.rows;
    if (slot >= capacity) throw new RangeError(`KV cache slot ${slot} ≥ capacity ${capacity}`);
    const width = (heads + 2 * kvHeads) * hd;
    if (qkv.length !== batch * width)
      throw new RangeError(`qkv has ${qkv.length} values, expected ${batch}·${width}`);
    const keys = slot + 1;
    const maxPositions = cos.length / hd;
    const f = new Float32Array(this.memory.buffer);
    const kBase = this.offset(layer, 0);
    const vBase = this.offset(layer, 1);
    const qAt = this.scratch / 4;
    const wAt = qAt + hd;
    const accAt = wAt + capacity + ((4 - ((wAt + capacity) % 4)) % 4);
    const half = hd / 2;
    const groups = heads / kvHeads;
    const out = new Float32Array(batch * heads * hd);
    for (let b = 0; b < batch; b++) {
      const p = positions[b]!;
      if (p < 0 || p >= maxPositions)
        throw new RangeError(`position ${p} is outside the rotary table [0, ${maxPositions})`);
      const t = p * hd;
      const row = b * width;
      for (let g = 0; g < kvHeads; g++) {
        const at = ((b * kvHeads + g) * capacity + slot) * hd;
        const k0 = row + (heads + g) * hd;
        for (let i = 0; i < half; i++) {
          const x1 = qkv[k0 + i]!;
          const x2 = qkv[k0 + i + half]!;
          f[kBase + at + i] = x1 * cos[t + i]! - x2 * sin[t + i]!;
          f[kBase + at + i + half] = x2 * cos[t + i]! + x1 * sin[t + i]!;
        }
        f.set(
          qkv.subarray(row + (heads + kvHeads + g) * hd, row + (heads + kvHeads + g + 1) * hd),
          vBase + at,
        );
      }
      const maskRow = b * keys;
      for (let h = 0; h < heads; h++) {
        const q0 = row + h * hd;
        for (let i = 0; i < half; i++) {
          const x1 = qkv[q0 + i]!;
          const x2 = qkv[q0 + i + half]!;
          f[qAt + i] = x1 * cos[t + i]! - x2 * sin[t + i]!;
          f[qAt + i + half] = x2 * cos[t + i]! + x1 * sin[t + i]!;
        }
        const slice = (b * kvHeads + Math.floor(h / groups)) * capacity * hd;
        this.loops.dots(qAt * 4, (kBase + slice) * 4, wAt * 4, keys, hd);
        // softmax over the visible keys, in place: scores → weights (masked keys weigh 0)
        let max = -Infinity;
        for (let s = 0; s < keys; s++) {
          if (keyMask[maskRow + s]! > 0) {
            const score = f[wAt + s]! * scale;
            f[wAt + s] = score;
            if (score > max) max = score;
          }
        }
        let sum = 0;
        for (let s = 0; s < keys; s++) {
          const w = keyMask[maskRow + s]! > 0 ? Math.exp(f[wAt + s]! - max) : 0;
          f[wAt + s] = w;
          sum += w;
        }
        f.fill(0, accAt, accAt + hd);
        this.loops.axpy(wAt * 4, (vBase + slice) * 4, accAt * 4, keys, hd);
        // A row with no visible key (cannot happen in generate: its own token is visible) gives 0.
        const inverse = sum > 0 ? 1 / sum : 0;
        const o = (b * heads + h) * hd;
        for (let i = 0; i < hd; i++) out[o + i] = f[accAt + i]! * inverse;
      }
    }
    return out;
  }
}
