import { describe, expect, it } from 'vitest';
import { balanceLabels, labelCap, topLabelShare } from './balance-labels.js';
import type { TaskRecord, TaskType } from '@codereasoner/protocol';

function task(id: number, type: TaskType, answer: string): TaskRecord {
  return {
    id: `t${id}`,
    programId: `p${id}`,
    callId: `c${id}`,
    split: 'train',
    type,
    code: 'def f(x):\n    return x\n',
    entryPoint: 'f',
    input: 'f(1)',
    output: '1',
    answer,
    meta: {},
  };
}

describe('labelCap', () => {
  it('is the largest per-answer count keeping every answer within the share', () => {
    // 78 yes / 22 no at 0.5: keep 22 of each
    expect(labelCap([78, 22], 0.5)).toBe(22);
    // counts 10, 3, 3, 2, 2 at 0.25: m = 4 keeps 4+3+3+2+2 = 14 and 4 <= 3.5 fails; m = 3 keeps 13, 3 <= 3.25
    expect(labelCap([10, 3, 3, 2, 2], 0.25)).toBe(3);
    expect(labelCap([1, 1, 1, 1, 1], 0.2)).toBe(1);
    // too few distinct answers for the share: one task of each
    expect(labelCap([5], 0.5)).toBe(1);
    expect(labelCap([4, 1, 1], 0.2)).toBe(1);
    expect(labelCap([], 0.5)).toBe(0);
    expect(() => labelCap([1], 0)).toThrow(RangeError);
  });
});

describe('balanceLabels', () => {
  const tasks: TaskRecord[] = [];
  for (let i = 0; i < 8; i++) tasks.push(task(tasks.length, 'coverage', 'yes'));
  for (let i = 0; i < 2; i++) tasks.push(task(tasks.length, 'coverage', 'no'));
  for (let i = 0; i < 6; i++) tasks.push(task(tasks.length, 'output', '0'));
  for (const answer of ['-1', '-1', '-1', '-1', '3', '4', '5', '6'])
    tasks.push(task(tasks.length, 'path', answer));

  it('caps each answer of the listed types and leaves the other types alone', () => {
    const kept = balanceLabels(tasks, { coverage: 0.5, path: 0.25 }, 1);
    const count = (type: TaskType, answer: string): number =>
      kept.filter((t) => t.type === type && t.answer === answer).length;
    expect(count('coverage', 'yes')).toBe(2);
    expect(count('coverage', 'no')).toBe(2);
    expect(count('output', '0')).toBe(6);
    // path: -1 x4, four singletons; m = 1 keeps 5 (1 <= 1.25), m = 2 keeps 6 (2 > 1.5)
    expect(count('path', '-1')).toBe(1);
    expect(kept.filter((t) => t.type === 'path')).toHaveLength(5);
    const shares = topLabelShare(kept);
    expect(shares.coverage).toBe(0.5);
    expect(shares.path).toBe(0.2);
    expect(shares.output).toBe(1);
    // the kept tasks stay in their order
    const ids = kept.map((t) => Number(t.id.slice(1)));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it('is seeded and removes nothing from a balanced list', () => {
    const once = balanceLabels(tasks, { coverage: 0.5, path: 0.25 }, 7);
    expect(balanceLabels(tasks, { coverage: 0.5, path: 0.25 }, 7)).toEqual(once);
    expect(balanceLabels(once, { coverage: 0.5, path: 0.25 }, 99)).toEqual(once);
    expect(balanceLabels(tasks, {}, 7)).toEqual(tasks);
  });
});
