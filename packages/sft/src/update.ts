/*
 * One optimizer step of SFT: the step's shards' gradients from a ModelWorkerPool (on its threads,
 * or in-process when it has none), weighted by target tokens so the update equals that of one big
 * batch, clipped by global norm, applied with AdamW.
 */
import {
  clipByGlobalNorm,
  tf,
  type AdamW,
  type ModelWorkerPool,
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
}): Promise<SftUpdate> {
  const { pool, optimizer, shards } = options;
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
  let targetTokens = 0;
  let realTokens = 0;
  shards.forEach((shard, index) => {
    lossSum += (result.shards[index]?.loss ?? NaN) * shard.count;
    targetTokens += shard.count;
    realTokens += shard.tokens;
  });
  const grads = result.grads;
  const loss = lossSum / targetTokens;
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
