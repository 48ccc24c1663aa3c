import * as tf from '@tensorflow/tfjs';
import { fusedAttention, linear, linearConstant, slicedAttention } from './fast-ops.js';
import type { RopeScaling } from './config.js';
import { jsKernelsActive } from './kernels.js';

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) * weight (Llama). */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  // One JS kernel (and two for its gradient) instead of ~6 forward and ~15 backward tf ops.
  if (jsKernelsActive())
    return tf.engine().runKernel('CrRmsNorm', { x, weight }, { eps }) as tf.Tensor;
  return tf.tidy(() => {
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
  });
}

/**
 * RoPE inverse frequencies f_i = theta^(-2i/h), i < h/2, with Llama 3's frequency-dependent
 * scaling when given (transformers' `_compute_llama3_parameters`: long wavelengths divided by
 * `factor`, short ones kept, a smooth blend between).
 */
export function ropeInverseFrequencies(
  headDim: number,
  theta: number,
  scaling?: RopeScaling,
): Float64Array {
  const half = headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) out[i] = Math.pow(theta, (-2 * i) / headDim);
  if (scaling === undefined) return out;
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: old } = scaling;
  const lowFreqWavelen = old / lowFreqFactor;
  const highFreqWavelen = old / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = out[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowFreqWavelen) out[i] = f / factor;
    else if (wavelen >= highFreqWavelen) {
      const smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out[i] = ((1 - smooth) * f) / factor + smooth * f;
    }
  }
  return out;
}

/**
 * cos/sin tables of rotary embeddings in Hugging Face's "rotate half" layout: row p holds
 * [cos(p·f_0) … cos(p·f_{h/2-1}), cos(p·f_0) … cos(p·f_{h/2-1})] (f from `ropeInverseFrequencies`).
 */
export function ropeTables(
  maxPositions: number,
  headDim: number,
  theta: number,
  scaling?: RopeScaling,
): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const frequencies = ropeInverseFrequencies(headDim, theta, scaling);
  const cos = new Float32Array(maxPositions * headDim);
  const sin = new Float32Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      // float64 angle then rounding to float32 matches HF's float32 computation to ~1e-7 for these sizes.
      const angle = p * frequencies[i]!;
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + i] = c;
      cos[p * headDim + i + half] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + i + half] = s;
    }
  }
  return { cos, sin };
}

/** rotate_half(x) = concat(-x2, x1) over the last axis, as one matmul with a signed permutation (fast on every backend). */
export function rotateHalfMatrix(headDim: number): tf.Tensor2D {
  const half = headDim / 2;
  const m = new Float32Array(headDim * headDim);
  // out[j] = sum_i x[i] * M[i, j]; out[j] = -x[j + half] for j < half, x[j - half] otherwise.
  for (let j = 0; j < half; j++) m[(j + half) * headDim + j] = -1;
  for (let j = half; j < headDim; j++) m[(j - half) * headDim + j] = 1;
  return tf.tensor2d(m, [headDim, headDim]);
}

/**
 * Applies rotary embeddings to x [..., headDim] given cos/sin broadcastable to x:
 * x·cos + rotate_half(x)·sin.
 */
export function applyRope(
  x: tf.Tensor,
  cos: tf.Tensor,
  sin: tf.Tensor,
  rotate: tf.Tensor2D,
): tf.Tensor {
  return tf.tidy(() => {
    const headDim = x.shape[x.shape.length - 1]!;
    const flat = tf.reshape(x, [-1, headDim]);
    const rotated = tf.reshape(linearConstant(flat as tf.Tensor2D, rotate), x.shape);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}

/**
 * Rotary embeddings of x [B, T, heads, headDim] where token (b, t) sits at positions[b·T + t];
 * cos/sin are the full [maxPositions, headDim] tables from `ropeTables`.
 */
export function applyRopeAt(
  x: tf.Tensor4D,
  positions: tf.Tensor1D,
  cos: tf.Tensor2D,
  sin: tf.Tensor2D,
  rotate: tf.Tensor2D,
): tf.Tensor4D {
  const [b, t, heads, headDim] = x.shape;
  if (jsKernelsActive()) {
    const flat = tf.reshape(x, [b * t, heads, headDim]);
    return tf.reshape(
      tf
        .engine()
        .runKernel('CrRope', { x: flat, cos, sin, positions }, { inverse: false }) as tf.Tensor,
      x.shape,
    ) as tf.Tensor4D;
  }
  return tf.tidy(() => {
    const c = tf.reshape(tf.gather(cos, positions), [b, t, 1, headDim]);
    const s = tf.reshape(tf.gather(sin, positions), [b, t, 1, headDim]);
    return applyRope(x, c, s, rotate) as tf.Tensor4D;
  });
}

/** How attention runs in a forward (and backward) pass; see `CausalLM.attention`. */
export type AttentionPath = 'fused' | 'reference';

/**
 * Grouped-query scaled dot-product attention.
 * q [B, H, T, hd], k and v [B, K, S, hd] with H = K·G (query head h uses key/value head ⌊h/G⌋, as
 * HF's repeat_kv), bias [B, 1, T, S] additive (0 or a large negative) → [B, H, T, hd].
 * Query heads of one group are stacked along the time axis so K/V are never repeated.
 * `path` 'fused' runs the fused kernel (fast-ops `fusedAttention`) on the wasm and cpu backends
 * for more than one query per row; 'reference' (and the tensorflow backend) the tfjs ops below.
 */
export function groupedQueryAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D,
  path: AttentionPath = 'reference',
): tf.Tensor4D {
  // One query per row (a decode step of generate's reference path) keeps the ops: the kernel
  // would copy the whole KV cache out of the backend for each new token.
  if (path === 'fused' && jsKernelsActive() && q.shape[2] > 1) return fusedAttention(q, k, v, bias);
  return tf.tidy(() => {
    const [b, h, t, hd] = q.shape;
    const kvHeads = k.shape[1];
    const s = k.shape[2];
    const groups = h / kvHeads;
    if (jsKernelsActive() && groups * t >= 16) {
      const out = slicedAttention(
        tf.reshape(tf.mul(q, 1 / Math.sqrt(hd)), [b * kvHeads, groups * t, hd]) as tf.Tensor3D,
        tf.reshape(k, [b * kvHeads, s, hd]) as tf.Tensor3D,
        tf.reshape(v, [b * kvHeads, s, hd]) as tf.Tensor3D,
        tf.reshape(bias, [b, 1, 1, t, s]),
        [b, kvHeads, groups, t, s],
      );
      return tf.reshape(out, [b, h, t, hd]) as tf.Tensor4D;
    }
    const qg = tf.reshape(q, [b, kvHeads, groups * t, hd]);
    const scores = tf.mul(tf.matMul(qg, k, false, true), 1 / Math.sqrt(hd));
    const masked = tf.add(
      tf.reshape(scores, [b, kvHeads, groups, t, s]),
      tf.reshape(bias, [b, 1, 1, t, s]),
    );
    const probs = tf.softmax(masked, -1);
    const out = tf.matMul(tf.reshape(probs, [b, kvHeads, groups * t, s]), v);
    return tf.reshape(out, [b, h, t, hd]) as tf.Tensor4D;
  });
}

/** SwiGLU MLP: down(silu(x·gate) ⊙ (x·up)). Weights are [in, out]. */
export function swiglu(
  x: tf.Tensor2D,
  gate: tf.Tensor2D,
  up: tf.Tensor2D,
  down: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const g = linear(x, gate);
    const u = linear(x, up);
    const act = tf.mul(tf.mul(g, tf.sigmoid(g)), u) as tf.Tensor2D;
    return linear(act, down);
  });
}

/**
 * Additive attention bias [B, 1, T, S]: 0 where query t may see key s (causal with an offset, key
 * not padding), else -1e9. Mask values above 0 name segments: a query in segment k sees only keys
 * of segment k, so examples packed into one row do not attend to each other (a 0/1 mask is one
 * segment, as before).
 */
export function attentionBias(
  keyMask: ArrayLike<number>,
  batch: number,
  queryLength: number,
  keyLength: number,
): tf.Tensor4D {
  return tf.tensor4d(attentionBiasValues(keyMask, batch, queryLength, keyLength), [
    batch,
    1,
    queryLength,
    keyLength,
  ]);
}

/** `attentionBias`'s values as a plain array (row-major [B, T, S]), for engines outside tfjs. */
export function attentionBiasValues(
  keyMask: ArrayLike<number>,
  batch: number,
  queryLength: number,
  keyLength: number,
): Float32Array {
  const offset = keyLength - queryLength;
  const data = new Float32Array(batch * queryLength * keyLength);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < queryLength; t++) {
      const row = (b * queryLength + t) * keyLength;
      // a padding query (mask 0) keeps seeing every earlier real key; its output is never used
      const segment = keyMask[b * keyLength + t + offset]!;
      for (let s = 0; s < keyLength; s++) {
        const key = keyMask[b * keyLength + s]!;
        const visible = s <= t + offset && key > 0 && (segment <= 0 || key === segment);
        data[row + s] = visible ? 0 : -1e9;
      }
    }
  }
  return data;
}
