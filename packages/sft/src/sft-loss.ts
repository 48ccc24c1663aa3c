/*
 * The SFT loss of one shard (a block of rows of a micro-batch) as a core-tensors worker loss: the
 * trainer hands its URL to a ModelWorkerPool, whose threads import it (hence its own tsup entry,
 * dist/sft-loss.js); a pool without threads runs it in-process.
 */
import { shardTensor, tf, type CausalLM, type ShardData } from '@codereasoner/core-tensors';

export interface SftShardOptions {
  /** The shard's own target-token count (Σ weights), so the loss is its mean per target token. */
  count: number;
}

/**
 * Shard arrays: `inputIds` [B, T] int32, `attentionMask` [B, T] and `weights` [B, T−1] (1 where
 * position t predicts an assistant token). Returns −Σ weights·log p / count: with the shard's
 * count as its weight in a `reduce: 'mean'` call, the step's gradient is that of the mean loss per
 * target token over all shards, exactly as one whole batch would give.
 */
export function sftShardLoss(
  model: CausalLM,
  shard: ShardData,
  options: SftShardOptions,
): tf.Scalar {
  const inputIds = shardTensor(shard['inputIds']!) as tf.Tensor2D;
  const attentionMask = shardTensor(shard['attentionMask']!) as tf.Tensor2D;
  const weights = shardTensor(shard['weights']!);
  // Only the positions that predict an assistant token go through the LM head and the softmax
  // over the vocabulary (the others' weights are 0, so their terms and gradients are zeros).
  const { logProbs } = model.tokenLogProbs(inputIds, attentionMask, {
    targetMask: weights as tf.Tensor2D,
  });
  return tf.div(tf.neg(tf.sum(tf.mul(logProbs, weights))), options.count) as tf.Scalar;
}
