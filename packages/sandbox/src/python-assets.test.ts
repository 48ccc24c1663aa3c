import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  hasPython3,
  NEEDS_PYTHON3,
  packedFiles,
  pythonCompileProblems,
  ruffProblems,
} from '../../../test-support/python-assets.js';
import { harnessPath } from './harness-source.js';

// The harness's behaviour is what every other test here exercises, on both engines; here, that
// it is a sound Python file that ships.
describe('python/harness.py', () => {
  it.runIf(hasPython3)(`compiles under CPython with warnings as errors${NEEDS_PYTHON3}`, () => {
    expect(pythonCompileProblems(harnessPath())).toBe('');
  });

  it('passes Ruff', () => {
    // E402: the harness swaps in a private copy of the builtins before its imports, on purpose.
    expect(ruffProblems(harnessPath(), ['E402'])).toEqual([]);
  });

  it('is in the published tarball', () => {
    const packageDir = fileURLToPath(new URL('..', import.meta.url));
    expect(packedFiles(packageDir)).toContain('python/harness.py');
  }, 60_000);
});
