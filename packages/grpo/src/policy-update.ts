/*
 * Policy update: a step's kept groups → samples with advantages → (old / reference log-probs) →
 * `numIterations` × `stepsPerGeneration` AdamW updates of the clipped surrogate, each the sum of
 * its micro-batches' gradients. Gradients come from a ModelWorkerPool: on its threads, or
 * in-process on the policy when it has none (one code path either way); or, on-policy with
 * beta 0, from the ONNX training graph (`onnx-update.ts`).
 */
import {
  clipByGlobalNorm,
  shardTensor,
  tf,
  type AdamW,
  type CausalLM,
  type Logger,
  type ModelWorkerPool,
  type OnnxTrainPool,
  type Rng,
  type ShardData,
  type WorkerLossRef,
} from '@codereasoner/core-tensors';
import { groupAdvantages } from './advantages.js';
import type { GrpoConfig } from './config.js';
import { assertFinite } from './errors.js';
import {
  chunk,
  gatherCompletions,
  layoutMicroBatch,
  lossShard,
  modelInputs,
  type MicroBatchLayout,
  type Sample,
} from './micro-batch.js';
import { onnxPolicyGradients } from './onnx-update.js';
import {
  grpoLossReference,
  lossNormalizer,
  type LossNormalizer,
  type StepCounts,
} from './policy-loss.js';
import type { RewardSpec } from './rewards.js';
import { groupTotals, type RolloutRecord } from './rollout.js';
import type { GrpoShardOptions } from './shard-loss.js';

/** Figures of one optimizer update, summed over its micro-batches (means are taken per step). */
export interface UpdateStats {
  loss: number;
  policyLoss: number;
  klSum: number;
  entropySum: number;
  entropyTokens: number;
  clipLow: number;
  clipHigh: number;
  activeTokens: number;
  gradNorm: number;
  learningRate: number;
  tokens: number;
}

/** What an update reads; `counters` advance (they are part of the run state a checkpoint keeps). */
export interface PolicyUpdateContext {
  config: GrpoConfig;
  policy: CausalLM;
  /** Frozen reference policy (beta > 0). */
  reference: CausalLM | undefined;
  optimizer: AdamW;
  pool: ModelWorkerPool;
  /** The ONNX training step (`trainEngine` onnx; only for on-policy updates with beta 0): gradients from it instead of the pool. */
  onnx?: OnnxTrainPool | undefined;
  rewards: readonly RewardSpec[];
  promptIds: readonly number[][];
  padId: number;
  /** The tokenizer's vocabulary: log-probs over the ids rollouts can sample. */
  vocabLimit: number;
  /** Shuffles the samples between updates (stepsPerGeneration > 1). */
  rng: Rng;
  counters: { updates: number; numTokens: number };
  logger?: Logger | undefined;
}

// Worker threads import the loss by URL: the built entry next to this file, or the source under test.
const SHARD_LOSS: WorkerLossRef = {
  module: new URL(
    /\.ts$/.test(new URL(import.meta.url).pathname) ? './shard-loss.ts' : './shard-loss.js',
    import.meta.url,
  ),
  exportName: 'grpoShardLoss',
};

/** Trains on a step's rollouts; one `UpdateStats` per optimizer update (none when no group was kept). */
export async function trainOnRollouts(
  context: PolicyUpdateContext,
  record: RolloutRecord,
): Promise<UpdateStats[]> {
  const { config: c, rewards, promptIds } = context;
  const kept = record.groups.filter((g) => g.kept);
  if (kept.length === 0) {
    context.logger?.warn(
      `step ${record.step}: no group to train on; the policy is unchanged this step`,
    );
    return [];
  }
  const { advantages } = groupAdvantages(
    kept.flatMap((g) => groupTotals(rewards, g)),
    { groupSize: c.numGenerations, scaleRewards: c.scaleRewards, epsilon: c.advantageEpsilon },
  );
  const samples: Sample[] = kept.flatMap((g) =>
    g.completions.map((o) => ({
      promptIds: promptIds[g.row]!,
      completionIds: o.ids,
      advantage: 0,
      active: c.maskTruncatedCompletions && o.finishReason === 'length' ? 0 : 1,
    })),
  );
  samples.forEach((s, i) => (s.advantage = advantages[i]!));
  for (const s of samples)
    context.counters.numTokens += s.promptIds.length + s.completionIds.length;

  const offPolicy = c.numIterations > 1 || c.stepsPerGeneration > 1;
  if (offPolicy) recordLogProbs(context, context.policy, samples, 'oldLogProbs', record.step);
  if (context.reference !== undefined)
    recordLogProbs(context, context.reference, samples, 'refLogProbs', record.step);
  const order = samples.map((_, i) => i);
  if (c.stepsPerGeneration > 1) context.rng.shuffle(order);
  const sliceSize = Math.ceil(samples.length / c.stepsPerGeneration);
  const slices = chunk(order, sliceSize).map((idx) => idx.map((i) => samples[i]!));
  const stats: UpdateStats[] = [];
  for (let iteration = 0; iteration < c.numIterations; iteration++) {
    for (const [s, slice] of slices.entries()) {
      stats.push(
        await update(
          context,
          slice,
          iteration === 0,
          offPolicy,
          `step ${record.step}, iteration ${iteration + 1}, update ${s + 1}`,
        ),
      );
    }
  }
  return stats;
}

/** Log-probs of each completion under `model` (no gradient), stored on the samples. */
function recordLogProbs(
  context: PolicyUpdateContext,
  model: CausalLM,
  samples: Sample[],
  key: 'oldLogProbs' | 'refLogProbs',
  step: number,
): void {
  const what = key === 'oldLogProbs' ? 'old policy log-probs' : 'reference log-probs';
  for (const part of chunk(samples, context.config.microBatchSize)) {
    const layout = layoutMicroBatch(part, context.padId);
    const inputs = modelInputs(layout);
    const inputIds = shardTensor(inputs['inputIds']!) as tf.Tensor2D;
    const attentionMask = shardTensor(inputs['attentionMask']!) as tf.Tensor2D;
    const targetMask = shardTensor(inputs['targetMask']!) as tf.Tensor2D;
    try {
      const out = model.tokenLogProbs(inputIds, attentionMask, {
        temperature: context.config.temperature,
        targetMask,
        vocabLimit: context.vocabLimit,
      });
      const values = out.logProbs.dataSync();
      out.logProbs.dispose();
      gatherCompletions(values, part, layout.width).forEach((row, b) => {
        for (const v of row) {
          assertFinite(
            v,
            `${what} (step ${step})`,
            'the model produced non-finite logits; check its weights.',
          );
        }
        part[b]![key] = Float32Array.from(row);
      });
    } finally {
      tf.dispose([inputIds, attentionMask, targetMask]);
    }
  }
}

async function update(
  context: PolicyUpdateContext,
  slice: readonly Sample[],
  firstPass: boolean,
  offPolicy: boolean,
  where: string,
): Promise<UpdateStats> {
  const { config: c, policy, optimizer, counters } = context;
  const micro = chunk(slice, c.microBatchSize);
  let activeTokens = 0;
  let activeSequences = 0;
  for (const s of slice) {
    activeTokens += s.active * s.completionIds.length;
    if (s.active === 1 && s.completionIds.length > 0) activeSequences += 1;
  }
  const counts: StepCounts = {
    completions: slice.length,
    activeSequences,
    activeTokens,
    maxCompletionLength: c.maxCompletionLength,
  };
  const stats: UpdateStats = {
    loss: 0,
    policyLoss: 0,
    klSum: 0,
    entropySum: 0,
    entropyTokens: 0,
    clipLow: 0,
    clipHigh: 0,
    activeTokens,
    gradNorm: 0,
    learningRate: 0,
    tokens: 0,
  };
  const shards = micro.map((part) => {
    const microTokens = part.reduce((n, s) => n + s.active * s.completionIds.length, 0);
    const normalizer = lossNormalizer(c.lossType, {
      ...counts,
      microBatch: { activeTokens: microTokens, count: micro.length },
    });
    const layout = layoutMicroBatch(part, context.padId);
    const data = lossShard(layout, part, {
      oldLogProbs: offPolicy,
      refLogProbs: context.reference !== undefined,
    });
    return { part, microTokens, normalizer, layout, data };
  });
  // LoRA dropout masks from (seed, update number): a resumed run draws the same ones.
  policy.seedAdapterDropout(c.seed * 1_000_003 + counters.updates);
  const result =
    context.onnx === undefined
      ? await poolGradients(context, shards, firstPass)
      : await onnxGradients(
          context.onnx,
          policy,
          shards,
          offPolicy || context.reference !== undefined || c.beta !== 0,
        );
  const accumulated = result.grads;
  try {
    shards.forEach(({ part, microTokens, normalizer, layout }, k) => {
      const shard = result.shards[k]!;
      stats.tokens += part.reduce((n, s) => n + s.promptIds.length + s.completionIds.length, 0);
      // Figures for the metrics, from the float64 reference on the same values.
      const logProbRows = gatherCompletions(shard.logProbs, part, layout.width);
      const maskRows = gatherCompletions(layout.lossMask, part, layout.width);
      const reference = grpoLossReference(
        {
          logProbs: logProbRows,
          oldLogProbs: offPolicy ? part.map((s) => Array.from(s.oldLogProbs!)) : logProbRows,
          ...(context.reference === undefined
            ? {}
            : { refLogProbs: part.map((s) => Array.from(s.refLogProbs!)) }),
          advantages: part.map((s) => s.advantage),
          mask: maskRows,
        },
        {
          epsilon: c.epsilon,
          epsilonHigh: c.epsilonHigh,
          beta: c.beta,
          importanceSamplingLevel: c.importanceSamplingLevel,
          normalizer,
        },
      );
      // the graph's own loss is the weighted log-likelihood: the surrogate's value is the reference's
      const loss = shard.loss ?? reference.loss;
      assertFinite(
        loss,
        `loss (${where}, micro-batch ${k + 1})`,
        'a log-prob ratio overflowed or the model produced non-finite logits; lower the learning rate or check the rewards and the model.',
      );
      stats.loss += loss;
      stats.policyLoss += reference.policyLoss;
      stats.klSum += reference.kl * microTokens;
      stats.clipLow += reference.clip.low * reference.clip.activeTokens;
      stats.clipHigh += reference.clip.high * reference.clip.activeTokens;
      if (shard.entropy !== undefined) {
        const entropyRows = gatherCompletions(shard.entropy, part, layout.width);
        entropyRows.forEach((row, i) =>
          row.forEach((v, t) => {
            if (maskRows[i]![t] !== 0) {
              stats.entropySum += v;
              stats.entropyTokens += 1;
            }
          }),
        );
      }
    });
    const { grads, norm } = clipByGlobalNorm(
      accumulated,
      c.maxGradNorm > 0 ? c.maxGradNorm : Number.POSITIVE_INFINITY,
    );
    try {
      assertFinite(
        norm,
        `gradient norm (${where})`,
        'the loss gradient overflowed; lower the learning rate or check the model.',
      );
      stats.gradNorm = norm;
      stats.learningRate = optimizer.learningRate;
      optimizer.applyGradients(grads);
      counters.updates += 1;
    } finally {
      tf.dispose(Object.values(grads));
    }
  } finally {
    tf.dispose(Object.values(accumulated));
  }
  return stats;
}

interface UpdateShard {
  part: Sample[];
  microTokens: number;
  normalizer: LossNormalizer;
  layout: MicroBatchLayout;
  data: ShardData;
}

/** A micro-batch's results: its loss (undefined: take the reference's), log-probs and entropy on the [rows, width] grid. */
interface ShardFigures {
  loss: number | undefined;
  logProbs: ArrayLike<number>;
  entropy: ArrayLike<number> | undefined;
}

/** Gradients from the ONNX training graph (on-policy, beta 0 only: see `onnx-update.ts`). */
async function onnxGradients(
  session: OnnxTrainPool,
  policy: CausalLM,
  shards: readonly UpdateShard[],
  offPolicyOrKl: boolean,
): Promise<{ grads: tf.NamedTensorMap; shards: ShardFigures[] }> {
  // the trainer opens no session for these; a caller that does gets the wrong gradient silently otherwise
  if (offPolicyOrKl)
    throw new Error(
      'onnx policy gradients need an on-policy update with beta 0 (no old or reference log-probs)',
    );
  const result = await onnxPolicyGradients(session, policy, shards);
  return {
    grads: result.grads,
    shards: result.shards.map((figures) => ({
      loss: undefined,
      logProbs: figures.logProbs,
      entropy: figures.entropy,
    })),
  };
}

/** Gradients from the worker pool's tfjs loss (`grpoShardLoss`), summed in micro-batch order whichever thread computed them. */
async function poolGradients(
  context: PolicyUpdateContext,
  shards: readonly UpdateShard[],
  firstPass: boolean,
): Promise<{ grads: tf.NamedTensorMap; shards: ShardFigures[] }> {
  const c = context.config;
  const result = await context.pool.computeGradients<GrpoShardOptions>({
    loss: SHARD_LOSS,
    options: {
      temperature: c.temperature,
      vocabLimit: context.vocabLimit,
      entropy: firstPass,
      epsilon: c.epsilon,
      epsilonHigh: c.epsilonHigh,
      beta: c.beta,
      importanceSamplingLevel: c.importanceSamplingLevel,
      normalizer: shards[0]!.normalizer,
    },
    shards: shards.map((shard) => ({
      data: shard.data,
      options: { normalizer: shard.normalizer },
    })),
  });
  return {
    grads: result.grads,
    shards: result.shards.map((shard) => ({
      loss: shard.loss,
      logProbs: shard.outputs['logProbs']!.values,
      entropy: shard.outputs['entropy']?.values,
    })),
  };
}
