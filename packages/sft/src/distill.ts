import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { renderPrompt, type TaskRecord } from '@codereasoner/protocol';
import type { Logger, ProgressEvent } from '@codereasoner/core-tensors';
import { checkSftRecord, type SftRecord } from './dataset.js';
import { SftAbortedError } from './errors.js';
import { appendJsonLines, readJsonlJournal, writeFileAtomic } from '@codereasoner/common';
import { SftDatasetError } from './errors.js';
import { answerOnlyCompletion, type Teacher, type TeacherResult } from './teachers.js';

type TaskType = TaskRecord['type'];

export interface DistillOptions {
  /** Directory receiving `sft.jsonl` (accepted, messages layout), `distill-log.jsonl` (every outcome) and `stats.json`. */
  outDir: string;
  onProgress?: (event: ProgressEvent) => void;
  logger?: Logger;
  /**
   * Checked before the teacher starts and after every task it returns: when it has fired, the
   * teacher is stopped (its batch in flight is dropped, not logged) and `distill` throws
   * `SftAbortedError` (name `AbortError`); everything logged so far stays, and the same call
   * again continues from it.
   */
  signal?: AbortSignal;
}

export interface TypeStats {
  total: number;
  accepted: number;
  /** accepted / total (0 when total is 0). */
  acceptanceRate: number;
  /** Mean completions tried per task. */
  meanAttempts: number;
}

export interface DistillStats {
  teacher: string;
  total: number;
  accepted: number;
  acceptanceRate: number;
  byType: Partial<Record<TaskType, TypeStats>>;
  /** Why tasks were rejected: the verifier's reason up to its first colon, with counts. */
  rejections: Record<string, number>;
  /** Tasks already done by an earlier, interrupted run and skipped now. */
  resumed: number;
  datasetPath: string;
  logPath: string;
}

interface LogLine {
  id: string;
  type: TaskType;
  correct: boolean;
  reason: string;
  attempts: number;
}

/** Turns an accepted teacher result into its SFT record (both the chain and the answer-only form). */
export function toSftRecord(result: TeacherResult, teacher: string): SftRecord {
  const { task } = result;
  return {
    messages: [
      ...renderPrompt(task, { reasoning: true }),
      { role: 'assistant', content: result.completion },
    ],
    answer_messages: [
      ...renderPrompt(task, { reasoning: false }),
      { role: 'assistant', content: answerOnlyCompletion(task, result.completion) },
    ],
    id: task.id,
    type: task.type,
    teacher,
  };
}

/**
 * Runs `teacher` over `tasks` and writes the verified completions as an SFT data set plus
 * per-task-type acceptance statistics. Resumable: tasks already in the log (or the data set) of
 * an interrupted run are skipped, and a line cut by the interruption is dropped.
 */
export async function distill(
  tasks: TaskRecord[],
  teacher: Teacher,
  options: DistillOptions,
): Promise<DistillStats> {
  await mkdir(options.outDir, { recursive: true });
  const datasetPath = join(options.outDir, 'sft.jsonl');
  const logPath = join(options.outDir, 'distill-log.jsonl');
  const statsPath = join(options.outDir, 'stats.json');
  const warnTruncated = (path: string) => (line: number) =>
    options.logger?.warn(`${path}:${line}: dropped a line cut by an interrupted run`);

  const logged = new Map<string, LogLine>();
  for (const row of (await readJournal(logPath, warnTruncated(logPath))).values)
    logged.set(String(row.id), row as unknown as LogLine);
  const datasetRows = await readJournal(datasetPath, warnTruncated(datasetPath));
  const inDataset = new Set<string>();
  datasetRows.values.forEach((row, index) =>
    inDataset.add(checkSftRecord(row, { path: datasetPath, line: datasetRows.lines[index]! }).id),
  );
  // a crash between the data set append and the log append: the record stands, log it now
  const byId = new Map(tasks.map((task) => [task.id, task]));
  const recovered: LogLine[] = [];
  for (const id of inDataset) {
    const task = byId.get(id);
    if (!logged.has(id) && task) {
      const line = {
        id,
        type: task.type,
        correct: true,
        reason: 'recovered from data set',
        attempts: 1,
      };
      logged.set(id, line);
      recovered.push(line);
    }
  }
  await appendJsonLines(logPath, recovered);

  const todo = tasks.filter((task) => !logged.has(task.id));
  const resumed = tasks.length - todo.length;
  let completed = resumed;
  options.onProgress?.({ stage: 'distill', completed, total: tasks.length });
  const { signal } = options;
  // a function, not a narrowed property: the signal fires while the teacher runs
  const isAborted = (): boolean => signal?.aborted === true;
  const aborted = (): SftAbortedError =>
    new SftAbortedError('distill', completed, tasks.length, { cause: signal?.reason });
  if (isAborted()) throw aborted();
  for await (const result of teacher.teach(todo)) {
    if (result.correct && !inDataset.has(result.task.id)) {
      await appendJsonLines(datasetPath, [toSftRecord(result, teacher.id)]);
      inDataset.add(result.task.id);
    }
    const line: LogLine = {
      id: result.task.id,
      type: result.task.type,
      correct: result.correct,
      reason: result.reason,
      attempts: result.attempts,
    };
    await appendJsonLines(logPath, [line]);
    logged.set(line.id, line);
    completed++;
    options.onProgress?.({
      stage: 'distill',
      completed,
      total: tasks.length,
      detail: { accepted: inDataset.size },
    });
    // leaving the loop ends the teacher's generator (its finally blocks run)
    if (isAborted()) throw aborted();
  }

  const stats = summarise(
    tasks.map((task) => logged.get(task.id)).filter((line): line is LogLine => line !== undefined),
    teacher.id,
  );
  const result: DistillStats = { ...stats, resumed, datasetPath, logPath };
  await writeFileAtomic(statsPath, `${JSON.stringify(result, null, 2)}\n`);
  options.logger?.info(
    `distill (${teacher.id}): ${result.accepted}/${result.total} accepted (${(100 * result.acceptanceRate).toFixed(1)} %)`,
  );
  return result;
}

function summarise(
  lines: LogLine[],
  teacher: string,
): Omit<DistillStats, 'resumed' | 'datasetPath' | 'logPath'> {
  const byType: Partial<Record<TaskType, TypeStats & { attemptSum: number }>> = {};
  const rejections: Record<string, number> = {};
  for (const line of lines) {
    const entry = (byType[line.type] ??= {
      total: 0,
      accepted: 0,
      acceptanceRate: 0,
      meanAttempts: 0,
      attemptSum: 0,
    });
    entry.total++;
    entry.attemptSum += line.attempts;
    if (line.correct) entry.accepted++;
    else {
      const reason = line.reason.split(':')[0]?.trim() || 'unknown';
      rejections[reason] = (rejections[reason] ?? 0) + 1;
    }
  }
  const out: Partial<Record<TaskType, TypeStats>> = {};
  for (const [type, entry] of Object.entries(byType) as [
    TaskType,
    TypeStats & { attemptSum: number },
  ][]) {
    out[type] = {
      total: entry.total,
      accepted: entry.accepted,
      acceptanceRate: entry.total === 0 ? 0 : entry.accepted / entry.total,
      meanAttempts: entry.total === 0 ? 0 : entry.attemptSum / entry.total,
    };
  }
  const total = lines.length;
  const accepted = lines.filter((line) => line.correct).length;
  return {
    teacher,
    total,
    accepted,
    acceptanceRate: total === 0 ? 0 : accepted / total,
    byType: out,
    rejections,
  };
}

/** A resumed journal: a line cut by an interruption is dropped (and reported); any other bad line stops the run. */
export function readJournal(path: string, onTornTail?: (line: number) => void) {
  return readJsonlJournal<Record<string, unknown>>(path, {
    ...(onTornTail === undefined ? {} : { onTornTail }),
    invalidLine: (line, message, cause) =>
      new SftDatasetError(path, line, `${message}; fix or delete the line to resume`, { cause }),
  });
}
