import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';

describe('Rng', () => {
  it('is reproducible per seed and differs across seeds', () => {
    const a = Array.from(
      { length: 5 },
      (
        (r) => () =>
          r.nextUint32()
      )(new Rng(42)),
    );
    const b = Array.from(
      { length: 5 },
      (
        (r) => () =>
          r.nextUint32()
      )(new Rng(42)),
    );
    const c = Array.from(
      { length: 5 },
      (
        (r) => () =>
          r.nextUint32()
      )(new Rng(43)),
    );
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(new Rng(2 ** 40).next()).not.toBe(new Rng(2 ** 40 + 1).next());
  });

  it('serialises its state and resumes the same stream', () => {
    const rng = new Rng(9);
    for (let i = 0; i < 10; i++) rng.next();
    const state = JSON.parse(JSON.stringify(rng.getState()));
    const expected = [rng.next(), rng.int(1000), rng.normal()];
    const resumed = Rng.fromState(state);
    expect([resumed.next(), resumed.int(1000), resumed.normal()]).toEqual(expected);
    expect(() => Rng.fromState({ algorithm: 'xoshiro128**', state: [0, 0, 0, 0] })).toThrow(
      /Not a valid Rng state/,
    );
    expect(() => Rng.fromState({ algorithm: 'mt', state: [1, 2, 3, 4] } as never)).toThrow(
      /Not a valid Rng state/,
    );
  });

  it('draws uniform floats in [0, 1), bounded ints and normals with the right moments', () => {
    const rng = new Rng(1);
    let sum = 0;
    let sumSq = 0;
    const buckets = new Array<number>(10).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      buckets[rng.int(10)]! += 1;
      const z = rng.normal();
      sum += z;
      sumSq += z * z;
    }
    for (const count of buckets) expect(Math.abs(count - n / 10)).toBeLessThan(n / 10 / 8);
    expect(Math.abs(sum / n)).toBeLessThan(0.03);
    expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.05);
    expect(() => rng.int(0)).toThrow(/positive integer/);
  });

  it('shuffles in place reproducibly (a permutation)', () => {
    const xs = Array.from({ length: 20 }, (_, i) => i);
    const a = new Rng(3).shuffle([...xs]);
    expect(new Rng(3).shuffle([...xs])).toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(xs);
    expect(a).not.toEqual(xs);
  });

  it('forks independent, reproducible streams', () => {
    const root = new Rng(5);
    const f1 = root.fork();
    const f2 = root.fork();
    expect(f1.next()).not.toBe(f2.next());
    const again = new Rng(5).fork();
    expect(again.next()).toBe(new Rng(5).fork().next());
  });
});
