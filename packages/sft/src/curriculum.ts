import { planEpoch, type BatchPlanOptions, type EpochPlanner } from './batching.js';

// Curriculum: each epoch goes from the easiest examples to the hardest. Examples carry a level
// rank (0 = easiest; the corpus generator's `basic`, `easy`, `medium`, `hard`); an epoch is the
// usual plan (shuffled, length-bucketed batches in random order) of level 0's examples, then of
// level 1's, and so on, so a batch holds one level and the levels come in order. A run of about
// one epoch (the default preset's) thus sees easy programs first and hard ones last.

/**
 * The curriculum's epoch planner over `lengths` (one per example) and `levels` (same length,
 * integers, lower = easier). Deterministic in (lengths, levels, options, epoch).
 */
export function curriculumPlanner(
  lengths: readonly number[],
  levels: readonly number[],
  options: BatchPlanOptions,
): EpochPlanner {
  if (levels.length !== lengths.length)
    throw new RangeError(
      `curriculum: ${levels.length} levels for ${lengths.length} examples; give one level per example`,
    );
  const groups = new Map<number, number[]>();
  levels.forEach((level, index) => {
    if (!Number.isInteger(level))
      throw new RangeError(`curriculum: level ${level} of example ${index} is not an integer`);
    const group = groups.get(level);
    if (group === undefined) groups.set(level, [index]);
    else group.push(index);
  });
  const ordered = [...groups.entries()].sort((a, b) => a[0] - b[0]);
  return (epoch) =>
    ordered.flatMap(([level, members]) =>
      planEpoch(
        members.map((index) => lengths[index]!),
        epoch,
        // each level its own shuffle
        { ...options, seed: options.seed + 7919 * (level + 1) },
      ).map((batch) => batch.map((position) => members[position]!)),
    );
}
