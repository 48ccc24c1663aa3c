/** The five code-reasoning question kinds. */
export type TaskType = 'output' | 'input' | 'coverage' | 'state' | 'path';

export const TASK_TYPES: readonly TaskType[] = ['output', 'input', 'coverage', 'state', 'path'];

/** The task types whose question names a line of the program (the prompt numbers the lines). */
export const LINE_TASK_TYPES: readonly TaskType[] = ['coverage', 'state', 'path'];

/** The benchmarks the project evaluates on. */
export type BenchmarkName = 'cruxeval' | 'livecodebench' | 'reval';

export const BENCHMARK_NAMES: readonly BenchmarkName[] = ['cruxeval', 'livecodebench', 'reval'];

/**
 * `workers: 'auto'` starts worker threads only for models of at least this many parameters:
 * below it, posting batches to threads costs more than the threads save.
 */
export const AUTO_WORKERS_MIN_PARAMETERS = 200_000;

/** The directory name of the checkpoint saved at `step`: `step-00000042` (sorts by step). */
export function checkpointStepName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** The step of a `checkpointStepName` directory, or undefined for any other name. */
export function parseCheckpointStepName(name: string): number | undefined {
  const match = /^step-(\d{8,})$/.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/**
 * The items of `groups` taken round-robin (the first of each group in order, then the second of
 * each, ...), at most `limit` of them, so any prefix covers every group that still has items.
 */
export function interleave<T>(groups: readonly (readonly T[])[], limit = Infinity): T[] {
  const picked: T[] = [];
  const longest = Math.max(0, ...groups.map((group) => group.length));
  for (let round = 0; round < longest && picked.length < limit; round++) {
    for (const group of groups) {
      const item = group[round];
      if (item !== undefined && picked.length < limit) picked.push(item);
    }
  }
  return picked;
}

/**
 * Up to `limit` items taken round-robin over their groups (in first-seen group order, each group
 * in its given order), so every group is represented: `roundRobin(tasks, (t) => t.type, 10)`.
 * `limit` 0 or at least `items.length` keeps every item, in the given order.
 */
export function roundRobin<T>(
  items: readonly T[],
  groupOf: (item: T) => string,
  limit: number,
): T[] {
  if (limit <= 0 || items.length <= limit) return [...items];
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = groupOf(item);
    const list = groups.get(key) ?? [];
    list.push(item);
    groups.set(key, list);
  }
  return interleave([...groups.values()], limit);
}
