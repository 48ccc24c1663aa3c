/*
 * The GRPO loss of one micro-batch as a core-tensors worker loss: the trainer runs it in-process,
 * or hands its URL to a ModelWorkerPool whose threads import it (also built as its own entry,
 * dist/shard-loss.js, for that).
 */
import type { tf } from '@codereasoner/core-tensors';
import { shardTensor, type CausalLM, type ShardData } from '@codereasoner/core-tensors';
import { grpoLossTensor, type GrpoLossTensorOptions } from './loss-tensor.js';

export interface GrpoShardOptions extends GrpoLossTensorOptions {
  temperature: number;
  /** The tokenizer's vocabulary size: log-probs over the ids rollouts can sample (a padded model vocabulary is wider). */
  vocabLimit?: number;
  /** Also compute (and send back) the per-token entropy. */
  entropy: boolean;
}

/**
 * Shard arrays: `inputIds` [B, T] int32, `attentionMask` [B, T], `targetMask` [B, T−1] (completion
 * positions: the only rows through the LM head), `mask` [B, T−1] (loss-active tokens),
 * `advantages` [B], and `oldLogProbs` / `refLogProbs` [B, T−1] when off-policy / beta > 0.
 * Returns the loss and, as outputs, the log-probs (and entropy) the metrics are computed from.
 */
export function grpoShardLoss(
  model: CausalLM,
  shard: ShardData,
  options: GrpoShardOptions,
): { loss: tf.Scalar; outputs: Record<string, tf.Tensor> } {
  const get = (name: string): tf.Tensor => shardTensor(shard[name]!);
  const out = model.tokenLogProbs(
    get('inputIds') as tf.Tensor2D,
    get('attentionMask') as tf.Tensor2D,
    {
      temperature: options.temperature,
      entropy: options.entropy,
      ...(options.vocabLimit === undefined ? {} : { vocabLimit: options.vocabLimit }),
      targetMask: get('targetMask') as tf.Tensor2D,
    },
  );
  const loss = grpoLossTensor(
    {
      logProbs: out.logProbs,
      mask: get('mask') as tf.Tensor2D,
      advantages: get('advantages') as tf.Tensor1D,
      ...(shard['oldLogProbs'] === undefined
        ? {}
        : { oldLogProbs: get('oldLogProbs') as tf.Tensor2D }),
      ...(shard['refLogProbs'] === undefined
        ? {}
        : { refLogProbs: get('refLogProbs') as tf.Tensor2D }),
    },
    {
      epsilon: options.epsilon,
      ...(options.epsilonHigh === undefined ? {} : { epsilonHigh: options.epsilonHigh }),
      beta: options.beta,
      importanceSamplingLevel: options.importanceSamplingLevel,
      normalizer: options.normalizer,
    },
  );
  return {
    loss,
    outputs: {
      logProbs: out.logProbs,
      ...(out.entropy === undefined ? {} : { entropy: out.entropy }),
    },
  };
}
