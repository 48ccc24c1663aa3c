/**
 * Aᵀ·B for A [K, M] and B [K, N] → [M, N] with K long: the weight gradients xᵀ·dy of a training
 * step, where K is the batch's tokens (8,192 at the `cr` preset's SFT shape). The training profile
 * (bench/train-products.mjs) measured these products at 10-16 GFLOP/s on wasm against 26-27 for
 * the same matrices' forward products: tfjs-wasm hands them to XNNPACK as one product with an
 * 8,192-long inner dimension, whose micro-kernels run the whole of K for every 4 × 8 output tile,
 * streaming a 4 × K strip of one operand and a packed K × 8 panel of the other (128-256 KB each)
 * out of L2/L3 instead of L1, after packing the [K, N] operand on every call.
 *
 * Here K goes in blocks of BLOCK_ROWS rows: each block of A and B is copied into this kernel's
 * own WebAssembly memory (rows padded, see paddedStride), and every 4 × 8 tile of the output (held in 8 f32x4 locals) runs over
 * the block's rows, so a tile's strips of A and B stay in L1 across the tiles. Each output
 * element is summed in float32 in the order t = 0, 1, …, K − 1 with a separate multiply and add
 * per term, which is what XNNPACK's f32 GEMM micro-kernels do on wasm (no FMA in WASM SIMD),
 * so the result is bit for bit the plain product xᵀ·dy on the wasm backend (tested).
 * The loop is assembled at run time per (M, N), the row strides then being constants
 * (wasm-simd.ts; nothing compiled is shipped).
 */

import {
  assembleModule,
  forLoop,
  I32,
  increment,
  op,
  V128,
  wasmApi,
  type WasmFunction,
  type WasmMemory,
} from './wasm-simd.js';

/** Output rows of a tile (one f32 of A splatted per row). */
const TILE_ROWS = 4;
/** Output columns of a tile (two f32x4 of B). */
const TILE_COLS = 8;
/** Rows of K per block: a tile's strips of A (4 columns) and B (8 columns) over a block touch 2 × 128 cache lines, which L1 holds. */
export const BLOCK_ROWS = 128;

/**
 * The row stride (floats) a block of `width` columns is copied with: ≡ 16 mod 32, i.e. an odd
 * number of 64-byte cache lines, so the rows of a tile's strip fall in different cache sets.
 * With the model's power-of-two widths (128 floats = 512 bytes, 2,048 = 8 KB) the 128 rows of
 * a strip would share 8 or fewer of L1's 64 sets, more lines than their ways hold.
 */
export function paddedStride(width: number): number {
  return width + ((48 - (width % 32)) % 32);
}

/**
 * `block(a, b, c, rows)`: c[i, j] += Σ_{t < rows} a[t, i]·b[t, j] for a [rows, m] and b [rows, n]
 * (row strides paddedStride(m), paddedStride(n)), c [m, n], at byte addresses, t in order. Locals: 0 a, 1 b, 2 c, 3 rows, 4 i (byte column of A),
 * 5 j (byte column of B), 6 t, 7 pa, 8 pb, 9 pc, 10 i limit, 11 j limit, 12-13 B's two vectors,
 * 14 the splat, 15-22 the tile's accumulators.
 */
function blockFunction(m: number, n: number): WasmFunction {
  const [a, b, c, rows, i, j, t, pa, pb, pc, iLimit, jLimit] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
  ];
  const vb = (h: number) => 12 + h;
  const splat = 14;
  const acc = (r: number, h: number) => 15 + 2 * r + h;
  const tileOffset = (r: number, h: number) => r * n * 4 + h * 16;
  const inner: number[] = [
    ...op.get(pb),
    ...op.v128LoadAt(0),
    ...op.set(vb(0)),
    ...op.get(pb),
    ...op.v128LoadAt(16),
    ...op.set(vb(1)),
  ];
  for (let r = 0; r < TILE_ROWS; r++) {
    inner.push(...op.get(pa), ...op.splatLoadAt(r * 4), ...op.set(splat));
    for (let h = 0; h < 2; h++)
      inner.push(
        ...op.get(acc(r, h)),
        ...op.get(splat),
        ...op.get(vb(h)),
        ...op.f32x4Mul,
        ...op.f32x4Add,
        ...op.set(acc(r, h)),
      );
  }
  inner.push(...increment(pa, paddedStride(m) * 4), ...increment(pb, paddedStride(n) * 4));
  const tile: number[] = [
    // pc = c + i·n + j: row i/4 of C starts at (i/4)·n·4 bytes
    ...op.get(c),
    ...op.get(i),
    ...op.i32(n),
    ...op.i32Mul,
    ...op.i32Add,
    ...op.get(j),
    ...op.i32Add,
    ...op.set(pc),
  ];
  for (let r = 0; r < TILE_ROWS; r++)
    for (let h = 0; h < 2; h++)
      tile.push(...op.get(pc), ...op.v128LoadAt(tileOffset(r, h)), ...op.set(acc(r, h)));
  tile.push(
    ...op.get(a),
    ...op.get(i),
    ...op.i32Add,
    ...op.set(pa),
    ...op.get(b),
    ...op.get(j),
    ...op.i32Add,
    ...op.set(pb),
    ...forLoop(t, rows, 1, inner),
  );
  for (let r = 0; r < TILE_ROWS; r++)
    for (let h = 0; h < 2; h++)
      tile.push(...op.get(pc), ...op.get(acc(r, h)), ...op.v128StoreAt(tileOffset(r, h)));
  const code = [
    ...op.i32(m * 4),
    ...op.set(iLimit),
    ...op.i32(n * 4),
    ...op.set(jLimit),
    ...forLoop(i, iLimit, TILE_ROWS * 4, forLoop(j, jLimit, TILE_COLS * 4, tile)),
  ];
  return {
    name: 'block',
    params: 4,
    locals: [
      [8, I32],
      [11, V128],
    ],
    code,
  };
}

/** The module of the block loop for output [m, n]. */
export function transposedProductModuleBytes(m: number, n: number): Uint8Array {
  return assembleModule([blockFunction(m, n)]);
}

type BlockLoop = (a: number, b: number, c: number, rows: number) => void;

let simd: boolean | undefined;

/** Whether this WebAssembly has SIMD (the kernel's only implementation; without it the callers keep the plain product). */
export function transposedProductSimd(): boolean {
  simd ??= wasmApi.validate(transposedProductModuleBytes(TILE_ROWS, TILE_COLS));
  return simd;
}

/** Whether the kernel serves an output [m, n]: SIMD present, m a multiple of 4 and n of 8. */
export function transposedProductFits(m: number, n: number): boolean {
  return m > 0 && n > 0 && m % TILE_ROWS === 0 && n % TILE_COLS === 0 && transposedProductSimd();
}

/** The kernel with its scratch memory (grown as needed): C [M, N], then one block of A and of B. */
export class TransposedProduct {
  private readonly memory: WasmMemory;
  private readonly loops = new Map<string, BlockLoop>();

  constructor() {
    this.memory = new wasmApi.Memory({ initial: 1 });
  }

  private loopFor(m: number, n: number): BlockLoop {
    const key = `${m}x${n}`;
    let loop = this.loops.get(key);
    if (loop === undefined) {
      const module = new wasmApi.Module(transposedProductModuleBytes(m, n));
      const instance = new wasmApi.Instance(module, { env: { memory: this.memory } });
      loop = (instance.exports as { block: BlockLoop }).block;
      this.loops.set(key, loop);
    }
    return loop;
  }

  /**
   * out [m, n] = aᵀ·b for a [k, m] and b [k, n] (row-major), each element summed over t in order.
   * `out` may be any Float32Array of m·n values (e.g. a view of the tfjs-wasm heap).
   */
  compute(
    a: Float32Array,
    b: Float32Array,
    k: number,
    m: number,
    n: number,
    out: Float32Array,
  ): void {
    if (!transposedProductFits(m, n))
      throw new RangeError(
        `transposed product: output [${m}, ${n}] needs rows a multiple of ${TILE_ROWS}, columns of ${TILE_COLS} and WASM SIMD`,
      );
    if (a.length !== k * m || b.length !== k * n || out.length !== m * n)
      throw new RangeError(
        `transposed product: a has ${a.length} values (expected ${k}·${m}), b ${b.length} (${k}·${n}), out ${out.length} (${m}·${n})`,
      );
    const loop = this.loopFor(m, n);
    const block = Math.min(BLOCK_ROWS, k);
    const [sa, sb] = [paddedStride(m), paddedStride(n)];
    const aAt = m * n;
    const bAt = aAt + block * sa;
    const end = (bAt + block * sb) * 4;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / 65536));
    const f = new Float32Array(this.memory.buffer);
    f.fill(0, 0, m * n);
    for (let k0 = 0; k0 < k; k0 += block) {
      const rows = Math.min(block, k - k0);
      for (let t = 0; t < rows; t++) {
        f.set(a.subarray((k0 + t) * m, (k0 + t + 1) * m), aAt + t * sa);
        f.set(b.subarray((k0 + t) * n, (k0 + t + 1) * n), bAt + t * sb);
      }
      loop(aAt * 4, bAt * 4, 0, rows);
    }
    out.set(f.subarray(0, m * n));
  }
}
