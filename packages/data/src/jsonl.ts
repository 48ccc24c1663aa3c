import { createReadStream } from 'node:fs';
import { appendFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatasetFormatError } from './errors.js';
import type { RecordSchema } from './schemas.js';

export interface ReadJsonlOptions {
  /**
   * When resuming an interrupted write, a last line without a trailing newline that does not
   * parse is the record being written when the process died: skip it and report it through
   * `onTruncatedLine` instead of throwing. Off by default: a finished file must be whole.
   */
  allowTruncatedLastLine?: boolean;
  onTruncatedLine?: (info: { path: string; line: number }) => void;
}

/**
 * Streams the records of a JSONL file, validating each against `schema`. Blank lines are
 * skipped. Throws `DatasetFormatError {path, line}` at the first line that is not JSON or
 * fails the schema.
 */
export async function* readJsonl<T>(
  path: string,
  schema: RecordSchema<T>,
  options: ReadJsonlOptions = {},
): AsyncIterable<T> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  let endsWithNewline = true;
  stream.on('data', (chunk) => {
    if (chunk.length > 0) endsWithNewline = (chunk as string).endsWith('\n');
  });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNumber = 0;
  // Hold one line back so the last line (possibly truncated) can be treated specially.
  let pending: { text: string; line: number } | undefined;
  const parse = (text: string, line: number, isLast: boolean): T | undefined => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      if (isLast && !endsWithNewline && options.allowTruncatedLastLine) {
        options.onTruncatedLine?.({ path, line });
        return undefined;
      }
      throw new DatasetFormatError(path, line, [`not valid JSON (${(error as Error).message})`], {
        cause: error,
      });
    }
    const issues = schema.check(value);
    if (issues.length > 0)
      throw new DatasetFormatError(
        path,
        line,
        issues.map((issue) => `${schema.name} ${issue}`),
      );
    return value as T;
  };
  try {
    for await (const text of lines) {
      lineNumber += 1;
      if (text.trim() === '') continue;
      if (pending !== undefined) {
        const record = parse(pending.text, pending.line, false);
        if (record !== undefined) yield record;
      }
      pending = { text, line: lineNumber };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DatasetFormatError(path, 0, ['file does not exist'], { cause: error });
    }
    throw error;
  }
  if (pending !== undefined) {
    const record = parse(pending.text, pending.line, true);
    if (record !== undefined) yield record;
  }
}

/** Reads a whole JSONL file into memory (see `readJsonl`). */
export async function readJsonlAll<T>(
  path: string,
  schema: RecordSchema<T>,
  options: ReadJsonlOptions = {},
): Promise<T[]> {
  const records: T[] = [];
  for await (const record of readJsonl(path, schema, options)) records.push(record);
  return records;
}

/** Validates every record, then serialises them as JSONL text (each line complete). */
export function toJsonl<T>(
  records: readonly T[],
  schema: RecordSchema<T> | undefined,
  where: string,
): string {
  let text = '';
  for (const [index, record] of records.entries()) {
    if (schema !== undefined) {
      const issues = schema.check(record);
      if (issues.length > 0) {
        throw new DatasetFormatError(where, 0, [
          `record ${index} to be written is not a valid ${schema.name}`,
          ...issues,
        ]);
      }
    }
    text += `${JSON.stringify(record)}\n`;
  }
  return text;
}

/** Appends validated records as complete JSONL lines (one `appendFile` call). */
export async function appendJsonl<T>(
  path: string,
  records: readonly T[],
  schema?: RecordSchema<T>,
): Promise<void> {
  if (records.length === 0) return;
  await appendFile(path, toJsonl(records, schema, path), 'utf8');
}

/** Writes a file atomically: a temp file in the same directory, then rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`,
  );
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Validates and writes records as a JSONL file atomically. */
export async function writeJsonl<T>(
  path: string,
  records: readonly T[],
  schema?: RecordSchema<T>,
): Promise<void> {
  await writeFileAtomic(path, toJsonl(records, schema, path));
}
