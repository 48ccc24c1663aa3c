// Shared by the tests of packages that ship Python files (sandbox, bench): the checks a Python
// linter would give where none is installed, and what a packed tarball would hold. Test-only;
// no package ships it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { PositionEncoding, Workspace } from '@astral-sh/ruff-wasm-nodejs';
import { describe, expect, it } from 'vitest';

/** Whether a `python3` (3.9 or later) is on PATH; the Python checks are skipped, visibly, without one. */
export const hasPython3 =
  spawnSync('python3', ['-c', 'import sys; assert sys.version_info >= (3, 9)']).status === 0;

/** Appended to the name of a test that needs python3, so that a skip says why. */
export const NEEDS_PYTHON3 = hasPython3 ? '' : ' [skipped: needs python3 on PATH]';

/**
 * Compiles a Python file with CPython, warnings raised as errors (an invalid escape such as
 * "\d", `is` with a literal, ...): '' when clean, else what CPython said. Writes no .pyc.
 */
export function pythonCompileProblems(path: string): string {
  const result = spawnSync(
    'python3',
    [
      '-I',
      '-W',
      'error',
      '-c',
      'import sys\nwith open(sys.argv[1], encoding="utf-8") as f:\n    compile(f.read(), sys.argv[1], "exec")',
      path,
    ],
    { encoding: 'utf8' },
  );
  if (result.error) throw result.error;
  return result.status === 0 ? '' : `${result.stderr}`.trim() || `python3 exited ${result.status}`;
}

/** The environment without the npm_* variables a parent `pnpm run` sets (they would configure the child npm). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')),
  );
}

/** The paths `npm pack` would put in a package's tarball (a dry run: nothing is written or fetched). */
export function packedFiles(packageDir: string): string[] {
  const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: packageDir,
    env: cleanEnv(),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(`npm pack --dry-run failed in ${packageDir}: ${result.stderr}`);
  const [pack] = JSON.parse(result.stdout) as { files: { path: string }[] }[];
  return pack!.files.map((file) => file.path);
}

/**
 * Ruff's findings on a Python file, one `line:column code message` string each, with Ruff's
 * default rule set (pycodestyle errors E4/E7/E9 and Pyflakes F) for the oldest Python the
 * sandbox's CPython engine runs (3.9). Ruff runs as WebAssembly: no Python, nothing fetched.
 * `ignore` names rules a file breaks on purpose; say why at the call.
 */
export function ruffProblems(path: string, ignore: readonly string[] = []): string[] {
  const workspace = new Workspace(
    {
      'target-version': 'py39',
      'line-length': 130,
      lint: { select: ['E4', 'E7', 'E9', 'F'], ignore: [...ignore] },
    },
    PositionEncoding.Utf16,
  );
  try {
    const diagnostics = workspace.check(readFileSync(path, 'utf8')) as {
      code: string | null;
      message: string;
      start_location: { row: number; column: number };
    }[];
    return diagnostics.map(
      (d) => `${d.start_location.row}:${d.start_location.column} ${d.code ?? ''} ${d.message}`,
    );
  } finally {
    workspace.free();
  }
}

/**
 * The tests every shipped Python file gets: it compiles under CPython with warnings as errors,
 * passes Ruff (`ruffIgnore`: rules it breaks on purpose, with the reason at the call), and is
 * in its package's tarball. Its behaviour is tested through the sandbox by the package's tests.
 */
export function describePythonAsset(
  path: string,
  packageDir: string,
  options: { ruffIgnore?: readonly string[] } = {},
): void {
  const inPackage = relative(packageDir, path);
  describe(inPackage, () => {
    it.runIf(hasPython3)(`compiles under CPython with warnings as errors${NEEDS_PYTHON3}`, () => {
      expect(pythonCompileProblems(path)).toBe('');
    });

    it('passes Ruff', () => {
      expect(ruffProblems(path, options.ruffIgnore)).toEqual([]);
    });

    it('is in the published tarball', () => {
      expect(packedFiles(packageDir)).toContain(inPackage);
    }, 60_000);
  });
}
