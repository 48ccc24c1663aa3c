/**
 * Grouped-query attention for one new token per row against a KV cache that lives in its own
 * WebAssembly memory, with the two inner loops (q·k over the cached keys, Σ p·v over the cached
 * values) in WASM SIMD (f32x4). Profiling generation showed these loops at ~90% of a decode
 * step at GRPO/eval context lengths, running as scalar code (JS, or tfjs-wasm's naive batched
 * matmul, which handles every batched or transposed product). The module is assembled here from
 * its instructions (below), so nothing compiled is shipped and installs need only Node; where
 * WASM SIMD is missing the same loops run in JS.
 */

/** The parts of the WebAssembly JS API used here (the compiler options give no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

// ---- a minimal WebAssembly encoder for the two functions ------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, depth],
  brIf: (depth: number) => [0x0d, depth],
  get: (i: number) => [0x20, i],
  set: (i: number) => [0x21, i],
  tee: (i: number) => [0x22, i],
  i32: (n: number) => [0x41, ...sleb(n)],
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  f32Load: [0x2a, 2, 0],
  f32Store: [0x38, 2, 0],
  f32Add: [0x92],
  v128Load: [0xfd, 0x00, 4, 0],
  v128Store: [0xfd, 0x0b, 4, 0],
  v128Zero: [0xfd, 0x0c, ...new Array<number>(16).fill(0)],
  f32x4Splat: [0xfd, 0x13],
  f32x4Lane: (lane: number) => [0xfd, 0x1f, lane],
  f32x4Add: [0xfd, 0xe4, 0x01],
  f32x4Mul: [0xfd, 0xe6, 0x01],
};

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/**
 * `dots(q, k, out, n, hd)`: out[s] = Σ_i q[i]·k[s·hd + i] for s < n (byte addresses; hd a multiple
 * of 4). Locals: 0 q, 1 k, 2 out, 3 n, 4 hd, 5 s, 6 i, 7 acc (v128), 8 kRow.
 */
function dotsBody(): number[] {
  const [q, k, out, n, hd, s, i, acc, row] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const code = [
    ...op.i32(0),
    ...op.set(s),
    ...op.get(k),
    ...op.set(row),
    ...op.block,
    ...op.loop,
    ...op.get(s),
    ...op.get(n),
    ...op.i32GeU,
    ...op.brIf(1),
    ...op.v128Zero,
    ...op.set(acc),
    ...op.i32(0),
    ...op.set(i),
    ...op.block,
    ...op.loop,
    ...op.get(i),
    ...op.get(hd),
    ...op.i32GeU,
    ...op.brIf(1),
    ...op.get(acc),
    ...op.get(q),
    ...op.get(i),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.v128Load,
    ...op.get(row),
    ...op.get(i),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.v128Load,
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...op.set(acc),
    ...op.get(i),
    ...op.i32(4),
    ...op.i32Add,
    ...op.set(i),
    ...op.br(0),
    ...op.end,
    ...op.end,
    // out[s] = (acc0 + acc1) + (acc2 + acc3)
    ...op.get(out),
    ...op.get(s),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.get(acc),
    ...op.f32x4Lane(0),
    ...op.get(acc),
    ...op.f32x4Lane(1),
    ...op.f32Add,
    ...op.get(acc),
    ...op.f32x4Lane(2),
    ...op.get(acc),
    ...op.f32x4Lane(3),
    ...op.f32Add,
    ...op.f32Add,
    ...op.f32Store,
    ...op.get(row),
    ...op.get(hd),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(row),
    ...op.get(s),
    ...op.i32(1),
    ...op.i32Add,
    ...op.set(s),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.end,
  ];
  // locals after the 5 parameters: s, i (i32), acc (v128), row (i32)
  return [
    ...vector([
      [2, I32],
      [1, V128],
      [1, I32],
    ]),
    ...code,
  ];
}

/**
 * `axpy(w, v, acc, n, hd)`: acc[i] += Σ_s w[s]·v[s·hd + i] for i < hd (acc not cleared here).
 * Locals: 0 w, 1 v, 2 acc, 3 n, 4 hd, 5 s, 6 i, 7 ws (v128), 8 vRow, 9 at.
 */
function axpyBody(): number[] {
  const [w, v, accPtr, n, hd, s, i, ws, row, at] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const code = [
    ...op.i32(0),
    ...op.set(s),
    ...op.get(v),
    ...op.set(row),
    ...op.block,
    ...op.loop,
    ...op.get(s),
    ...op.get(n),
    ...op.i32GeU,
    ...op.brIf(1),
    ...op.get(w),
    ...op.get(s),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.f32Load,
    ...op.f32x4Splat,
    ...op.set(ws),
    ...op.i32(0),
    ...op.set(i),
    ...op.block,
    ...op.loop,
    ...op.get(i),
    ...op.get(hd),
    ...op.i32GeU,
    ...op.brIf(1),
    ...op.get(accPtr),
    ...op.get(i),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.tee(at),
    ...op.get(at),
    ...op.v128Load,
    ...op.get(ws),
    ...op.get(row),
    ...op.get(i),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.v128Load,
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...op.v128Store,
    ...op.get(i),
    ...op.i32(4),
    ...op.i32Add,
    ...op.set(i),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.get(row),
    ...op.get(hd),
    ...op.i32(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(row),
    ...op.get(s),
    ...op.i32(1),
    ...op.i32Add,
    ...op.set(s),
    ...op.br(0),
    ...op.end,
    ...op.end,
    ...op.end,
  ];
  return [
    ...vector([
      [2, I32],
      [1, V128],
      [2, I32],
    ]),
    ...code,
  ];
}

/** The module: imports memory `env.memory`, exports `dots` and `axpy`. */
export function attentionModuleBytes(): Uint8Array {
  const params5 = [0x60, ...vector([[I32], [I32], [I32], [I32], [I32]]), 0x00];
  const name = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
  const body = (b: number[]) => [...uleb(b.length), ...b];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector([params5])),
    // import env.memory (min 1 page)
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vector([[0], [0]])),
    ...section(
      7,
      vector([
        [...name('dots'), 0x00, 0],
        [...name('axpy'), 0x00, 1],
      ]),
    ),
    ...section(10, vector([body(dotsBody()), body(axpyBody())])),
  ]);
}

let compiled: object | null | undefined;

/** The compiled module, or null where this WebAssembly lacks SIMD (then the JS loops run). */
function simdModule(): object | null {
  if (compiled === undefined) {
    const bytes = attentionModuleBytes();
    compiled = wasmApi.validate(bytes) ? new wasmApi.Module(bytes) : null;
  }
  return compiled;
}

interface Loops {
  dots(q: number, k: number, out: number, n: number, hd: number): void;
  axpy(w: number, v: number, acc: number, n: number, hd: number): void;
}

/** The same loops in JS (float32 stores, float64 sums), used without WASM SIMD and in tests. */
function jsLoops(memory: WasmMemory): Loops {
  const view = () => new Float32Array(memory.buffer);
  return {
    dots(q, k, out, n, hd) {
      const f = view();
      const q0 = q >> 2;
      for (let s = 0; s < n; s++) {
        const k0 = (k >> 2) + s * hd;
        let dot = 0;
        for (let i = 0; i < hd; i++) dot += f[q0 + i]! * f[k0 + i]!;
        f[(out >> 2) + s] = dot;
      }
    },
    axpy(w, v, acc, n, hd) {
      const f = view();
      for (let s = 0; s < n; s++) {
        const ws = f[(w >> 2) + s]!;
        const v0 = (v >> 2) + s * hd;
        for (let i = 0; i < hd; i++) f[(acc >> 2) + i] = f[(acc >> 2) + i]! + ws * f[v0 + i]!;
      }
    },
  };
}

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
  private readonly loops: Loops;
  private readonly cacheFloats: number;
  private readonly scratch: number;

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
    this.cacheFloats = batch * kvHeads * capacity * headDim;
    // scratch: q (headDim) + weights (capacity) + acc (headDim), 16-byte aligned
    this.scratch = 2 * layers * this.cacheFloats * 4;
    const bytes = DecodeAttention.bytesFor(shape);
    this.memory = new wasmApi.Memory({ initial: Math.ceil(bytes / 65536) });
    const module = options.simd === false ? null : simdModule();
    this.simd = module !== null;
    this.loops =
      module !== null
        ? (new wasmApi.Instance(module, { env: { memory: this.memory } })
            .exports as unknown as Loops)
        : jsLoops(this.memory);
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
    const { batch, heads, kvHeads, headDim: hd, capacity } = this.shape;
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
