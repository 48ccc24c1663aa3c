import type { BenchItem, SampleVerdict } from './types.js';

/** One answer given to every question of a task, scored like a model's answers. */
export interface ConstantBaseline {
  answer: string;
  /** Questions it passes, of `items`. */
  passed: number;
  items: number;
  /** `passed / items` ×100, comparable with the task's score. */
  score: number;
}

export interface TaskBaselines {
  /** The most frequent gold answer among the scored questions; `frequency`: how many have it. */
  majority: ConstantBaseline & { frequency: number };
  /**
   * The best of the `candidates` most frequent gold answers (the majority included): an oracle
   * choice, made on the scored questions themselves.
   */
  bestConstant: ConstantBaseline & { candidates: number };
}

/** Gold answers by frequency, most frequent first; ties in code-point order (deterministic). */
function ranked(golds: readonly string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const gold of golds) counts.set(gold, (counts.get(gold) ?? 0) + 1);
  return [...counts].sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The constant-answer baselines of every task whose items carry a gold answer (CRUXEval-O/I,
 * LiveCodeBench): each of the `candidates` most frequent gold answers is given, in the prompt
 * style's own format (`item.answerWith`), as the answer to every question of the task and scored
 * by `score`, the benchmark's own scorer (extraction, execution, strict literals when set).
 * A benchmark has no training split, so the majority is taken over the scored questions.
 */
export async function constantBaselines(
  items: readonly BenchItem[],
  tasks: readonly string[],
  score: (
    indices: readonly number[],
    completions: readonly (readonly string[])[],
  ) => Promise<SampleVerdict[][]>,
  candidates: number,
): Promise<Record<string, TaskBaselines>> {
  const result: Record<string, TaskBaselines> = {};
  if (candidates < 1) return result;
  for (const task of tasks) {
    const indices = items.flatMap((item, index) =>
      item.task === task && item.gold !== undefined && item.answerWith !== undefined ? [index] : [],
    );
    if (indices.length === 0) continue;
    const top = ranked(indices.map((index) => items[index]!.gold!)).slice(0, candidates);
    const scored: ConstantBaseline[] = [];
    for (const [answer] of top) {
      const verdicts = await score(
        indices,
        indices.map((index) => [items[index]!.answerWith!(answer)]),
      );
      const passed = verdicts.filter((samples) => samples[0]?.verdict === 'pass').length;
      scored.push({
        answer,
        passed,
        items: indices.length,
        score: (100 * passed) / indices.length,
      });
    }
    // ties go to the more frequent gold (the earlier candidate)
    const best = scored.reduce((a, b) => (b.passed > a.passed ? b : a));
    result[task] = {
      majority: { ...scored[0]!, frequency: top[0]![1] },
      bestConstant: { ...best, candidates: top.length },
    };
  }
  return result;
}
