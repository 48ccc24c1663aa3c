import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { TextDecoder } from 'node:util';
import { DatasetFormatError } from '@codereasoner/protocol';
import { CorpusError } from './errors.js';
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
  /** Why the unit's text could not be read (its `code` is then empty): the corpus builder reports it. */
  problem?: string;
}

const CODING_COOKIE = /^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)/;

/**
 * A Python file's text as Python reads it (PEP 263): UTF-8 unless a coding declaration in the
 * first two lines names another encoding. Bytes that are not valid in that encoding are a
 * problem to report, never replacement characters silently fed to the corpus.
 */
export function decodePythonSource(bytes: Uint8Array): { code: string } | { problem: string } {
  const head = Buffer.from(bytes.subarray(0, 1024)).toString('latin1').split(/\r?\n/, 2);
  const declared = head.map((line) => CODING_COOKIE.exec(line)?.[1]).find((name) => name);
  // Python's codec names, normalised as Python does, to WHATWG labels
  const name = (declared ?? 'utf-8').toLowerCase().replace(/_/g, '-');
  if (/^(latin-?1|iso-?8859-1|l1)$/.test(name)) {
    // exactly ISO-8859-1, where every byte is a character (WHATWG's "latin1" is windows-1252)
    return { code: Buffer.from(bytes).toString('latin1') };
  }
  const label = /^utf-?8(-sig)?$/.test(name) ? 'utf-8' : name.replace(/^cp(\d+)$/, 'windows-$1');
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    return {
      problem: `declares the encoding '${declared}', which is not supported here; re-save the file as UTF-8`,
    };
  }
  try {
    return { code: decoder.decode(bytes) };
  } catch {
    const text = new TextDecoder(label).decode(bytes);
    const line = text.slice(0, text.indexOf('\uFFFD')).split('\n').length;
    return {
      problem:
        declared === undefined
          ? `not valid UTF-8 (line ${line}) and no coding declaration, so Python would refuse it too; re-save it as UTF-8 or declare its encoding (# -*- coding: latin-1 -*-)`
          : `not valid ${declared} (line ${line}), the encoding it declares`,
    };
  }
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
    } else if ((entry.isFile() || entry.isSymbolicLink()) && entry.name.endsWith('.py')) {
      // a link is read through; one that leads nowhere is reported when it is read
      out.push(full);
    }
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
        const ref = relative(source.path, file);
        let bytes: Buffer;
        try {
          bytes = await readFile(file);
        } catch (error) {
          const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
          yield { index, kind: 'directory', ref, code: '', problem: `cannot be read (${reason})` };
          continue;
        }
        const decoded = decodePythonSource(bytes);
        yield 'code' in decoded
          ? { index, kind: 'directory', ref, code: decoded.code }
          : { index, kind: 'directory', ref, code: '', problem: decoded.problem };
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
