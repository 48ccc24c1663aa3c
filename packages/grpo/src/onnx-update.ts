/*
 * GRPO's policy gradient on core-tensors' ONNX training graph (`trainEngine: 'onnx'`), for the
 * updates where the clipped surrogate's gradient is that of a weighted log-likelihood.
 *
 * Why the weights below are exact. On-policy (numIterations 1, stepsPerGeneration 1: no old
 * log-probs) `grpoLossTensor` takes ℓ_old = stop_gradient(ℓ), so every ratio is exp(0) = 1 with
 * ∂ratio/∂ℓ_t = 1 (token level). min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A) at r = 1 (inside the
 * clip range, ε > 0) has derivative A whichever operand the minimum picks (both are r·A there and
 * clip passes the gradient inside its range), so with beta = 0 (no k3 term)
 *   ∂L/∂ℓ_t = −A_i·m_t / N        N = the normaliser's count (`tokens`) or value (`constant`),
 *   ∂L/∂ℓ_t = −A_i·m_t / (n_i·S)  `sequenceMean` (lossType grpo): n_i = Σ_t m_t, S = sequences,
 * with m the 0/1 loss mask. That is the gradient of −Σ w_t·ℓ_t with w_t = A_i·m_t/N (or
 * /(n_i·S)): the training graph's loss with loss weights w and divisor 1.
 * Sequence level (GSPO): s_i = exp(Σ_t m_t(ℓ_t − ℓ_old,t) / n_i) = 1 and ∂s_i/∂ℓ_t = m_t/n_i; each of
 * the row's n_i active tokens carries −min(s_i·A, clip(s_i)·A), so ∂L/∂ℓ_t = −(n_i/N)·A_i·m_t/n_i
 * = −A_i·m_t/N (and likewise for `sequenceMean`): the same weights, exact as well.
 * Off-policy ratios differ from 1 and clip; beta > 0 adds k3's gradient: those stay on tfjs.
 * The loss value on-policy is −Σ A_i·m_t / N (every ratio 1): the float64 reference gives it.
 */
import {
  OnnxTrainPool,
  onnxTrainUnsupported,
  sumOnnxTrainResults,
  tf,
  type CausalLM,
  type OnnxTrainBatch,
} from '@codereasoner/core-tensors';
import type { GrpoConfig } from './config.js';
import type { MicroBatchLayout, Sample } from './micro-batch.js';
import type { LossNormalizer } from './policy-loss.js';

/** The loss weights [rows, width] that make −Σ w·log p's gradient the on-policy surrogate's (see above). */
export function onPolicyTokenWeights(
  layout: MicroBatchLayout,
  samples: readonly Sample[],
  normalizer: LossNormalizer,
): Float32Array {
  const { rows, width, lossMask } = layout;
  const weights = new Float32Array(rows * width);
  for (let b = 0; b < rows; b++) {
    let active = 0;
    for (let j = 0; j < width; j++) active += lossMask[b * width + j]!;
    if (active === 0) continue;
    const divisor =
      normalizer.kind === 'sequenceMean'
        ? active * normalizer.sequences
        : normalizer.kind === 'tokens'
          ? normalizer.count
          : normalizer.value;
    const w = samples[b]!.advantage / divisor;
    for (let j = 0; j < width; j++) {
      const m = lossMask[b * width + j]!;
      if (m !== 0) weights[b * width + j] = w * m;
    }
  }
  return weights;
}

/** One micro-batch's figures from the graph: log-probs and entropy on the [rows, width] grid (0 off the loss mask). */
export interface OnnxShardFigures {
  logProbs: Float32Array;
  entropy: Float32Array;
}

/**
 * The summed gradients of the micro-batches (keys: the policy's variable names, as the pool's
 * `computeGradients` gives them) and each one's log-probs and entropy at its loss-active tokens.
 * Each micro-batch runs on one single-threaded session of `sessions` (as many as it has
 * workers), the gradients summed in micro-batch order: the same bits for any number of threads.
 * A micro-batch without an active token adds nothing (its gradient is 0) and is not run.
 */
export async function onnxPolicyGradients(
  sessions: OnnxTrainPool,
  policy: CausalLM,
  shards: readonly {
    layout: MicroBatchLayout;
    part: readonly Sample[];
    normalizer: LossNormalizer;
  }[],
): Promise<{ grads: tf.NamedTensorMap; shards: OnnxShardFigures[] }> {
  const parameters = policy.parameters;
  const weights = new Map<string, Float32Array>();
  for (const [name, variable] of parameters)
    weights.set(name, (await variable.data()) as Float32Array);
  const figures: OnnxShardFigures[] = [];
  const batches: OnnxTrainBatch[] = [];
  /** per batch run: its micro-batch and its rows' cells on the [rows, width] grid, in the feeds' order */
  const runs: { shard: number; cells: number[] }[] = [];
  shards.forEach(({ layout, part, normalizer }, k) => {
    figures.push({
      logProbs: new Float32Array(layout.rows * layout.width),
      entropy: new Float32Array(layout.rows * layout.width),
    });
    const cells: number[] = [];
    // the rows `onnxTrainFeeds` keeps under a targetMask, in its order: real targets of loss-active cells
    for (let b = 0; b < layout.rows; b++)
      for (let j = 0; j < layout.width; j++)
        if (
          layout.attentionMask[b * layout.time + j + 1]! > 0 &&
          layout.lossMask[b * layout.width + j]! > 0
        )
          cells.push(b * layout.width + j);
    if (cells.length === 0) return;
    runs.push({ shard: k, cells });
    batches.push({
      inputIds: layout.inputIds,
      attentionMask: layout.attentionMask,
      batch: layout.rows,
      time: layout.time,
      targetWeights: onPolicyTokenWeights(layout, part, normalizer),
      // every loss-active token is a row, weight 0 (advantage 0) included: the metrics read them all
      targetMask: layout.lossMask,
      divisor: 1,
    });
  });
  const results = await sessions.runEach(weights, batches);
  results.forEach((result, r) => {
    const { shard, cells } = runs[r]!;
    const { logProbs, entropy } = figures[shard]!;
    if (result.logProbs?.length !== cells.length || result.entropy?.length !== cells.length)
      throw new Error(
        `onnx policy gradients: micro-batch ${shard + 1} gave ${result.logProbs?.length} log-probs for ${cells.length} rows (a graph without row outputs?)`,
      );
    cells.forEach((cell, i) => {
      logProbs[cell] = result.logProbs![i]!;
      entropy[cell] = result.entropy![i]!;
    });
  });
  // summed in micro-batch order, as the pool's `run` does
  const sums = sumOnnxTrainResults(results).gradients;
  const grads: tf.NamedTensorMap = {};
  for (const [name, variable] of parameters)
    grads[variable.name] = tf.tensor(
      sums.get(name) ?? new Float32Array(variable.size),
      variable.shape,
    );
  return { grads, shards: figures };
}

/**
 * Why the ONNX training graph cannot compute this run's gradients (undefined: it can, as far as
 * can be told before opening a session): off-policy updates, beta > 0, LoRA adapters, Qwen3's
 * q/k norms, or onnxruntime-node not loading here.
 */
export function onnxTrainEngineUnsupported(
  config: Pick<GrpoConfig, 'numIterations' | 'stepsPerGeneration' | 'beta'>,
  policy: CausalLM,
): string | undefined {
  if (config.numIterations > 1 || config.stepsPerGeneration > 1)
    return `the updates are off-policy (numIterations ${config.numIterations}, stepsPerGeneration ${config.stepsPerGeneration}): ratios other than 1 and clipping are not in the graph`;
  if (config.beta !== 0) return `beta is ${config.beta}: the KL term is not in the graph`;
  return onnxTrainUnsupported(policy);
}

/** Opens `workers` sessions of the policy's training graph with GRPO's temperature and vocabulary limit, or says why it cannot. */
export async function openOnnxPolicyStep(
  config: GrpoConfig,
  policy: CausalLM,
  vocabLimit: number,
  workers: number,
): Promise<OnnxTrainPool | { unsupported: string }> {
  const unsupported = onnxTrainEngineUnsupported(config, policy);
  if (unsupported !== undefined) return { unsupported };
  try {
    return await OnnxTrainPool.create(policy.config, workers, {
      temperature: config.temperature,
      vocabLimit,
      logProbs: true,
      entropy: true,
    });
  } catch (error) {
    return {
      unsupported: `onnxruntime refused the training graph (${error instanceof Error ? error.message : String(error)})`,
    };
  }
}
