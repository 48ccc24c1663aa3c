import {
  availableBackends,
  CausalLM,
  computeGradients,
  initBackend,
  tf,
  type BackendName,
} from '@codereasoner/core-tensors';
import { beforeAll, describe, expect, it } from 'vitest';
import { shardRows, type EncodedExample } from './batching.js';
import { sftShardLoss } from './sft-loss.js';

/*
 * sftShardLoss sends only the positions that predict an assistant token through the LM head and
 * the softmax over the vocabulary (tokenLogProbs' targetMask). The others carry weight 0, so
 * their terms and their gradients are zeros: the loss and every parameter's gradient must be
 * those of the definition, −Σ weights·log p over all positions / count, bit for bit.
 */

/** An example of `length` tokens whose last `answer` tokens are the assistant's. */
function example(length: number, answer: number, offset: number): EncodedExample {
  const ids = Array.from({ length }, (_, t) => 1 + ((offset * 11 + t * 5) % 60));
  const assistantMask = Array.from({ length }, (_, t) => (t >= length - answer ? 1 : 0));
  return { ids, assistantMask };
}

const backends: BackendName[] = await availableBackends();
const JS_BACKENDS = backends.filter((b) => b === 'wasm' || b === 'cpu');

describe.each(JS_BACKENDS)('sftShardLoss on the %s backend', (backend) => {
  beforeAll(async () => {
    await initBackend({ backend });
  });

  it('equals the loss and gradients over every position, bit for bit', () => {
    const model = CausalLM.create(
      {
        vocabSize: 64,
        hiddenSize: 16,
        intermediateSize: 32,
        numHiddenLayers: 2,
        numAttentionHeads: 2,
        numKeyValueHeads: 1,
        maxPositionEmbeddings: 32,
      },
      { seed: 6 },
    );
    // prompts longer than answers and rows of different lengths (right padding)
    const batch = [example(14, 4, 0), example(9, 3, 1), example(17, 5, 2), example(11, 2, 3)];
    const [shard] = shardRows(batch, 0, 1);
    const weights = shard!.data.weights;
    const zeros = weights.values.filter((w) => w === 0).length;
    // most positions are not the assistant's: the test covers skipped positions
    expect(zeros).toBeGreaterThan(weights.values.length / 2);
    const count = shard!.count;
    const definition = (): tf.Scalar =>
      tf.tidy(() => {
        const ids = tf.tensor2d(
          shard!.data.inputIds.values,
          shard!.data.inputIds.shape as [number, number],
          'int32',
        );
        const mask = tf.tensor2d(
          shard!.data.attentionMask.values,
          shard!.data.attentionMask.shape as [number, number],
        );
        const w = tf.tensor2d(weights.values, weights.shape as [number, number]);
        const { logProbs } = model.tokenLogProbs(ids, mask);
        return tf.div(tf.neg(tf.sum(tf.mul(logProbs, w))), count) as tf.Scalar;
      });
    const want = computeGradients(model, definition);
    const got = computeGradients(model, () => sftShardLoss(model, shard!.data, { count }));
    expect(got.loss).toBe(want.loss);
    expect(Object.keys(got.grads).sort()).toEqual(Object.keys(want.grads).sort());
    for (const [name, grad] of Object.entries(want.grads)) {
      const a = got.grads[name]!.dataSync();
      const b = grad.dataSync();
      let differing = 0;
      // equal values (a zero's sign may differ: −0 = 0 compares equal here, as in any update)
      for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) differing += 1;
      expect({ name, differing }).toEqual({ name, differing: 0 });
    }
    tf.dispose([...Object.values(want.grads), ...Object.values(got.grads)]);
    model.dispose();
  });
});
