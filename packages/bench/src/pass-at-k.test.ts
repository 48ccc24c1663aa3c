import { describe, expect, it } from 'vitest';
import { meanPassAtK, passAtK } from './pass-at-k.js';

describe('passAtK', () => {
  it('is c/n for k = 1', () => {
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 12);
    expect(passAtK(1, 0, 1)).toBe(0);
    expect(passAtK(1, 1, 1)).toBe(1);
  });

  it('matches 1 - C(n-c, k) / C(n, k)', () => {
    // C(7,5)/C(10,5) = 21/252
    expect(passAtK(10, 3, 5)).toBeCloseTo(1 - 21 / 252, 12);
    expect(passAtK(5, 1, 2)).toBeCloseTo(1 - 6 / 10, 12);
  });

  it('is 1 when n - c < k, as the harness computes it', () => {
    expect(passAtK(10, 7, 5)).toBe(1);
    expect(passAtK(3, 0, 5)).toBe(1);
  });

  it('rejects impossible counts', () => {
    expect(() => passAtK(3, 4, 1)).toThrow(RangeError);
    expect(() => passAtK(3, 1, 0)).toThrow(RangeError);
  });

  it('averages over items, x100', () => {
    expect(
      meanPassAtK(
        [
          { n: 2, c: 1 },
          { n: 4, c: 4 },
          { n: 1, c: 0 },
        ],
        1,
      ),
    ).toBeCloseTo(50, 10);
    expect(meanPassAtK([], 1)).toBeUndefined();
  });
});
