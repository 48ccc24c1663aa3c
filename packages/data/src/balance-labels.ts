import type { TaskRecord, TaskType } from '@codereasoner/protocol';
import { Rng } from '@codereasoner/common';

// Label balancing. Left alone, the traced questions have skewed answers: most asked lines run
// (coverage `yes` ~78 % of the held-out split), a path question often asks about the line before
// the return (`-1` ~35 %), many state questions ask about a fresh accumulator (`0`, `[]`). A model
// that learns the majority answer then looks as good as one that reads code. Capping the share of
// any one answer per task type takes that shortcut away: a constant answer scores at most the cap.

/** The largest share any one answer may have among a task type's tasks, per type (unset: no cap). */
export type LabelShares = Partial<Record<TaskType, number>>;

/** Default caps: coverage exactly balanced, no path answer above 15 % nor state answer above 10 %. */
export const DEFAULT_LABEL_SHARES: Readonly<LabelShares> = {
  coverage: 0.5,
  path: 0.15,
  state: 0.1,
};

/**
 * The per-answer cap m for answer counts `counts` and share s: the largest m with
 * m <= s * sum(min(c, m)) (so after keeping at most m of each answer, none has more than s of
 * what is kept). At least 1: with too few distinct answers for the share (a small corpus) each
 * answer keeps one task, the most even split there is, rather than the type vanishing.
 */
export function labelCap(counts: readonly number[], share: number): number {
  if (!(share > 0 && share <= 1))
    throw new RangeError(`a label share must be in (0, 1], got ${share}`);
  const sorted = [...counts].sort((a, b) => b - a);
  // sum(min(c, m)) grows with m and m/sum(min(c, m)) too: scan m down from the largest count
  for (let m = sorted[0] ?? 0; m >= 1; m -= 1) {
    let kept = 0;
    for (const c of sorted) kept += Math.min(c, m);
    if (m <= share * kept + 1e-9) return m;
  }
  return Math.min(1, sorted[0] ?? 0);
}

/**
 * Tasks with every capped type's answers balanced: for each type in `shares`, each answer keeps
 * at most `labelCap` of its tasks, chosen at random (seeded) among them; other types and the
 * order of the kept tasks are unchanged. Balancing a balanced list removes nothing.
 */
export function balanceLabels(
  tasks: readonly TaskRecord[],
  shares: LabelShares,
  seed: number,
): TaskRecord[] {
  const drop = new Set<TaskRecord>();
  for (const [type, share] of Object.entries(shares) as [TaskType, number][]) {
    const byAnswer = new Map<string, TaskRecord[]>();
    for (const task of tasks) {
      if (task.type !== type) continue;
      const group = byAnswer.get(task.answer);
      if (group === undefined) byAnswer.set(task.answer, [task]);
      else group.push(task);
    }
    const cap = labelCap(
      [...byAnswer.values()].map((group) => group.length),
      share,
    );
    const rng = Rng.splitmix32(seed);
    // answers in a fixed order so the draw does not depend on the order of the Map
    for (const answer of [...byAnswer.keys()].sort()) {
      const group = byAnswer.get(answer)!;
      if (group.length <= cap) continue;
      for (const task of rng.shuffle([...group]).slice(cap)) drop.add(task);
    }
  }
  return tasks.filter((task) => !drop.has(task));
}

/** The share of the most frequent answer per task type (what the best constant answer scores). */
export function topLabelShare(tasks: readonly TaskRecord[]): Partial<Record<TaskType, number>> {
  const counts = new Map<TaskType, Map<string, number>>();
  for (const task of tasks) {
    const byAnswer = counts.get(task.type) ?? new Map<string, number>();
    byAnswer.set(task.answer, (byAnswer.get(task.answer) ?? 0) + 1);
    counts.set(task.type, byAnswer);
  }
  const out: Partial<Record<TaskType, number>> = {};
  for (const [type, byAnswer] of counts) {
    let total = 0;
    let top = 0;
    for (const count of byAnswer.values()) {
      total += count;
      top = Math.max(top, count);
    }
    out[type] = top / total;
  }
  return out;
}
