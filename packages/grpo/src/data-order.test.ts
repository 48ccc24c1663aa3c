import { describe, expect, it } from 'vitest';
import { DataOrder } from './data-order.js';

describe('DataOrder', () => {
  it('walks each epoch once in order without shuffle, crossing epochs', () => {
    const order = new DataOrder(3, { seed: 1, shuffle: false });
    expect(order.take(4)).toEqual([0, 1, 2, 0]);
    expect(order.position).toEqual({ epoch: 1, offset: 1 });
    expect(order.epochs).toBeCloseTo(1 + 1 / 3, 12);
  });

  it('shuffles each epoch into a permutation that depends on the seed and the epoch only', () => {
    const a = new DataOrder(8, { seed: 5, shuffle: true });
    const first = a.take(8);
    const second = a.take(8);
    expect([...first].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...second].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(second).not.toEqual(first);
    // A fresh order set to a position continues exactly as the original (what a resume relies on).
    const b = new DataOrder(8, { seed: 5, shuffle: true });
    b.position = { epoch: 1, offset: 3 };
    expect(b.take(5)).toEqual(second.slice(3));
    expect(new DataOrder(8, { seed: 6, shuffle: true }).take(8)).not.toEqual(first);
  });

  it('hands out a copy of its position', () => {
    const order = new DataOrder(2, { seed: 1, shuffle: false });
    const position = order.position;
    order.take(1);
    expect(position).toEqual({ epoch: 0, offset: 0 });
  });
});
