import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchmarkDataError } from './errors.js';
import type { BenchmarkName } from './types.js';

/** Where each benchmark's files are looked for, relative to a benchmark directory or a root of them. */
export const BENCHMARK_LAYOUT = {
  cruxeval: { dirs: ['cruxeval'], files: { data: 'cruxeval.jsonl' } },
  livecodebench: {
    dirs: ['livecodebench-execution', 'livecodebench'],
    files: { data: 'execution-v2.jsonl', index: 'sample_index.jsonl' },
  },
  reval: { dirs: ['reval'], files: { data: 'DREval_data.jsonl', tasks: 'DREval_tasks.jsonl' } },
} as const;

/**
 * The benchmark data shipped inside this package (`data/` beside `dist/`): CRUXEval, whose MIT
 * licence allows it. REval and LiveCodeBench are not redistributable; `data/README.md` says where
 * to get them. `cr bench` reads this directory when no `--benchmarks` directory is given.
 */
export const BUNDLED_BENCHMARKS_DIR: string = fileURLToPath(new URL('../data', import.meta.url));

export interface BenchmarkFiles {
  data: string;
  /** REval: DREval_tasks.jsonl. */
  tasks?: string;
  /** LiveCodeBench: sample_index.jsonl, when present beside the export. */
  index?: string;
}

async function kind(path: string): Promise<'file' | 'dir' | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds a benchmark's files from `dataPath`: the data file itself, the benchmark's directory, or
 * a root holding the benchmark directories (`cruxeval/`, `reval/`, `livecodebench-execution/`),
 * as `cr run-all --benchmarks <dir>` passes it. Throws a BenchmarkDataError naming every place
 * looked at when a file is missing.
 */
export async function resolveBenchmarkFiles(
  benchmark: BenchmarkName,
  dataPath: string,
): Promise<BenchmarkFiles> {
  const layout = BENCHMARK_LAYOUT[benchmark];
  const dataName = layout.files.data;
  const found = await kind(dataPath);
  if (found === undefined) {
    throw new BenchmarkDataError(dataPath, 0, [`${benchmark} data path does not exist`], {
      hint: `Give the ${dataName} file, the directory holding it, or a directory with a ${layout.dirs[0]}/ subdirectory.`,
    });
  }
  let dir: string;
  let data: string;
  if (found === 'file') {
    data = dataPath;
    dir = dirname(dataPath);
  } else {
    const candidates = [dataPath, ...layout.dirs.map((d) => join(dataPath, d))];
    let hit: string | undefined;
    for (const candidate of candidates) {
      if ((await kind(join(candidate, dataName))) === 'file') {
        hit = candidate;
        break;
      }
    }
    if (hit === undefined) {
      const looked = candidates.map((c) => join(c, dataName));
      throw new BenchmarkDataError(
        dataPath,
        0,
        [`no ${benchmark} data file found; looked for ${looked.join(', ')}`],
        {
          hint:
            benchmark === 'livecodebench'
              ? 'The 479 records are published only on the Hugging Face Hub: export livecodebench/execution-v2 (split test) to JSONL as execution-v2.jsonl (see the README beside sample_index.jsonl).'
              : `Place ${dataName} there as the benchmark publishes it.`,
        },
      );
    }
    dir = hit;
    data = join(hit, dataName);
  }
  const files: BenchmarkFiles = { data };
  if (benchmark === 'reval') {
    const tasks = join(dir, BENCHMARK_LAYOUT.reval.files.tasks);
    if ((await kind(tasks)) !== 'file') {
      throw new BenchmarkDataError(
        tasks,
        0,
        [`REval tasks file not found next to ${basename(data)}`],
        {
          hint: 'REval needs both DREval_data.jsonl and DREval_tasks.jsonl in one directory.',
        },
      );
    }
    files.tasks = tasks;
  }
  if (benchmark === 'livecodebench') {
    const index = join(dir, BENCHMARK_LAYOUT.livecodebench.files.index);
    if ((await kind(index)) === 'file') files.index = index;
  }
  return files;
}
