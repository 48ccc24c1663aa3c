// The built `cr` binary in a child process, exactly as a user runs it (tests only).
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** CR_TEST_BIN runs the same tests against another build (e.g. main's, to see a test fail before a fix). */
export const CR_BIN =
  process.env.CR_TEST_BIN ??
  resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bin.js');

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cr(
  args: string[],
  options: {
    /** Checked on every stderr chunk and every 50 ms; the child gets SIGKILL once it holds. */
    killWhen?: (stderr: string) => boolean;
    cwd?: string;
  } = {},
): Promise<Finished> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CR_BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, CI: 'true', NO_COLOR: '1', CR_DEBUG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const check = () => {
      if (options.killWhen?.(stderr) && child.exitCode === null) child.kill('SIGKILL');
    };
    // a file-based condition may hold only briefly, between two lines of output
    const timer = options.killWhen ? setInterval(check, 50) : undefined;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      check();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** A stack trace line (`    at fn (file:1:2)`): users must never see one. */
export const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;
