import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { CorpusError } from './errors.js';
import { writeFileAtomic } from '@codereasoner/common';
import { renderPrompt, type ChatMessage, type TaskRecord } from '@codereasoner/protocol';

/**
 * The `data_source` prefix of verl rows. verl groups validation metrics by `data_source`
 * (`val-core/<data_source>/...`), so each task type gets its own: `codereasoner/output`, ...
 */
export const VERL_DATA_SOURCE_PREFIX = 'codereasoner';

/** verl's task category column (`ability`), the same for every row. */
export const VERL_ABILITY = 'code_reasoning';

/**
 * One row of verl's RL data format (verl docs, "Prepare Data for Post-Training": `data_source`,
 * `prompt` in the chat-template layout, `ability`, `reward_model` {style, ground_truth},
 * `extra_info`). `extra_info.task_id` is what the reward module sends to `cr serve`'s `/verify`.
 */
export interface VerlRow {
  data_source: string;
  prompt: ChatMessage[];
  ability: string;
  reward_model: { style: 'rule'; ground_truth: string };
  extra_info: { split: string; index: number; task_id: string; type: TaskRecord['type'] };
}

export interface ExportVerlOptions {
  /** Where to write the parquet file (written atomically). */
  outPath: string;
  /** Prompt with a reasoning section (default true: GRPO rollouts reason before answering). */
  reasoning?: boolean;
}

export function toVerlRow(task: TaskRecord, index: number, reasoning = true): VerlRow {
  return {
    data_source: `${VERL_DATA_SOURCE_PREFIX}/${task.type}`,
    prompt: renderPrompt(task, { reasoning }),
    ability: VERL_ABILITY,
    reward_model: { style: 'rule', ground_truth: task.answer },
    extra_info: { split: task.split, index, task_id: task.id, type: task.type },
  };
}

// The parquet schema spelled out (not inferred) so that an empty set or a set of one type still
// gets the nested types verl's RLHFDataset reads through pyarrow: prompt as list<struct<role,
// content>>, reward_model and extra_info as structs. LIST uses the standard three-level layout.
const UTF8 = { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' } as const;
const VERL_SCHEMA = [
  { name: 'root', num_children: 5 },
  { name: 'data_source', ...UTF8 },
  { name: 'prompt', repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'REQUIRED', num_children: 2 },
  { name: 'role', ...UTF8 },
  { name: 'content', ...UTF8 },
  { name: 'ability', ...UTF8 },
  { name: 'reward_model', repetition_type: 'REQUIRED', num_children: 2 },
  { name: 'style', ...UTF8 },
  { name: 'ground_truth', ...UTF8 },
  { name: 'extra_info', repetition_type: 'REQUIRED', num_children: 4 },
  { name: 'split', ...UTF8 },
  { name: 'index', type: 'INT64', repetition_type: 'REQUIRED' },
  { name: 'task_id', ...UTF8 },
  { name: 'type', ...UTF8 },
] as const;

/** The rows as a parquet file's bytes (one row group per 100,000 rows, hyparquet-writer's default). */
export function verlParquet(rows: readonly VerlRow[]): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'data_source', data: rows.map((row) => row.data_source) },
      { name: 'prompt', data: rows.map((row) => row.prompt) },
      { name: 'ability', data: rows.map((row) => row.ability) },
      { name: 'reward_model', data: rows.map((row) => row.reward_model) },
      {
        name: 'extra_info',
        data: rows.map((row) => ({ ...row.extra_info, index: BigInt(row.extra_info.index) })),
      },
    ],
    schema: VERL_SCHEMA.map((element) => ({ ...element })),
  });
  return new Uint8Array(buffer);
}

/**
 * Writes tasks as a verl parquet file (`data.train_files=<outPath>`). Rows are held in memory
 * until the file is written: a corpus of 100,000 tasks is a few hundred MB at most.
 */
export async function exportVerl(
  tasks: Iterable<TaskRecord> | AsyncIterable<TaskRecord>,
  options: ExportVerlOptions,
): Promise<{ path: string; count: number }> {
  const rows: VerlRow[] = [];
  for await (const task of tasks) rows.push(toVerlRow(task, rows.length, options.reasoning));
  // hyparquet-writer writes a zero-row file whose nested columns readers reject, and verl cannot
  // train on an empty set anyway.
  if (rows.length === 0) {
    throw new CorpusError(
      'EXPORT_EMPTY',
      `No tasks to export to ${options.outPath}: the task source is empty. Check the tasks file (or the split) you passed.`,
      { path: options.outPath },
    );
  }
  await mkdir(dirname(options.outPath), { recursive: true });
  await writeFileAtomic(options.outPath, verlParquet(rows));
  return { path: options.outPath, count: rows.length };
}
