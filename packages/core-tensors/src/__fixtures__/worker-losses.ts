// Loss modules for model-worker-pool.test.ts, imported by the worker threads (through tsx, from source).
import * as tf from '@tensorflow/tfjs';
import type { CausalLM } from '../model.js';
import { shardTensor, type ShardData, type WorkerLossResult } from '../worker-protocol.js';

export interface CrossEntropyOptions {
  /** The loss is −Σ mask·log p / normalizer (e.g. the target tokens of the whole batch). */
  normalizer: number;
  /** Also send back the per-token log-probs. */
  outputs?: boolean;
}

/** SFT's masked next-token cross-entropy on a shard { ids [B,T] int32, mask [B,T], targets [B,T-1] }. */
export function maskedCrossEntropy(
  model: CausalLM,
  shard: ShardData,
  options: CrossEntropyOptions,
): WorkerLossResult {
  const ids = shardTensor(shard['ids']!) as tf.Tensor2D;
  const mask = shardTensor(shard['mask']!) as tf.Tensor2D;
  const targets = shardTensor(shard['targets']!) as tf.Tensor2D;
  const { logProbs } = model.tokenLogProbs(ids, mask, { targetMask: targets });
  const loss = tf.div(tf.neg(tf.sum(tf.mul(logProbs, targets))), options.normalizer) as tf.Scalar;
  return options.outputs === true ? { loss, outputs: { logProbs } } : loss;
}

export default maskedCrossEntropy;

export function throwingLoss(): tf.Scalar {
  throw new RangeError('loss exploded on purpose');
}

/** Ends the worker thread it runs in (a crash as the pool sees it). */
export function exitingLoss(): tf.Scalar {
  process.exit(7);
}

export const notAFunction = 42;
