import { appendFile, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '@codereasoner/data';
import type { EvaluationItem } from '@codereasoner/sft';

/**
 * The items of one model's evaluation, one JSON line each, appended as each batch is scored
 * (one `appendFile` per line, as every JSONL of the project). A line cut by a kill is dropped
 * with a warning when the evaluation resumes; that item is scored again.
 */
export class EvaluationJournal {
  constructor(readonly path: string) {}

  async read(logger?: { warn(message: string): void }): Promise<EvaluationItem[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    if (text !== '' && !text.endsWith('\n')) {
      // a line cut by a kill: drop it from the file too, or the next append would join it
      const kept = text.slice(0, text.lastIndexOf('\n') + 1);
      logger?.warn(`${this.path}: dropped an item cut by an interruption; it is scored again`);
      await writeFileAtomic(this.path, kept);
      text = kept;
    }
    const items: EvaluationItem[] = [];
    const lines = text.split('\n');
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      try {
        const item = JSON.parse(line) as EvaluationItem;
        if (typeof item.taskId === 'string' && typeof item.correct === 'boolean') items.push(item);
        else throw new Error('not an evaluation item');
      } catch {
        logger?.warn(`${this.path}:${index + 1}: unreadable item; it is scored again`);
      }
    });
    return items;
  }

  async append(items: readonly EvaluationItem[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    for (const item of items) await appendFile(this.path, `${JSON.stringify(item)}\n`, 'utf8');
  }

  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
