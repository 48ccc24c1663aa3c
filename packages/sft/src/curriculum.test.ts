import { describe, expect, it } from 'vitest';
import { BatchSchedule } from './batching.js';
import { curriculumPlanner } from './curriculum.js';
import { rowLevels } from './packing.js';
import type { SftRecord } from './dataset.js';

describe('curriculumPlanner', () => {
  const lengths = [10, 20, 30, 40, 50, 60, 70];
  const levels = [2, 0, 1, 0, 2, 1, 0];
  const options = { batchSize: 2, bucketBatches: 1, seed: 3 };

  it('plans each epoch from the easiest level to the hardest, every example once', () => {
    for (const epoch of [0, 1]) {
      const batches = curriculumPlanner(lengths, levels, options)(epoch);
      // a batch holds one level, and levels never go down
      const batchLevels = batches.map((batch) => {
        const own = new Set(batch.map((index) => levels[index]));
        expect(own.size).toBe(1);
        return [...own][0]!;
      });
      expect([...batchLevels].sort((a, b) => a - b)).toEqual(batchLevels);
      expect(batches.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      // level 0 has 3 examples (2 batches), levels 1 and 2 have 2 each (1 batch each)
      expect(batchLevels).toEqual([0, 0, 1, 2]);
    }
  });

  it('drives BatchSchedule across epochs', () => {
    const planner = curriculumPlanner(lengths, levels, options);
    const schedule = new BatchSchedule(lengths, options, planner);
    expect(schedule.batchesPerEpoch).toBe(4);
    expect(schedule.at(4)).toEqual({ epoch: 1, batch: planner(1)[0] });
    expect(schedule.at(3).batch.every((index) => levels[index] === 2)).toBe(true);
  });

  it('refuses levels that do not match the examples', () => {
    expect(() => curriculumPlanner([1, 2], [0], options)).toThrow(/one level per example/);
    expect(() => curriculumPlanner([1], [0.5], options)).toThrow(/not an integer/);
  });
});

describe('rowLevels', () => {
  const record = (id: string) => ({ id }) as SftRecord;
  const records = [record('easy'), record('hard'), record('mid')];
  const rank = (r: SftRecord) => ({ easy: 0, mid: 1, hard: 3 })[r.id as 'easy'];

  it('takes the record of each kept example, or the hardest member of a packed row', () => {
    const rows = [
      { ids: [1], assistantMask: [1] },
      { ids: [1], assistantMask: [1] },
    ];
    // kept: row 0 is record 2, row 1 is record 0
    expect(rowLevels(rows, [2, 0], records, rank)).toEqual([1, 0]);
    expect(rowLevels(rows, [2, 0], records, undefined)).toEqual([0, 0]);
    const packed = [{ ids: [1, 2], assistantMask: [1, 1], segments: [1, 2], members: [0, 1] }];
    expect(rowLevels(packed, [0, 1], records, rank)).toEqual([3]);
  });
});
