import { readJsonl, taskRecordSchema, type TaskRecord } from '@codereasoner/protocol';
import { ServeError } from './errors.js';

/**
 * The tasks a service answers for, by id. Loaded once at start-up from the same task files the
 * exports were made from, so every instance behind a load balancer answers the same way.
 */
export class TaskStore {
  private readonly byId = new Map<string, TaskRecord>();
  readonly sources: string[] = [];

  get size(): number {
    return this.byId.size;
  }

  get(id: string): TaskRecord | undefined {
    return this.byId.get(id);
  }

  add(task: TaskRecord, source: string): void {
    if (this.byId.has(task.id)) {
      throw new ServeError(
        'SERVE_TASKS_DUPLICATE',
        `Task id '${task.id}' appears twice (second time in ${source}). Load each task file once; ids must be unique across files.`,
      );
    }
    this.byId.set(task.id, task);
  }

  /** Reads task JSONL files (each record validated against the task schema). */
  static async load(paths: readonly string[]): Promise<TaskStore> {
    const store = new TaskStore();
    for (const path of paths) {
      try {
        for await (const task of readJsonl(path, taskRecordSchema)) store.add(task, path);
      } catch (error) {
        if (error instanceof ServeError) throw error;
        throw new ServeError(
          'SERVE_TASKS_UNREADABLE',
          `Could not load tasks from ${path}: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
      store.sources.push(path);
    }
    return store;
  }

  static from(tasks: Iterable<TaskRecord>, source = 'memory'): TaskStore {
    const store = new TaskStore();
    for (const task of tasks) store.add(task, source);
    store.sources.push(source);
    return store;
  }
}
