import { readFile } from 'node:fs/promises';
import { BenchmarkDataError } from './errors.js';

export interface JsonLine {
  /** 1-based line number in the file. */
  line: number;
  value: unknown;
}

/** Reads a whole data file as text, turning a missing or unreadable file into a BenchmarkDataError. */
export async function readDataFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
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
}

/**
 * Parses JSONL: one JSON value per non-blank line. The last line may lack its newline (CRUXEval's
 * file does), so records are never counted by newlines.
 */
export function parseJsonl(text: string, path: string): JsonLine[] {
  const out: JsonLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const raw = lines[i]!.replace(/\r$/, '');
    if (raw.trim() === '') continue;
    try {
      out.push({ line: i + 1, value: JSON.parse(raw) });
    } catch (error) {
      throw new BenchmarkDataError(path, i + 1, [`not valid JSON (${(error as Error).message})`], {
        hint:
          i === lines.length - 1
            ? 'The last line looks truncated: the file may be incomplete.'
            : undefined,
        cause: error,
      });
    }
  }
  return out;
}
