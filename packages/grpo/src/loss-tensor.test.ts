import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Rng, tf } from '@codereasoner/core-tensors';
import { grpoLossTensor } from './loss-tensor.js';
import {
  grpoLossReference,
  lossNormalizer,
  stepCounts,
  type LossType,
  type Matrix,
} from './policy-loss.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

function randomCase(seed: number, rows: number, cols: number) {
  const rng = new Rng(seed);
  const mask: number[][] = [];
  const logProbs: number[][] = [];
  const oldLogProbs: number[][] = [];
  const refLogProbs: number[][] = [];
  for (let i = 0; i < rows; i++) {
    // Row i has between 0 and cols active tokens at the front (right padding), row 0 all active.
    const length = i === 0 ? cols : rng.int(cols + 1);
    mask.push(Array.from({ length: cols }, (_, t) => (t < length ? 1 : 0)));
    const old = Array.from({ length: cols }, () => -0.1 - 3 * rng.next());
    oldLogProbs.push(old);
    logProbs.push(
      old.map((v, t) =>
        t < length ? Math.min(-1e-3, v + 0.6 * (rng.next() - 0.5)) : -50 * rng.next(),
      ),
    );
    refLogProbs.push(old.map((v) => Math.min(-1e-3, v + 0.4 * (rng.next() - 0.5))));
  }
  const advantages = Array.from({ length: rows }, () => 2 * (rng.next() - 0.5));
  return { mask, logProbs, oldLogProbs, refLogProbs, advantages };
}

const t2 = (m: Matrix) => tf.tensor2d(m.map((r) => [...r]));

describe('grpoLossTensor matches the float64 reference', () => {
  const lossTypes: LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];
  for (const level of ['token', 'sequence'] as const) {
    for (const lossType of lossTypes) {
      for (const beta of [0, 0.04]) {
        it(`${lossType}, ${level}-level, beta ${beta}`, () => {
          const c = randomCase(
            lossTypes.indexOf(lossType) * 10 + beta * 100 + (level === 'token' ? 0 : 7),
            5,
            7,
          );
          const clip =
            level === 'token'
              ? { epsilon: 0.2, epsilonHigh: 0.28 }
              : { epsilon: 3e-4, epsilonHigh: 4e-4 };
          const normalizer = lossNormalizer(lossType, stepCounts(c.mask, 7));
          const options = { ...clip, beta, importanceSamplingLevel: level, normalizer };
          const reference = grpoLossReference(c, options);
          const before = tf.memory().numTensors;
          const tensors = {
            logProbs: t2(c.logProbs),
            oldLogProbs: t2(c.oldLogProbs),
            refLogProbs: t2(c.refLogProbs),
            advantages: tf.tensor1d(c.advantages),
            mask: t2(c.mask),
          };
          const loss = grpoLossTensor(tensors, options);
          const value = loss.dataSync()[0]!;
          expect(Math.abs(value - reference.loss)).toBeLessThan(
            1e-5 * Math.max(1, Math.abs(reference.loss)),
          );
          tf.dispose([loss, ...Object.values(tensors)]);
          expect(tf.memory().numTensors).toBe(before);
        });
      }
    }
  }
});

describe('grpoLossTensor gradients', () => {
  it('equal central differences of the float64 reference (token and sequence level, with KL)', () => {
    const c = randomCase(99, 3, 4);
    for (const level of ['token', 'sequence'] as const) {
      const options = {
        epsilon: 0.2,
        epsilonHigh: 0.28,
        beta: 0.1,
        importanceSamplingLevel: level,
        normalizer: lossNormalizer('grpo', stepCounts(c.mask, 4)),
      };
      const x = t2(c.logProbs);
      const fixed = {
        oldLogProbs: t2(c.oldLogProbs),
        refLogProbs: t2(c.refLogProbs),
        advantages: tf.tensor1d(c.advantages),
        mask: t2(c.mask),
      };
      const grad = tf.grad((lp: tf.Tensor) =>
        grpoLossTensor({ ...fixed, logProbs: lp as tf.Tensor2D }, options),
      )(x);
      const g = grad.arraySync() as number[][];
      const h = 1e-6;
      c.logProbs.forEach((row, i) =>
        row.forEach((_, t) => {
          const plus = c.logProbs.map((r) => [...r]);
          const minus = c.logProbs.map((r) => [...r]);
          plus[i]![t]! += h;
          minus[i]![t]! -= h;
          const numeric =
            (grpoLossReference({ ...c, logProbs: plus }, options).loss -
              grpoLossReference({ ...c, logProbs: minus }, options).loss) /
            (2 * h);
          expect(Math.abs(g[i]![t]! - numeric)).toBeLessThan(2e-4);
        }),
      );
      tf.dispose([x, grad, ...Object.values(fixed)]);
    }
  });

  it('on-policy (no old log-probs) the loss is −mean(A) and the gradient −A/N per active token', () => {
    const mask = [
      [1, 1, 0],
      [1, 1, 1],
    ];
    const lp = tf.tensor2d([
      [-0.5, -1.5, -2],
      [-0.2, -0.9, -3],
    ]);
    const adv = tf.tensor1d([0.8, -0.4]);
    const m = tf.tensor2d(mask);
    const options = {
      epsilon: 0.2,
      beta: 0,
      importanceSamplingLevel: 'token' as const,
      normalizer: lossNormalizer('dapo', stepCounts(mask, 3)),
    };
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor) =>
      grpoLossTensor({ logProbs: x as tf.Tensor2D, advantages: adv, mask: m }, options),
    )([lp]);
    expect(value.dataSync()[0]).toBeCloseTo(-(2 * 0.8 + 3 * -0.4) / 5, 6);
    const g = grads[0]!.arraySync() as number[][];
    const want = [
      [-0.8 / 5, -0.8 / 5, 0],
      [0.4 / 5, 0.4 / 5, 0.4 / 5],
    ];
    g.forEach((row, i) => row.forEach((v, t) => expect(v).toBeCloseTo(want[i]![t]!, 6)));
    tf.dispose([lp, adv, m, value, ...grads]);
  });
});
