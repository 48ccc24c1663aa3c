import { describe, expect, it } from 'vitest';
import {
  chunk,
  gatherCompletions,
  layoutMicroBatch,
  lossShard,
  type Sample,
} from './micro-batch.js';

const PAD = 9;
// Row 0: prompt [1, 2], completion [3, 4, 5]; row 1: prompt [6], completion [7], left out of the loss.
const samples: Sample[] = [
  {
    promptIds: [1, 2],
    completionIds: [3, 4, 5],
    advantage: 0.5,
    active: 1,
    oldLogProbs: Float32Array.of(-1, -2, -3),
    refLogProbs: Float32Array.of(-4, -5, -6),
  },
  {
    promptIds: [6],
    completionIds: [7],
    advantage: -1,
    active: 0,
    oldLogProbs: Float32Array.of(-7),
    refLogProbs: Float32Array.of(-8),
  },
];

describe('layoutMicroBatch', () => {
  it('pads the sequences and marks the columns that score completion tokens', () => {
    const layout = layoutMicroBatch(samples, PAD);
    expect(layout).toMatchObject({ rows: 2, time: 5, width: 4 });
    expect(Array.from(layout.inputIds)).toEqual([1, 2, 3, 4, 5, 6, 7, PAD, PAD, PAD]);
    expect(Array.from(layout.attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    // Column j scores token j + 1: row 0's completion (tokens 2..4) at columns 1..3, row 1's (token 1) at 0.
    expect(Array.from(layout.targetMask)).toEqual([0, 1, 1, 1, 1, 0, 0, 0]);
    expect(Array.from(layout.lossMask)).toEqual([0, 1, 1, 1, 0, 0, 0, 0]);
  });

  it('reads per-token values of the completions back out of those columns', () => {
    const { width } = layoutMicroBatch(samples, PAD);
    const values = [10, 11, 12, 13, 20, 21, 22, 23];
    expect(gatherCompletions(values, samples, width)).toEqual([[11, 12, 13], [20]]);
  });

  it('puts advantages, the loss mask and old / reference log-probs in the loss shard', () => {
    const layout = layoutMicroBatch(samples, PAD);
    const shard = lossShard(layout, samples, { oldLogProbs: true, refLogProbs: true });
    expect(Object.keys(shard).sort()).toEqual(
      [
        'advantages',
        'attentionMask',
        'inputIds',
        'mask',
        'oldLogProbs',
        'refLogProbs',
        'targetMask',
      ].sort(),
    );
    expect(Array.from(shard['advantages']!.values)).toEqual([0.5, -1]);
    expect(shard['mask']!.shape).toEqual([2, 4]);
    expect(Array.from(shard['oldLogProbs']!.values)).toEqual([0, -1, -2, -3, -7, 0, 0, 0]);
    expect(Array.from(shard['refLogProbs']!.values)).toEqual([0, -4, -5, -6, -8, 0, 0, 0]);
    const onPolicy = lossShard(layout, samples, { oldLogProbs: false, refLogProbs: false });
    expect(onPolicy['oldLogProbs']).toBeUndefined();
    expect(onPolicy['refLogProbs']).toBeUndefined();
  });
});

describe('chunk', () => {
  it('cuts in order, the last piece shorter', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });
});
