import { appendFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** A temp path in the same directory as `path` (so the final rename is atomic on one filesystem). */
export function tempPathFor(path: string): string {
  counter += 1;
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${process.pid}-${Date.now().toString(36)}-${counter}`,
  );
}

/** fsyncs a directory so a rename inside it survives a crash; some platforms cannot open directories, which is harmless. */
export async function fsyncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Directories cannot be fsynced on every platform (e.g. Windows); the rename is still atomic.
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `data` to `path` atomically (creating its directory): temp file in the same directory,
 * fsync, rename, fsync the directory. Readers see the old file or the new one, never half.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempPathFor(path);
  const handle = await open(temp, 'w');
  try {
    const chunks = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks)
      await handle.write(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dirname(path));
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
  await writeFileAtomic(path, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
}
