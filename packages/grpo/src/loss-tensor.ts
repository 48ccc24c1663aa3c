import { tf } from '@codereasoner/core-tensors';
import type { ClipRange, ImportanceSamplingLevel, LossNormalizer } from './policy-loss.js';

/** Inputs of the TF.js GRPO loss; every [B, T] tensor is aligned with `mask` (1 = loss-active token). */
export interface GrpoLossTensorInputs {
  /** Current policy log-probs [B, T], differentiable. */
  logProbs: tf.Tensor2D;
  /** π_old log-probs [B, T]. Omitted on-policy: the current log-probs with the gradient stopped are used. */
  oldLogProbs?: tf.Tensor2D;
  /** Frozen reference log-probs [B, T]; required when beta > 0. */
  refLogProbs?: tf.Tensor2D;
  /** One advantage per row [B]. */
  advantages: tf.Tensor1D;
  mask: tf.Tensor2D;
}

export interface GrpoLossTensorOptions extends ClipRange {
  beta: number;
  importanceSamplingLevel: ImportanceSamplingLevel;
  normalizer: LossNormalizer;
}

/** Identity in the forward pass, zero gradient (TF.js has no stop_gradient op). */
export const stopGradient = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as <T extends tf.Tensor>(x: T) => T;

/**
 * The GRPO loss as TF.js ops: the same formulas as `grpoLossReference` (tested against it in
 * float64 within float32 tolerance). Per token L = −min(w·A, clip(w, 1 − ε_low, 1 + ε_high)·A)
 * + β·k3, w the token ratio or the GSPO sequence ratio, aggregated with the explicit normaliser.
 * Masked positions enter every exp() as 0, so padding cannot overflow.
 */
export function grpoLossTensor(
  inputs: GrpoLossTensorInputs,
  options: GrpoLossTensorOptions,
): tf.Scalar {
  return tf.tidy(() => {
    const { logProbs, mask } = inputs;
    const active = tf.greater(mask, 0);
    const zeros = tf.zerosLike(logProbs);
    const old = inputs.oldLogProbs ?? stopGradient(logProbs);
    const logRatio = tf.where(active, tf.sub(logProbs, old), zeros);
    let ratio: tf.Tensor;
    if (options.importanceSamplingLevel === 'sequence') {
      const count = tf.maximum(tf.sum(mask, 1), 1);
      const meanLogRatio = tf.div(tf.sum(tf.mul(logRatio, mask), 1), count);
      ratio = tf.expandDims(tf.exp(meanLogRatio), 1);
    } else {
      ratio = tf.exp(logRatio);
    }
    const advantages = tf.expandDims(inputs.advantages, 1);
    const low = 1 - options.epsilon;
    const high = 1 + (options.epsilonHigh ?? options.epsilon);
    const unclipped = tf.mul(ratio, advantages);
    const clipped = tf.mul(tf.clipByValue(ratio, low, high), advantages);
    let perToken: tf.Tensor = tf.neg(tf.minimum(unclipped, clipped));
    if (options.beta !== 0) {
      if (inputs.refLogProbs === undefined)
        throw new Error('grpoLossTensor: beta is not 0, so refLogProbs are required');
      const d = tf.where(active, tf.sub(inputs.refLogProbs, logProbs), zeros);
      const k3 = tf.sub(tf.sub(tf.exp(d), d), 1);
      perToken = tf.add(perToken, tf.mul(k3, options.beta));
    }
    const masked = tf.mul(perToken, mask);
    const n = options.normalizer;
    if (n.kind === 'sequenceMean') {
      const rowMeans = tf.div(tf.sum(masked, 1), tf.maximum(tf.sum(mask, 1), 1));
      return tf.div(tf.sum(rowMeans), n.sequences) as tf.Scalar;
    }
    return tf.div(tf.sum(masked), n.kind === 'tokens' ? n.count : n.value) as tf.Scalar;
  });
}
