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
