import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { CorpusError, DatasetFormatError } from './errors.js';
import { generateProgram, type Difficulty } from './generator.js';
import type { ValueType } from './values.js';

export type CorpusSource =
  | { kind: 'generator'; count: number; difficulty?: Difficulty }
  | { kind: 'directory'; path: string; maxFiles?: number }
  | { kind: 'jsonl'; path: string; codeField?: string; limit?: number };

/** One unit of source text: a generated module, a file, or a JSONL record. */
export interface SourceUnit {
  index: number;
  kind: CorpusSource['kind'];
  /** generator: `seed:index`; directory: path relative to the folder; jsonl: `path:line`. */
  ref: string;
  code: string;
  /** Only these functions are candidates (the generator's helpers are not programs of their own). */
  entryPoints?: string[];
  /** Parameter types of functions, when the source knows them (the generator does). */
  hints?: Record<string, Record<string, ValueType>>;
  meta?: Record<string, unknown>;
}

const SKIP_DIRS = new Set([
  'node_modules',
  '__pycache__',
  '.git',
  '.venv',
  'venv',
  'env',
  '.tox',
  'build',
  'dist',
  'site-packages',
]);

async function listPythonFiles(root: string, dir: string, out: string[]): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  );
  for (const entry of entries) {
    if (entry.name.startsWith('.') && entry.name !== '.') continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) await listPythonFiles(root, full, out);
    } else if (entry.isFile() && entry.name.endsWith('.py')) out.push(full);
  }
}

/** How many units the source holds (for progress), or undefined when unknown. */
export async function countSourceUnits(source: CorpusSource): Promise<number | undefined> {
  if (source.kind === 'generator') return source.count;
  if (source.kind === 'directory') {
    const files: string[] = [];
    await listPythonFiles(source.path, source.path, files);
    return source.maxFiles === undefined ? files.length : Math.min(files.length, source.maxFiles);
  }
  let count = 0;
  const lines = createInterface({
    input: createReadStream(source.path, { encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  for await (const line of lines) if (line.trim() !== '') count += 1;
  return source.limit === undefined ? count : Math.min(count, source.limit);
}

/** Streams the units of a source from `start` on (units are numbered from 0 in a fixed order). */
export async function* readSource(
  source: CorpusSource,
  seed: number,
  start: number,
): AsyncIterable<SourceUnit> {
  switch (source.kind) {
    case 'generator': {
      for (let index = start; index < source.count; index += 1) {
        const program = generateProgram(seed, index, source.difficulty ?? 'mixed');
        yield {
          index,
          kind: 'generator',
          ref: `${seed}:${index}`,
          code: program.code,
          entryPoints: [program.entryPoint],
          hints: { [program.entryPoint]: program.paramTypes },
          meta: { difficulty: program.difficulty },
        };
      }
      return;
    }
    case 'directory': {
      const files: string[] = [];
      try {
        await listPythonFiles(source.path, source.path, files);
      } catch (error) {
        throw new CorpusError(
          'SOURCE_UNREADABLE',
          `Cannot read the source folder ${source.path}: check that it exists and is readable.`,
          {
            path: source.path,
            cause: error,
          },
        );
      }
      const limit =
        source.maxFiles === undefined ? files.length : Math.min(files.length, source.maxFiles);
      for (let index = start; index < limit; index += 1) {
        const file = files[index]!;
        let code: string;
        try {
          code = await readFile(file, 'utf8');
        } catch {
          code = '';
        }
        yield { index, kind: 'directory', ref: relative(source.path, file), code };
      }
      return;
    }
    case 'jsonl': {
      const field = source.codeField ?? 'code';
      let index = 0;
      let lineNumber = 0;
      let stream;
      try {
        stream = createReadStream(source.path, { encoding: 'utf8' });
        const lines = createInterface({ input: stream, crlfDelay: Infinity });
        for await (const line of lines) {
          lineNumber += 1;
          if (line.trim() === '') continue;
          if (source.limit !== undefined && index >= source.limit) return;
          if (index >= start) {
            let record: unknown;
            try {
              record = JSON.parse(line);
            } catch (error) {
              throw new DatasetFormatError(
                source.path,
                lineNumber,
                [`not valid JSON (${(error as Error).message})`],
                { cause: error },
              );
            }
            const code =
              typeof record === 'object' && record !== null
                ? (record as Record<string, unknown>)[field]
                : undefined;
            if (typeof code !== 'string') {
              throw new DatasetFormatError(source.path, lineNumber, [
                `${field}: must be a string (the program's source code)`,
              ]);
            }
            yield { index, kind: 'jsonl', ref: `${source.path}:${lineNumber}`, code };
          }
          index += 1;
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new CorpusError(
            'SOURCE_UNREADABLE',
            `The JSONL source ${source.path} does not exist.`,
            { path: source.path, cause: error },
          );
        }
        throw error;
      }
      return;
    }
  }
}
