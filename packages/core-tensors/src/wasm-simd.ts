/**
 * A minimal WebAssembly encoder for the attention kernels' inner loops (decode-attention.ts,
 * fused-attention.ts), which are assembled at run time from their instructions so nothing
 * compiled is shipped and installs need only Node, and the decode path's two f32x4 loops (in
 * WASM SIMD and, where SIMD is missing, in JS).
 */

/** The parts of the WebAssembly JS API used here (the compiler options give no DOM types). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

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

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

export const I32 = 0x7f;
export const V128 = 0x7b;

/** Instructions (opcode bytes with their immediates). */
export const op = {
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
  /** v128.load / f32 splat load with a constant byte offset from the address on the stack. */
  v128LoadAt: (offset: number) => [0xfd, 0x00, 4, ...uleb(offset)],
  v128StoreAt: (offset: number) => [0xfd, 0x0b, 4, ...uleb(offset)],
  splatLoadAt: (offset: number) => [0xfd, 0x09, 2, ...uleb(offset)],
  v128Store: [0xfd, 0x0b, 4, 0],
  v128Zero: [0xfd, 0x0c, ...new Array<number>(16).fill(0)],
  f32x4Splat: [0xfd, 0x13],
  i32x4Splat: [0xfd, 0x11],
  f32x4Lane: (lane: number) => [0xfd, 0x1f, lane],
  f32x4Add: [0xfd, 0xe4, 0x01],
  f32x4Mul: [0xfd, 0xe6, 0x01],
  f32x4Sub: [0xfd, 0xe5, 0x01],
  f32x4Max: [0xfd, 0xe9, 0x01],
  f32x4Ge: [0xfd, 0x46],
  f32x4Nearest: [0xfd, 0x6a],
  i32x4TruncSatF32x4S: [0xfd, 0xf8, 0x01],
  i32x4Shl: [0xfd, 0xab, 0x01],
  i32x4Add: [0xfd, 0xae, 0x01],
  v128And: [0xfd, 0x4e],
  /** v128.const of four equal float32 lanes. */
  f32x4Const: (value: number) => [
    0xfd,
    0x0c,
    ...Array.from({ length: 4 }, () => [...new Uint8Array(Float32Array.of(value).buffer)]).flat(),
  ],
  i32x4Const: (value: number) => [
    0xfd,
    0x0c,
    ...Array.from({ length: 4 }, () => [...new Uint8Array(Int32Array.of(value).buffer)]).flat(),
  ],
};

// ---- the instruction sequences the loops repeat ----------------------------------------------

/** Pushes the byte address `base + index·4` (element `index` of a float32 array at `base`). */
export function elementAddress(base: number, index: number): number[] {
  return [...op.get(base), ...op.get(index), ...op.i32(2), ...op.i32Shl, ...op.i32Add];
}

/** local += by (an i32 constant). */
export function increment(local: number, by: number): number[] {
  return [...op.get(local), ...op.i32(by), ...op.i32Add, ...op.set(local)];
}

/** local += other·4 (advance a byte address by `other` floats). */
export function advanceRow(local: number, floats: number): number[] {
  return [...elementAddress(local, floats), ...op.set(local)];
}

/** for (counter = 0; counter < limit (unsigned); counter += step) body — `limit` a local. */
export function forLoop(counter: number, limit: number, step: number, body: number[]): number[] {
  return [
    ...op.i32(0),
    ...op.set(counter),
    ...op.block,
    ...op.loop,
    ...op.get(counter),
    ...op.get(limit),
    ...op.i32GeU,
    ...op.brIf(1),
    ...body,
    ...increment(counter, step),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

/** One exported function: `params` i32 parameters, then locals as [count, type] runs. */
export interface WasmFunction {
  name: string;
  params: number;
  locals: [number, number][];
  code: number[];
}

/** A module importing its memory as `env.memory` and exporting `functions`. */
export function assembleModule(functions: WasmFunction[]): Uint8Array {
  const name = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
  const body = (f: WasmFunction) => {
    const b = [...vector(f.locals), ...f.code, ...op.end];
    return [...uleb(b.length), ...b];
  };
  const types = functions.map((f) => [
    0x60,
    ...vector(Array.from({ length: f.params }, () => [I32])),
    0x00,
  ]);
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    // import env.memory (min 1 page)
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vector(functions.map((_, i) => uleb(i)))),
    ...section(7, vector(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vector(functions.map(body))),
  ]);
}

// ---- the f32x4 loops -------------------------------------------------------------------------

/**
 * `dots(q, k, out, n, hd)`: out[s] = Σ_i q[i]·k[s·hd + i] for s < n (byte addresses; hd a
 * multiple of 4). Locals: 0 q, 1 k, 2 out, 3 n, 4 hd, 5 s, 6 i, 7 acc (v128), 8 kRow.
 */
function dots(): WasmFunction {
  const [q, k, out, n, hd, s, i, acc, row] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const code = [
    ...op.get(k),
    ...op.set(row),
    ...forLoop(s, n, 1, [
      ...op.v128Zero,
      ...op.set(acc),
      ...forLoop(i, hd, 4, [
        ...op.get(acc),
        ...elementAddress(q, i),
        ...op.v128Load,
        ...elementAddress(row, i),
        ...op.v128Load,
        ...op.f32x4Mul,
        ...op.f32x4Add,
        ...op.set(acc),
      ]),
      // out[s] = (acc0 + acc1) + (acc2 + acc3)
      ...elementAddress(out, s),
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
      ...advanceRow(row, hd),
    ]),
  ];
  return {
    name: 'dots',
    params: 5,
    locals: [
      [2, I32],
      [1, V128],
      [1, I32],
    ],
    code,
  };
}

/**
 * `axpy(w, v, acc, n, hd)`: acc[i] += Σ_s w[s]·v[s·hd + i] for i < hd (acc not cleared here).
 * Locals: 0 w, 1 v, 2 acc, 3 n, 4 hd, 5 s, 6 i, 7 ws (v128), 8 vRow, 9 at.
 */
function axpy(): WasmFunction {
  const [w, v, accPtr, n, hd, s, i, ws, row, at] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const code = [
    ...op.get(v),
    ...op.set(row),
    ...forLoop(s, n, 1, [
      ...elementAddress(w, s),
      ...op.f32Load,
      ...op.f32x4Splat,
      ...op.set(ws),
      ...forLoop(i, hd, 4, [
        ...elementAddress(accPtr, i),
        ...op.tee(at),
        ...op.get(at),
        ...op.v128Load,
        ...op.get(ws),
        ...elementAddress(row, i),
        ...op.v128Load,
        ...op.f32x4Mul,
        ...op.f32x4Add,
        ...op.v128Store,
      ]),
      ...advanceRow(row, hd),
    ]),
  ];
  return {
    name: 'axpy',
    params: 5,
    locals: [
      [2, I32],
      [1, V128],
      [2, I32],
    ],
    code,
  };
}

/** The loops' module: imports memory `env.memory`, exports `dots` and `axpy`. */
export function simdLoopsModuleBytes(): Uint8Array {
  return assembleModule([dots(), axpy()]);
}

/** The two loops over float32 arrays at byte addresses of one memory. */
export interface SimdLoops {
  dots(q: number, k: number, out: number, n: number, hd: number): void;
  axpy(w: number, v: number, acc: number, n: number, hd: number): void;
}

let compiled: object | null | undefined;

/** The compiled module, or null where this WebAssembly lacks SIMD (then the JS loops run). */
function simdModule(): object | null {
  if (compiled === undefined) {
    const bytes = simdLoopsModuleBytes();
    compiled = wasmApi.validate(bytes) ? new wasmApi.Module(bytes) : null;
  }
  return compiled;
}

/** The same loops in JS (float32 stores, float64 sums), used without WASM SIMD and in tests. */
function jsLoops(memory: WasmMemory): SimdLoops {
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

/**
 * The loops over `memory`: WASM SIMD unless `simd` is false or this WebAssembly lacks it (then
 * JS). The JS loops index the memory's current buffer on every call, so it may grow between calls.
 */
export function simdLoops(memory: WasmMemory, simd = true): { loops: SimdLoops; simd: boolean } {
  const module = simd ? simdModule() : null;
  if (module === null) return { loops: jsLoops(memory), simd: false };
  const instance = new wasmApi.Instance(module, { env: { memory } });
  return { loops: instance.exports as SimdLoops, simd: true };
}
