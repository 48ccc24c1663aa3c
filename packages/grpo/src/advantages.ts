import { GrpoShapeError, assertFinite } from './errors.js';

/** How group-centred rewards are scaled (TRL `scale_rewards`). */
export type ScaleRewards = 'group' | 'batch' | 'none';

/**
 * - `informative`: at least two scorable members with different rewards.
 * - `allSame`: every scorable member has exactly the same reward (or only one is scorable): no
 *   learning signal, advantages are exactly 0.
 * - `unscorable`: every reward function returned `null` for every member.
 */
export type GroupStatus = 'informative' | 'allSame' | 'unscorable';

export interface GroupStats {
  /** Mean of the scorable members' rewards; null when none is scorable. */
  mean: number | null;
  /** Bessel-corrected std of the scorable rewards (exactly 0 for `allSame`); null when none is scorable. */
  std: number | null;
  /** Members with a non-null reward. */
  scorable: number;
  status: GroupStatus;
}

export interface GroupAdvantagesOptions {
  /** G, the number of completions per prompt; consecutive runs of G rewards form a group. */
  groupSize: number;
  /** Default `group`. */
  scaleRewards?: ScaleRewards;
  /** Added to the std before dividing (TRL 1e-4, verl 1e-6, OpenRLHF 1e-9). Default 1e-4. */
  epsilon?: number;
}

export interface GroupAdvantagesResult {
  /** One per completion. 0 for unscorable completions and for every member of an `allSame` group. */
  advantages: number[];
  groups: GroupStats[];
  /** Bessel std over every scorable reward of the batch (the divisor for `batch`); null with fewer than 2. */
  batchStd: number | null;
  /** Fraction of groups whose status is `allSame` (TRL `frac_reward_zero_std`). */
  fracZeroStd: number;
  /** Fraction of groups whose status is `unscorable`. */
  fracUnscorable: number;
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Bessel-corrected (n − 1) standard deviation; the caller guarantees n ≥ 2. */
function besselStd(values: readonly number[]): number {
  const m = mean(values);
  let squares = 0;
  for (const v of values) squares += (v - m) * (v - m);
  return Math.sqrt(squares / (values.length - 1));
}

function allEqual(values: readonly number[]): boolean {
  for (const v of values) if (v !== values[0]) return false;
  return true;
}

/**
 * Group-relative advantages: A_i = (r_i − mean_g) / (std + epsilon), with std the group's
 * Bessel std (`group`), the whole batch's (`batch`, Lite PPO) or no division at all (`none`,
 * Dr. GRPO). Two choices differ from the anchors on purpose:
 * - a group is "zero std" when its scorable rewards are exactly equal, decided by `===` and not
 *   by a float std, so identical rewards never turn fp residue into ±1/epsilon advantages;
 * - `null` rewards (a reward that does not apply to a row) are left out of the group's mean and
 *   std instead of poisoning them; an unscorable completion gets advantage 0.
 * NaN or ±Infinity rewards throw `NonFiniteValueError` naming the index.
 */
export function groupAdvantages(
  rewards: readonly (number | null)[],
  options: GroupAdvantagesOptions,
): GroupAdvantagesResult {
  const { groupSize } = options;
  const scaleRewards = options.scaleRewards ?? 'group';
  const epsilon = options.epsilon ?? 1e-4;
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new GrpoShapeError(
      `groupAdvantages: groupSize must be a positive integer, got ${groupSize}`,
    );
  }
  if (rewards.length % groupSize !== 0) {
    throw new GrpoShapeError(
      `groupAdvantages: ${rewards.length} rewards do not split into groups of ${groupSize}; pass whole groups (a multiple of groupSize).`,
    );
  }
  if (!Number.isFinite(epsilon) || epsilon < 0) {
    throw new GrpoShapeError(
      `groupAdvantages: epsilon must be a finite number >= 0, got ${epsilon}`,
    );
  }
  rewards.forEach((r, i) => {
    if (r !== null)
      assertFinite(r, `rewards[${i}]`, 'every reward must be a finite number or null.');
  });

  const groups: GroupStats[] = [];
  const scorableAll: number[] = [];
  for (let start = 0; start < rewards.length; start += groupSize) {
    const scorable = rewards.slice(start, start + groupSize).filter((r): r is number => r !== null);
    scorableAll.push(...scorable);
    if (scorable.length === 0) {
      groups.push({ mean: null, std: null, scorable: 0, status: 'unscorable' });
    } else if (allEqual(scorable)) {
      groups.push({ mean: scorable[0]!, std: 0, scorable: scorable.length, status: 'allSame' });
    } else {
      groups.push({
        mean: mean(scorable),
        std: besselStd(scorable),
        scorable: scorable.length,
        status: 'informative',
      });
    }
  }
  const batchStd =
    scorableAll.length < 2 ? null : allEqual(scorableAll) ? 0 : besselStd(scorableAll);

  const advantages = rewards.map((r, i) => {
    const group = groups[Math.floor(i / groupSize)]!;
    if (r === null || group.status !== 'informative') return 0;
    const centred = r - group.mean!;
    if (scaleRewards === 'none') return centred;
    // An informative group guarantees both stds are > 0, so epsilon only matters as a convention.
    const std = scaleRewards === 'group' ? group.std! : batchStd!;
    return centred / (std + epsilon);
  });

  const count = groups.length;
  return {
    advantages,
    groups,
    batchStd,
    fracZeroStd: count === 0 ? 0 : groups.filter((g) => g.status === 'allSame').length / count,
    fracUnscorable:
      count === 0 ? 0 : groups.filter((g) => g.status === 'unscorable').length / count,
  };
}
