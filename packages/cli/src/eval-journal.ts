import { readFile, rm } from 'node:fs/promises';
import { JsonlFormatError, appendJsonLines, readJsonlJournal } from '@codereasoner/common';
import type { EvaluationItem } from '@codereasoner/sft';

/**
 * The items of one model's evaluation, one JSON line each, appended as each batch is scored
 * (one write per batch, by the JSONL rule of `@codereasoner/common`). A line cut by a kill is dropped
 * with a warning when the evaluation resumes; that item is scored again.
 */
export class EvaluationJournal {
  constructor(readonly path: string) {}

  async read(logger?: { warn(message: string): void }): Promise<EvaluationItem[]> {
    // a line cut by a kill is dropped from the file too (the JSONL rule of @codereasoner/common)
    const journal = await readJsonlJournal(this.path, {
      onTornTail: () =>
        logger?.warn(`${this.path}: dropped an item cut by an interruption; it is scored again`),
      // an unreadable line is scored again rather than stopping the run
      invalidLine: (line) => new JsonlFormatError(this.path, line, 'unreadable item'),
    }).catch((error: unknown) => {
      if (!(error instanceof JsonlFormatError)) throw error;
      return undefined;
    });
    if (journal === undefined) return this.readLeniently(logger);
    return this.keepItems(journal.values, journal.lines, logger);
  }

  /** A journal with a damaged line before the last: keep every line that is an item. */
  private async readLeniently(logger?: { warn(message: string): void }): Promise<EvaluationItem[]> {
    const text = await readFile(this.path, 'utf8');
    const values: unknown[] = [];
    const lines: number[] = [];
    text.split('\n').forEach((line, index) => {
      if (line.trim() === '') return;
      try {
        values.push(JSON.parse(line));
      } catch {
        values.push(undefined);
      }
      lines.push(index + 1);
    });
    return this.keepItems(values, lines, logger);
  }

  private keepItems(
    values: readonly unknown[],
    lines: readonly number[],
    logger?: { warn(message: string): void },
  ): EvaluationItem[] {
    const items: EvaluationItem[] = [];
    values.forEach((value, index) => {
      const item = value as EvaluationItem | undefined;
      if (typeof item?.taskId === 'string' && typeof item.correct === 'boolean') items.push(item);
      else logger?.warn(`${this.path}:${lines[index]}: unreadable item; it is scored again`);
    });
    return items;
  }

  async append(items: readonly EvaluationItem[]): Promise<void> {
    await appendJsonLines(this.path, items);
  }

  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
