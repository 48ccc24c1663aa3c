import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  formatCompletion,
  renderPrompt,
  type ChatMessage,
  type TaskRecord,
} from '@codereasoner/protocol';

/** A row of a TRL SFT set (conversational "messages" layout). */
export interface TrlSftRow {
  messages: ChatMessage[];
  id: string;
  type: TaskRecord['type'];
}

/**
 * A row of a prompt-only set for TRL's GRPOTrainer: `prompt` holds the messages, the other
 * columns reach reward functions as keyword arguments (what a verifier needs).
 */
export interface TrlPromptRow {
  prompt: ChatMessage[];
  id: string;
  type: TaskRecord['type'];
  code: string;
  entry_point: string;
  input: string;
  output: string;
  line: number | null;
  variable: string | null;
  answer: string;
}

export interface ExportTrlOptions {
  /** Where to write the JSONL (written atomically). */
  outPath: string;
  /** `sft`: system + user + assistant; `grpo`: prompt-only rows with the gold columns. */
  kind: 'sft' | 'grpo';
  /** Prompt with a reasoning section (default: true for grpo; for sft, whether `completion` reasons). */
  reasoning?: boolean;
  /**
   * SFT only: the assistant text for a task, e.g. a verified distilled chain; return undefined
   * to leave the task out. Default: the gold answer alone, `formatCompletion(task.answer)`.
   */
  completion?: (task: TaskRecord) => string | undefined;
}

export function toTrlSftRow(task: TaskRecord, completion: string, reasoning: boolean): TrlSftRow {
  return {
    messages: [...renderPrompt(task, { reasoning }), { role: 'assistant', content: completion }],
    id: task.id,
    type: task.type,
  };
}

export function toTrlPromptRow(task: TaskRecord, reasoning: boolean): TrlPromptRow {
  return {
    prompt: renderPrompt(task, { reasoning }),
    id: task.id,
    type: task.type,
    code: task.code,
    entry_point: task.entryPoint,
    input: task.input,
    output: task.output,
    line: task.line ?? null,
    variable: task.variable ?? null,
    answer: task.answer,
  };
}

/**
 * Writes tasks in the chat "messages" layout that Hugging Face TRL reads: SFT sets
 * (`{"messages": [...]}`) or prompt-only GRPO sets (`{"prompt": [...], ...columns}`).
 */
export async function exportTrl(
  tasks: Iterable<TaskRecord> | AsyncIterable<TaskRecord>,
  options: ExportTrlOptions,
): Promise<{ path: string; count: number }> {
  await mkdir(dirname(options.outPath), { recursive: true });
  const temp = join(dirname(options.outPath), `.${basename(options.outPath)}.${process.pid}.tmp`);
  const out = createWriteStream(temp, { encoding: 'utf8' });
  let count = 0;
  try {
    for await (const task of tasks) {
      let row: TrlSftRow | TrlPromptRow;
      if (options.kind === 'grpo') {
        row = toTrlPromptRow(task, options.reasoning ?? true);
      } else {
        const completion =
          options.completion === undefined
            ? formatCompletion(task.answer)
            : options.completion(task);
        if (completion === undefined) continue;
        row = toTrlSftRow(task, completion, options.reasoning ?? options.completion !== undefined);
      }
      if (!out.write(`${JSON.stringify(row)}\n`))
        await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      count += 1;
    }
    out.end();
    await finished(out);
    await rename(temp, options.outPath);
  } catch (error) {
    out.destroy();
    await rm(temp, { force: true });
    throw error;
  }
  return { path: options.outPath, count };
}
