import { appendFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SftDatasetError } from './errors.js';

let counter = 0;

/** Writes through a temp file in the same directory and a rename, so readers see old or new, never half. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${counter++}.tmp`;
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Appends complete lines with one `appendFile` call. */
export async function appendLines(path: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await appendFile(path, lines.map((line) => `${line}\n`).join(''));
}

/**
 * Reads a JSONL file for resuming: returns the parsed lines and, when the last line was cut by an
 * interruption, rewrites the file without it (atomically) and reports it through `onTruncated`.
 */
export async function readJsonlForResume(
  path: string,
  onTruncated?: (line: number) => void,
): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  const rows: Record<string, unknown>[] = [];
  let keptChars = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') {
      keptChars += line.length + 1;
      continue;
    }
    try {
      rows.push(JSON.parse(line) as Record<string, unknown>);
      keptChars += line.length + 1;
    } catch (error) {
      if (i === lines.length - 1 && !text.endsWith('\n')) {
        onTruncated?.(i + 1);
        await writeFileAtomic(path, text.slice(0, keptChars));
        break;
      }
      throw new SftDatasetError(
        path,
        i + 1,
        `invalid JSON (${String(error)}); fix or delete the line to resume`,
        { cause: error },
      );
    }
  }
  return rows;
}
