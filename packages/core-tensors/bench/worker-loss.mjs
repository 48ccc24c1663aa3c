// The training loss of bench/run.mjs for model worker threads: mean next-token NLL over the
// whole batch, so the gradients of a batch's shards (each normalised by the batch's token count)
// sum to the gradient of the batch.
import { shardTensor, tf } from '@codereasoner/core-tensors';

export function meanNll(model, shard, { tokens }) {
  return tf.tidy(() => {
    const ids = shardTensor(shard.ids);
    const mask = shardTensor(shard.mask);
    return tf.neg(tf.div(tf.sum(model.tokenLogProbs(ids, mask).logProbs), tokens));
  });
}
