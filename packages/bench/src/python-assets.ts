import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BenchmarkRunError } from './errors.js';

/**
 * Path of python/reval-harness.py, the REval tracer and answer checks that run inside the
 * sandbox. `python/` sits one level above both src/ (tests) and dist/ (published), and is in
 * the package's `files`.
 */
export function revalHarnessPath(): string {
  return fileURLToPath(new URL('../python/reval-harness.py', import.meta.url));
}

let cached: string | undefined;

/** The harness's source, read once. */
export function revalHarnessSource(): string {
  if (cached === undefined) {
    const path = revalHarnessPath();
    try {
      cached = readFileSync(path, 'utf8');
    } catch (error) {
      throw new BenchmarkRunError(
        'BENCH_ASSET_MISSING',
        `cannot read the REval harness at ${path} (${(error as Error).message}): ` +
          '@codereasoner/bench ships it in python/; reinstall the package',
        { cause: error },
      );
    }
  }
  return cached;
}
