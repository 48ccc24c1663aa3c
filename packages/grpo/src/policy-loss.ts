import { GrpoShapeError } from './errors.js';

/** A [batch, time] table of numbers as rows (one row per completion; rows may differ in length). */
export type Matrix = readonly (readonly number[])[];

/** TRL's `loss_type` names; see `lossNormalizer` for exactly what each divides by. */
export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

/** `token`: one ratio per token (PPO/GRPO); `sequence`: one geometric-mean ratio per completion (GSPO). */
export type ImportanceSamplingLevel = 'token' | 'sequence';

export interface ClipRange {
  /** ε_low: ratios below 1 − epsilon are clipped. */
  epsilon: number;
  /** ε_high: ratios above 1 + epsilonHigh are clipped (DAPO clip-higher). Defaults to `epsilon`. */
  epsilonHigh?: number;
}

/**
 * What the summed masked per-token loss is divided by. Explicit, so gradient accumulation and
 * micro-batching are a caller decision the types make visible:
 * - `sequenceMean`: each completion's masked token mean, summed, divided by `sequences`;
 * - `tokens`: the masked token sum divided by `count` tokens;
 * - `constant`: the masked token sum divided by `value`.
 */
export type LossNormalizer =
  | { kind: 'sequenceMean'; sequences: number }
  | { kind: 'tokens'; count: number }
  | { kind: 'constant'; value: number };

/** The counts of one optimizer step (every micro-batch that accumulates into one update). */
export interface StepCounts {
  /** Completions in the optimizer step, masked or not. */
  completions: number;
  /** Completions with at least one loss-active token. */
  activeSequences: number;
  /** Loss-active tokens in the whole optimizer step. */
  activeTokens: number;
  /** The generation cap (Dr. GRPO's constant). */
  maxCompletionLength: number;
  /** For `bnpo` only: active tokens of the micro-batch being aggregated, and how many micro-batches the step has. */
  microBatch?: { activeTokens: number; count: number };
}

function checkSameShape(name: string, a: Matrix, bName: string, b: Matrix): void {
  if (a.length !== b.length)
    throw new GrpoShapeError(`${name} has ${a.length} rows but ${bName} has ${b.length}`);
  a.forEach((row, i) => {
    if (row.length !== b[i]!.length) {
      throw new GrpoShapeError(
        `${name}[${i}] has ${row.length} entries but ${bName}[${i}] has ${b[i]!.length}`,
      );
    }
  });
}

function activeCount(maskRow: readonly number[]): number {
  let n = 0;
  for (const m of maskRow) n += m;
  return n;
}

/**
 * Importance ratios w = π_θ / π_old per token. `token`: ρ_t = exp(ℓ_t − ℓ^old_t). `sequence` (GSPO
 * eq. 7): s = exp(mean over active tokens of ℓ − ℓ^old), the same value for every token of the row.
 * Masked positions get ratio 1 so padding can never overflow.
 */
export function importanceRatios(
  logProbs: Matrix,
  oldLogProbs: Matrix,
  mask: Matrix,
  level: ImportanceSamplingLevel = 'token',
): number[][] {
  checkSameShape('logProbs', logProbs, 'oldLogProbs', oldLogProbs);
  checkSameShape('logProbs', logProbs, 'mask', mask);
  return logProbs.map((row, i) => {
    const old = oldLogProbs[i]!;
    const m = mask[i]!;
    if (level === 'token') return row.map((lp, t) => (m[t] === 0 ? 1 : Math.exp(lp - old[t]!)));
    let sum = 0;
    let n = 0;
    row.forEach((lp, t) => {
      if (m[t] !== 0) {
        sum += lp - old[t]!;
        n += 1;
      }
    });
    const s = Math.exp(n === 0 ? 0 : sum / n);
    return row.map(() => s);
  });
}

/**
 * The clipped surrogate per token, negated to a loss: L = −min(w·A, clip(w, 1 − ε_low, 1 + ε_high)·A),
 * with the row's advantage A broadcast over its tokens.
 */
export function perTokenPolicyLoss(
  ratios: Matrix,
  advantages: readonly number[],
  clip: ClipRange,
): number[][] {
  if (ratios.length !== advantages.length) {
    throw new GrpoShapeError(
      `ratios has ${ratios.length} rows but advantages has ${advantages.length}`,
    );
  }
  const low = 1 - clip.epsilon;
  const high = 1 + (clip.epsilonHigh ?? clip.epsilon);
  return ratios.map((row, i) => {
    const a = advantages[i]!;
    return row.map((w) => -Math.min(w * a, Math.min(Math.max(w, low), high) * a));
  });
}

/**
 * The k3 estimator of KL(π_θ ‖ π_ref) per token (Schulman 2020; DeepSeekMath eq. 4):
 * exp(ℓ_ref − ℓ) − (ℓ_ref − ℓ) − 1, which is ≥ 0 and 0 exactly when the log-probs agree.
 */
export function k3Kl(logProbs: Matrix, refLogProbs: Matrix): number[][] {
  checkSameShape('logProbs', logProbs, 'refLogProbs', refLogProbs);
  return logProbs.map((row, i) =>
    row.map((lp, t) => {
      const d = refLogProbs[i]![t]! - lp;
      return Math.exp(d) - d - 1;
    }),
  );
}

/**
 * The normaliser each `lossType` means, computed from the whole optimizer step so the result does
 * not depend on how the step is cut into micro-batches (except `bnpo`, whose definition is per
 * micro-batch):
 * - `grpo` (DeepSeekMath eq. 3): mean over completions of each completion's token mean; completions
 *   with no active token are left out (verl `seq-mean-token-mean`; TRL counts them as 0).
 * - `bnpo`: token sum / active tokens of the micro-batch, averaged over micro-batches (TRL).
 * - `dr_grpo` (Dr. GRPO §3.2): token sum / (completions × maxCompletionLength).
 * - `dapo` (DAPO eq. 12): token sum / active tokens of the whole optimizer step.
 * Zero counts are raised to 1 (an all-masked step has loss 0, never NaN).
 */
export function lossNormalizer(lossType: LossType, counts: StepCounts): LossNormalizer {
  switch (lossType) {
    case 'grpo':
      return { kind: 'sequenceMean', sequences: Math.max(counts.activeSequences, 1) };
    case 'bnpo': {
      const micro = counts.microBatch ?? { activeTokens: counts.activeTokens, count: 1 };
      return { kind: 'tokens', count: Math.max(micro.activeTokens, 1) * micro.count };
    }
    case 'dr_grpo':
      return {
        kind: 'constant',
        value: Math.max(counts.completions * counts.maxCompletionLength, 1),
      };
    case 'dapo':
      return { kind: 'tokens', count: Math.max(counts.activeTokens, 1) };
  }
}

/** Counts of a batch given as a mask (one row per completion) for `lossNormalizer`. */
export function stepCounts(mask: Matrix, maxCompletionLength: number): StepCounts {
  let activeTokens = 0;
  let activeSequences = 0;
  for (const row of mask) {
    const n = activeCount(row);
    activeTokens += n;
    if (n > 0) activeSequences += 1;
  }
  return { completions: mask.length, activeSequences, activeTokens, maxCompletionLength };
}

/** Reduces a per-token loss to a scalar with an explicit normaliser (only mask = 1 tokens count). */
export function aggregateLoss(perToken: Matrix, mask: Matrix, normalizer: LossNormalizer): number {
  checkSameShape('perToken', perToken, 'mask', mask);
  if (normalizer.kind === 'sequenceMean') {
    let sum = 0;
    perToken.forEach((row, i) => {
      const m = mask[i]!;
      const n = activeCount(m);
      if (n === 0) return;
      let rowSum = 0;
      row.forEach((v, t) => {
        if (m[t] !== 0) rowSum += v * m[t]!;
      });
      sum += rowSum / n;
    });
    return sum / normalizer.sequences;
  }
  let sum = 0;
  perToken.forEach((row, i) => {
    const m = mask[i]!;
    row.forEach((v, t) => {
      if (m[t] !== 0) sum += v * m[t]!;
    });
  });
  return sum / (normalizer.kind === 'tokens' ? normalizer.count : normalizer.value);
}

export interface ClipStatistics {
  /** Fraction of active tokens with w < 1 − ε_low and A < 0 (the clip binds from below). */
  low: number;
  /** Fraction of active tokens with w > 1 + ε_high and A > 0 (the clip binds from above). */
  high: number;
  /** low + high: fraction of active tokens whose gradient the clip removed. */
  region: number;
  activeTokens: number;
}

/** TRL's clip ratios: only clips that bind (that change the min) are counted. */
export function clipStatistics(
  ratios: Matrix,
  advantages: readonly number[],
  mask: Matrix,
  clip: ClipRange,
): ClipStatistics {
  checkSameShape('ratios', ratios, 'mask', mask);
  if (ratios.length !== advantages.length) {
    throw new GrpoShapeError(
      `ratios has ${ratios.length} rows but advantages has ${advantages.length}`,
    );
  }
  const lowBound = 1 - clip.epsilon;
  const highBound = 1 + (clip.epsilonHigh ?? clip.epsilon);
  let low = 0;
  let high = 0;
  let tokens = 0;
  ratios.forEach((row, i) => {
    const a = advantages[i]!;
    row.forEach((w, t) => {
      if (mask[i]![t] === 0) return;
      tokens += 1;
      if (w < lowBound && a < 0) low += 1;
      if (w > highBound && a > 0) high += 1;
    });
  });
  const d = Math.max(tokens, 1);
  return { low: low / d, high: high / d, region: (low + high) / d, activeTokens: tokens };
}

export interface GrpoLossInputs {
  logProbs: Matrix;
  oldLogProbs: Matrix;
  /** Required when beta > 0. */
  refLogProbs?: Matrix;
  advantages: readonly number[];
  mask: Matrix;
}

export interface GrpoLossOptions extends ClipRange {
  beta: number;
  importanceSamplingLevel: ImportanceSamplingLevel;
  normalizer: LossNormalizer;
}

export interface GrpoLossResult {
  /** policy loss + beta · KL, aggregated with the normaliser. */
  loss: number;
  /** The clipped-surrogate part alone, same aggregation. */
  policyLoss: number;
  /** Mean k3 KL over active tokens (0 when beta = 0 and no reference is given). */
  kl: number;
  clip: ClipStatistics;
  ratios: number[][];
}

/**
 * The whole GRPO loss in float64 on plain arrays: the reference the TF.js loss is tested against.
 * Per token: L = −min(w·A, clip(w)·A) + β·k3, then `aggregateLoss` with the given normaliser.
 */
export function grpoLossReference(
  inputs: GrpoLossInputs,
  options: GrpoLossOptions,
): GrpoLossResult {
  const ratios = importanceRatios(
    inputs.logProbs,
    inputs.oldLogProbs,
    inputs.mask,
    options.importanceSamplingLevel,
  );
  const policy = perTokenPolicyLoss(ratios, inputs.advantages, options);
  const policyLoss = aggregateLoss(policy, inputs.mask, options.normalizer);
  let loss = policyLoss;
  let kl = 0;
  if (inputs.refLogProbs !== undefined) {
    const perTokenKl = k3Kl(inputs.logProbs, inputs.refLogProbs);
    kl = aggregateLoss(perTokenKl, inputs.mask, {
      kind: 'tokens',
      count: Math.max(stepCounts(inputs.mask, 1).activeTokens, 1),
    });
    if (options.beta !== 0) {
      const total = policy.map((row, i) =>
        row.map((v, t) => v + options.beta * perTokenKl[i]![t]!),
      );
      loss = aggregateLoss(total, inputs.mask, options.normalizer);
    }
  } else if (options.beta !== 0) {
    throw new GrpoShapeError('grpoLossReference: beta is not 0, so refLogProbs are required');
  }
  return {
    loss,
    policyLoss,
    kl,
    clip: clipStatistics(ratios, inputs.advantages, inputs.mask, options),
    ratios,
  };
}
