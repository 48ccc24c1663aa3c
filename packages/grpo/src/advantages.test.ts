import { describe, expect, it } from 'vitest';
import { groupAdvantages } from './advantages.js';
import { GrpoShapeError, NonFiniteValueError } from './errors.js';

describe('groupAdvantages', () => {
  it('z-scores a group with the Bessel std plus 1e-4 (TRL), matching anchors §6', () => {
    // [1,0,0,1]: mean 0.5; squared deviations 4 × 0.25 = 1; Bessel variance 1/3; std 0.5773503.
    const { advantages, groups } = groupAdvantages([1, 0, 0, 1], { groupSize: 4 });
    const a = 0.5 / (Math.sqrt(1 / 3) + 1e-4);
    expect(advantages).toEqual([a, -a, -a, a]);
    expect(a).toBeCloseTo(0.865875, 6); // anchors §6, TRL convention
    expect(groups[0]).toEqual({
      mean: 0.5,
      std: Math.sqrt(1 / 3),
      scorable: 4,
      status: 'informative',
    });
  });

  it('uses the given epsilon (verl 1e-6)', () => {
    const { advantages } = groupAdvantages([1, 0, 0, 1], { groupSize: 4, epsilon: 1e-6 });
    expect(advantages[0]).toBeCloseTo(0.866024, 6);
  });

  it('only centres with scaleRewards none (Dr. GRPO)', () => {
    expect(
      groupAdvantages([1, 0, 0, 1], { groupSize: 4, scaleRewards: 'none' }).advantages,
    ).toEqual([0.5, -0.5, -0.5, 0.5]);
  });

  it('matches anchors §6 for [0.2, 0.9, 0.4, 0.7] and for batch scaling', () => {
    // mean 0.55, deviations ∓0.35, ∓0.15; Σd² = 0.29; Bessel var 0.29/3; std 0.3109126.
    const group = groupAdvantages([0.2, 0.9, 0.4, 0.7], { groupSize: 4 }).advantages;
    const expected = [-0.35, 0.35, -0.15, 0.15].map((d) => d / (Math.sqrt(0.29 / 3) + 1e-4));
    group.forEach((a, i) => expect(a).toBeCloseTo(expected[i]!, 12));
    expect(group.map((a) => Number(a.toFixed(6)))).toEqual([
      -1.125356, 1.125356, -0.482296, 0.482296,
    ]);

    // batch: the means stay per group, the std is over all 8: mean 0.525, Σd² = 1.295, var 1.295/7 = 0.185.
    const batch = groupAdvantages([1, 0, 0, 1, 0.2, 0.9, 0.4, 0.7], {
      groupSize: 4,
      scaleRewards: 'batch',
    });
    expect(batch.batchStd).toBeCloseTo(Math.sqrt(0.185), 14);
    const s = Math.sqrt(0.185) + 1e-4;
    const want = [0.5, -0.5, -0.5, 0.5, -0.35, 0.35, -0.15, 0.15].map((d) => d / s);
    batch.advantages.forEach((a, i) => expect(a).toBeCloseTo(want[i]!, 12));
    expect(Number(batch.advantages[0]!.toFixed(6))).toBe(1.162206);
    expect(batch.advantages.slice(4).map((a) => Number(a.toFixed(6)))).toEqual([
      -0.813544, 0.813544, -0.348662, 0.348662,
    ]);
  });

  it('detects identical rewards by exact equality: advantages exactly 0, never ±1/epsilon', () => {
    // 0.1 + 0.1 + 0.1 = 0.30000000000000004, so a float mean leaves a residue of about 1.4e-17 in
    // every deviation, and the float std is about 1.7e-17 (> 0): a z-score without epsilon gives ±1.
    const rewards = [0.1, 0.1, 0.1];
    const floatMean = (0.1 + 0.1 + 0.1) / 3;
    expect(rewards[0]! - floatMean).not.toBe(0);
    const result = groupAdvantages(rewards, { groupSize: 3, epsilon: 0 });
    expect(result.advantages).toEqual([0, 0, 0]);
    expect(result.groups[0]!.status).toBe('allSame');
    expect(result.groups[0]!.std).toBe(0);
    expect(result.fracZeroStd).toBe(1);
  });

  it('leaves null rewards out of the mean and std and gives them advantage 0', () => {
    // scorable [1, 0, 1]: mean 2/3; deviations 1/3, -2/3, 1/3; Σd² = 6/9; Bessel var 1/3.
    const { advantages, groups } = groupAdvantages([1, null, 0, 1], { groupSize: 4 });
    const s = Math.sqrt(1 / 3) + 1e-4;
    expect(groups[0]!.mean).toBeCloseTo(2 / 3, 15);
    expect(groups[0]!.scorable).toBe(3);
    expect(advantages[1]).toBe(0);
    expect(advantages[0]).toBeCloseTo(1 / 3 / s, 12);
    expect(advantages[2]).toBeCloseTo(-2 / 3 / s, 12);
  });

  it('reports unscorable and all-same groups separately', () => {
    const result = groupAdvantages([null, null, 1, 1, 0, 1, 5, null], { groupSize: 2 });
    expect(result.groups.map((g) => g.status)).toEqual([
      'unscorable',
      'allSame',
      'informative',
      'allSame',
    ]);
    expect(result.advantages).toEqual([
      0,
      0,
      0,
      0,
      -0.5 / (Math.sqrt(0.5) + 1e-4),
      0.5 / (Math.sqrt(0.5) + 1e-4),
      0,
      0,
    ]);
    expect(result.fracZeroStd).toBe(0.5);
    expect(result.fracUnscorable).toBe(0.25);
  });

  it('names a non-finite reward', () => {
    expect(() => groupAdvantages([1, 0, Number.NaN, 1], { groupSize: 2 })).toThrow(
      NonFiniteValueError,
    );
    expect(() => groupAdvantages([1, 0, Number.POSITIVE_INFINITY, 1], { groupSize: 2 })).toThrow(
      /rewards\[2\] is Infinity/,
    );
  });

  it('rejects rewards that do not form whole groups', () => {
    expect(() => groupAdvantages([1, 0, 1], { groupSize: 2 })).toThrow(GrpoShapeError);
  });
});
