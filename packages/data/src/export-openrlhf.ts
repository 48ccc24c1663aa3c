import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  renderPrompt,
  writeJsonl,
  type ChatMessage,
  type TaskRecord,
} from '@codereasoner/protocol';

/**
 * One row of an OpenRLHF prompt set: train with `--input_key prompt --label_key label
 * --apply_chat_template` (OpenRLHF's `preprocess_data` applies the model's chat template to a
 * message list) and `--remote_rm_url http://<cr serve>/get_reward`. The label is the task id:
 * OpenRLHF sends it back in `labels`, and `cr serve` (started with the same task files) looks the
 * task up to verify the completion.
 */
export interface OpenRlhfRow {
  prompt: ChatMessage[];
  label: string;
  type: TaskRecord['type'];
}

export interface ExportOpenRlhfOptions {
  /** Where to write the JSONL (written atomically). */
  outPath: string;
  /** Prompt with a reasoning section (default true). */
  reasoning?: boolean;
}

export function toOpenRlhfRow(task: TaskRecord, reasoning = true): OpenRlhfRow {
  return { prompt: renderPrompt(task, { reasoning }), label: task.id, type: task.type };
}

/** Writes tasks as an OpenRLHF prompt JSONL (see `OpenRlhfRow`). */
export async function exportOpenRlhf(
  tasks: Iterable<TaskRecord> | AsyncIterable<TaskRecord>,
  options: ExportOpenRlhfOptions,
): Promise<{ path: string; count: number }> {
  const rows: OpenRlhfRow[] = [];
  for await (const task of tasks) rows.push(toOpenRlhfRow(task, options.reasoning));
  await mkdir(dirname(options.outPath), { recursive: true });
  await writeJsonl(options.outPath, rows);
  return { path: options.outPath, count: rows.length };
}
