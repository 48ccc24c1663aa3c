import { beforeAll, describe, expect, it } from 'vitest';
import {
  CausalLM,
  OnnxTrainPool,
  Rng,
  computeGradients,
  onnxRuntimeStatus,
  tf,
} from '@codereasoner/core-tensors';
import { setUpBackend } from './__fixtures__/tiny.js';
import {
  chunk,
  gatherCompletions,
  layoutMicroBatch,
  lossShard,
  type Sample,
} from './micro-batch.js';
import { onnxPolicyGradients, onPolicyTokenWeights } from './onnx-update.js';
import {
  lossNormalizer,
  type ImportanceSamplingLevel,
  type LossNormalizer,
  type LossType,
} from './policy-loss.js';
import { grpoShardLoss } from './shard-loss.js';

beforeAll(setUpBackend);

/**
 * Tolerance of the ONNX gradients against tfjs `grpoShardLoss`: float32 sums in another order
 * differ by ~1e-6 of a tensor's scale; every entry must lie within 1e-4 of its tensor's largest
 * magnitude. A wrong weight (a missing normaliser, a lost mask, a flipped sign) moves entries by
 * their own size.
 */
const RELATIVE_TOLERANCE = 1e-4;

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

const VOCAB = 61;
const LIMIT = 40; // the tokenizer's part of a padded vocabulary
const TEMPERATURE = 0.7;

/** A policy with weights far from their N(0, 0.02) start, so the distributions are not flat. */
function policy(tied: boolean): CausalLM {
  const model = CausalLM.create(
    {
      vocabSize: VOCAB,
      hiddenSize: 32,
      intermediateSize: 48,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      maxPositionEmbeddings: 64,
      tieWordEmbeddings: tied,
    },
    { seed: 3 },
  );
  const rng = new Rng(5);
  for (const v of model.parameters.values()) {
    const values = v.dataSync() as Float32Array;
    v.assign(
      tf.tensor(
        values.map((x) => x + 0.2 * (rng.next() - 0.5)),
        v.shape,
      ),
    );
  }
  return model;
}

/**
 * Two groups of 4: prompts of 2-5 tokens, completions of 1-7 tokens, one completion truncated
 * and left out of the loss (active 0), one all-equal group (advantages 0).
 */
function samples(): Sample[] {
  const rng = new Rng(9);
  const ids = (n: number) =>
    Array.from({ length: n }, () => 1 + Math.floor(rng.next() * (LIMIT - 1)));
  const advantages = [0.9, -1.3, 0.6, -0.2, 0, 0, 0, 0];
  return advantages.map((advantage, i) => ({
    promptIds: ids(2 + (i % 4)),
    completionIds: ids(1 + ((i * 3) % 7)),
    advantage,
    active: i === 2 ? 0 : 1,
  }));
}

/** The micro-batches of one update and their normalisers, as `policy-update.ts` cuts them. */
function shardsOf(all: Sample[], lossType: LossType, microBatchSize: number) {
  const micro = chunk(all, microBatchSize);
  let activeTokens = 0;
  let activeSequences = 0;
  for (const s of all) {
    activeTokens += s.active * s.completionIds.length;
    if (s.active === 1 && s.completionIds.length > 0) activeSequences += 1;
  }
  return micro.map((part) => {
    const microTokens = part.reduce((n, s) => n + s.active * s.completionIds.length, 0);
    const normalizer = lossNormalizer(lossType, {
      completions: all.length,
      activeSequences,
      activeTokens,
      maxCompletionLength: 7,
      microBatch: { activeTokens: microTokens, count: micro.length },
    });
    const layout = layoutMicroBatch(part, 0);
    return { part, normalizer, layout };
  });
}

/** tfjs: Σ over micro-batches of `grpoShardLoss`'s gradients (on-policy, beta 0), and each one's log-probs and entropy. */
function tfjsGradients(
  model: CausalLM,
  shards: ReturnType<typeof shardsOf>,
  level: ImportanceSamplingLevel,
) {
  const sums = new Map<string, Float32Array>();
  let loss = 0;
  const figures: { logProbs: Float32Array; entropy: Float32Array }[] = [];
  for (const { part, layout, normalizer } of shards) {
    const data = lossShard(layout, part, { oldLogProbs: false, refLogProbs: false });
    let outputs: Record<string, tf.Tensor> = {};
    const result = computeGradients(model, () => {
      const out = grpoShardLoss(model, data, {
        temperature: TEMPERATURE,
        vocabLimit: LIMIT,
        entropy: true,
        epsilon: 0.2,
        epsilonHigh: 0.28,
        beta: 0,
        importanceSamplingLevel: level,
        normalizer,
      });
      outputs = Object.fromEntries(Object.entries(out.outputs).map(([k, t]) => [k, tf.keep(t)]));
      return out.loss;
    });
    loss += result.loss;
    figures.push({
      logProbs: outputs['logProbs']!.dataSync() as Float32Array,
      entropy: outputs['entropy']!.dataSync() as Float32Array,
    });
    tf.dispose(Object.values(outputs));
    for (const [name, g] of Object.entries(result.grads)) {
      const values = g.dataSync() as Float32Array;
      const sum = sums.get(name);
      if (sum === undefined) sums.set(name, Float32Array.from(values));
      else for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + values[i]!;
      g.dispose();
    }
  }
  return { loss, grads: sums, figures };
}

/** The on-policy surrogate's value, −Σ A·m / N per the normaliser, in float64 from the definitions. */
function onPolicyLoss(part: readonly Sample[], normalizer: LossNormalizer): number {
  let sum = 0;
  for (const s of part) {
    const n = s.active * s.completionIds.length;
    if (n === 0) continue;
    sum +=
      normalizer.kind === 'sequenceMean'
        ? -s.advantage / normalizer.sequences
        : (-s.advantage * n) / (normalizer.kind === 'tokens' ? normalizer.count : normalizer.value);
  }
  return sum;
}

it('loads onnxruntime-node here (an optional dependency that installs with the workspace)', () => {
  // Not a skip: the parity tests below must run wherever the workspace is installed, CI included.
  expect(onnxRuntimeStatus()).toEqual({ available: true });
});

it('weights each loss-active token by A / N, 0 elsewhere (sequenceMean: A / (n_i · S))', () => {
  const all = samples();
  const [shard] = shardsOf(all, 'grpo', 8);
  const weights = onPolicyTokenWeights(shard!.layout, shard!.part, shard!.normalizer);
  const rows = gatherCompletions(weights, all, shard!.layout.width);
  // sequences: the 7 active completions
  expect(shard!.normalizer).toEqual({ kind: 'sequenceMean', sequences: 7 });
  const n0 = all[0]!.completionIds.length;
  expect(rows[0]![0]).toBeCloseTo(0.9 / (n0 * 7), 7);
  expect(rows[2]).toEqual(rows[2]!.map(() => 0)); // left out of the loss
  expect(rows[5]).toEqual(rows[5]!.map(() => 0)); // advantage 0
  let total = 0;
  for (const w of weights) total += w;
  let expected = 0;
  for (const [i, s] of all.entries()) if (i !== 2) expected += s.advantage / 7;
  expect(total).toBeCloseTo(expected, 6);
});

describe('the ONNX policy gradient equals the tfjs GRPO loss gradient on-policy', () => {
  const lossTypes: LossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];
  for (const tied of [true, false])
    for (const level of ['token', 'sequence'] as const)
      for (const lossType of lossTypes)
        it(`${lossType}, ${level}-level, ${tied ? 'tied' : 'untied'} head: gradients, log-probs and entropy`, async () => {
          const model = policy(tied);
          const all = samples();
          const shards = shardsOf(all, lossType, 3);
          const expected = tfjsGradients(model, shards, level);
          const step = await OnnxTrainPool.create(model.config, 1, {
            temperature: TEMPERATURE,
            vocabLimit: LIMIT,
            logProbs: true,
            entropy: true,
          });
          try {
            const got = await onnxPolicyGradients(step, model, shards);
            expect(Object.keys(got.grads).sort()).toEqual([...expected.grads.keys()].sort());
            for (const [name, want] of expected.grads) {
              const values = got.grads[name]!.dataSync();
              expect(relativeError(values, want), name).toBeLessThan(RELATIVE_TOLERANCE);
            }
            // the loss the tfjs surrogate reports on-policy: −Σ A·m / N (policy-update takes it from the reference)
            const surrogate = shards.reduce((a, s) => a + onPolicyLoss(s.part, s.normalizer), 0);
            expect(expected.loss).toBeCloseTo(surrogate, 5);
            shards.forEach(({ part, layout }, k) => {
              const mask = gatherCompletions(layout.lossMask, part, layout.width).flat();
              const pick = (values: Float32Array) =>
                gatherCompletions(values, part, layout.width)
                  .flat()
                  .filter((_, i) => mask[i] !== 0);
              const want = expected.figures[k]!;
              const have = got.shards[k]!;
              expect(relativeError(pick(have.logProbs), pick(want.logProbs))).toBeLessThan(1e-5);
              expect(relativeError(pick(have.entropy), pick(want.entropy))).toBeLessThan(1e-5);
            });
            tf.dispose(Object.values(got.grads));
          } finally {
            await step.release();
            model.dispose();
          }
        }, 60_000);
});

it('gives the same bits on two worker-thread sessions as on one in-process session, row figures included', async () => {
  const model = policy(false);
  const shards = shardsOf(samples(), 'grpo', 3);
  const options = { temperature: TEMPERATURE, vocabLimit: LIMIT, logProbs: true, entropy: true };
  const one = await OnnxTrainPool.create(model.config, 1, options);
  const two = await OnnxTrainPool.create(model.config, 2, options);
  try {
    const a = await onnxPolicyGradients(one, model, shards);
    const b = await onnxPolicyGradients(two, model, shards);
    expect(two.size).toBe(2);
    for (const [name, t] of Object.entries(a.grads))
      expect(b.grads[name]!.dataSync(), name).toEqual(t.dataSync());
    expect(b.shards).toEqual(a.shards);
    expect(a.shards.some((s) => s.entropy.some((v) => v > 0))).toBe(true);
    tf.dispose([...Object.values(a.grads), ...Object.values(b.grads)]);
  } finally {
    await one.release();
    await two.release();
    model.dispose();
  }
}, 120_000);
