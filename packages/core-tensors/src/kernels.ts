import * as tf from '@tensorflow/tfjs';
import { TransposedProduct } from './transposed-product.js';

type TypedArray = Float32Array | Int32Array | Uint8Array;

/** The parts of the wasm backend's public surface used here (see tfjs-backend-wasm's backend_wasm.d.ts). */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): TypedArray;
}

/** The parts of the cpu backend's public surface used here (see tfjs-backend-cpu's backend_cpu.d.ts). */
interface CpuBackendLike {
  readSync(dataId: tf.DataId): TypedArray;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: TypedArray): tf.TensorInfo;
}

interface KernelDefinition {
  name: string;
  output(inputs: tf.TensorInfo[], attrs: tf.NamedAttrMap): { shape: number[]; dtype: tf.DataType };
  /** Writes the result into `out` from the input arrays. */
  compute(inputs: TypedArray[], shapes: number[][], out: TypedArray, attrs: tf.NamedAttrMap): void;
  inputNames: string[];
  /** `compute` accumulates into `out`, which must start zeroed (fresh wasm heap memory is not). */
  accumulates?: boolean;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Registers one JS kernel for the wasm backend (reading and writing the wasm heap in place) and
 * for the cpu backend. These cover what tfjs-backend-wasm lacks (UnsortedSegmentSum) or runs
 * element by element with index arithmetic (2-D transpose, row gather), which the training
 * profile showed costing more than the matrix products themselves.
 */
function register(definition: KernelDefinition, backends: readonly string[]): void {
  for (const backendName of backends) {
    tf.registerKernel({
      kernelName: definition.name,
      backendName,
      kernelFunc: (({
        inputs,
        backend,
        attrs,
      }: {
        inputs: tf.NamedTensorInfoMap;
        backend: unknown;
        attrs?: tf.NamedAttrMap;
      }) => {
        const infos = definition.inputNames.map((n) => inputs[n]!);
        const { shape, dtype } = definition.output(infos, attrs ?? {});
        const shapes = infos.map((i) => i.shape);
        if (backendName === 'wasm') {
          const wasm = backend as WasmBackendLike;
          // Allocate first: growing the heap detaches earlier views, so views are taken afterwards.
          const out = wasm.makeOutput(shape, dtype);
          const outValues = wasm.typedArrayFromHeap(out);
          if (definition.accumulates === true) outValues.fill(0);
          definition.compute(
            infos.map((i) => wasm.typedArrayFromHeap(i)),
            shapes,
            outValues,
            attrs ?? {},
          );
          return out;
        }
        const cpu = backend as CpuBackendLike;
        const outValues =
          dtype === 'int32' ? new Int32Array(sizeOf(shape)) : new Float32Array(sizeOf(shape));
        definition.compute(
          infos.map((i) => cpu.readSync(i.dataId)),
          shapes,
          outValues,
          attrs ?? {},
        );
        return cpu.makeTensorInfo(shape, dtype, outValues);
      }) as tf.KernelFunc,
    });
  }
}

/** Swaps the last two axes of a rank-2 or rank-3 tensor. */
const transposeKernel: KernelDefinition = {
  name: 'CrTransposeLast2',
  inputNames: ['x'],
  output: ([x]) => {
    const s = x!.shape;
    return { shape: [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!], dtype: x!.dtype };
  },
  compute: ([x], [shape], out) => {
    const rows = shape![shape!.length - 2]!;
    const cols = shape![shape!.length - 1]!;
    const batch = sizeOf(shape!) / (rows * cols || 1);
    const src = x as Float32Array;
    const dst = out as Float32Array;
    // Contiguous writes, strided reads within 32×32 tiles: measured 5× faster in V8 than the
    // read-contiguous order (strided typed-array stores are the expensive side).
    const block = 32;
    for (let b = 0; b < batch; b++) {
      const base = b * rows * cols;
      for (let c0 = 0; c0 < cols; c0 += block) {
        const c1 = c0 + block < cols ? c0 + block : cols;
        for (let r0 = 0; r0 < rows; r0 += block) {
          const r1 = r0 + block < rows ? r0 + block : rows;
          for (let c = c0; c < c1; c++) {
            const to = base + c * rows;
            for (let r = r0; r < r1; r++) dst[to + r] = src[base + r * cols + c]!;
          }
        }
      }
    }
  },
};

let transposedProduct: TransposedProduct | undefined;

/** aᵀ·b for a [K, M], b [K, N] → [M, N] (the weight gradients; see transposed-product.ts). */
const transposedMatMulKernel: KernelDefinition = {
  name: 'CrTransposedMatMul',
  inputNames: ['a', 'b'],
  output: ([a, b]) => {
    if (a!.shape.length !== 2 || b!.shape.length !== 2 || a!.shape[0] !== b!.shape[0])
      throw new RangeError(
        `CrTransposedMatMul: a [${a!.shape}] and b [${b!.shape}] must be matrices with equal rows`,
      );
    return { shape: [a!.shape[1]!, b!.shape[1]!], dtype: 'float32' };
  },
  compute: ([a, b], [aShape, bShape], out) => {
    transposedProduct ??= new TransposedProduct();
    const [k, m] = aShape as [number, number];
    transposedProduct.compute(
      a as Float32Array,
      b as Float32Array,
      k,
      m,
      bShape![1]!,
      out as Float32Array,
    );
  },
};

/** out[i, :] = table[ids[i], :] (an embedding lookup as row copies). */
const gatherRowsKernel: KernelDefinition = {
  name: 'CrGatherRows',
  inputNames: ['table', 'ids'],
  output: ([table, ids]) => ({
    shape: [sizeOf(ids!.shape), table!.shape[1]!],
    dtype: table!.dtype,
  }),
  compute: ([table, ids], [tableShape], out) => {
    const [rows, width] = tableShape as [number, number];
    for (let i = 0; i < ids!.length; i++) {
      const id = ids![i]!;
      if (id < 0 || id >= rows)
        throw new RangeError(`row index ${id} at position ${i} is outside [0, ${rows})`);
      out.set(table!.subarray(id * width, id * width + width), i * width);
    }
  },
};

/** out[ids[i], :] += values[i, :] with `numRows` output rows (the gradient of a row gather; ids outside are dropped, as in TensorFlow). */
const scatterAddRowsKernel: KernelDefinition = {
  name: 'CrScatterAddRows',
  accumulates: true,
  inputNames: ['values', 'ids'],
  output: ([values], attrs) => ({
    shape: [Number(attrs['numRows']), sizeOf(values!.shape.slice(1))],
    dtype: 'float32',
  }),
  compute: ([values, ids], [valuesShape], out, attrs) => {
    const numRows = Number(attrs['numRows']);
    const width = sizeOf(valuesShape!.slice(1));
    for (let i = 0; i < ids!.length; i++) {
      const id = ids![i]!;
      if (id < 0 || id >= numRows) continue;
      const src = i * width;
      const dst = id * width;
      for (let j = 0; j < width; j++) out[dst + j]! += values![src + j]!;
    }
  },
};

/** out[i] = x[i, ids[i]] for x [N, V]. */
const pickKernel: KernelDefinition = {
  name: 'CrPickColumns',
  inputNames: ['x', 'ids'],
  output: ([x]) => ({ shape: [x!.shape[0]!], dtype: 'float32' }),
  compute: ([x, ids], [shape], out) => {
    const width = shape![1]!;
    for (let i = 0; i < ids!.length; i++) out[i] = x![i * width + ids![i]!]!;
  },
};

/** RMSNorm over the last axis: y = x / sqrt(mean(x²) + eps) · weight (rows accumulate in float64). */
const rmsNormKernel: KernelDefinition = {
  name: 'CrRmsNorm',
  inputNames: ['x', 'weight'],
  output: ([x]) => ({ shape: [...x!.shape], dtype: 'float32' }),
  compute: ([x, weight], [shape], out, attrs) => {
    const width = shape![shape!.length - 1]!;
    const rows = sizeOf(shape!) / width;
    const eps = Number(attrs['eps']);
    const src = x as Float32Array;
    const w = weight as Float32Array;
    const dst = out as Float32Array;
    for (let r = 0; r < rows; r++) {
      const base = r * width;
      let sum = 0;
      for (let j = 0; j < width; j++) sum += src[base + j]! * src[base + j]!;
      const scale = 1 / Math.sqrt(sum / width + eps);
      for (let j = 0; j < width; j++) dst[base + j] = src[base + j]! * scale * w[j]!;
    }
  },
};

/** dL/dx of RMSNorm: r·g − x·r³·mean(g·x) with g = dy·weight, r = 1/sqrt(mean(x²) + eps). */
const rmsNormGradXKernel: KernelDefinition = {
  name: 'CrRmsNormGradX',
  inputNames: ['dy', 'x', 'weight'],
  output: ([, x]) => ({ shape: [...x!.shape], dtype: 'float32' }),
  compute: ([dy, x, weight], [, shape], out, attrs) => {
    const width = shape![shape!.length - 1]!;
    const rows = sizeOf(shape!) / width;
    const eps = Number(attrs['eps']);
    const g = dy as Float32Array;
    const src = x as Float32Array;
    const w = weight as Float32Array;
    const dst = out as Float32Array;
    for (let r = 0; r < rows; r++) {
      const base = r * width;
      let sum = 0;
      let dot = 0;
      for (let j = 0; j < width; j++) {
        const xv = src[base + j]!;
        sum += xv * xv;
        dot += g[base + j]! * w[j]! * xv;
      }
      const scale = 1 / Math.sqrt(sum / width + eps);
      const k = scale * scale * scale * (dot / width);
      for (let j = 0; j < width; j++)
        dst[base + j] = scale * g[base + j]! * w[j]! - src[base + j]! * k;
    }
  },
};

/** dL/dweight of RMSNorm: Σ_rows dy · x · r. */
const rmsNormGradWeightKernel: KernelDefinition = {
  name: 'CrRmsNormGradWeight',
  inputNames: ['dy', 'x'],
  output: ([, x]) => ({ shape: [x!.shape[x!.shape.length - 1]!], dtype: 'float32' }),
  compute: ([dy, x], [, shape], out, attrs) => {
    const width = shape![shape!.length - 1]!;
    const rows = sizeOf(shape!) / width;
    const eps = Number(attrs['eps']);
    const g = dy as Float32Array;
    const src = x as Float32Array;
    const acc = new Float64Array(width);
    for (let r = 0; r < rows; r++) {
      const base = r * width;
      let sum = 0;
      for (let j = 0; j < width; j++) sum += src[base + j]! * src[base + j]!;
      const scale = 1 / Math.sqrt(sum / width + eps);
      for (let j = 0; j < width; j++) acc[j]! += g[base + j]! * src[base + j]! * scale;
    }
    (out as Float32Array).set(acc);
  },
};

/**
 * Rotary embedding of x [rows, heads, headDim] in the "rotate half" layout, row n at position
 * positions[n] (cos/sin tables [maxPositions, headDim]). `inverse` rotates by −θ, which is also
 * the gradient of the forward rotation.
 */
const ropeKernel: KernelDefinition = {
  name: 'CrRope',
  inputNames: ['x', 'cos', 'sin', 'positions'],
  output: ([x]) => ({ shape: [...x!.shape], dtype: 'float32' }),
  compute: ([x, cos, sin, positions], [shape, tableShape], out, attrs) => {
    const headDim = shape![shape!.length - 1]!;
    const heads = shape![shape!.length - 2]!;
    const rows = sizeOf(shape!) / (heads * headDim);
    const half = headDim / 2;
    const sign = attrs['inverse'] === true ? -1 : 1;
    const maxPositions = tableShape![0]!;
    const src = x as Float32Array;
    const c = cos as Float32Array;
    const sn = sin as Float32Array;
    const dst = out as Float32Array;
    for (let n = 0; n < rows; n++) {
      const p = positions![n]!;
      if (p < 0 || p >= maxPositions)
        throw new RangeError(`position ${p} is outside the rotary table [0, ${maxPositions})`);
      const t = p * headDim;
      for (let h = 0; h < heads; h++) {
        const base = (n * heads + h) * headDim;
        for (let i = 0; i < half; i++) {
          const x1 = src[base + i]!;
          const x2 = src[base + i + half]!;
          const ci = c[t + i]!;
          const si = sign * sn[t + i]!;
          dst[base + i] = x1 * ci - x2 * si;
          dst[base + i + half] = x2 * ci + x1 * si;
        }
      }
    }
  },
};

/** Gradient of log softmax(z)[i, targets[i]] w.r.t. z from p = softmax(z): (onehot(targets) − p)·dy[i], one pass. */
const pickedLogSoftmaxGradKernel: KernelDefinition = {
  name: 'CrPickedLogSoftmaxGrad',
  inputNames: ['probs', 'ids', 'dy'],
  output: ([probs]) => ({ shape: [...probs!.shape], dtype: 'float32' }),
  compute: ([probs, ids, dy], [shape], out) => {
    const [rows, width] = shape as [number, number];
    const p = probs as Float32Array;
    const g = dy as Float32Array;
    const dst = out as Float32Array;
    for (let i = 0; i < rows; i++) {
      const base = i * width;
      const gi = g[i]!;
      for (let j = 0; j < width; j++) dst[base + j] = -p[base + j]! * gi;
      dst[base + ids![i]!]! += gi;
    }
  },
};

/** Softmax backward over the last axis: p·(dp − Σ dp·p), one pass per row. */
const softmaxGradKernel: KernelDefinition = {
  name: 'CrSoftmaxGrad',
  inputNames: ['probs', 'dy'],
  output: ([probs]) => ({ shape: [...probs!.shape], dtype: 'float32' }),
  compute: ([probs, dy], [shape], out) => {
    const width = shape![shape!.length - 1]!;
    const rows = sizeOf(shape!) / width;
    const p = probs as Float32Array;
    const g = dy as Float32Array;
    const dst = out as Float32Array;
    for (let i = 0; i < rows; i++) {
      const base = i * width;
      let dot = 0;
      for (let j = 0; j < width; j++) dot += g[base + j]! * p[base + j]!;
      for (let j = 0; j < width; j++) dst[base + j] = p[base + j]! * (g[base + j]! - dot);
    }
  },
};

/** SwiGLU's activation from the fused gate/up projection: gu [N, 2I] → silu(gu[:, :I]) · gu[:, I:]. */
const swigluActKernel: KernelDefinition = {
  name: 'CrSwiGluAct',
  inputNames: ['gu'],
  output: ([gu]) => ({ shape: [gu!.shape[0]!, gu!.shape[1]! / 2], dtype: 'float32' }),
  compute: ([gu], [shape], out) => {
    const [rows, width] = shape as [number, number];
    const inner = width / 2;
    const src = gu as Float32Array;
    const dst = out as Float32Array;
    for (let r = 0; r < rows; r++) {
      const from = r * width;
      const to = r * inner;
      for (let j = 0; j < inner; j++) {
        const g = src[from + j]!;
        dst[to + j] = (g / (1 + Math.exp(-g))) * src[from + inner + j]!;
      }
    }
  },
};

/** UnsortedSegmentSum (the gradient of `gather`), missing from tfjs-backend-wasm, so that plain tf.gather also trains on wasm. */
const unsortedSegmentSumKernel: KernelDefinition = {
  name: 'UnsortedSegmentSum',
  accumulates: true,
  inputNames: ['x', 'segmentIds'],
  output: ([x, segmentIds], attrs) => ({
    shape: [Number(attrs['numSegments']), ...x!.shape.slice(segmentIds!.shape.length)],
    dtype: x!.dtype,
  }),
  compute: ([x, ids], [xShape, idShape], out, attrs) => {
    const numSegments = Number(attrs['numSegments']);
    const count = sizeOf(idShape!);
    const inner = count === 0 ? 0 : sizeOf(xShape!) / count;
    for (let i = 0; i < count; i++) {
      const segment = ids![i]!;
      if (segment < 0 || segment >= numSegments) continue;
      const src = i * inner;
      const dst = segment * inner;
      for (let j = 0; j < inner; j++) out[dst + j]! += x![src + j]!;
    }
  },
};

/** The wasm module surface used by the sliced matmul kernel (tfjs-backend-wasm 4.22's BackendWasmModule). */
interface WasmModuleLike {
  cwrap(name: string, returnType: null, argTypes: string[]): (...args: unknown[]) => void;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

interface WasmBackendInternals extends WasmBackendLike {
  wasm: WasmModuleLike;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } | undefined };
}

let batchMatMulFn: ((...args: unknown[]) => void) | undefined;
// View ids live far above the backend's own counter (which starts at 1), so they never collide.
let nextViewId = 0x40000000;

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/** Whether this wasm backend exposes what `CrSlicedMatMul` needs (checked once; otherwise the ops fall back to tf.matMul). */
export function wasmSlicedMatMulSupported(backend: unknown): boolean {
  const b = backend as Partial<WasmBackendInternals> | undefined;
  return (
    typeof b?.wasm?.cwrap === 'function' &&
    typeof b.wasm.tfjs?.registerTensor === 'function' &&
    typeof b.wasm.tfjs.disposeData === 'function' &&
    typeof b.dataIdMap?.get === 'function'
  );
}

/**
 * a [batch, M, K] · b [batch, K, N] as `batch` separate XNNPACK products. tfjs-backend-wasm sends
 * every batched (batch > 1) matMul to a naive triple loop (~3 GFLOP/s here) and only batch-1,
 * non-transposed products to XNNPACK (~40 GFLOP/s). Each slice is registered with the wasm
 * module as a temporary tensor id pointing into the parent buffers (no copy), multiplied by the
 * backend's own BatchMatMul entry point, and unregistered again (unregistering frees nothing, it
 * only drops the id and the XNNPACK operator cached for it).
 */
function wasmSlicedMatMul({
  inputs,
  backend,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
}): tf.TensorInfo {
  const wasm = backend as WasmBackendInternals;
  const a = inputs['a']!;
  const b = inputs['b']!;
  const [batch, m, k] = a.shape as [number, number, number];
  const [, k2, n] = b.shape as [number, number, number];
  if (k !== k2 || b.shape[0] !== batch)
    throw new Error(`CrSlicedMatMul: shapes [${a.shape}] and [${b.shape}] do not match`);
  const out = wasm.makeOutput([batch, m, n], 'float32');
  batchMatMulFn ??= wasm.wasm.cwrap('BatchMatMul', null, [
    'number',
    'array',
    'number',
    'number',
    'array',
    'number',
    'number',
    'number',
    'number',
  ]);
  const aOffset = wasm.dataIdMap.get(a.dataId)!.memoryOffset;
  const bOffset = wasm.dataIdMap.get(b.dataId)!.memoryOffset;
  const outOffset = wasm.dataIdMap.get(out.dataId)!.memoryOffset;
  const aShape = shapeBytes([1, m, k]);
  const bShape = shapeBytes([1, k, n]);
  const registry = wasm.wasm.tfjs;
  for (let i = 0; i < batch; i++) {
    const aId = nextViewId++;
    const bId = nextViewId++;
    const outId = nextViewId++;
    if (nextViewId > 0x7ffffff0) nextViewId = 0x40000000;
    registry.registerTensor(aId, m * k, aOffset + i * m * k * 4);
    registry.registerTensor(bId, k * n, bOffset + i * k * n * 4);
    registry.registerTensor(outId, m * n, outOffset + i * m * n * 4);
    try {
      batchMatMulFn(aId, aShape, 3, bId, bShape, 3, 0, 0, outId);
    } finally {
      registry.disposeData(aId);
      registry.disposeData(bId);
      registry.disposeData(outId);
    }
  }
  return out;
}

/**
 * tfjs-backend-wasm's Identity copies the buffer, and TensorFlow.js runs Identity for every
 * tensor a custom gradient saves (and for tf.clone); the training profile showed these copies
 * as a top cost. Tensors are immutable and the wasm backend already reference-counts shared
 * buffers (its Reshape shares), so Identity here shares the buffer like the cpu backend does.
 */
function shareIdentityOnWasm(): void {
  const original = tf.getKernel('Identity', 'wasm');
  if (original === undefined) return;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ((args: {
      inputs: tf.NamedTensorInfoMap;
      backend: unknown;
      attrs?: tf.NamedAttrMap;
    }) => {
      const x = args.inputs['x']!;
      const backend = args.backend as { incRef?: (dataId: tf.DataId) => void };
      if (x.dtype === 'string' || typeof backend.incRef !== 'function')
        return original.kernelFunc(args as never);
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    }) as tf.KernelFunc,
  });
}

/**
 * One AdamW update in a single pass: (param, grad, m, v) → (param', m', v'), replacing ~12
 * elementwise tf ops (each a pass over the parameter) per variable.
 */
function adamWKernel(backendName: string) {
  return (({
    inputs,
    backend,
    attrs,
  }: {
    inputs: tf.NamedTensorInfoMap;
    backend: unknown;
    attrs?: tf.NamedAttrMap;
  }) => {
    const names = ['param', 'grad', 'm', 'v'] as const;
    const infos = names.map((n) => inputs[n]!);
    const shape = infos[0]!.shape;
    const size = sizeOf(shape);
    const a = attrs ?? {};
    const lr = Number(a['lr']);
    const beta1 = Number(a['beta1']);
    const beta2 = Number(a['beta2']);
    const eps = Number(a['epsilon']);
    const decay = Number(a['decay']);
    const c1 = Number(a['correction1']);
    const c2 = Number(a['correction2']);
    const update = (
      p: Float32Array,
      g: Float32Array,
      m: Float32Array,
      v: Float32Array,
      po: Float32Array,
      mo: Float32Array,
      vo: Float32Array,
    ): void => {
      for (let i = 0; i < size; i++) {
        const gi = g[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * gi;
        const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
        mo[i] = mi;
        vo[i] = vi;
        const pi = p[i]!;
        po[i] = pi - lr * (mi / c1 / (Math.sqrt(vi / c2) + eps) + decay * pi);
      }
    };
    if (backendName === 'wasm') {
      const wasm = backend as WasmBackendLike;
      const outs = [0, 1, 2].map(() => wasm.makeOutput([...shape], 'float32'));
      const ins = infos.map((i) => wasm.typedArrayFromHeap(i) as Float32Array);
      const os = outs.map((o) => wasm.typedArrayFromHeap(o) as Float32Array);
      update(ins[0]!, ins[1]!, ins[2]!, ins[3]!, os[0]!, os[1]!, os[2]!);
      return outs;
    }
    const cpu = backend as CpuBackendLike;
    const ins = infos.map((i) => cpu.readSync(i.dataId) as Float32Array);
    const os = [0, 1, 2].map(() => new Float32Array(size));
    update(ins[0]!, ins[1]!, ins[2]!, ins[3]!, os[0]!, os[1]!, os[2]!);
    return os.map((o) => cpu.makeTensorInfo([...shape], 'float32', o));
  }) as unknown as tf.KernelFunc;
}

const registered = new Set<string>();
let gradientsRegistered = false;

/** Gradients of the JS kernels, registered once (TensorFlow.js keeps one gradient per kernel name, for all backends). */
function registerGradients(): void {
  if (gradientsRegistered) return;
  gradientsRegistered = true;
  const zeros = (t: tf.Tensor) => (): tf.Tensor => tf.zeros(t.shape, 'float32');
  tf.registerGradient({
    kernelName: 'CrRmsNorm',
    inputsToSave: ['x', 'weight'],
    gradFunc: (dy, saved, attrs) => {
      const [x, weight] = saved as [tf.Tensor, tf.Tensor];
      const g = dy as tf.Tensor;
      return {
        x: () => tf.engine().runKernel('CrRmsNormGradX', { dy: g, x, weight }, attrs) as tf.Tensor,
        weight: () =>
          tf.engine().runKernel('CrRmsNormGradWeight', { dy: g, x }, attrs) as tf.Tensor,
      };
    },
  });
  tf.registerGradient({
    kernelName: 'CrRope',
    inputsToSave: ['cos', 'sin', 'positions'],
    gradFunc: (dy, saved, attrs) => {
      const [cos, sin, positions] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      return {
        x: () =>
          tf
            .engine()
            .runKernel(
              'CrRope',
              { x: dy as tf.Tensor, cos, sin, positions },
              { inverse: attrs['inverse'] !== true },
            ) as tf.Tensor,
        cos: zeros(cos),
        sin: zeros(sin),
        positions: zeros(positions),
      };
    },
  });
}

export const JS_KERNEL_BACKENDS = ['wasm', 'cpu'] as const;

/** Registers the JS kernels for `backendName` (idempotent). Called by `initBackend` once the backend is ready. */
export function registerMissingKernels(backendName: string): void {
  if (
    registered.has(backendName) ||
    !(JS_KERNEL_BACKENDS as readonly string[]).includes(backendName)
  )
    return;
  registered.add(backendName);
  registerGradients();
  const existing = new Set(tf.getKernelsForBackend(backendName).map((k) => k.kernelName));
  for (const definition of [
    transposeKernel,
    transposedMatMulKernel,
    gatherRowsKernel,
    scatterAddRowsKernel,
    pickKernel,
    rmsNormKernel,
    rmsNormGradXKernel,
    rmsNormGradWeightKernel,
    ropeKernel,
    pickedLogSoftmaxGradKernel,
    softmaxGradKernel,
    swigluActKernel,
  ]) {
    if (!existing.has(definition.name)) register(definition, [backendName]);
  }
  if (!existing.has('UnsortedSegmentSum')) register(unsortedSegmentSumKernel, [backendName]);
  if (!existing.has('CrAdamW'))
    tf.registerKernel({ kernelName: 'CrAdamW', backendName, kernelFunc: adamWKernel(backendName) });
  if (backendName === 'wasm') shareIdentityOnWasm();
  if (backendName === 'wasm' && !existing.has('CrSlicedMatMul')) {
    tf.registerKernel({
      kernelName: 'CrSlicedMatMul',
      backendName: 'wasm',
      kernelFunc: wasmSlicedMatMul as unknown as tf.KernelFunc,
    });
  }
}

/** Whether `CrSlicedMatMul` runs here (wasm with the expected module surface). */
export function slicedMatMulActive(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  registerMissingKernels('wasm');
  return wasmSlicedMatMulSupported(tf.backend());
}

/** Whether the JS kernels above serve the active backend (else the fast ops fall back to standard tf ops). */
export function jsKernelsActive(): boolean {
  const name = tf.getBackend();
  if (!(JS_KERNEL_BACKENDS as readonly string[]).includes(name)) return false;
  registerMissingKernels(name);
  return true;
}
