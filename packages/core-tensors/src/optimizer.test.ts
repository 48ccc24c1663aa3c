import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import {
  AdamW,
  clipByGlobalNorm,
  GradientAccumulator,
  OptimizerError,
  warmupCosine,
} from './optimizer.js';

beforeAll(async () => {
  await initBackend();
});

function variable(values: number[], shape: number[], name: string): tf.Variable {
  return tf.tidy(() =>
    tf.variable(
      tf.tensor(values, shape),
      true,
      `opt${Math.random().toString(36).slice(2)}/${name}`,
    ),
  );
}

describe('AdamW', () => {
  it('matches a hand computation: bias-corrected moments, decoupled decay on matrices only', () => {
    const w = variable([1, -2, 3, 4], [2, 2], 'w');
    const b = variable([0.5, -0.5], [2], 'b');
    const optimizer = new AdamW({
      learningRate: 0.1,
      beta1: 0.9,
      beta2: 0.99,
      epsilon: 1e-8,
      weightDecay: 0.5,
    });
    const gw = tf.tensor([0.2, -0.4, 0, 1], [2, 2]);
    const gb = tf.tensor([1, -1], [2]);
    optimizer.applyGradients({ [w.name]: gw, [b.name]: gb });
    // step 1: m̂ = g, v̂ = g², update = g/(|g| + eps) = sign(g) (0 for g = 0)
    const expectedW = [1, -2, 3, 4].map((x, i) => {
      const g = [0.2, -0.4, 0, 1][i]!;
      const adam = g / (Math.abs(g) + 1e-8);
      return x - 0.1 * (adam + 0.5 * x);
    });
    Array.from(w.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expectedW[i]!, 5));
    expect(Array.from(b.dataSync())).toEqual([Math.fround(0.5 - 0.1), Math.fround(-0.5 + 0.1)]);
    // step 2 with the same gradient: m = g(0.9·0.1 + 0.1)… corrections 1-0.9², 1-0.99²
    optimizer.applyGradients({ [w.name]: gw, [b.name]: gb });
    const m = (0.9 * 0.1 + 0.1) * 1;
    const v = (0.99 * 0.01 + 0.01) * 1;
    const update = m / (1 - 0.81) / (Math.sqrt(v / (1 - 0.9801)) + 1e-8);
    expect(b.dataSync()[0]).toBeCloseTo(0.4 - 0.1 * update, 5);
    expect(optimizer.step).toBe(2);
    const state = optimizer.getState();
    expect(Object.keys(state.firstMoment).sort()).toEqual(['b', 'w']);
    tf.dispose([
      ...Object.values(state.firstMoment),
      ...Object.values(state.secondMoment),
      gw,
      gb,
      w,
      b,
    ]);
    optimizer.dispose();
  });

  it('uses a schedule of the update index and validates its options', () => {
    const w = variable([1], [1], 'w');
    const seen: number[] = [];
    const optimizer = new AdamW({
      learningRate: (step) => (seen.push(step), 0.01),
      weightDecay: 0,
    });
    const g = tf.tensor([1], [1]);
    optimizer.applyGradients({ [w.name]: g });
    optimizer.applyGradients({ [w.name]: g });
    expect(seen).toEqual([0, 1]);
    expect(() => optimizer.applyGradients({ 'nope/x': g })).toThrow(/unknown variable nope\/x/);
    expect(() => new AdamW({ learningRate: -1 })).toThrow(OptimizerError);
    expect(() => new AdamW({ learningRate: 1, beta2: 1 })).toThrow(/beta2/);
    tf.dispose([g, w]);
    optimizer.dispose();
  });
});

describe('warmupCosine', () => {
  it('warms up linearly, decays by cosine to peak·minRatio, then holds', () => {
    const lr = warmupCosine({ peak: 1, warmupSteps: 4, totalSteps: 14, minRatio: 0.1 });
    expect([0, 1, 2, 3].map(lr)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(lr(4)).toBeCloseTo(1, 10);
    expect(lr(9)).toBeCloseTo(0.1 + 0.9 * 0.5, 10);
    expect(lr(14)).toBeCloseTo(0.1, 10);
    expect(lr(100)).toBeCloseTo(0.1, 10);
    expect(() => warmupCosine({ peak: 1, warmupSteps: 0, totalSteps: 0 })).toThrow(OptimizerError);
  });
});

describe('clipByGlobalNorm and GradientAccumulator', () => {
  it('scales all gradients together when the global norm is too large', () => {
    const a = tf.tensor([3, 0], [2]);
    const b = tf.tensor([4], [1]);
    const { grads, norm } = clipByGlobalNorm({ a, b }, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(grads['a']!.dataSync())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(grads['b']!.dataSync())[0]).toBeCloseTo(0.8, 5);
    const kept = clipByGlobalNorm({ a, b }, 10);
    expect(Array.from(kept.grads['b']!.dataSync())).toEqual([4]);
    tf.dispose([a, b, ...Object.values(grads), ...Object.values(kept.grads)]);
  });

  it('averages weighted micro-batch gradients and frees its sums on reset', () => {
    const baseline = tf.memory().numTensors;
    const accumulator = new GradientAccumulator();
    const g1 = tf.tensor([1, 2], [2]);
    const g2 = tf.tensor([3, 6], [2]);
    accumulator.add({ x: g1 }, 1);
    accumulator.add({ x: g2 }, 3);
    const mean = accumulator.mean();
    expect(Array.from(mean['x']!.dataSync())).toEqual([2.5, 5]);
    accumulator.reset();
    expect(() => accumulator.mean()).toThrow(/nothing added/);
    tf.dispose([g1, g2, mean['x']!]);
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
