import { describe, expect, it } from 'vitest';
import {
  checkpointStepName,
  interleave,
  parseCheckpointStepName,
  roundRobin,
} from './vocabulary.js';

describe('shared constants', () => {
  it('names checkpoints step-%08d and reads the step back', () => {
    expect(checkpointStepName(42)).toBe('step-00000042');
    expect(parseCheckpointStepName('step-00000042')).toBe(42);
    expect(parseCheckpointStepName('step-42')).toBeUndefined();
  });

  it('takes items round-robin over their groups', () => {
    const items = ['a1', 'a2', 'a3', 'b1', 'c1', 'c2'];
    expect(roundRobin(items, (s) => s[0]!, 4)).toEqual(['a1', 'b1', 'c1', 'a2']);
    expect(roundRobin(items, (s) => s[0]!, 0)).toEqual(items);
    expect(roundRobin(items, (s) => s[0]!, 10)).toEqual(items);
  });

  it('interleaves groups of unequal length, up to a limit', () => {
    expect(interleave([['a1', 'a2', 'a3'], [], ['c1']])).toEqual(['a1', 'c1', 'a2', 'a3']);
    expect(
      interleave(
        [
          ['a1', 'a2'],
          ['b1', 'b2'],
        ],
        3,
      ),
    ).toEqual(['a1', 'b1', 'a2']);
  });
});
