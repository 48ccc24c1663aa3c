import { describe, expect, it } from 'vitest';
import { compactionOrder, moveRows } from './row-compaction.js';

describe('dropping finished rows', () => {
  it('orders a compaction so that only rows past the new size move', () => {
    expect(compactionOrder([true, true, true])).toEqual([0, 1, 2]);
    expect(compactionOrder([true, false, true, true])).toEqual([0, 3, 2]);
    expect(compactionOrder([false, true, false, true, true, false])).toEqual([4, 1, 3]);
    expect(compactionOrder([false, false, true])).toEqual([2]);
    expect(compactionOrder([true, true, false, false])).toEqual([0, 1]);
  });

  it('moves rows of a cache in place, from an offset, leaving the rows that stay', () => {
    // 5 rows of 2 floats after 1 float that is not the cache's
    const array = Float32Array.from([99, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5]);
    moveRows([{ array, base: 1 }], [0, 4, 2], 5, 2);
    expect(Array.from(array.subarray(0, 7))).toEqual([99, 0, 0.5, 4, 4.5, 2, 2.5]);
  });

  it('refuses a keep list whose moves would overwrite a row before it moves', () => {
    const array = new Float32Array(8);
    const move = (keep: number[]) => moveRows([{ array, base: 0 }], keep, 4, 2);
    expect(() => move([1, 0])).toThrow(/row 1 moves to 0 but stays in the batch of 2/);
    expect(() => move([0, 3, 3])).toThrow(/row 3 at 2 is not a distinct row below 4/);
    expect(() => move([0, 4])).toThrow(/row 4 at 1 is not a distinct row below 4/);
    expect(() => move([])).toThrow(/keeps 0 of 4 rows/);
  });
});
