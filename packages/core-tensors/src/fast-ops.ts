import * as tf from '@tensorflow/tfjs';
import { jsKernelsActive, slicedMatMulActive } from './kernels.js';
import { FusedAttention, prepareBias, type PreparedBias } from './fused-attention.js';
import { transposedProductFits } from './transposed-product.js';

/*
 * Differentiable ops whose backward passes use only non-transposed matrix products. On the wasm
 * backend a matMul with transposeA/transposeB (what tf.matMul's own gradient uses) leaves XNNPACK
 * and runs ~10× slower (3 vs 40 GFLOP/s measured here), so the transposes are done explicitly
 * with a cache-blocked JS kernel first. The native tensorflow backend handles transposed
 * products well and gets the plain formulation.
 */

type CustomGradFunc = Parameters<typeof tf.customGrad>[0];
type Saved = tf.Tensor[];

/** tf.customGrad for a fixed number of tensor inputs, with the save function passed last (typed). */
function customGrad(
  f: (...args: [...tf.Tensor[], tf.GradSaveFunc]) => {
    value: tf.Tensor;
    gradFunc: (dy: tf.Tensor, saved: Saved) => tf.Tensor[];
  },
): (...inputs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad(f as unknown as CustomGradFunc) as (...inputs: tf.Tensor[]) => tf.Tensor;
}

function run(kernel: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor {
  return tf.engine().runKernel(kernel, inputs, attrs) as tf.Tensor;
}

/** Whether a gradient tape is recording (inside tf.grads / variableGrads); outside it the plain forward ops are used. */
function recording(): boolean {
  return tf.engine().state.gradientDepth > 0;
}

/** a [batch, M, K] · b [batch, K, N]; one fast XNNPACK product per slice on wasm. */
export function batchedMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (slicedMatMulActive()) return run('CrSlicedMatMul', { a, b }) as tf.Tensor3D;
  return tf.matMul(a, b);
}

/** Swaps the last two axes of a rank-2/3 tensor (not differentiable; for use inside gradients). */
export function transposeLast2<T extends tf.Tensor>(x: T): T {
  if (jsKernelsActive()) return run('CrTransposeLast2', { x }) as T;
  const perm = x.rank === 2 ? [1, 0] : [0, 2, 1];
  return tf.transpose(x, perm) as T;
}

/** A weight no gradient is wanted for (a base weight under LoRA adapters): only the input's gradient is computed. */
function frozen(w: tf.Tensor): boolean {
  return w instanceof tf.Variable && !w.trainable;
}

/** x [N, in] · w [in, out] → [N, out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  if (!jsKernelsActive() || !recording()) return tf.matMul(x, w);
  if (frozen(w)) return linearConstant(x, w);
  return linearOp(x, w) as tf.Tensor2D;
}

/**
 * Transposed activations by buffer, reused within one backward pass: q/k/v (and gate/up) share
 * their input, so its transpose is computed once, not once per projection. Entries die with the
 * buffer; a disposed entry (the backward pass's scope ended) is recomputed.
 */
const transposedInputs = new WeakMap<tf.DataId, tf.Tensor2D>();

function transposedInput(x: tf.Tensor2D): tf.Tensor2D {
  const cached = transposedInputs.get(x.dataId);
  if (cached !== undefined && !cached.isDisposed && cached.shape[1] === x.shape[0]) return cached;
  const xT = transposeLast2(x);
  transposedInputs.set(x.dataId, xT);
  return xT;
}

let weightGradientKernel = true;

/**
 * Whether weight gradients go through the transposed-product kernel (the default) or the plain
 * formulation (xᵀ transposed explicitly, then tf.matMul). On wasm both give the same bits; the
 * switch is for benchmarks (`bench/run.mjs --weight-grads`) and for the cpu backend, where the
 * kernel's in-order sums differ from tfjs-cpu's blocked matMul in the last float32 bits.
 */
export function setWeightGradientKernel(enabled: boolean): void {
  weightGradientKernel = enabled;
}

function kernelFits(m: number, n: number): boolean {
  return weightGradientKernel && transposedProductFits(m, n);
}

/**
 * aᵀ·b for a [K, M], b [K, N] (a weight gradient, K the tokens): the K-blocked WASM SIMD kernel
 * (transposed-product.ts; bit for bit the plain product on wasm, 2-3× faster there at training
 * shapes) where the output fits its tiles, else aᵀ transposed explicitly and a plain product.
 */
function weightGradient(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (kernelFits(a.shape[1], b.shape[1])) return run('CrTransposedMatMul', { a, b }) as tf.Tensor2D;
  return tf.matMul(transposedInput(a), b);
}

const linearOp = customGrad((...args) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy, saved) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, transposeLast2(sw)), weightGradient(sx, g)];
    },
  };
});

/** x [N, d] · eᵀ for e [V, d] → [N, V] (the tied output embedding). */
export function linearTransposed(x: tf.Tensor2D, e: tf.Tensor2D): tf.Tensor2D {
  if (!jsKernelsActive()) return tf.matMul(x, e, false, true);
  if (!recording()) return tf.matMul(x, transposeLast2(e));
  if (frozen(e)) {
    const op = customGrad((...args) => ({
      value: tf.matMul(args[0] as tf.Tensor2D, transposeLast2(e)),
      gradFunc: (dy) => [tf.matMul(dy as tf.Tensor2D, e)],
    }));
    return op(x) as tf.Tensor2D;
  }
  return linearTransposedOp(x, e) as tf.Tensor2D;
}

const linearTransposedOp = customGrad((...args) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, transposeLast2(b)),
    gradFunc: (dy, saved) => {
      const [sx, se] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      // dE = dyᵀ·x [V, d] directly where the kernel fits; else (xᵀ·dy)ᵀ, which transposes x [N, d]
      // and the [d, V] product rather than dy [N, V] (V ≫ d). Same products, same order.
      const [v, d] = se.shape;
      const dE = kernelFits(v, d)
        ? weightGradient(g, sx)
        : transposeLast2(tf.matMul(transposedInput(sx), g));
      return [tf.matMul(g, se), dE];
    },
  };
});

/** table [V, d] rows at `ids` → [N, d]; the gradient scatters rows back (no UnsortedSegmentSum over a dense gradient). */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (!jsKernelsActive()) return tf.gather(table, ids);
  // A frozen table gets no gradient: its [V, d] scatter would be the largest tensor of the step.
  if (!recording() || frozen(table)) return run('CrGatherRows', { table, ids }) as tf.Tensor2D;
  const rows = table.shape[0];
  // ids is saved (not just closed over) so the engine keeps it alive until the backward pass.
  const op = customGrad((...args) => {
    const [ti, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([ids]);
    return {
      value: run('CrGatherRows', { table: ti, ids }),
      gradFunc: (dy, saved) => [
        run('CrScatterAddRows', { values: dy, ids: saved[0]! }, { numRows: rows }),
      ],
    };
  });
  return op(table) as tf.Tensor2D;
}

/** out [numRows, w] with out[ids[i]] += values[i] (rows not named stay 0); the gradient gathers the rows back. */
export function scatterRows(values: tf.Tensor2D, ids: tf.Tensor1D, numRows: number): tf.Tensor2D {
  if (!jsKernelsActive()) return tf.unsortedSegmentSum(values, ids, numRows) as tf.Tensor2D;
  if (!recording()) return run('CrScatterAddRows', { values, ids }, { numRows }) as tf.Tensor2D;
  const op = customGrad((...args) => {
    const [vi, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([ids]);
    return {
      value: run('CrScatterAddRows', { values: vi, ids }, { numRows }),
      gradFunc: (dy, saved) => [run('CrGatherRows', { table: dy, ids: saved[0]! })],
    };
  });
  return op(values) as tf.Tensor2D;
}

/**
 * log softmax(z)[i, targets[i]] for z [N, V] → [N]. The gradient is (onehot − softmax)·g computed
 * directly, instead of autodiff through max/logSumExp/gather (whose Equal + broadcast + dense
 * segment-sum steps dominated the step time on wasm).
 */
export function pickedLogSoftmax(z: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [n, vocab] = z.shape;
  const pick = (x: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor1D =>
    jsKernelsActive()
      ? (run('CrPickColumns', { x, ids }) as tf.Tensor1D)
      : (tf.sum(tf.mul(x, tf.oneHot(ids, vocab)), 1) as tf.Tensor1D);
  // tf.softmax is one vectorised XNNPACK kernel on wasm, ~3× faster than tf.exp alone over the
  // same [N, V]. log-sum-exp is recovered without a second exp: at the row's argmax
  // p_max = exp(z_max − lse) ≥ 1/V never underflows, so lse = z_max − log(p_max).
  const forward = (logits: tf.Tensor2D): { value: tf.Tensor1D; probs: tf.Tensor2D } => {
    const probs = tf.softmax(logits);
    const lse = tf.sub(tf.max(logits, 1), tf.log(tf.max(probs, 1)));
    const value = tf.sub(pick(logits, targets), lse) as tf.Tensor1D;
    return { value, probs };
  };
  if (!recording()) return forward(z).value;
  const op = customGrad((...args) => {
    const [logits, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const { value, probs } = forward(logits);
    save([probs, targets]);
    return {
      value,
      gradFunc: (dy, saved) => {
        const [sp, st] = saved as [tf.Tensor2D, tf.Tensor1D];
        if (jsKernelsActive()) return [run('CrPickedLogSoftmaxGrad', { probs: sp, ids: st, dy })];
        const g = tf.reshape(dy, [n, 1]);
        return [tf.sub(tf.mul(tf.oneHot(st, vocab), g), tf.mul(sp, g))];
      },
    };
  });
  return op(z) as tf.Tensor1D;
}

/** log Σ exp(z) per row of z [N, V] (see pickedLogSoftmax for how), differentiable: d/dz = softmax(z). */
export function logSumExpRows(z: tf.Tensor2D): tf.Tensor1D {
  const lseOf = (logits: tf.Tensor2D, probs: tf.Tensor2D): tf.Tensor1D =>
    tf.sub(tf.max(logits, 1), tf.log(tf.max(probs, 1))) as tf.Tensor1D;
  if (!recording()) return lseOf(z, tf.softmax(z));
  const op = customGrad((...args) => {
    const [logits, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const probs = tf.softmax(logits);
    save([probs]);
    return {
      value: lseOf(logits, probs),
      gradFunc: (dy, saved) => [tf.mul(saved[0]!, tf.reshape(dy, [-1, 1]))],
    };
  });
  return op(z) as tf.Tensor1D;
}

/** x [N, in] · w [in, out] for a constant w (no gradient for w, e.g. the RoPE rotation). */
export function linearConstant(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  if (!jsKernelsActive() || !recording()) return tf.matMul(x, w);
  const op = customGrad((...args) => ({
    value: tf.matMul(args[0] as tf.Tensor2D, w),
    gradFunc: (dy) => [tf.matMul(dy as tf.Tensor2D, transposeLast2(w))],
  }));
  return op(x) as tf.Tensor2D;
}

/**
 * softmax(q·kᵀ + bias)·v over slices: q [BK, R, hd] (already scaled), k and v [BK, S, hd], bias
 * broadcastable to the scores viewed as [B, K, G, T, S] via `biasShape` (R = G·T). Every product
 * is a batch of plain non-transposed matrix products (XNNPACK per slice on wasm), and the backward
 * pass transposes the small [R, hd] / [S, hd] operands rather than the [R, S] probabilities:
 * dV = (dOᵀ·P)ᵀ, dK = (qᵀ·dS)ᵀ.
 */
export function slicedAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  bias: tf.Tensor,
  scoresShape: number[],
): tf.Tensor3D {
  const [bk, r] = q.shape;
  const s = k.shape[1];
  const probabilities = (qi: tf.Tensor3D, ki: tf.Tensor3D): tf.Tensor3D => {
    const scores = tf.reshape(batchedMatMul(qi, transposeLast2(ki)), scoresShape);
    return tf.reshape(tf.softmax(tf.add(scores, bias), -1), [bk, r, s]) as tf.Tensor3D;
  };
  if (!recording()) return batchedMatMul(probabilities(q, k), v);
  const op = customGrad((...args) => {
    const [qi, ki, vi, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const p = probabilities(qi, ki);
    save([qi, ki, vi, p]);
    return {
      value: batchedMatMul(p, vi),
      gradFunc: (dy, saved) => {
        const [sq, sk, sv, sp] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
        const dO = dy as tf.Tensor3D;
        const dP = batchedMatMul(dO, transposeLast2(sv));
        const dS = jsKernelsActive()
          ? (run('CrSoftmaxGrad', { probs: sp, dy: dP }) as tf.Tensor3D)
          : (tf.mul(sp, tf.sub(dP, tf.sum(tf.mul(dP, sp), -1, true))) as tf.Tensor3D);
        const dQ = batchedMatMul(dS, sk);
        const dK = transposeLast2(batchedMatMul(transposeLast2(sq), dS));
        const dV = transposeLast2(batchedMatMul(transposeLast2(dO), sp));
        return [dQ, dK, dV];
      },
    };
  });
  return op(q, k, v) as tf.Tensor3D;
}

let fusedKernel: FusedAttention | undefined;

/** The bias [B, 1, T, S] prepared for the kernel, per buffer: every layer of a forward pass and the backward pass share one bias. */
const preparedBiases = new WeakMap<tf.DataId, PreparedBias>();

function preparedBias(bias: tf.Tensor4D): PreparedBias {
  const cached = preparedBiases.get(bias.dataId);
  if (cached !== undefined) return cached;
  const [b, , t, s] = bias.shape;
  const prepared = prepareBias(bias.dataSync() as Float32Array, b, t, s);
  preparedBiases.set(bias.dataId, prepared);
  return prepared;
}

/**
 * Grouped-query attention through the fused kernel (fused-attention.ts): q [B, H, T, hd], k and
 * v [B, K, S, hd], bias [B, 1, T, S] → [B, H, T, hd], with the same meaning as
 * `groupedQueryAttention`'s reference ops. Differentiable in q, k and v (the bias is a constant);
 * the backward pass recomputes the probabilities from each row's saved max and sum. The inputs are read
 * out of the backend once and kept as arrays until the backward pass.
 */
export function fusedAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D,
): tf.Tensor4D {
  const [batch, heads, queryLength, headDim] = q.shape;
  const [, kvHeads, keyLength] = k.shape;
  if (bias.shape[0] !== batch || bias.shape[2] !== queryLength || bias.shape[3] !== keyLength)
    throw new RangeError(
      `attention bias [${bias.shape}] does not fit q [${q.shape}] and k [${k.shape}]`,
    );
  const shape = { batch, heads, kvHeads, queryLength, keyLength, headDim };
  const scale = 1 / Math.sqrt(headDim);
  fusedKernel ??= new FusedAttention();
  const kernel = fusedKernel;
  const prepared = preparedBias(bias);
  const forward = (qi: tf.Tensor4D, ki: tf.Tensor4D, vi: tf.Tensor4D) => {
    const arrays = {
      q: qi.dataSync() as Float32Array,
      k: ki.dataSync() as Float32Array,
      v: vi.dataSync() as Float32Array,
    };
    const result = kernel.forward(shape, arrays.q, arrays.k, arrays.v, prepared, scale);
    return { arrays, ...result };
  };
  if (!recording()) return tf.tensor4d(forward(q, k, v).out, q.shape);
  const op = customGrad((...args) => {
    const [qi, ki, vi] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    const { arrays, out, rowStats } = forward(qi, ki, vi);
    return {
      value: tf.tensor4d(out, q.shape),
      gradFunc: (dy) => {
        const { dq, dk, dv } = kernel.backward(
          shape,
          arrays.q,
          arrays.k,
          arrays.v,
          prepared,
          scale,
          out,
          rowStats,
          dy.dataSync() as Float32Array,
        );
        return [tf.tensor4d(dq, q.shape), tf.tensor4d(dk, k.shape), tf.tensor4d(dv, v.shape)];
      },
    };
  });
  return op(q, k, v) as tf.Tensor4D;
}
