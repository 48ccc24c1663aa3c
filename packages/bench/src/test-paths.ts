// Paths shared by the tests: the package's own fixtures, and the real benchmark copies in
// ../shared/benchmarks when this checkout has them (tests on them are skipped otherwise).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('./__fixtures__', import.meta.url));
const shared = fileURLToPath(new URL('../../../../shared/benchmarks', import.meta.url));
export const SHARED_BENCHMARKS: string | undefined = existsSync(`${shared}/cruxeval/cruxeval.jsonl`)
  ? shared
  : undefined;
