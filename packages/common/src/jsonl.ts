import { createReadStream } from 'node:fs';
import { appendFile, mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from './atomic-write.js';
import { CodeReasonerError } from './errors.js';

/*
 * The one rule for JSONL files in this project:
 *
 * Every writer appends a record and its newline with one call (`appendJsonLine(s)`), so a crash
 * can only cut the LAST line. Reading:
 * - blank lines are skipped;
 * - the last line may lack its newline (published files such as CRUXEval's do): it counts when
 *   it parses (and `appendJsonLine(s)` then starts a new line before appending);
 * - a last line without its newline that does not parse is a write cut by a crash, a "torn
 *   tail": with `tornTail: 'drop'` (the default of `readJsonLines`: journals being resumed) it is
 *   skipped and reported as `truncatedTail`, and `readJsonlJournal` also removes it from the
 *   file; with `tornTail: 'error'` (finished files, published data) it throws;
 * - any other line that does not parse is corruption and always throws, naming `path:line`.
 */

/** A JSONL line that does not parse (or fails the caller's check), with where it is. */
export class JsonlFormatError extends CodeReasonerError<'JSONL_INVALID'> {
  readonly path: string;
  /** 1-based line; 0 when the problem concerns the whole file. */
  readonly line: number;

  constructor(path: string, line: number, message: string, options: { cause?: unknown } = {}) {
    super('JSONL_INVALID', `${path}${line > 0 ? `:${line}` : ''}: ${message}`, options);
    this.name = 'JsonlFormatError';
    this.path = path;
    this.line = line;
  }
}

export interface JsonLine {
  /** 1-based line number in the file. */
  line: number;
  value: unknown;
}

export interface ReadJsonLinesOptions {
  /** What to do with a torn last line (see the rule above); default `'drop'`. */
  tornTail?: 'drop' | 'error';
  /** Called with the torn line's number when one is dropped. */
  onTornTail?: (line: number) => void;
  /** A missing file reads as empty (default true: a journal not started yet); false throws ENOENT. */
  missingIsEmpty?: boolean;
  /**
   * Makes the error thrown for a line that does not parse (default: `JsonlFormatError`), so a
   * package can throw its own typed error (`DatasetFormatError`, `BenchmarkDataError`).
   */
  invalidLine?: (line: number, message: string, cause: unknown) => Error;
}

/** Streams the JSON values of a JSONL file by the rule above, with their line numbers. */
export async function* streamJsonLines(
  path: string,
  options: ReadJsonLinesOptions = {},
): AsyncIterable<JsonLine> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  let endsWithNewline = true;
  stream.on('data', (chunk) => {
    if (chunk.length > 0) endsWithNewline = (chunk as string).endsWith('\n');
  });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  const invalid =
    options.invalidLine ??
    ((line: number, message: string, cause: unknown) =>
      new JsonlFormatError(path, line, message, { cause }));
  // One line is held back so the last one (possibly torn) can be told apart.
  let pending: { text: string; line: number } | undefined;
  const parse = (text: string, line: number, isLast: boolean): JsonLine | undefined => {
    try {
      return { line, value: JSON.parse(text) };
    } catch (error) {
      if (isLast && !endsWithNewline && options.tornTail !== 'error') {
        options.onTornTail?.(line);
        return undefined;
      }
      const torn = isLast && !endsWithNewline;
      throw invalid(
        line,
        `not valid JSON (${(error as Error).message})${torn ? '; the last line looks cut off: the file may be incomplete' : ''}`,
        error,
      );
    }
  };
  let lineNumber = 0;
  try {
    for await (const text of lines) {
      lineNumber += 1;
      if (text.trim() === '') continue;
      if (pending !== undefined) {
        const value = parse(pending.text, pending.line, false);
        if (value !== undefined) yield value;
      }
      pending = { text, line: lineNumber };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && options.missingIsEmpty !== false)
      return;
    throw error;
  }
  if (pending !== undefined) {
    const value = parse(pending.text, pending.line, true);
    if (value !== undefined) yield value;
  }
}

export interface JsonLines<T> {
  values: T[];
  /** `lines[i]` is the 1-based line of `values[i]` in the file. */
  lines: number[];
  /** A torn last line (see the rule above) was dropped. */
  truncatedTail: boolean;
}

/** Reads a whole JSONL file into memory (see `streamJsonLines`; a missing file reads as empty). */
export async function readJsonLines<T = unknown>(
  path: string,
  options: ReadJsonLinesOptions = {},
): Promise<JsonLines<T>> {
  const out: JsonLines<T> = { values: [], lines: [], truncatedTail: false };
  const stream = streamJsonLines(path, {
    ...options,
    onTornTail: (line) => {
      out.truncatedTail = true;
      options.onTornTail?.(line);
    },
  });
  for await (const { line, value } of stream) {
    out.values.push(value as T);
    out.lines.push(line);
  }
  return out;
}

/** The JSONL text of `values`: one complete line each. */
export function toJsonLines(values: readonly unknown[]): string {
  let text = '';
  for (const value of values) text += `${JSON.stringify(value)}\n`;
  return text;
}

/**
 * Appends complete JSON lines with a single write, so a crash leaves at most a torn last line.
 * When the file's last line lacks its newline, one is written first so records never merge.
 */
export async function appendJsonLines(path: string, values: readonly unknown[]): Promise<void> {
  if (values.length === 0) return;
  await mkdir(dirname(path), { recursive: true });
  const text = toJsonLines(values);
  await appendFile(path, (await endsWithNewline(path)) ? text : `\n${text}`, 'utf8');
}

/** Appends one JSON line (see `appendJsonLines`). */
export async function appendJsonLine(path: string, value: unknown): Promise<void> {
  await appendJsonLines(path, [value]);
}

/** Rewrites a JSONL file atomically with exactly `values`. */
export async function writeJsonLines(path: string, values: readonly unknown[]): Promise<void> {
  await writeFileAtomic(path, toJsonLines(values));
}

/**
 * Reads a journal being resumed: a torn tail is dropped, reported, AND removed from the file
 * (rewritten atomically without it), so the next append starts on a line of its own.
 */
export async function readJsonlJournal<T = unknown>(
  path: string,
  options: Pick<ReadJsonLinesOptions, 'onTornTail' | 'invalidLine'> = {},
): Promise<JsonLines<T>> {
  const read = await readJsonLines<T>(path, { ...options, tornTail: 'drop', missingIsEmpty: true });
  if (read.truncatedTail) {
    const text = await readFile(path, 'utf8');
    await writeFileAtomic(path, text.slice(0, text.lastIndexOf('\n') + 1));
  }
  return read;
}

/** Whether the file ends with a newline (a missing or empty file counts as yes). */
async function endsWithNewline(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return true;
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, size - 1);
    return byte[0] === 0x0a;
  } finally {
    await handle.close();
  }
}
