/**
 * Fused grouped-query attention for training (flash-attention style, one (batch, key/value head)
 * slice at a time): the forward pass computes each query row's scores, adds the additive bias
 * (causal, padding and packed-segment masks), takes the softmax and its weighted sum of values in
 * one pass and keeps only each row's max and sum of exps; the backward pass recomputes the
 * probabilities from them and produces dQ, dK and dV. The training profile (bench/train-products.mjs) put
 * attention's per-slice [T, hd] products, their transposes and the [T, S] softmax/mask kernels
 * at over a third of a cli-default step's kernel time; here keys a row cannot see (outside the
 * span of its visible keys, e.g. the causal future) are skipped, and no [T, S] tensor is made.
 * Query rows go through in blocks of 4, so each key row loaded serves 4 rows; the three block
 * products (scores of 4 rows, their weighted sums of key/value rows, and the updates of dK/dV
 * from 4 rows) are WASM SIMD f32x4 loops unrolled over the head dim, assembled at run time per
 * head dim (wasm-simd.ts), with the same loops in JS where SIMD is missing or the head dim is not
 * a multiple of 8. The softmax runs in JS.
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

export interface FusedAttentionShape {
  batch: number;
  heads: number;
  kvHeads: number;
  /** Query positions T. */
  queryLength: number;
  /** Key positions S. */
  keyLength: number;
  headDim: number;
}

/** A bias at or below this hides its key: exp(score + bias − max) is exactly 0 in float32 there. */
const MASKED = -1e8;

/**
 * Per query row (b, t): the half-open span [lo, hi) of keys whose bias is above MASKED; keys
 * outside it weigh exactly 0 and are skipped. A row that sees no key keeps the full span, so it
 * gets the reference ops' result (a softmax over scores that all round to the same masked value).
 */
export function visibleSpans(
  bias: Float32Array,
  batch: number,
  queryLength: number,
  keyLength: number,
): Int32Array {
  const spans = new Int32Array(batch * queryLength * 2);
  for (let r = 0; r < batch * queryLength; r++) {
    const row = r * keyLength;
    let lo = 0;
    while (lo < keyLength && bias[row + lo]! <= MASKED) lo++;
    let hi = keyLength;
    while (hi > lo && bias[row + hi - 1]! <= MASKED) hi--;
    if (lo === keyLength) [lo, hi] = [0, keyLength];
    spans[2 * r] = lo;
    spans[2 * r + 1] = hi;
  }
  return spans;
}

function check(
  shape: FusedAttentionShape,
  bias: PreparedBias,
  arrays: Record<string, [Float32Array, number]>,
): void {
  const { batch, heads, kvHeads, queryLength, keyLength } = shape;
  if (!(heads > 0 && kvHeads > 0 && heads % kvHeads === 0))
    throw new RangeError(`heads ${heads} is not a positive multiple of kvHeads ${kvHeads}`);
  if (bias.batch !== batch || bias.queryLength !== queryLength || bias.keyLength !== keyLength)
    throw new RangeError(
      `the bias was prepared for [${bias.batch}, ${bias.queryLength}, ${bias.keyLength}], not [${batch}, ${queryLength}, ${keyLength}]`,
    );
  for (const [name, [array, expected]] of Object.entries(arrays))
    if (array.length !== expected)
      throw new RangeError(`${name} has ${array.length} values, expected ${expected}`);
}
/** Rows of a query block: every f32x4 holds one key's value for the block's 4 rows. */
const ROWS = 4;

/** exp's input is clamped here (e^x underflows float32 below it); results below it are set to exactly 0. */
const EXP_FLOOR = -87.3;

/**
 * The block loops, all on float32 arrays at byte addresses of one memory. "Interleaved" [n, 4]
 * arrays hold, per key s, the block's 4 rows (element 4s + r).
 * - `scores(aT, rows, out, n)`: out[4s + r] = Σ_d aT[4d + r]·rows[s·hd + d] for s < ⌈n/4⌉·4
 *   (aT: the block's 4 rows transposed [hd, 4]; rows: key or value rows [n, hd]).
 * - `softmax(x, mask, n, scale, stats)`: x ← exp(scale·x + mask − m) per row r with m its
 *   max (in place, interleaved); stats[r] = m, stats[4 + r] = Σ_s of the exps.
 * - `softmaxGrad(x, dp, mask, n, scale, stats)`: with stats[r] = the row's max m, stats[4 + r] =
 *   rowsum(dO ⊙ out) and stats[8 + r] = 1 / the row's Σ exp: x ← p = exp(scale·x + mask − m) /
 *   Σ, dp ← scale·p·(dp − stats[4 + r]). (Max and sum, not their log-sum-exp: a row that sees no
 *   key has m = −1e9, where m + log Σ is not representable in float32.)
 * - `combine(w, v, acc, n)`: acc[r·hd + i] += Σ_s w[4s + r]·v[s·hd + i] (w interleaved).
 * - `update(w, x, y, n)`: y[s·hd + i] += Σ_r w[4s + r]·x[r·hd + i] for s < n.
 */
interface BlockLoops {
  scores(aT: number, rows: number, out: number, n: number): void;
  softmax(x: number, mask: number, n: number, scale: number, stats: number): void;
  softmaxGrad(x: number, dp: number, mask: number, n: number, scale: number, stats: number): void;
  combine(w: number, v: number, acc: number, n: number): void;
  update(w: number, x: number, y: number, n: number): void;
}

/** `scores`, 4 keys per step, unrolled over d. Locals: 0 aT, 1 rows, 2 out, 3 n, 4 s, 5 a (v128), 6-9 acc. */
function scoresFunction(hd: number): WasmFunction {
  const [aT, rows, out, n, s, a] = [0, 1, 2, 3, 4, 5];
  const acc = (c: number) => 6 + c;
  const body: number[] = [];
  for (let c = 0; c < 4; c++) body.push(...op.v128Zero, ...op.set(acc(c)));
  for (let d = 0; d < hd; d++) {
    body.push(...op.get(aT), ...op.v128LoadAt(d * 16), ...op.set(a));
    for (let c = 0; c < 4; c++)
      body.push(
        ...op.get(acc(c)),
        ...op.get(a),
        ...op.get(rows),
        ...op.splatLoadAt((c * hd + d) * 4),
        ...op.f32x4Mul,
        ...op.f32x4Add,
        ...op.set(acc(c)),
      );
  }
  for (let c = 0; c < 4; c++)
    body.push(...op.get(out), ...op.get(acc(c)), ...op.v128StoreAt(c * 16));
  body.push(...increment(rows, 16 * hd), ...increment(out, 64));
  return {
    name: 'scores',
    params: 4,
    locals: [
      [1, I32],
      [5, V128],
    ],
    code: forLoop(s, n, 4, body),
  };
}

/**
 * The exp of the f32x4 in local `x` (values ≤ 0), left on the stack; locals `r` and `n` are
 * scratch. Cephes' expf: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by its degree-7 polynomial,
 * 2^n added to the exponent bits; inputs below EXP_FLOOR give exactly 0 (as float32 underflow).
 */
function exp4(x: number, r: number, n: number): number[] {
  const poly = [
    1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
    5.0000001201e-1,
  ];
  const code = [
    ...op.get(x),
    ...op.f32x4Const(EXP_FLOOR),
    ...op.f32x4Max,
    ...op.set(r),
    ...op.get(r),
    ...op.f32x4Const(Math.LOG2E),
    ...op.f32x4Mul,
    ...op.f32x4Nearest,
    ...op.set(n),
    ...op.get(r),
    ...op.get(n),
    ...op.f32x4Const(0.693359375),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...op.get(n),
    ...op.f32x4Const(-2.1219444e-4),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...op.set(r),
    // Horner: ((((p0·r + p1)·r + p2)·r + p3)·r + p4)·r + p5
    ...op.f32x4Const(poly[0]!),
  ];
  for (let i = 1; i < poly.length; i++)
    code.push(...op.get(r), ...op.f32x4Mul, ...op.f32x4Const(poly[i]!), ...op.f32x4Add);
  code.push(
    // · r² + r + 1
    ...op.get(r),
    ...op.f32x4Mul,
    ...op.get(r),
    ...op.f32x4Mul,
    ...op.get(r),
    ...op.f32x4Add,
    ...op.f32x4Const(1),
    ...op.f32x4Add,
    // · 2^n: (n + 127) << 23 as float32 bits
    ...op.get(n),
    ...op.i32x4TruncSatF32x4S,
    ...op.i32x4Const(127),
    ...op.i32x4Add,
    ...op.i32(23),
    ...op.i32x4Shl,
    ...op.f32x4Mul,
    // exactly 0 below the floor
    ...op.get(x),
    ...op.f32x4Const(EXP_FLOOR),
    ...op.f32x4Ge,
    ...op.v128And,
  );
  return code;
}

/** Pushes scale·x[s] + mask[s] (one key's f32x4 of the block's 4 rows) from the byte addresses in locals xp and mp; sc holds scale splatted. */
function biasedScore(xp: number, sc: number, mp: number): number[] {
  return [
    ...op.get(xp),
    ...op.v128LoadAt(0),
    ...op.get(sc),
    ...op.f32x4Mul,
    ...op.get(mp),
    ...op.v128LoadAt(0),
    ...op.f32x4Add,
  ];
}

/** Splats the float32 whose bits are in i32 local `bits` into v128 local `into` (wasm parameters here are all i32). */
function splatFloatBits(bits: number, into: number): number[] {
  return [...op.get(bits), ...op.i32x4Splat, ...op.set(into)];
}

/** `softmax`. Locals: 0 x, 1 mask, 2 n, 3 scale (its float32 bits), 4 stats, 5 s, 6 xp, 7 mp, 8 v, 9 m, 10 sum, 11 sc, 12 r, 13 e. */
function softmaxFunction(): WasmFunction {
  const [x, mask, n, scaleBits, stats, s, xp, mp, v, m, sum, sc, r, e] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
  ];
  const code = [
    ...splatFloatBits(scaleBits, sc),
    ...op.f32x4Const(-Infinity),
    ...op.set(m),
    ...op.get(x),
    ...op.set(xp),
    ...op.get(mask),
    ...op.set(mp),
    ...forLoop(s, n, 1, [
      ...op.get(xp),
      ...biasedScore(xp, sc, mp),
      ...op.tee(v),
      ...op.v128StoreAt(0),
      ...op.get(m),
      ...op.get(v),
      ...op.f32x4Max,
      ...op.set(m),
      ...increment(xp, 16),
      ...increment(mp, 16),
    ]),
    ...op.v128Zero,
    ...op.set(sum),
    ...op.get(x),
    ...op.set(xp),
    ...forLoop(s, n, 1, [
      ...op.get(xp),
      ...op.v128LoadAt(0),
      ...op.get(m),
      ...op.f32x4Sub,
      ...op.set(v),
      ...op.get(xp),
      ...exp4(v, r, e),
      ...op.tee(v),
      ...op.v128StoreAt(0),
      ...op.get(sum),
      ...op.get(v),
      ...op.f32x4Add,
      ...op.set(sum),
      ...increment(xp, 16),
    ]),
    ...op.get(stats),
    ...op.get(m),
    ...op.v128StoreAt(0),
    ...op.get(stats),
    ...op.get(sum),
    ...op.v128StoreAt(16),
  ];
  return {
    name: 'softmax',
    params: 5,
    locals: [
      [3, I32],
      [6, V128],
    ],
    code,
  };
}

/** `softmaxGrad`. Locals: 0 x, 1 dp, 2 mask, 3 n, 4 scale bits, 5 stats, 6 s, 7 xp, 8 dpp, 9 mp, 10 v, 11 m, 12 dot, 13 sc, 14 r, 15 e, 16 p, 17 inverse sum. */
function softmaxGradFunction(): WasmFunction {
  const [x, dp, mask, n, scaleBits, stats, s, xp, dpp, mp, v, rowMax, dot, sc, r, e, p, inv] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
  ];
  void x;
  const code = [
    ...splatFloatBits(scaleBits, sc),
    ...op.get(stats),
    ...op.v128LoadAt(0),
    ...op.set(rowMax),
    ...op.get(stats),
    ...op.v128LoadAt(16),
    ...op.set(dot),
    ...op.get(stats),
    ...op.v128LoadAt(32),
    ...op.set(inv),
    ...op.get(0),
    ...op.set(xp),
    ...op.get(dp),
    ...op.set(dpp),
    ...op.get(mask),
    ...op.set(mp),
    ...forLoop(s, n, 1, [
      ...biasedScore(xp, sc, mp),
      ...op.get(rowMax),
      ...op.f32x4Sub,
      ...op.set(v),
      ...op.get(xp),
      ...exp4(v, r, e),
      ...op.get(inv),
      ...op.f32x4Mul,
      ...op.tee(p),
      ...op.v128StoreAt(0),
      // dp ← scale·p·(dp − dot)
      ...op.get(dpp),
      ...op.get(dpp),
      ...op.v128LoadAt(0),
      ...op.get(dot),
      ...op.f32x4Sub,
      ...op.get(p),
      ...op.f32x4Mul,
      ...op.get(sc),
      ...op.f32x4Mul,
      ...op.v128StoreAt(0),
      ...increment(xp, 16),
      ...increment(dpp, 16),
      ...increment(mp, 16),
    ]),
  ];
  return {
    name: 'softmaxGrad',
    params: 6,
    locals: [
      [4, I32],
      [8, V128],
    ],
    code,
  };
}

/**
 * `combine` and `update`, which share their shape: per pair of f32x4 columns, 8 vectors of the
 * block's 4 rows are held in locals while the n key/value rows stream past, each row's 4 weights
 * splatted. `combine(w, v, acc, n)` accumulates into the held vectors (acc, stored at the end);
 * `update(w, x, y, n)` holds x and accumulates into the streamed rows (y, stored per row).
 * Locals: 0 w, 1 and 2 the two arrays, 3 n, 4 s, 5 wp, 6 row pointer, 7-8 the streamed row's two
 * vectors, 9 splat, 10-17 the held vectors.
 */
function blockRowsFunction(hd: number, kind: 'combine' | 'update'): WasmFunction {
  const [w, n, s, wp, rp, splat] = [0, 3, 4, 5, 6, 9];
  // combine(w, v, acc, n): rows v, held acc; update(w, x, y, n): held x, rows y
  const [rows, held] = kind === 'combine' ? [1, 2] : [2, 1];
  const streamed = (half: number) => 7 + half;
  const hold = (r: number, half: number) => 10 + 2 * r + half;
  const code: number[] = [];
  for (let c = 0; c < hd; c += 8) {
    const heldOffset = (r: number, half: number) => (r * hd + c + 4 * half) * 4;
    for (let r = 0; r < ROWS; r++)
      for (let half = 0; half < 2; half++)
        code.push(...op.get(held), ...op.v128LoadAt(heldOffset(r, half)), ...op.set(hold(r, half)));
    code.push(...op.get(w), ...op.set(wp), ...op.get(rows), ...op.set(rp));
    const inner: number[] = [];
    for (let half = 0; half < 2; half++)
      inner.push(...op.get(rp), ...op.v128LoadAt((c + 4 * half) * 4), ...op.set(streamed(half)));
    for (let r = 0; r < ROWS; r++) {
      inner.push(...op.get(wp), ...op.splatLoadAt(r * 4), ...op.set(splat));
      for (let half = 0; half < 2; half++) {
        const [target, other] =
          kind === 'combine' ? [hold(r, half), streamed(half)] : [streamed(half), hold(r, half)];
        inner.push(
          ...op.get(target),
          ...op.get(splat),
          ...op.get(other),
          ...op.f32x4Mul,
          ...op.f32x4Add,
          ...op.set(target),
        );
      }
    }
    if (kind === 'update')
      for (let half = 0; half < 2; half++)
        inner.push(...op.get(rp), ...op.get(streamed(half)), ...op.v128StoreAt((c + 4 * half) * 4));
    inner.push(...increment(wp, 16), ...increment(rp, hd * 4));
    code.push(...forLoop(s, n, 1, inner));
    if (kind === 'combine')
      for (let r = 0; r < ROWS; r++)
        for (let half = 0; half < 2; half++)
          code.push(
            ...op.get(held),
            ...op.get(hold(r, half)),
            ...op.v128StoreAt(heldOffset(r, half)),
          );
  }
  return {
    name: kind,
    params: 4,
    locals: [
      [3, I32],
      [11, V128],
    ],
    code,
  };
}

/** The block loops' module for one head dim (a multiple of 8). */
export function blockModuleBytes(hd: number): Uint8Array {
  return assembleModule([
    scoresFunction(hd),
    softmaxFunction(),
    softmaxGradFunction(),
    blockRowsFunction(hd, 'combine'),
    blockRowsFunction(hd, 'update'),
  ]);
}

const compiledBlocks = new Map<number, object | null>();

/** The compiled block loops for `hd`, or null where SIMD is missing (then the JS loops run). */
function blockModule(hd: number): object | null {
  let module = compiledBlocks.get(hd);
  if (module === undefined) {
    const bytes = blockModuleBytes(hd);
    module = wasmApi.validate(bytes) ? new wasmApi.Module(bytes) : null;
    compiledBlocks.set(hd, module);
  }
  return module;
}

/** The float32 whose bits an i32 argument carries (wasm parameters here are all i32). */
function floatBits(value: number): number {
  return new Int32Array(Float32Array.of(value).buffer)[0]!;
}

/** The block loops in JS (Math.exp, float64 sums), for any head dim. */
function jsBlockLoops(memory: WasmMemory, hd: number): BlockLoops {
  const view = () => new Float32Array(memory.buffer);
  const float = new Float32Array(1);
  const bits = new Int32Array(float.buffer);
  const fromBits = (b: number) => {
    bits[0] = b;
    return float[0]!;
  };
  return {
    scores(aT, rows, out, n) {
      const f = view();
      const [a0, k0, o0] = [aT >> 2, rows >> 2, out >> 2];
      for (let s = 0; s < n; s++)
        for (let r = 0; r < ROWS; r++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += f[a0 + 4 * d + r]! * f[k0 + s * hd + d]!;
          f[o0 + 4 * s + r] = dot;
        }
    },
    softmax(x, mask, n, scaleBits, stats) {
      const f = view();
      const scale = fromBits(scaleBits);
      const [x0, m0, st] = [x >> 2, mask >> 2, stats >> 2];
      for (let r = 0; r < ROWS; r++) {
        let m = -Infinity;
        for (let s = 0; s < n; s++) {
          const v = Math.fround(f[x0 + 4 * s + r]! * scale + f[m0 + 4 * s + r]!);
          f[x0 + 4 * s + r] = v;
          if (v > m) m = v;
        }
        let sum = 0;
        for (let s = 0; s < n; s++) {
          const v = f[x0 + 4 * s + r]! - m;
          const e = v < EXP_FLOOR ? 0 : Math.exp(v);
          f[x0 + 4 * s + r] = e;
          sum += e;
        }
        f[st + r] = m;
        f[st + 4 + r] = sum;
      }
    },
    softmaxGrad(x, dp, mask, n, scaleBits, stats) {
      const f = view();
      const scale = fromBits(scaleBits);
      const [x0, d0, m0, st] = [x >> 2, dp >> 2, mask >> 2, stats >> 2];
      for (let r = 0; r < ROWS; r++) {
        const m = f[st + r]!;
        const dot = f[st + 4 + r]!;
        const inverse = f[st + 8 + r]!;
        for (let s = 0; s < n; s++) {
          const i = 4 * s + r;
          const v = Math.fround(f[x0 + i]! * scale + f[m0 + i]!) - m;
          const p = v < EXP_FLOOR ? 0 : Math.exp(v) * inverse;
          f[x0 + i] = p;
          f[d0 + i] = p * (f[d0 + i]! - dot) * scale;
        }
      }
    },
    combine(w, v, acc, n) {
      const f = view();
      const [w0, v0, c0] = [w >> 2, v >> 2, acc >> 2];
      for (let r = 0; r < ROWS; r++)
        for (let i = 0; i < hd; i++) {
          let sum = f[c0 + r * hd + i]!;
          for (let s = 0; s < n; s++) sum += f[w0 + 4 * s + r]! * f[v0 + s * hd + i]!;
          f[c0 + r * hd + i] = sum;
        }
    },
    update(w, x, y, n) {
      const f = view();
      const [w0, x0, y0] = [w >> 2, x >> 2, y >> 2];
      for (let s = 0; s < n; s++)
        for (let i = 0; i < hd; i++) {
          let sum = f[y0 + s * hd + i]!;
          for (let r = 0; r < ROWS; r++) sum += f[w0 + 4 * s + r]! * f[x0 + r * hd + i]!;
          f[y0 + s * hd + i] = sum;
        }
    },
  };
}

/**
 * What the kernel needs of the bias [B, T, S], computed once per bias (every layer and both
 * passes share it): per block of 4 query rows (b, t0..t0+3), the union [lo, hi) of its rows'
 * visible spans and its additive mask over those keys, interleaved [hi − lo, 4]: the bias inside
 * each row's span, −∞ outside it, 0 for the rows past T.
 */
export interface PreparedBias {
  batch: number;
  queryLength: number;
  keyLength: number;
  /** Per block: lo, hi, offset of its mask in `mask`. */
  blocks: Int32Array;
  mask: Float32Array;
}

export function prepareBias(
  bias: Float32Array,
  batch: number,
  queryLength: number,
  keyLength: number,
): PreparedBias {
  if (bias.length !== batch * queryLength * keyLength)
    throw new RangeError(
      `bias has ${bias.length} values, expected ${batch}·${queryLength}·${keyLength}`,
    );
  const spans = visibleSpans(bias, batch, queryLength, keyLength);
  const perRow = Math.ceil(queryLength / ROWS);
  const blocks = new Int32Array(batch * perRow * 3);
  let total = 0;
  for (let b = 0; b < batch; b++)
    for (let j = 0; j < perRow; j++) {
      const first = b * queryLength + j * ROWS;
      const rows = Math.min(ROWS, queryLength - j * ROWS);
      let lo = Infinity;
      let hi = 0;
      for (let r = 0; r < rows; r++) {
        lo = Math.min(lo, spans[2 * (first + r)]!);
        hi = Math.max(hi, spans[2 * (first + r) + 1]!);
      }
      const at = 3 * (b * perRow + j);
      blocks[at] = lo;
      blocks[at + 1] = hi;
      blocks[at + 2] = total;
      total += (hi - lo) * ROWS;
    }
  const mask = new Float32Array(total);
  for (let b = 0; b < batch; b++)
    for (let j = 0; j < perRow; j++) {
      const at = 3 * (b * perRow + j);
      const [lo, hi, offset] = [blocks[at]!, blocks[at + 1]!, blocks[at + 2]!];
      for (let r = 0; r < ROWS; r++) {
        const t = j * ROWS + r;
        if (t >= queryLength) continue; // rows past T: mask 0, finite scores, outputs unused
        const row = b * queryLength + t;
        const [rowLo, rowHi] = [spans[2 * row]!, spans[2 * row + 1]!];
        for (let s = lo; s < hi; s++)
          mask[offset + 4 * (s - lo) + r] =
            s >= rowLo && s < rowHi ? bias[row * keyLength + s]! : -Infinity;
      }
    }
  return { batch, queryLength, keyLength, blocks, mask };
}

/**
 * The kernel with its scratch memory, grown as needed: per (batch, kv head) slice of S keys, K
 * and V [S, hd] and dK, dV [S, hd]; per block of 4 query rows, the rows of q and dO [4, hd] and
 * transposed [hd, 4], an accumulator [4, hd], the block's mask and two interleaved score arrays
 * [S, 4], and 8 floats of row statistics.
 */
export class FusedAttention {
  private readonly memory: WasmMemory;
  private readonly useSimd: boolean;
  private readonly loopsByHeadDim = new Map<number, { loops: BlockLoops; simd: boolean }>();

  constructor(options: { simd?: boolean } = {}) {
    this.memory = new wasmApi.Memory({ initial: 1 });
    this.useSimd = options.simd !== false;
  }

  /** Whether head dim `hd` runs the WASM SIMD loops (else the JS loops: no SIMD, or hd not a multiple of 8). */
  simdFor(hd: number): boolean {
    return this.loopsFor(hd).simd;
  }

  private loopsFor(hd: number): { loops: BlockLoops; simd: boolean } {
    let entry = this.loopsByHeadDim.get(hd);
    if (entry === undefined) {
      const module = this.useSimd && hd % 8 === 0 ? blockModule(hd) : null;
      entry =
        module === null
          ? { loops: jsBlockLoops(this.memory, hd), simd: false }
          : {
              loops: new wasmApi.Instance(module, { env: { memory: this.memory } })
                .exports as BlockLoops,
              simd: true,
            };
      this.loopsByHeadDim.set(hd, entry);
    }
    return entry;
  }

  /** Float offsets of the scratch regions (each 16-byte aligned; `scores` reads up to 3 rows past a slice, so slices get 4 spare rows). */
  private layout(keys: number, hd: number) {
    const slice = (keys + 4) * hd;
    const block = ROWS * hd;
    const row = ROWS * (keys + 4);
    const sizes = {
      k: slice,
      v: slice,
      dk: slice,
      dv: slice,
      q: block,
      qT: block,
      dO: block,
      dOT: block,
      acc: block,
      mask: row,
      sc: row,
      dp: row,
      stats: 12,
    };
    const at = {} as Record<keyof typeof sizes, number>;
    let end = 0;
    for (const [name, size] of Object.entries(sizes) as [keyof typeof sizes, number][]) {
      at[name] = end;
      end += size + ((4 - (size % 4)) % 4);
    }
    const have = this.memory.buffer.byteLength;
    if (end * 4 > have) this.memory.grow(Math.ceil((end * 4 - have) / 65536));
    return at;
  }

  /** Copies `rows` rows [rows, hd] from src at `from` into f at `to` (zero-filling to 4 rows) and transposed [hd, 4] at `toT`. */
  private static loadRows(
    f: Float32Array,
    src: Float32Array,
    from: number,
    rows: number,
    hd: number,
    to: number,
    toT: number,
  ): void {
    f.set(src.subarray(from, from + rows * hd), to);
    f.fill(0, to + rows * hd, to + ROWS * hd);
    for (let r = 0; r < ROWS; r++)
      for (let d = 0; d < hd; d++) f[toT + 4 * d + r] = f[to + r * hd + d]!;
  }

  /**
   * softmax(scale·q·kᵀ + bias)·v. q [B, H, T, hd], k and v [B, K, S, hd] (query head h uses
   * key/value head ⌊h/(H/K)⌋), the bias [B, T, S] as `prepareBias` made it → out [B, H, T, hd]
   * and each row's max and sum of exps of its biased scores, rowStats [B, H, T, 2] (for
   * `backward`).
   */
  forward(
    shape: FusedAttentionShape,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    bias: PreparedBias,
    scale: number,
  ): { out: Float32Array; rowStats: Float32Array } {
    const { batch, heads, kvHeads, queryLength: t, keyLength: s, headDim: hd } = shape;
    check(shape, bias, {
      q: [q, batch * heads * t * hd],
      k: [k, batch * kvHeads * s * hd],
      v: [v, batch * kvHeads * s * hd],
    });
    const at = this.layout(s, hd);
    const { loops } = this.loopsFor(hd);
    const f = new Float32Array(this.memory.buffer);
    const out = new Float32Array(batch * heads * t * hd);
    const rowStats = new Float32Array(batch * heads * t * 2);
    const groups = heads / kvHeads;
    const perRow = Math.ceil(t / ROWS);
    const scaleBits = floatBits(scale);
    for (let b = 0; b < batch; b++) {
      for (let g = 0; g < kvHeads; g++) {
        const kv = (b * kvHeads + g) * s * hd;
        f.set(k.subarray(kv, kv + s * hd), at.k);
        f.set(v.subarray(kv, kv + s * hd), at.v);
        for (let j = 0; j < perRow; j++) {
          const block = 3 * (b * perRow + j);
          const lo = bias.blocks[block]!;
          const n = bias.blocks[block + 1]! - lo;
          const rows = Math.min(ROWS, t - j * ROWS);
          const mask = bias.mask.subarray(bias.blocks[block + 2]!, bias.blocks[block + 2]! + 4 * n);
          for (let h = g * groups; h < (g + 1) * groups; h++) {
            const qRow = ((b * heads + h) * t + j * ROWS) * hd;
            FusedAttention.loadRows(f, q, qRow, rows, hd, at.q, at.qT);
            loops.scores(at.qT * 4, (at.k + lo * hd) * 4, at.sc * 4, n);
            f.set(mask, at.mask);
            loops.softmax(at.sc * 4, at.mask * 4, n, scaleBits, at.stats * 4);
            f.fill(0, at.acc, at.acc + ROWS * hd);
            loops.combine(at.sc * 4, (at.v + lo * hd) * 4, at.acc * 4, n);
            for (let r = 0; r < rows; r++) {
              const sum = f[at.stats + 4 + r]!;
              const inverse = 1 / sum;
              const o = qRow + r * hd;
              for (let x = 0; x < hd; x++) out[o + x] = f[at.acc + r * hd + x]! * inverse;
              const row = (b * heads + h) * t + j * ROWS + r;
              rowStats[2 * row] = f[at.stats + r]!;
              rowStats[2 * row + 1] = sum;
            }
          }
        }
      }
    }
    return { out, rowStats };
  }

  /**
   * Gradients of `forward` for the output gradient dOut [B, H, T, hd]: with P recomputed from the
   * saved row statistics, dV = Pᵀ·dO, dS = P ⊙ (dO·vᵀ − rowsum(dO ⊙ out)), dQ = scale·dS·k, dK = scale·dSᵀ·q
   * (dK and dV summed over the query heads of each group).
   */
  backward(
    shape: FusedAttentionShape,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    bias: PreparedBias,
    scale: number,
    out: Float32Array,
    rowStats: Float32Array,
    dOut: Float32Array,
  ): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
    const { batch, heads, kvHeads, queryLength: t, keyLength: s, headDim: hd } = shape;
    check(shape, bias, {
      q: [q, batch * heads * t * hd],
      k: [k, batch * kvHeads * s * hd],
      v: [v, batch * kvHeads * s * hd],
      out: [out, batch * heads * t * hd],
      rowStats: [rowStats, batch * heads * t * 2],
      dOut: [dOut, batch * heads * t * hd],
    });
    const at = this.layout(s, hd);
    const { loops } = this.loopsFor(hd);
    const f = new Float32Array(this.memory.buffer);
    const dq = new Float32Array(q.length);
    const dk = new Float32Array(k.length);
    const dv = new Float32Array(v.length);
    const groups = heads / kvHeads;
    const perRow = Math.ceil(t / ROWS);
    const scaleBits = floatBits(scale);
    for (let b = 0; b < batch; b++) {
      for (let g = 0; g < kvHeads; g++) {
        const kv = (b * kvHeads + g) * s * hd;
        f.set(k.subarray(kv, kv + s * hd), at.k);
        f.set(v.subarray(kv, kv + s * hd), at.v);
        f.fill(0, at.dk, at.dk + s * hd);
        f.fill(0, at.dv, at.dv + s * hd);
        for (let j = 0; j < perRow; j++) {
          const block = 3 * (b * perRow + j);
          const lo = bias.blocks[block]!;
          const n = bias.blocks[block + 1]! - lo;
          const rows = Math.min(ROWS, t - j * ROWS);
          const mask = bias.mask.subarray(bias.blocks[block + 2]!, bias.blocks[block + 2]! + 4 * n);
          for (let h = g * groups; h < (g + 1) * groups; h++) {
            const qRow = ((b * heads + h) * t + j * ROWS) * hd;
            FusedAttention.loadRows(f, q, qRow, rows, hd, at.q, at.qT);
            FusedAttention.loadRows(f, dOut, qRow, rows, hd, at.dO, at.dOT);
            for (let r = 0; r < ROWS; r++) {
              let d = 0;
              if (r < rows)
                for (let x = 0; x < hd; x++)
                  d += dOut[qRow + r * hd + x]! * out[qRow + r * hd + x]!;
              const row = (b * heads + h) * t + j * ROWS + r;
              f[at.stats + r] = r < rows ? rowStats[2 * row]! : 0;
              f[at.stats + 4 + r] = d;
              f[at.stats + 8 + r] = r < rows ? 1 / rowStats[2 * row + 1]! : 0;
            }
            loops.scores(at.qT * 4, (at.k + lo * hd) * 4, at.sc * 4, n);
            loops.scores(at.dOT * 4, (at.v + lo * hd) * 4, at.dp * 4, n);
            f.set(mask, at.mask);
            loops.softmaxGrad(at.sc * 4, at.dp * 4, at.mask * 4, n, scaleBits, at.stats * 4);
            loops.update(at.sc * 4, at.dO * 4, (at.dv + lo * hd) * 4, n);
            loops.update(at.dp * 4, at.q * 4, (at.dk + lo * hd) * 4, n);
            f.fill(0, at.acc, at.acc + ROWS * hd);
            loops.combine(at.dp * 4, (at.k + lo * hd) * 4, at.acc * 4, n);
            dq.set(f.subarray(at.acc, at.acc + rows * hd), qRow);
          }
        }
        dk.set(f.subarray(at.dk, at.dk + s * hd), kv);
        dv.set(f.subarray(at.dv, at.dv + s * hd), kv);
      }
    }
    return { dq, dk, dv };
  }
}
