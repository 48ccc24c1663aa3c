import { appendFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** Writes `text` atomically: a temp file in the same directory, fsync, rename over `path`. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  counter += 1;
  const temp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${counter}`);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, path);
}

/** Appends one complete JSON line with a single write, so a crash leaves at most a truncated last line. */
export async function appendJsonLine(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await appendFile(path, `${JSON.stringify(value)}\n`, 'utf8');
}

export interface JsonLines<T> {
  values: T[];
  /** A last line cut off by a crash (no newline, or unparsable): dropped and reported. */
  truncatedTail: boolean;
}

/** Reads a JSONL file written by `appendJsonLine`; a missing file reads as empty. */
export async function readJsonLines<T>(path: string): Promise<JsonLines<T>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { values: [], truncatedTail: false };
    throw error;
  }
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  const values: T[] = [];
  let truncatedTail = tail.length > 0;
  lines.forEach((line, i) => {
    if (line.length === 0) return;
    try {
      values.push(JSON.parse(line) as T);
    } catch (error) {
      // Only the very last complete line can be a torn write; anything earlier is corruption.
      if (i === lines.length - 1 && tail.length === 0) truncatedTail = true;
      else throw new Error(`${path}:${i + 1}: not valid JSON (${(error as Error).message})`);
    }
  });
  return { values, truncatedTail };
}

/** Rewrites a JSONL file atomically with exactly `values`. */
export async function writeJsonLines(path: string, values: readonly unknown[]): Promise<void> {
  await writeTextAtomic(path, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
}
