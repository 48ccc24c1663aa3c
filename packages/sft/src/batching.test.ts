import { padBatch, Tokenizer, type ChatMessage } from '@codereasoner/core-tensors';
import { describe, expect, it } from 'vitest';
import { BatchSchedule, encodeExamples, lossMask, planEpoch, shardRows } from './batching.js';

const conversations: ChatMessage[][] = [
  [
    { role: 'system', content: 'You reason about code.' },
    { role: 'user', content: 'What does f(2) return?' },
    { role: 'assistant', content: '<think>\nx=2\n</think>\n<answer>4</answer>' },
  ],
  [
    { role: 'user', content: 'Is line 3 executed?' },
    { role: 'assistant', content: '<answer>yes</answer>' },
    { role: 'user', content: 'And line 4?' },
    { role: 'assistant', content: '<answer>no</answer>' },
  ],
];
const tokenizer = Tokenizer.train(
  conversations.flatMap((messages) => messages.map((message) => message.content)),
  { vocabSize: 300 },
);

describe('loss masking', () => {
  it('takes the loss on exactly the assistant contents and their <|im_end|>', () => {
    const { examples } = encodeExamples(conversations, tokenizer, 512);
    expect(examples).toHaveLength(2);
    for (const [index, example] of examples.entries()) {
      const length = example.ids.length + 3; // padded batch
      const weights = lossMask(example, length);
      expect(weights).toHaveLength(length - 1);
      // position t predicts token t + 1: gather the predicted tokens that carry loss
      const targets = example.ids.filter((_, t) => t > 0 && weights[t - 1] === 1);
      const expected = conversations[index]!.filter((message) => message.role === 'assistant')
        .map((message) => `${message.content}<|im_end|>`)
        .join('');
      expect(tokenizer.decode(targets)).toBe(expected);
      // nothing in the padding
      expect(Array.from(weights.slice(example.ids.length - 1))).toEqual([0, 0, 0]);
      // every other position carries none
      const ones = Array.from(weights).filter((w) => w === 1).length;
      expect(ones).toBe(targets.length);
    }
  });

  it('drops over-long examples instead of cutting their answers', () => {
    const lengths = encodeExamples(conversations, tokenizer, 512).examples.map(
      (example) => example.ids.length,
    );
    const shorter = lengths[0]! < lengths[1]! ? 0 : 1;
    expect(lengths[0]).not.toBe(lengths[1]);
    const { examples, kept, droppedTooLong } = encodeExamples(
      conversations,
      tokenizer,
      lengths[shorter]!,
    );
    expect(droppedTooLong).toBe(1);
    expect(kept).toEqual([shorter]);
    expect(examples[0]!.ids.at(-1)).toBe(tokenizer.special.imEnd);
  });
});

describe('planEpoch', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => 10 + ((i * 37) % 90));
  const options = { batchSize: 8, bucketBatches: 4, seed: 3 };

  it('visits every example once per epoch, reproducibly, in a new order each epoch', () => {
    const first = planEpoch(lengths, 0, options);
    expect(first.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    expect(first).toHaveLength(13);
    expect(planEpoch(lengths, 0, options)).toEqual(first);
    expect(planEpoch(lengths, 1, options)).not.toEqual(first);
    expect(planEpoch(lengths, 0, { ...options, seed: 4 })).not.toEqual(first);
  });

  it('groups similar lengths, so batches pad less than unbucketed ones', () => {
    const padding = (batches: number[][]) =>
      batches.reduce((sum, batch) => {
        const max = Math.max(...batch.map((i) => lengths[i]!));
        return sum + batch.reduce((s, i) => s + max - lengths[i]!, 0);
      }, 0);
    const bucketed = padding(planEpoch(lengths, 0, options));
    const plain = padding(planEpoch(lengths, 0, { ...options, bucketBatches: 1 }));
    expect(bucketed).toBeLessThan(plain / 2);
  });

  it('BatchSchedule counts micro-batches across epochs', () => {
    const schedule = new BatchSchedule(lengths, options);
    expect(schedule.batchesPerEpoch).toBe(13);
    expect(schedule.at(13)).toEqual({ epoch: 1, batch: planEpoch(lengths, 1, options)[0] });
    expect(schedule.at(2).batch).toEqual(planEpoch(lengths, 0, options)[2]);
  });
});

describe('shardRows', () => {
  const rows = [3, 7, 5, 2, 6].map((length, index) => ({
    ids: Array.from({ length }, (_, t) => 10 * index + t + 1),
    assistantMask: Array.from({ length }, (_, t) => (t >= 1 ? 1 : 0)),
  }));

  it('as one part pads the micro-batch exactly as padBatch, with lossMask weights', () => {
    const [whole, ...rest] = shardRows(rows, 0, 1);
    expect(rest).toHaveLength(0);
    const { inputIds, attentionMask } = padBatch(
      rows.map((row) => row.ids),
      0,
    );
    expect(Array.from(whole!.data.inputIds.values)).toEqual(Array.from(inputIds.dataSync()));
    expect(Array.from(whole!.data.attentionMask.values)).toEqual(
      Array.from(attentionMask.dataSync()),
    );
    expect(whole!.data.inputIds.shape).toEqual([5, 7]);
    expect(whole!.data.weights.shape).toEqual([5, 6]);
    expect(Array.from(whole!.data.weights.values.subarray(0, 6))).toEqual([1, 1, 0, 0, 0, 0]);
    // row t predicts token t + 1: every token but the first is a target
    expect(whole!.count).toBe(2 + 6 + 4 + 1 + 5);
    expect(whole!.tokens).toBe(23);
    inputIds.dispose();
    attentionMask.dispose();
  });

  it('splits rows into near-equal contiguous blocks, each padded to its own longest row', () => {
    const shards = shardRows(rows, 0, 2);
    expect(shards.map((shard) => shard.data.inputIds.shape)).toEqual([
      [3, 7],
      [2, 6],
    ]);
    expect(shards.map((shard) => shard.count)).toEqual([12, 6]);
    expect(shards.map((shard) => shard.tokens)).toEqual([15, 8]);
    expect(Array.from(shards[1]!.data.inputIds.values.subarray(0, 6))).toEqual([
      31, 32, 0, 0, 0, 0,
    ]);
    // never more parts than rows
    expect(shardRows(rows.slice(0, 2), 0, 4)).toHaveLength(2);
  });
});
