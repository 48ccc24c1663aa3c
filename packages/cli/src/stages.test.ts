import type { TaskRecord } from '@codereasoner/protocol';
import { describe, expect, it } from 'vitest';
import { sampleByType } from './stages.js';

function task(id: string, type: TaskRecord['type']): TaskRecord {
  return { id, type } as TaskRecord;
}

describe('sampleByType', () => {
  const tasks = [
    ...['o1', 'o2', 'o3'].map((id) => task(id, 'output')),
    ...['i1', 'i2'].map((id) => task(id, 'input')),
    task('c1', 'coverage'),
  ];

  it('takes at most perType of each type, interleaved so a prefix covers every type', () => {
    const picked = sampleByType(tasks, 2, 1);
    expect(picked.map((t) => t.type)).toEqual(['output', 'input', 'coverage', 'output', 'input']);
    expect(new Set(picked.map((t) => t.id)).size).toBe(5);
  });

  it('is the same for the same seed and differs for another', () => {
    const ids = (seed: number) =>
      sampleByType(tasks, 1, seed)
        .map((t) => t.id)
        .join(',');
    expect(ids(3)).toBe(ids(3));
    const seen = new Set([1, 2, 3, 4, 5, 6, 7, 8].map(ids));
    expect(seen.size).toBeGreaterThan(1);
  });
});
