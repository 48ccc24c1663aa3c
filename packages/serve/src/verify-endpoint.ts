import { taskRecordSchema, type TaskRecord } from '@codereasoner/protocol';
import type { TaskStore } from './task-store.js';

/** `POST /verify`: our own batch endpoint. Items name a loaded task by id or carry the task record itself. */
export interface VerifyRequestItem {
  task_id?: string;
  task?: TaskRecord;
  completion: string;
}

export interface VerifyRequest {
  items: VerifyRequestItem[];
}

export interface VerifyResponseItem {
  task_id: string;
  correct: boolean;
  /** 1 when correct, else 0: the binary reward the paper trains with. */
  reward: number;
  /** `correct`, or `<kind>: <detail>` (no_answer, invalid, wrong, exception, timeout, error). */
  reason: string;
}

export interface VerifyResponse {
  results: VerifyResponseItem[];
}

export const verifyRequestSchema = {
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['completion'],
        additionalProperties: false,
        properties: {
          task_id: { type: 'string', minLength: 1 },
          task: { type: 'object' },
          completion: { type: 'string' },
        },
      },
    },
  },
} as const;

/** A request whose tasks cannot be resolved: answered 400 with every problem listed. */
export class TaskResolutionError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
    this.name = 'TaskResolutionError';
  }
}

/**
 * Each item's task: the record it carries (validated against the task schema) or the loaded
 * task with its id. Collects every problem so the caller can fix the whole batch at once.
 */
export function resolveTasks(items: readonly VerifyRequestItem[], store: TaskStore): TaskRecord[] {
  const issues: string[] = [];
  const tasks = items.map((item, index) => {
    if (item.task !== undefined) {
      const problems = taskRecordSchema.check(item.task);
      if (problems.length > 0) {
        issues.push(...problems.map((problem) => `items.${index}.task.${problem}`));
        return undefined;
      }
      return item.task;
    }
    if (item.task_id === undefined) {
      issues.push(`items.${index}: needs task_id or task`);
      return undefined;
    }
    const task = store.get(item.task_id);
    if (!task) issues.push(unknownTask(`items.${index}.task_id`, item.task_id, store));
    return task;
  });
  if (issues.length > 0) throw new TaskResolutionError(issues);
  return tasks as TaskRecord[];
}

export function unknownTask(where: string, id: string, store: TaskStore): string {
  const loaded =
    store.size === 0
      ? 'no tasks are loaded: start cr serve with --tasks <tasks.jsonl>'
      : `${store.size} tasks are loaded from ${store.sources.join(', ')}; start cr serve with the task file the data set was exported from`;
  return `${where}: unknown task id '${id.slice(0, 200)}' (${loaded})`;
}
