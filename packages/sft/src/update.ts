/*
 * One optimizer step of SFT: the step's shards' gradients from a ModelWorkerPool (on its threads,
 * or in-process when it has none) or from the ONNX training graph (`trainEngine: 'onnx'`),
 * weighted by target tokens so the update equals that of one big batch, clipped by global norm,
 * applied with AdamW.
 */
import {
  clipByGlobalNorm,
  tf,
  type AdamW,
  type CausalLM,
  type ModelWorkerPool,
  type OnnxTrainBatch,
  type OnnxTrainPool,
  type WorkerLossRef,
} from '@codereasoner/core-tensors';
import type { SftShard } from './batching.js';
import { SftTrainingError } from './errors.js';
import type { SftShardOptions } from './sft-loss.js';

// Worker threads import the loss by URL: the built entry next to this file, or the source under test.
const SFT_LOSS: WorkerLossRef = {
  module: new URL(
    /\.ts$/.test(new URL(import.meta.url).pathname) ? './sft-loss.ts' : './sft-loss.js',
    import.meta.url,
  ),
  exportName: 'sftShardLoss',
};

export interface SftUpdate {
  /** Mean loss per target token. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The rate this update used. */
  learningRate: number;
  targetTokens: number;
  /** Real (non-padding) tokens. */
  realTokens: number;
}

export async function sftUpdate(options: {
  pool: ModelWorkerPool;
  optimizer: AdamW;
  shards: readonly SftShard[];
  maxGradNorm: number;
  /** 0-based step, for the error message. */
  step: number;
  /** The configured peak rate, for the error message. */
  peakLearningRate: number;
  /** Gradients from these ONNX training sessions over `model`'s weights instead of the pool. */
  onnx?: { sessions: OnnxTrainPool; model: CausalLM };
}): Promise<SftUpdate> {
  const { pool, optimizer, shards } = options;
  let targetTokens = 0;
  let realTokens = 0;
  for (const shard of shards) {
    targetTokens += shard.count;
    realTokens += shard.tokens;
  }
  const { grads, loss } =
    options.onnx === undefined
      ? await poolGradients(pool, shards, targetTokens)
      : await onnxGradients(options.onnx.sessions, options.onnx.model, shards, targetTokens);
  const clipped = clipByGlobalNorm(grads, options.maxGradNorm);
  tf.dispose(Object.values(grads));
  if (!Number.isFinite(loss) || !Number.isFinite(clipped.norm)) {
    tf.dispose(Object.values(clipped.grads));
    throw new SftTrainingError(
      'SFT_NON_FINITE',
      `step ${options.step}: loss ${loss}, gradient norm ${clipped.norm}; lower learningRate (now ${options.peakLearningRate}) or maxGradNorm`,
    );
  }
  const learningRate = optimizer.learningRate;
  optimizer.applyGradients(clipped.grads);
  tf.dispose(Object.values(clipped.grads));
  return { loss, gradNorm: clipped.norm, learningRate, targetTokens, realTokens };
}

async function poolGradients(
  pool: ModelWorkerPool,
  shards: readonly SftShard[],
  targetTokens: number,
): Promise<{ grads: tf.NamedTensorMap; loss: number }> {
  const result = await pool.computeGradients<SftShardOptions>({
    loss: SFT_LOSS,
    shards: shards.map((shard) => ({
      data: shard.data,
      weight: shard.count,
      options: { count: shard.count },
    })),
    reduce: 'mean',
  });
  // Σ count·loss / Σ count in shard order: the mean loss per target token of the step
  let lossSum = 0;
  shards.forEach((shard, index) => {
    lossSum += (result.shards[index]?.loss ?? NaN) * shard.count;
  });
  return { grads: result.grads, loss: lossSum / targetTokens };
}

/**
 * The same gradients from the ONNX training graph: each shard's loss is −Σ weights·log p over the
 * step's target tokens (divisor `targetTokens`), so the shards' losses and gradients sum to the
 * step's mean. The pool runs the shards on its threads and sums them in shard order, so the step
 * does not depend on which thread finished first. Keys are the model's variable names, as
 * `computeGradients` gives them.
 */
async function onnxGradients(
  sessions: OnnxTrainPool,
  model: CausalLM,
  shards: readonly SftShard[],
  targetTokens: number,
): Promise<{ grads: tf.NamedTensorMap; loss: number }> {
  const parameters = model.parameters;
  const weights = new Map<string, Float32Array>();
  for (const [name, variable] of parameters)
    weights.set(name, (await variable.data()) as Float32Array);
  const batches: OnnxTrainBatch[] = [];
  for (const shard of shards) {
    // a shard without targets adds nothing (its rows' loss weights are all 0)
    if (shard.count === 0) continue;
    const [batch, time] = shard.data.inputIds.shape as [number, number];
    batches.push({
      inputIds: shard.data.inputIds.values,
      attentionMask: shard.data.attentionMask.values,
      batch,
      time,
      targetWeights: shard.data.weights.values,
      divisor: targetTokens,
    });
  }
  const result = await sessions.run(weights, batches);
  // no target token in the step: NaN, as the tfjs path's 0 / 0 (sftUpdate's error says what to do)
  const loss = targetTokens > 0 ? result.loss : NaN;
  const grads: tf.NamedTensorMap = {};
  for (const [name, variable] of parameters)
    grads[variable.name] = tf.tensor(
      result.gradients.get(name) ?? new Float32Array(variable.size),
      variable.shape,
    );
  return { grads, loss };
}
