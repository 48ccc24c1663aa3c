import { CausalLM, initBackend, tf } from '@codereasoner/core-tensors';
import { beforeAll, describe, expect, it } from 'vitest';
import { shardRows, type EncodedExample } from './batching.js';
import { packExamples } from './packing.js';
import { sftShardLoss } from './sft-loss.js';

/** An example of `length` tokens whose second half is the assistant's (the first token never is). */
function example(length: number, offset: number): EncodedExample {
  const ids = Array.from({ length }, (_, t) => 1 + ((offset * 7 + t * 3) % 40));
  const assistantMask = Array.from({ length }, (_, t) => (t >= length / 2 ? 1 : 0));
  return { ids, assistantMask };
}

beforeAll(async () => {
  await initBackend();
});

describe('packExamples', () => {
  it('packs first-fit decreasing, numbering each row segments from 1', () => {
    const examples = [5, 4, 3, 2, 2].map((length, i) => example(length, i));
    const { rows, fill } = packExamples(examples, 7);
    // longest first: 5 -> row 0, 4 -> row 1, 3 -> row 1 (full), 2 -> row 0 (full), 2 -> row 2
    expect(rows.map((row) => row.members)).toEqual([[0, 3], [1, 2], [4]]);
    expect(rows[0]!.segments).toEqual([1, 1, 1, 1, 1, 2, 2]);
    expect(rows[0]!.ids).toEqual([...examples[0]!.ids, ...examples[3]!.ids]);
    expect(rows[1]!.assistantMask).toEqual([
      ...examples[1]!.assistantMask,
      ...examples[2]!.assistantMask,
    ]);
    expect(fill).toBeCloseTo(16 / 21, 10);
    expect(() => packExamples([example(8, 0)], 7)).toThrow(/more than packLength 7/);
    expect(() => packExamples([], 1)).toThrow(RangeError);
  });

  it('gives the same loss as the examples trained one per row', () => {
    const model = CausalLM.create(
      {
        vocabSize: 48,
        hiddenSize: 16,
        intermediateSize: 32,
        numHiddenLayers: 2,
        numAttentionHeads: 2,
        numKeyValueHeads: 2,
        maxPositionEmbeddings: 32,
      },
      { seed: 4 },
    );
    const examples = [9, 6, 5, 4, 3].map((length, i) => example(length, i));
    const { rows } = packExamples(examples, 16);
    expect(rows.length).toBeLessThan(examples.length);
    const total = (batch: EncodedExample[]): { sum: number; count: number } => {
      const [shard] = shardRows(batch, 0, 1);
      const loss = tf.tidy(() => sftShardLoss(model, shard!.data, { count: shard!.count }));
      const value = loss.dataSync()[0]!;
      loss.dispose();
      return { sum: value * shard!.count, count: shard!.count };
    };
    const packed = total(rows);
    const alone = examples.map((e) => total([e]));
    expect(packed.count).toBe(alone.reduce((a, b) => a + b.count, 0));
    expect(packed.sum).toBeCloseTo(
      alone.reduce((a, b) => a + b.sum, 0),
      3,
    );
    // the mask the model sees is the segment numbers, 0 on padding
    const [shard] = shardRows(rows, 0, 1);
    const time = shard!.data.inputIds.shape[1]!;
    expect(Array.from(shard!.data.attentionMask.values.slice(0, time))).toEqual([
      ...rows[0]!.segments,
      ...Array(time - rows[0]!.segments.length).fill(0),
    ]);
    model.dispose();
  });
});
