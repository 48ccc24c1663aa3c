import { readJsonLines, type JsonLine } from '@codereasoner/common';
import { BenchmarkDataError } from './errors.js';

export type { JsonLine } from '@codereasoner/common';

/**
 * Reads a published benchmark JSONL file by the project's JSONL rule (`@codereasoner/common`):
 * one JSON value per non-blank line; the last line may lack its newline (CRUXEval's file does),
 * so records are never counted by newlines, and a last line that does not parse is reported as
 * a truncated file. A missing or unreadable file, or a line that is not JSON, is a
 * `BenchmarkDataError` naming `path:line`.
 */
export async function readDataJsonl(path: string, what: string): Promise<JsonLine[]> {
  let read;
  try {
    read = await readJsonLines(path, {
      tornTail: 'error',
      missingIsEmpty: false,
      invalidLine: (line, message, cause) =>
        new BenchmarkDataError(path, line, [message], {
          hint: /cut off/.test(message)
            ? 'The last line looks truncated: the file may be incomplete.'
            : undefined,
          cause,
        }),
    });
  } catch (error) {
    if (error instanceof BenchmarkDataError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new BenchmarkDataError(
      path,
      0,
      [
        code === 'ENOENT'
          ? `${what} not found`
          : `${what} cannot be read (${code ?? String(error)})`,
      ],
      {
        cause: error,
        hint:
          code === 'ENOENT'
            ? 'Give the path of the file (or of a directory holding it) as the benchmark publishes it.'
            : undefined,
      },
    );
  }
  return read.values.map((value, index) => ({ line: read.lines[index]!, value }));
}
