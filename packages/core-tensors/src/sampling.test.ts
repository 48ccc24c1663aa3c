import { Rng } from '@codereasoner/common';
import { describe, expect, it } from 'vitest';
import { sampleToken } from './sampling.js';

describe('sampleToken', () => {
  // sampleToken keeps one weights buffer between calls: a call over a smaller vocabulary must not
  // see the weights a larger one left behind it.
  it('samples only from its own vocabulary after a call over a larger one', () => {
    const rng = new Rng(7);
    // vocabulary 8, nearly all mass on tokens 3..7
    const large = Float32Array.of(0, 0, 0, 40, 40, 40, 40, 40);
    expect(sampleToken(large, 0, 8, { temperature: 1 }, rng).token).toBeGreaterThanOrEqual(3);
    // vocabulary 3, uniform: every token has probability 1/3
    const small = Float32Array.of(0, 0, 0, 40, 40);
    for (let i = 0; i < 20; i++) {
      const { token, logProb } = sampleToken(small, 0, 3, { temperature: 1 }, rng);
      expect(token).toBeLessThan(3);
      expect(logProb).toBeCloseTo(Math.log(1 / 3), 6);
    }
    // greedy over 2 entries of a row at an offset: log-prob of [1, 0] at token 0 is 1 - ln(e + 1)
    const greedy = sampleToken(Float32Array.of(40, 40, 1, 0), 2, 2, { temperature: 0 }, rng);
    expect(greedy.token).toBe(0);
    expect(greedy.logProb).toBeCloseTo(1 - Math.log(Math.E + 1), 6);
  });

  it('samples from weights computed elsewhere (the onnx graph) as from its own', () => {
    const logits = Float32Array.of(9, 0.5, -1, 2, 1.5, 0.25);
    const row = logits.subarray(2);
    for (const temperature of [0, 0.7, 1]) {
      const invT = temperature > 0 ? 1 / temperature : 1;
      const max = Math.max(...row) * invT;
      const weights = Float32Array.from(row, (z) => Math.exp(z * invT - max));
      for (let seed = 0; seed < 20; seed++) {
        const own = sampleToken(logits, 2, 4, { temperature }, new Rng(seed));
        const given = sampleToken(logits, 2, 4, { temperature }, new Rng(seed), {
          weights: Float32Array.of(7, ...weights),
          offset: 1,
        });
        expect(given.token).toBe(own.token);
        expect(given.logProb).toBeCloseTo(own.logProb, 6);
      }
    }
    // with the row max and the total given too (the graph's sampling_max and sampling_total), no
    // pass over the row is needed: the same tokens, log-probs within 1e-6
    for (const temperature of [0, 0.7, 1]) {
      const invT = temperature > 0 ? 1 / temperature : 1;
      const max = Math.fround(Math.max(...row) * invT);
      const weights = Float32Array.from(row, (z) => Math.exp(z * invT - max));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let seed = 0; seed < 20; seed++) {
        for (const options of [
          { temperature },
          { temperature, topK: 2 },
          { temperature, topP: 0.5 },
        ]) {
          const reference = sampleToken(logits, 2, 4, options, new Rng(seed));
          const given = sampleToken(logits, 2, 4, options, new Rng(seed), {
            weights: Float32Array.of(7, ...weights),
            offset: 1,
            max,
            total,
          });
          expect(given.token).toBe(reference.token);
          expect(given.logProb).toBeCloseTo(reference.logProb, 6);
        }
      }
    }
    // a draw past the weights' sum (rounding) falls back to the argmax, found although the max was given
    const pastTheSum = { next: () => 0.999 } as unknown as Rng;
    const fallback = sampleToken(logits, 2, 4, { temperature: 1 }, pastTheSum, {
      weights: Float32Array.from(row, (z) => Math.exp(z - 2)),
      offset: 0,
      max: 2,
      total: 10,
    });
    expect(fallback.token).toBe(1); // the row [-1, 2, 1.5, 0.25]'s argmax
    expect(fallback.logProb).toBeCloseTo(2 - 2 - Math.log(10), 6);
    // the given weights decide: all mass on entry 2 although the logits are uniform
    for (let seed = 0; seed < 10; seed++) {
      const given = { weights: Float32Array.of(0, 0, 1), offset: 0 };
      const uniform = Float32Array.of(0, 0, 0);
      expect(sampleToken(uniform, 0, 3, { temperature: 1 }, new Rng(seed), given).token).toBe(2);
    }
  });
});
