import { describe, expect, it } from 'vitest';
import {
  aggregateLoss,
  clipStatistics,
  grpoLossReference,
  importanceRatios,
  k3Kl,
  lossNormalizer,
  perTokenPolicyLoss,
  stepCounts,
} from './policy-loss.js';

// Anchors §6 fixture, re-derived here by hand: 2 completions, mask [[1,1,0,0],[1,1,1,1]],
// A = [+1, −0.5], ε_low 0.2, ε_high 0.28. Padding entries carry arbitrary values that must not count.
const mask = [
  [1, 1, 0, 0],
  [1, 1, 1, 1],
];
const oldLogProbs = [
  [-1.0, -0.5, -9, -9],
  [-2.0, -0.1, -0.7, -1.2],
];
const logProbs = [
  [-0.7, -0.6, 3, 7],
  [-2.3, -0.05, -0.9, -1.0],
];
const advantages = [1, -0.5];
const clip = { epsilon: 0.2, epsilonHigh: 0.28 };

describe('importanceRatios', () => {
  it('is exp(ℓ − ℓ_old) per active token, 1 on padding', () => {
    const r = importanceRatios(logProbs, oldLogProbs, mask, 'token');
    const want = [
      [Math.exp(-0.7 + 1.0), Math.exp(-0.6 + 0.5), 1, 1],
      [Math.exp(-2.3 + 2.0), Math.exp(-0.05 + 0.1), Math.exp(-0.9 + 0.7), Math.exp(-1.0 + 1.2)],
    ];
    r.forEach((row, i) => row.forEach((v, t) => expect(v).toBeCloseTo(want[i]![t]!, 14)));
    // anchors §6: [[1.349859, 0.904837], [0.740818, 1.051271, 0.818731, 1.221403]]
    expect([r[0]![0], r[0]![1], ...r[1]!].map((v) => Number(v!.toFixed(6)))).toEqual([
      1.349859, 0.904837, 0.740818, 1.051271, 0.818731, 1.221403,
    ]);
  });

  it('is the geometric mean of the token ratios at sequence level (GSPO)', () => {
    const r = importanceRatios(logProbs, oldLogProbs, mask, 'sequence');
    // row 0: mean(0.3, −0.1) = 0.1; row 1: mean(−0.3, 0.05, −0.2, 0.2) = −0.0625.
    expect(r[0]!.every((v) => Math.abs(v - Math.exp(0.1)) < 1e-14)).toBe(true);
    expect(r[1]!.every((v) => Math.abs(v - Math.exp(-0.0625)) < 1e-14)).toBe(true);
  });
});

describe('perTokenPolicyLoss and aggregation (anchors §6 fixture)', () => {
  const ratios = importanceRatios(logProbs, oldLogProbs, mask, 'token');
  const perToken = perTokenPolicyLoss(ratios, advantages, clip);

  it('clips from above for A > 0 and from below for A < 0', () => {
    // row 0, A=+1: min(1.3499, 1.28) → −1.28; min(0.9048, 0.9048) → −0.904837.
    // row 1, A=−0.5: ρ=0.7408 → min(−0.3704, 0.8·−0.5 = −0.4) = −0.4 → +0.4; the others are inside the range.
    expect(perToken[0]![0]).toBeCloseTo(-1.28, 14);
    expect(perToken[0]![1]).toBeCloseTo(-Math.exp(-0.1), 14);
    expect(perToken[1]![0]).toBeCloseTo(0.4, 14);
    expect(perToken[1]![1]).toBeCloseTo(0.5 * Math.exp(0.05), 14);
    expect(perToken[1]![2]).toBeCloseTo(0.5 * Math.exp(-0.2), 14);
    expect(perToken[1]![3]).toBeCloseTo(0.5 * Math.exp(0.2), 14);
  });

  const rowSums = [
    -1.28 - Math.exp(-0.1),
    0.4 + 0.5 * (Math.exp(0.05) + Math.exp(-0.2) + Math.exp(0.2)),
  ];
  const counts = stepCounts(mask, 4);

  it('grpo: mean over completions of token means', () => {
    const loss = aggregateLoss(perToken, mask, lossNormalizer('grpo', counts));
    expect(loss).toBeCloseTo((rowSums[0]! / 2 + rowSums[1]! / 4) / 2, 14);
    expect(loss).toBeCloseTo(-0.302997, 6);
  });

  it('dapo and bnpo (one micro-batch): token sum / 6 active tokens', () => {
    const want = (rowSums[0]! + rowSums[1]!) / 6;
    expect(aggregateLoss(perToken, mask, lossNormalizer('dapo', counts))).toBeCloseTo(want, 14);
    expect(aggregateLoss(perToken, mask, lossNormalizer('bnpo', counts))).toBeCloseTo(want, 14);
    expect(want).toBeCloseTo(-0.039856, 6);
  });

  it('dr_grpo: token sum / (2 completions × L_max 4)', () => {
    expect(aggregateLoss(perToken, mask, lossNormalizer('dr_grpo', counts))).toBeCloseTo(
      (rowSums[0]! + rowSums[1]!) / 8,
      14,
    );
    expect(lossNormalizer('dr_grpo', counts)).toEqual({ kind: 'constant', value: 8 });
  });

  it('is invariant to micro-batching for grpo, dapo and dr_grpo; bnpo averages micro-batches', () => {
    for (const type of ['grpo', 'dapo', 'dr_grpo'] as const) {
      const n = lossNormalizer(type, counts);
      const split =
        aggregateLoss([perToken[0]!], [mask[0]!], n) + aggregateLoss([perToken[1]!], [mask[1]!], n);
      expect(split).toBeCloseTo(aggregateLoss(perToken, mask, n), 14);
    }
    const bnpo = (row: number) =>
      aggregateLoss(
        [perToken[row]!],
        [mask[row]!],
        lossNormalizer('bnpo', {
          ...counts,
          microBatch: { activeTokens: row === 0 ? 2 : 4, count: 2 },
        }),
      );
    expect(bnpo(0) + bnpo(1)).toBeCloseTo((rowSums[0]! / 2 + rowSums[1]! / 4) / 2, 14);
  });

  it('leaves all-masked completions out of grpo and never divides by 0', () => {
    const m = [
      [0, 0],
      [1, 1],
    ];
    const c = stepCounts(m, 2);
    expect(c).toEqual({
      completions: 2,
      activeSequences: 1,
      activeTokens: 2,
      maxCompletionLength: 2,
    });
    expect(
      aggregateLoss(
        [
          [5, 5],
          [1, 3],
        ],
        m,
        lossNormalizer('grpo', c),
      ),
    ).toBe(2);
    const none = stepCounts([[0, 0]], 2);
    expect(aggregateLoss([[5, 5]], [[0, 0]], lossNormalizer('dapo', none))).toBe(0);
    expect(aggregateLoss([[5, 5]], [[0, 0]], lossNormalizer('grpo', none))).toBe(0);
  });

  it('counts only the clips that bind', () => {
    // ρ 1.3499 > 1.28 with A>0 → high; ρ 0.7408 < 0.8 with A<0 → low; 6 active tokens.
    expect(clipStatistics(ratios, advantages, mask, clip)).toEqual({
      low: 1 / 6,
      high: 1 / 6,
      region: 2 / 6,
      activeTokens: 6,
    });
    // The same ratios with the signs of A swapped: no clip binds.
    expect(clipStatistics(ratios, [-1, 0.5], mask, clip).region).toBe(0);
  });

  it('on-policy (ratio 1) the loss is −mean(A) though the gradient is not 0', () => {
    const r = importanceRatios(oldLogProbs, oldLogProbs, mask, 'token');
    const loss = aggregateLoss(
      perTokenPolicyLoss(r, advantages, clip),
      mask,
      lossNormalizer('dapo', counts),
    );
    expect(loss).toBeCloseTo(-(2 * 1 + 4 * -0.5) / 6, 15);
  });
});

describe('GSPO sequence-level loss (anchors §6)', () => {
  it('clips the sequence ratio with ε 3e-4 / 4e-4', () => {
    const result = grpoLossReference(
      { logProbs, oldLogProbs, advantages, mask },
      {
        epsilon: 3e-4,
        epsilonHigh: 4e-4,
        beta: 0,
        importanceSamplingLevel: 'sequence',
        normalizer: lossNormalizer('grpo', stepCounts(mask, 4)),
      },
    );
    // s = [e^0.1 = 1.105171, e^−0.0625 = 0.939413]; row 0: min(1.105, 1.0004) → −1.0004;
    // row 1 (A=−0.5): min(−0.4697, 0.9997·−0.5 = −0.49985) → +0.49985; mean −0.250275.
    expect(result.loss).toBeCloseTo((-1.0004 + 0.49985) / 2, 14);
    expect(result.clip).toEqual({ low: 4 / 6, high: 2 / 6, region: 1, activeTokens: 6 });
  });
});

describe('k3Kl', () => {
  it('is exp(−d) + d − 1 with d = ℓ − ℓ_ref (anchors §6)', () => {
    const kl = k3Kl([[-0.7, -2.3]], [[-1.0, -2.0]]);
    expect(kl[0]![0]).toBeCloseTo(Math.exp(-0.3) + 0.3 - 1, 15);
    expect(kl[0]![1]).toBeCloseTo(Math.exp(0.3) - 0.3 - 1, 15);
    expect(kl[0]!.map((v) => Number(v.toFixed(6)))).toEqual([0.040818, 0.049859]);
    expect(k3Kl([[-1.5]], [[-1.5]])).toEqual([[0]]);
  });

  it('adds beta · k3 per token before aggregation', () => {
    const ref = [
      [-1.0, -0.5, 0, 0],
      [-2.0, -0.1, -0.7, -1.2],
    ];
    const base = { logProbs, oldLogProbs, advantages, mask };
    const options = {
      ...clip,
      importanceSamplingLevel: 'token' as const,
      normalizer: lossNormalizer('dapo', stepCounts(mask, 4)),
    };
    const without = grpoLossReference(base, { ...options, beta: 0 });
    const withKl = grpoLossReference({ ...base, refLogProbs: ref }, { ...options, beta: 0.04 });
    const klSum = k3Kl(logProbs, ref).reduce(
      (s, row, i) => s + row.reduce((a, v, t) => a + v * mask[i]![t]!, 0),
      0,
    );
    expect(withKl.kl).toBeCloseTo(klSum / 6, 14);
    expect(withKl.loss).toBeCloseTo(without.loss + (0.04 * klSum) / 6, 14);
    expect(withKl.policyLoss).toBe(without.loss);
  });
});
