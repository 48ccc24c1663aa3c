import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { DIFFICULTY_LEVELS } from '@codereasoner/data';
import { readJsonlAll, taskRecordSchema, type TaskRecord } from '@codereasoner/protocol';
import type { BaselineItem, EvaluationItem } from '@codereasoner/sft';
import type { RunDirectory } from './run-dir.js';

// Held-out accuracy per difficulty level: the generator records each program's level on its
// tasks (`meta.difficulty`), and a model that reads code should do better on the easy levels
// than a constant answer does there. Tasks from other sources have no level (`–`).

/** Correct and total per level, for one model or baseline. */
export type LevelScores = Record<string, { correct: number; total: number }>;

export interface LevelAccuracy {
  /** Levels present among the evaluated tasks, easiest first (`–`: no level recorded). */
  levels: string[];
  /** Evaluated tasks per level. */
  tasks: Record<string, number>;
  models: { name: string; scores: LevelScores }[];
  /** The trivial baselines on the same items (best constant: each type's oracle answer). */
  baselines: { name: string; scores: LevelScores }[];
}

export function taskLevel(task: Pick<TaskRecord, 'meta'>): string {
  const level = task.meta?.['difficulty'];
  return typeof level === 'string' ? level : '–';
}

function add(scores: LevelScores, level: string, correct: boolean): void {
  const entry = (scores[level] ??= { correct: 0, total: 0 });
  entry.total += 1;
  if (correct) entry.correct += 1;
}

function orderLevels(levels: Iterable<string>): string[] {
  const rank = (level: string) => {
    const index = (DIFFICULTY_LEVELS as readonly string[]).indexOf(level);
    return index === -1 ? DIFFICULTY_LEVELS.length : index;
  };
  return [...new Set(levels)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/**
 * Accuracy per level of the run's evaluated models and baselines, from `eval/<model>.json` and
 * `eval/baselines.json` items and the held-out split's task records. Undefined when nothing was
 * evaluated.
 */
export async function collectLevelAccuracy(run: RunDirectory): Promise<LevelAccuracy | undefined> {
  const splitPath = run.path('data', 'tasks', 'eval.jsonl');
  if (!existsSync(splitPath)) return undefined;
  const level = new Map<string, string>();
  for (const task of await readJsonlAll(splitPath, taskRecordSchema))
    level.set(task.id, taskLevel(task));
  const levelOf = (id: string) => level.get(id) ?? '–';
  const models: LevelAccuracy['models'] = [];
  const tasks: Record<string, number> = {};
  for (const name of ['base', 'sft', 'grpo']) {
    const path = run.path('eval', `${name}.json`);
    if (!existsSync(path)) continue;
    const { items } = JSON.parse(await readFile(path, 'utf8')) as { items?: EvaluationItem[] };
    if (items === undefined) continue;
    const scores: LevelScores = {};
    for (const item of items) add(scores, levelOf(item.taskId), item.correct);
    if (models.length === 0)
      for (const item of items)
        tasks[levelOf(item.taskId)] = (tasks[levelOf(item.taskId)] ?? 0) + 1;
    models.push({ name, scores });
  }
  if (models.length === 0) return undefined;
  const baselines: LevelAccuracy['baselines'] = [];
  const baselinePath = run.path('eval', 'baselines.json');
  if (existsSync(baselinePath)) {
    const { items } = JSON.parse(await readFile(baselinePath, 'utf8')) as {
      items?: BaselineItem[];
    };
    if (items !== undefined) {
      const majority: LevelScores = {};
      const constant: LevelScores = {};
      const random: LevelScores = {};
      for (const item of items) {
        const at = levelOf(item.taskId);
        if (item.majority !== undefined) add(majority, at, item.majority);
        add(constant, at, item.bestConstant);
        if (item.random !== undefined) add(random, at, item.random.correct);
      }
      baselines.push(
        { name: 'baseline: majority (train)', scores: majority },
        { name: 'baseline: best constant', scores: constant },
        { name: 'baseline: random (train)', scores: random },
      );
    }
  }
  return { levels: orderLevels(Object.keys(tasks)), tasks, models, baselines };
}

function cell(score: { correct: number; total: number } | undefined): string {
  if (score === undefined || score.total === 0) return '–';
  return (100 * (score.correct / score.total)).toFixed(1);
}

/** Rows of accuracy (%) per level: models, then baselines; the header counts each level's tasks. */
export function levelGrid(accuracy: LevelAccuracy): { header: string[]; rows: string[][] } {
  return {
    header: ['model', ...accuracy.levels.map((level) => `${level} (${accuracy.tasks[level]})`)],
    rows: [...accuracy.models, ...accuracy.baselines].map(({ name, scores }) => [
      name,
      ...accuracy.levels.map((level) => cell(scores[level])),
    ]),
  };
}
