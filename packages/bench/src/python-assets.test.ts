import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  hasPython3,
  NEEDS_PYTHON3,
  packedFiles,
  pythonCompileProblems,
  ruffProblems,
} from '../../../test-support/python-assets.js';
import { revalHarnessPath, revalHarnessSource } from './python-assets.js';

// The harness's behaviour is tested through the sandbox in reval/truth.test.ts and
// reval/state-judge.test.ts; here, that it is a sound Python file that ships.
describe('python/reval-harness.py', () => {
  it.runIf(hasPython3)(`compiles under CPython with warnings as errors${NEEDS_PYTHON3}`, () => {
    expect(pythonCompileProblems(revalHarnessPath())).toBe('');
  });

  it('is read from the file, once', () => {
    const source = revalHarnessSource();
    expect(source).toMatch(/^def reval_call\(spec_json\):$/m);
    expect(revalHarnessSource()).toBe(source);
  });

  it('passes Ruff', () => {
    expect(ruffProblems(revalHarnessPath())).toEqual([]);
  });

  it('is in the published tarball', () => {
    const packageDir = fileURLToPath(new URL('..', import.meta.url));
    expect(packedFiles(packageDir)).toContain('python/reval-harness.py');
  }, 60_000);
});
