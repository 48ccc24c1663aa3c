import { appendJsonLines, streamJsonLines, writeFileAtomic } from '@codereasoner/common';
import { DatasetFormatError } from './errors.js';
import type { RecordSchema } from './schemas.js';

export interface ReadJsonlOptions {
  /**
   * When resuming an interrupted write, a last line without a trailing newline that does not
   * parse is the record being written when the process died (a torn tail): skip it and report it
   * through `onTruncatedLine` instead of throwing. Off by default: a finished file must be whole.
   */
  allowTruncatedLastLine?: boolean;
  onTruncatedLine?: (info: { path: string; line: number }) => void;
}

/**
 * Streams the records of a JSONL file, validating each against `schema`, by the project's one
 * JSONL rule (`@codereasoner/common`): blank lines are skipped, a last line without its newline
 * counts when it parses. Throws `DatasetFormatError {path, line}` at the first line that is not
 * JSON or fails the schema, or when the file does not exist.
 */
export async function* readJsonl<T>(
  path: string,
  schema: RecordSchema<T>,
  options: ReadJsonlOptions = {},
): AsyncIterable<T> {
  const lines = streamJsonLines(path, {
    tornTail: options.allowTruncatedLastLine ? 'drop' : 'error',
    onTornTail: (line) => options.onTruncatedLine?.({ path, line }),
    missingIsEmpty: false,
    invalidLine: (line, message, cause) => new DatasetFormatError(path, line, [message], { cause }),
  });
  try {
    for await (const { line, value } of lines) {
      const issues = schema.check(value);
      if (issues.length > 0)
        throw new DatasetFormatError(
          path,
          line,
          issues.map((issue) => `${schema.name} ${issue}`),
        );
      yield value as T;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DatasetFormatError(path, 0, ['file does not exist'], { cause: error });
    }
    throw error;
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

/** Appends validated records as complete JSONL lines (one write; see `appendJsonLines`). */
export async function appendJsonl<T>(
  path: string,
  records: readonly T[],
  schema?: RecordSchema<T>,
): Promise<void> {
  if (records.length === 0) return;
  toJsonl(records, schema, path); // validates every record before anything is written
  await appendJsonLines(path, records);
}

/** Validates and writes records as a JSONL file atomically. */
export async function writeJsonl<T>(
  path: string,
  records: readonly T[],
  schema?: RecordSchema<T>,
): Promise<void> {
  await writeFileAtomic(path, toJsonl(records, schema, path));
}
