import { groupAdvantages } from './advantages.js';
import type { GrpoConfig } from './config.js';
import { assertFinite } from './errors.js';
import type { UpdateStats } from './policy-update.js';
import type { RewardSpec } from './rewards.js';
import { groupTotals, type RolloutRecord } from './rollout.js';

/**
 * One line of metrics.jsonl, one call of `onMetrics`. Names follow TRL's logged names (anchors
 * §2.7) so existing dashboards read them; additions are marked. Per reward function `name`:
 * `rewards/<name>/mean`, `rewards/<name>/std` (over the completions it applies to) and
 * `rewards/<name>/null_frac` (addition). Reward figures cover every completion generated in the
 * step, also groups dynamic sampling dropped; loss, KL, clip and entropy cover what was trained on.
 */
export interface GrpoStepMetrics {
  /** 1-based generation step. */
  step: number;
  /** Data set passes so far (fractional). */
  epoch: number;
  /** Optimizer updates so far. */
  num_updates: number;
  learning_rate: number;
  /** Loss (policy + beta·KL) averaged over the step's updates. */
  loss: number;
  policy_loss: number;
  /** Mean k3 KL to the reference over trained tokens; present only when beta > 0. */
  kl?: number;
  /** Mean entropy of the (temperature-scaled) policy over trained tokens, first pass. */
  entropy: number;
  /** Global gradient norm before clipping, averaged over the step's updates. */
  grad_norm: number;
  /** Mean total reward over scorable completions. */
  reward: number;
  /** Bessel std of the total reward over scorable completions. */
  reward_std: number;
  frac_reward_zero_std: number;
  /** Addition: fraction of groups no reward function applied to. */
  frac_reward_unscorable: number;
  'clip_ratio/low_mean': number;
  'clip_ratio/high_mean': number;
  'clip_ratio/region_mean': number;
  'completions/mean_length': number;
  'completions/min_length': number;
  'completions/max_length': number;
  /** Fraction of completions cut by maxCompletionLength. */
  'completions/clipped_ratio': number;
  /** Addition: completions generated and groups kept/dropped (dynamic sampling). */
  'completions/count': number;
  'dynamic_sampling/generation_batches': number;
  'dynamic_sampling/kept_groups': number;
  'dynamic_sampling/dropped_groups': number;
  /** Prompt + completion tokens trained on so far (TRL `num_tokens`). */
  num_tokens: number;
  'time/generation_s': number;
  'time/reward_s': number;
  'time/training_s': number;
  'time/step_s': number;
  /** Completion tokens sampled per second of generation. */
  'tokens_per_second/rollout': number;
  /** Prompt + completion tokens through forward and backward per second of training. */
  'tokens_per_second/training': number;
  [perReward: `rewards/${string}/${'mean' | 'std' | 'null_frac'}`]: number;
}

/** Metric names whose values are wall-clock measurements (they differ between identical runs). */
export function isTimingMetric(name: string): boolean {
  return name.startsWith('time/') || name.startsWith('tokens_per_second/');
}

export function meanOf(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Bessel std (0 for fewer than 2 values). */
export function stdOf(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = meanOf(values);
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return Math.sqrt(s / (values.length - 1));
}

/** What a step's metrics are computed from, besides its rollouts and updates. */
export interface StepMetricsInput {
  config: GrpoConfig;
  rewards: readonly RewardSpec[];
  record: RolloutRecord;
  updates: readonly UpdateStats[];
  trainSeconds: number;
  /** Data set passes so far, after the step. */
  epoch: number;
  /** Optimizer updates and tokens trained on so far, after the step. */
  numUpdates: number;
  numTokens: number;
  /** The optimizer's rate for its next update (reported when the step made none). */
  nextLearningRate: number;
  /** beta > 0: report the KL to the reference. */
  withKl: boolean;
}

/** One step's metrics (see `GrpoStepMetrics`); throws when one is not finite. */
export function stepMetrics(input: StepMetricsInput): GrpoStepMetrics {
  const { config: c, record, updates, trainSeconds } = input;
  const all = record.groups;
  const totals = all.flatMap((g) => groupTotals(input.rewards, g));
  const scorable = totals.filter((v): v is number => v !== null);
  const { groups: status } = groupAdvantages(totals, {
    groupSize: c.numGenerations,
    scaleRewards: c.scaleRewards,
    epsilon: c.advantageEpsilon,
  });
  const lengths = all.flatMap((g) => g.completions.map((o) => o.ids.length));
  const truncated = all.flatMap((g) =>
    g.completions.filter((o) => o.finishReason === 'length'),
  ).length;
  const activeTokens = updates.reduce((n, u) => n + u.activeTokens, 0);
  const entropyTokens = updates.reduce((n, u) => n + u.entropyTokens, 0);
  const trainedTokens = updates.reduce((n, u) => n + u.tokens, 0);
  const completionTokens = lengths.reduce((a, b) => a + b, 0);
  const keptGroups = all.filter((g) => g.kept).length;
  const m: GrpoStepMetrics = {
    step: record.step,
    epoch: input.epoch,
    num_updates: input.numUpdates,
    // The rate the step's last update used (the optimizer reports the next one).
    learning_rate: updates.at(-1)?.learningRate ?? input.nextLearningRate,
    loss: meanOf(updates.map((u) => u.loss)),
    policy_loss: meanOf(updates.map((u) => u.policyLoss)),
    entropy:
      entropyTokens === 0 ? 0 : updates.reduce((s, u) => s + u.entropySum, 0) / entropyTokens,
    grad_norm: meanOf(updates.map((u) => u.gradNorm)),
    reward: meanOf(scorable),
    reward_std: stdOf(scorable),
    frac_reward_zero_std: status.filter((g) => g.status === 'allSame').length / status.length,
    frac_reward_unscorable: status.filter((g) => g.status === 'unscorable').length / status.length,
    'clip_ratio/low_mean':
      activeTokens === 0 ? 0 : updates.reduce((s, u) => s + u.clipLow, 0) / activeTokens,
    'clip_ratio/high_mean':
      activeTokens === 0 ? 0 : updates.reduce((s, u) => s + u.clipHigh, 0) / activeTokens,
    'clip_ratio/region_mean':
      activeTokens === 0
        ? 0
        : updates.reduce((s, u) => s + u.clipLow + u.clipHigh, 0) / activeTokens,
    'completions/mean_length': meanOf(lengths),
    'completions/min_length': lengths.length === 0 ? 0 : Math.min(...lengths),
    'completions/max_length': lengths.length === 0 ? 0 : Math.max(...lengths),
    'completions/clipped_ratio': lengths.length === 0 ? 0 : truncated / lengths.length,
    'completions/count': lengths.length,
    'dynamic_sampling/generation_batches': record.generationBatches,
    'dynamic_sampling/kept_groups': keptGroups,
    'dynamic_sampling/dropped_groups': all.length - keptGroups,
    num_tokens: input.numTokens,
    'time/generation_s': record.seconds.generation,
    'time/reward_s': record.seconds.reward,
    'time/training_s': trainSeconds,
    'time/step_s': record.seconds.generation + record.seconds.reward + trainSeconds,
    'tokens_per_second/rollout':
      record.seconds.generation > 0 ? completionTokens / record.seconds.generation : 0,
    'tokens_per_second/training': trainSeconds > 0 ? trainedTokens / trainSeconds : 0,
  };
  if (input.withKl)
    m.kl = activeTokens === 0 ? 0 : updates.reduce((s, u) => s + u.klSum, 0) / activeTokens;
  for (const spec of input.rewards) {
    const values = all.flatMap((g) => g.rewards[spec.name] ?? []);
    const present = values.filter((v): v is number => v !== null);
    m[`rewards/${spec.name}/mean`] = meanOf(present);
    m[`rewards/${spec.name}/std`] = stdOf(present);
    m[`rewards/${spec.name}/null_frac`] =
      values.length === 0 ? 0 : (values.length - present.length) / values.length;
  }
  for (const [name, value] of Object.entries(m)) {
    if (typeof value === 'number')
      assertFinite(
        value,
        `metric ${name} (step ${record.step})`,
        'a reward, the loss or a log-prob went non-finite.',
      );
  }
  return m;
}
