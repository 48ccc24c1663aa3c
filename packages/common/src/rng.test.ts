import { describe, expect, it } from 'vitest';
import { CodeReasonerError } from './errors.js';
import { Rng } from './rng.js';

// Reference values recorded from the two generators this class replaced (core-tensors'
// xoshiro128** `Rng` and data's splitmix32 `Rng.derive`) before they were merged: seeded
// results (models, corpora, baselines) stay bit-identical only while these hold.
describe('Rng streams', () => {
  it('new Rng(seed) is the xoshiro128** stream core-tensors used', () => {
    const rng = new Rng(42);
    expect(Array.from({ length: 5 }, () => rng.nextUint32())).toEqual([
      2837322924, 544945897, 479756282, 3500138142, 339756180,
    ]);
    expect(rng.normal()).toBe(2.6844637537546054);
    expect(rng.shuffle([1, 2, 3, 4, 5, 6, 7])).toEqual([4, 3, 5, 1, 7, 6, 2]);
    expect(rng.fork().next()).toBe(0.9314861814491451);
    expect(new Rng(2 ** 40 + 3).next()).toBe(0.6633156172465533);
  });

  it('Rng.derive(seed, ...labels) is the splitmix32 stream data used', () => {
    const rng = Rng.derive(7, 'generator', 3);
    expect([
      rng.next(),
      rng.int(10),
      rng.range(3, 9),
      rng.chance(0.3),
      rng.pick(['a', 'b', 'c']),
      rng.weighted([
        ['x', 2],
        ['y', 1],
      ]),
      rng.shuffle([1, 2, 3, 4, 5]),
    ]).toEqual([0.885438236175105, 9, 9, true, 'b', 'x', [3, 2, 5, 4, 1]]);
  });

  it('Rng.splitmix32(seed) is the stream data gave for new Rng(seed)', () => {
    const rng = Rng.splitmix32(12345);
    expect([rng.next(), rng.next()]).toEqual([0.279565435834229, 0.1904723544139415]);
  });

  it('resumes either stream from its state', () => {
    for (const rng of [new Rng(9), Rng.derive(9, 'a')]) {
      rng.next();
      const state = rng.getState();
      const resumed = Rng.fromState(JSON.parse(JSON.stringify(state)) as typeof state);
      expect(resumed.next()).toBe(rng.next());
    }
    expect(() => Rng.fromState({ algorithm: 'xoshiro128**', state: [0, 0, 0, 0] })).toThrow(
      /valid Rng state/,
    );
    expect(() => Rng.fromState({ algorithm: 'mt', state: [1] } as never)).toThrow(
      CodeReasonerError,
    );
  });

  it('rejects bounds it cannot honour with a typed error', () => {
    expect(() => new Rng(1).int(0)).toThrow(/positive integer bound, got 0/);
    expect(() => new Rng(Number.NaN)).toThrow(/finite number/);
    expect(() => new Rng(1).pick([])).toThrow(/non-empty/);
  });
});
