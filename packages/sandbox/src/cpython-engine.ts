import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { SandboxError } from './errors.js';
import { harnessPath } from './harness-source.js';
import {
  graceMs,
  oversizedResult,
  timeoutResult,
  withinResultCap,
  type EngineWorker,
  type Outcome,
  type RawResult,
  type TaskPayload,
  type WorkerLimits,
} from './protocol.js';

const START_TIMEOUT_MS = 30_000;
const WATCH_INTERVAL_MS = 10;

interface Line {
  id?: number;
  index?: number;
  result?: RawResult;
  ready?: boolean;
  version?: string;
  fatal?: string;
}

/**
 * One persistent `python3` process running python/harness.py. Messages are JSON lines on its
 * stdin/stdout, which the harness moves to private descriptors before any task runs; each reply
 * starts with a per-process nonce, so text a task manages to write elsewhere is not a reply.
 */
export class CPythonWorker implements EngineWorker {
  private version = '';
  private startedInMs = 0;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly nonce: string;
  private buffer = '';
  private listener: ((line: Line) => void) | undefined;
  private exitListener: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  private exited = false;
  private batchId = 0;
  /** The harness's last words (a traceback) when it failed outside any task. */
  private fatal: string | undefined;

  /** Set when the process sent more than a result may hold: it is killed and replaced. */
  private oversized = false;

  private constructor(
    child: ChildProcessWithoutNullStreams,
    nonce: string,
    private readonly limits: WorkerLimits,
  ) {
    this.child = child;
    this.nonce = nonce;
  }

  get pythonVersion(): string {
    return this.version;
  }

  get startupMs(): number {
    return this.startedInMs;
  }

  /** Peak resident set size of the process (VmHWM), where /proc exists. */
  get peakMemoryBytes(): number {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const match = /VmHWM:\s+(\d+) kB/.exec(status);
      return match ? Number(match[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  static async start(limits: WorkerLimits, pythonPath: string): Promise<CPythonWorker> {
    const started = performance.now();
    const nonce = randomBytes(12).toString('hex');
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(pythonPath, ['-S', '-s', '-u', '-B', harnessPath()], {
        cwd: tmpdir(),
        env: {
          PYTHONHASHSEED: '0',
          PYTHONIOENCODING: 'utf-8',
          PYTHONUTF8: '1',
          LANG: 'C.UTF-8',
          PATH: '/usr/bin:/bin',
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (error) {
      throw missingPython(pythonPath, error);
    }
    const worker = new CPythonWorker(child, nonce, limits);
    child.stderr.resume();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data: string) => worker.onData(data));
    child.stdin.on('error', () => undefined);
    // 'close', not 'exit': it comes after the last stdout data, so a dying harness's traceback is read.
    child.once('close', (code, signal) => {
      worker.exited = true;
      worker.exitListener?.(code, signal);
    });
    worker.version = await new Promise<string>((resolve, reject) => {
      const fail = (error: SandboxError): void => {
        clearTimeout(timer);
        worker.listener = undefined;
        worker.exitListener = undefined;
        child.kill('SIGKILL');
        reject(error);
      };
      const timer = setTimeout(
        () =>
          fail(
            new SandboxError(
              'worker_start',
              `${pythonPath} did not start the sandbox harness within ${START_TIMEOUT_MS} ms`,
            ),
          ),
        START_TIMEOUT_MS,
      );
      child.once('error', (error: NodeJS.ErrnoException) =>
        fail(
          error.code === 'ENOENT'
            ? missingPython(pythonPath, error)
            : new SandboxError('worker_start', `${pythonPath} failed to start: ${error.message}`, {
                cause: error,
              }),
        ),
      );
      worker.exitListener = (code, signal) =>
        fail(
          new SandboxError(
            'worker_start',
            `${pythonPath} exited while starting the sandbox harness (code ${code}, signal ${signal}); the cpython engine needs Python 3.8 or newer`,
          ),
        );
      worker.listener = (line) => {
        if (!line.ready) return;
        clearTimeout(timer);
        worker.listener = undefined;
        worker.exitListener = undefined;
        resolve(line.version ?? '');
      };
      child.stdin.write(`${JSON.stringify({ nonce, options: limits })}\n`);
    });
    worker.startedInMs = performance.now() - started;
    worker.setReferenced(false);
    return worker;
  }

  /** An idle process does not keep Node alive; a busy one does. */
  private setReferenced(referenced: boolean): void {
    if (this.exited) return;
    if (referenced) this.child.ref();
    else this.child.unref();
    // stderr has already ended (the harness points fd 2 at /dev/null); a closed socket would queue
    // the call for a 'connect' that never comes.
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      if (stream.destroyed) continue;
      const socket = stream as unknown as { ref?: () => void; unref?: () => void };
      if (referenced) socket.ref?.();
      else socket.unref?.();
    }
  }

  private onData(data: string): void {
    this.buffer += data;
    // A line longer than any result may be (a task writing to the protocol descriptor, or a
    // result past the cap) is not buffered further: the process is killed and replaced.
    const lineCap = 2 * this.limits.maxResultChars + 1000;
    if (this.buffer.length > lineCap && this.buffer.indexOf('\n') < 0) {
      this.buffer = '';
      this.oversized = true;
      this.child.kill('SIGKILL');
      return;
    }
    let newline = this.buffer.indexOf('\n');
    while (newline >= 0) {
      const raw = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      newline = this.buffer.indexOf('\n');
      if (!raw.startsWith(this.nonce)) continue;
      if (!withinResultCap(raw, this.limits)) {
        this.oversized = true;
        this.child.kill('SIGKILL');
        continue;
      }
      let line: Line;
      try {
        line = JSON.parse(raw.slice(this.nonce.length)) as Line;
      } catch {
        continue;
      }
      if (line.fatal !== undefined) this.fatal = line.fatal;
      this.listener?.(line);
    }
  }

  execute(tasks: TaskPayload[]): Promise<Outcome> {
    if (this.exited) return Promise.resolve({ results: tasks.map(() => undefined), dead: true });
    this.batchId += 1;
    this.setReferenced(true);
    const id = this.batchId;
    const results: (RawResult | undefined)[] = tasks.map(() => undefined);
    return new Promise<Outcome>((resolve) => {
      let received = 0;
      let taskStarted = performance.now();
      let settled = false;
      const finish = (dead: boolean): void => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        this.listener = undefined;
        this.exitListener = undefined;
        this.setReferenced(false);
        resolve({ results, dead });
      };
      this.listener = (line) => {
        if (line.id !== id || typeof line.index !== 'number' || line.result === undefined) return;
        if (line.index !== received) return;
        results[received] = line.result;
        received += 1;
        taskStarted = performance.now();
        // The guard found the harness changed: the harness stops after this result, and the
        // process is replaced before anything else runs.
        if (line.result.fatal === true) finish(true);
        else if (received === tasks.length) finish(false);
      };
      this.exitListener = (code, signal) => {
        if (received < tasks.length) {
          const limit = (tasks[received] as TaskPayload).timeoutMs;
          results[received] = this.oversized
            ? oversizedResult(this.limits)
            : signal === 'SIGXCPU' || signal === 'SIGKILL'
              ? timeoutResult(limit, `the task used more CPU time than its limit (${signal})`)
              : {
                  status: 'sandbox_error',
                  stdout: '',
                  detail: `the Python process exited (code ${code}, signal ${signal})${this.fatal ? `: ${this.fatal}` : ''}`,
                  durationMs: 0,
                };
        }
        finish(true);
      };
      const watch = setInterval(() => {
        if (received >= tasks.length) return;
        const limit = (tasks[received] as TaskPayload).timeoutMs;
        // The harness raises on SIGALRM at the limit; a task stuck in C code or swallowing the
        // exception gets the grace period, then its process is killed and replaced.
        if (performance.now() - taskStarted > limit + graceMs(limit)) {
          results[received] = timeoutResult(
            limit,
            'the task ran past its limit and its process was killed',
          );
          this.exitListener = undefined;
          this.child.kill('SIGKILL');
          finish(true);
        }
      }, WATCH_INTERVAL_MS);
      watch.unref();
      this.child.stdin.write(`${JSON.stringify({ id, tasks })}\n`);
    });
  }

  async terminate(): Promise<void> {
    if (this.exited) return;
    this.setReferenced(true);
    await new Promise<void>((resolve) => {
      this.child.once('close', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

function missingPython(pythonPath: string, cause: unknown): SandboxError {
  return new SandboxError(
    'engine_unavailable',
    `The cpython engine needs a Python 3 interpreter, but "${pythonPath}" was not found on PATH. ` +
      "Install Python 3 (or pass pythonPath), or use the default embedded engine: Sandbox.create({ engine: 'pyodide' }).",
    { cause },
  );
}
