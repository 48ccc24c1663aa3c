// Paths shared by the tests: the package's own fixtures, the benchmark data the package ships
// (CRUXEval, always present), and the copies of the data that cannot be shipped (REval,
// LiveCodeBench's sample index) in ../shared/benchmarks when this checkout has them.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BUNDLED_BENCHMARKS_DIR } from './files.js';

export const FIXTURES = fileURLToPath(new URL('./__fixtures__', import.meta.url));
export const BUNDLED = BUNDLED_BENCHMARKS_DIR;
const shared = fileURLToPath(new URL('../../../../shared/benchmarks', import.meta.url));
export const SHARED_BENCHMARKS: string | undefined = existsSync(`${shared}/reval/DREval_data.jsonl`)
  ? shared
  : undefined;
/** Appended to the name of a test that needs the unshippable data, so a skip says why. */
export const NEEDS_SHARED = SHARED_BENCHMARKS
  ? ''
  : ' [skipped: needs ../shared/benchmarks (REval, LiveCodeBench index), which the package cannot ship: see data/README.md]';
if (!SHARED_BENCHMARKS) {
  console.warn(`bench tests:${NEEDS_SHARED}`);
}
