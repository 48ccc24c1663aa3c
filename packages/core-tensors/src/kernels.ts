import * as tf from '@tensorflow/tfjs';

/** The part of the wasm backend's public surface the JS kernels below use (see tfjs-backend-wasm's backend_wasm.d.ts). */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

const registered = new Set<string>();

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * UnsortedSegmentSum for the wasm backend, written in JS against the wasm heap. tfjs-backend-wasm
 * has no such kernel, and it is the gradient of `gather`, so without it an embedding lookup cannot
 * be trained on wasm. Rows are accumulated with typed-array loops straight in wasm memory (no copy).
 */
function wasmUnsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  const segmentIds = args.inputs['segmentIds']!;
  const numSegments = Number(args.attrs?.['numSegments']);
  if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum (wasm, JS): only float32 is supported, got ${x.dtype}`);
  const count = sizeOf(segmentIds.shape);
  const inner = count === 0 ? 0 : sizeOf(x.shape) / count;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = backend.makeOutput(outShape, 'float32');
  const outValues = backend.typedArrayFromHeap(out) as Float32Array;
  outValues.fill(0);
  const xValues = backend.typedArrayFromHeap(x) as Float32Array;
  const ids = backend.typedArrayFromHeap(segmentIds);
  for (let i = 0; i < count; i++) {
    const segment = ids[i]!;
    // Out-of-range ids are dropped, as TensorFlow does.
    if (segment < 0 || segment >= numSegments) continue;
    const src = i * inner;
    const dst = segment * inner;
    for (let j = 0; j < inner; j++) outValues[dst + j]! += xValues[src + j]!;
  }
  return out;
}

/** Registers JS kernels a backend lacks (idempotent). Called by `initBackend` after the backend is ready. */
export function registerMissingKernels(backendName: string): void {
  if (backendName !== 'wasm' || registered.has(backendName)) return;
  registered.add(backendName);
  const existing = tf.getKernelsForBackend('wasm').map((k) => k.kernelName);
  if (!existing.includes('UnsortedSegmentSum')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: wasmUnsortedSegmentSum as tf.KernelFunc });
  }
}
