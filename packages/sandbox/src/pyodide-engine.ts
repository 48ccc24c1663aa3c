import { Worker } from 'node:worker_threads';
import { CONTROL } from './control.js';
import { SandboxError } from './errors.js';
import { harnessSource, pyodideWorkerUrl } from './harness-source.js';
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

const WATCH_INTERVAL_MS = 10;
const START_TIMEOUT_MS = 120_000;

type WorkerMessage =
  | { type: 'ready'; pythonVersion: string }
  | { type: 'snapshot'; snapshot: SharedArrayBuffer | undefined }
  | { type: 'done'; results: string[]; memoryBytes: number; recycle: boolean }
  | { type: 'crashed'; results: string[]; index: number; detail: string };

/**
 * A memory snapshot of Pyodide with the harness's imports done, made once per process by the
 * first worker: workers started from it skip Python's start-up (about 0.5 s instead of 1.5 s on
 * two busy cores), which makes replacing a killed worker cheap. While it is being made, other
 * workers start the slow way; when it cannot be made, all do.
 */
const snapshot: { state: 'none' | 'making' | 'ready' | 'failed'; bytes?: SharedArrayBuffer } = {
  state: 'none',
};

/** One Pyodide interpreter in a Node worker thread, seen from the main thread. */
export class PyodideWorker implements EngineWorker {
  readonly pythonVersion: string;
  readonly startupMs: number;
  private readonly worker: Worker;
  private readonly control: Int32Array;
  private readonly clock: Float64Array;
  private readonly limits: WorkerLimits;
  private busy = false;
  private exited = false;
  /** Largest footprint reported so far (WebAssembly heap + the thread's JavaScript heap). */
  peakMemoryBytes = 0;

  private constructor(
    worker: Worker,
    control: SharedArrayBuffer,
    pythonVersion: string,
    startupMs: number,
    limits: WorkerLimits,
  ) {
    this.worker = worker;
    this.limits = limits;
    this.control = new Int32Array(control, 0, CONTROL.int32Length);
    this.clock = new Float64Array(control, CONTROL.clockByteOffset, 1);
    this.pythonVersion = pythonVersion;
    this.startupMs = startupMs;
    worker.once('exit', () => {
      this.exited = true;
    });
    // An idle worker does not keep the process alive; a busy one does (see execute).
    worker.unref();
  }

  static async start(limits: WorkerLimits): Promise<PyodideWorker> {
    const started = performance.now();
    const makeSnapshot = snapshot.state === 'none';
    if (makeSnapshot) snapshot.state = 'making';
    const control = new SharedArrayBuffer(CONTROL.byteLength);
    new Int32Array(control, 0, CONTROL.int32Length).set([0, -1, -1, 0]);
    const worker = new Worker(pyodideWorkerUrl(), {
      workerData: {
        makeSnapshot,
        harnessSource: harnessSource(),
        options: limits,
        control,
        snapshot: snapshot.state === 'ready' ? snapshot.bytes : undefined,
      },
      // The JavaScript heap of the worker (Pyodide's own objects); the WebAssembly heap that
      // holds Python's objects is capped inside the worker.
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 },
      // The worker silences its own console; piping its stdio instead would keep Node alive.
      env: {},
    });
    const pythonVersion = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(
          new SandboxError(
            'worker_start',
            `a Pyodide worker did not start within ${START_TIMEOUT_MS} ms`,
          ),
        );
      }, START_TIMEOUT_MS);
      const onMessage = (message: WorkerMessage): void => {
        if (message.type === 'snapshot') {
          snapshot.state = message.snapshot ? 'ready' : 'failed';
          snapshot.bytes = message.snapshot;
          return;
        }
        clearTimeout(timer);
        worker.off('message', onMessage);
        if (message.type === 'ready') resolve(message.pythonVersion);
        else
          reject(
            new SandboxError(
              'worker_start',
              `a Pyodide worker sent ${message.type} before it was ready`,
            ),
          );
      };
      worker.on('message', onMessage);
      worker.once('error', (error) => {
        clearTimeout(timer);
        if (makeSnapshot && snapshot.state === 'making') snapshot.state = 'none';
        reject(
          new SandboxError('worker_start', `a Pyodide worker failed to start: ${error.message}`, {
            cause: error,
          }),
        );
      });
    });
    return new PyodideWorker(worker, control, pythonVersion, performance.now() - started, limits);
  }

  execute(tasks: TaskPayload[]): Promise<Outcome> {
    if (this.busy) throw new Error('PyodideWorker.execute called while busy');
    if (this.exited) {
      return Promise.resolve({ results: tasks.map(() => undefined), dead: true });
    }
    this.busy = true;
    this.worker.ref();
    const control = this.control;
    const clock = this.clock;
    const worker = this.worker;
    const limits = this.limits;
    // Checked again here: a result over the cap means the worker misbehaved; it is replaced.
    const parse = (text: string): RawResult =>
      withinResultCap(text, limits) ? (JSON.parse(text) as RawResult) : oversizedResult(limits);
    return new Promise<Outcome>((resolve) => {
      let interruptedIndex = -1;
      let interruptedAt = 0;
      let settled = false;
      const finish = (outcome: Outcome): void => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        this.busy = false;
        worker.unref();
        resolve(outcome);
      };
      const fill = (
        done: string[],
        failedIndex: number,
        failure: RawResult | undefined,
      ): Outcome => {
        const results: (RawResult | undefined)[] = tasks.map(() => undefined);
        done.forEach((text, index) => {
          results[index] = parse(text);
        });
        if (failure && failedIndex >= 0 && failedIndex < tasks.length)
          results[failedIndex] = failure;
        return { results, dead: true };
      };
      const onMessage = (message: WorkerMessage): void => {
        if (message.type === 'done') {
          this.peakMemoryBytes = Math.max(this.peakMemoryBytes, message.memoryBytes);
          const results: (RawResult | undefined)[] = tasks.map((_, index) => {
            const text = message.results[index];
            return text === undefined ? undefined : parse(text);
          });
          // The worker's heap grew past half its limit (it stopped early if tasks remain): replace
          // it to give the memory back; unanswered tasks run on its successor.
          const recycle = message.recycle || message.results.length < tasks.length;
          finish({ results, dead: recycle || results.some((result) => result?.fatal === true) });
        } else if (message.type === 'crashed') {
          void worker.terminate();
          const index = message.results.length;
          // C code recursing past the WebAssembly stack (e.g. repr of a list nested a million
          // deep) kills Pyodide where CPython raises RecursionError: report it the same way.
          const failure: RawResult = /Maximum call stack size exceeded/.test(message.detail)
            ? {
                status: 'exception',
                stdout: '',
                exception: {
                  type: 'RecursionError',
                  message: 'maximum recursion depth exceeded (WebAssembly stack)',
                },
                detail: 'the worker was replaced',
                durationMs: 0,
              }
            : {
                status: 'sandbox_error',
                stdout: '',
                detail: `Pyodide failed: ${message.detail}`,
                durationMs: 0,
              };
          finish(fill(message.results, index, failure));
        }
      };
      const currentFailure = (error: Error | undefined): Outcome => {
        const index = Atomics.load(control, CONTROL.index);
        const oom = (error as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        const failure: RawResult = oom
          ? {
              status: 'memory',
              stdout: '',
              detail: 'the worker ran out of JavaScript heap',
              durationMs: 0,
            }
          : {
              status: 'sandbox_error',
              stdout: '',
              detail: `the worker stopped: ${error?.message ?? 'exited'}`,
              durationMs: 0,
            };
        return fill([], index, failure);
      };
      const onError = (error: Error): void => finish(currentFailure(error));
      const onExit = (): void => finish(currentFailure(undefined));
      const watch = setInterval(() => {
        const index = Atomics.load(control, CONTROL.index);
        if (index < 0 || index >= tasks.length) return;
        const limit = (tasks[index] as TaskPayload).timeoutMs;
        const elapsed = performance.timeOrigin + performance.now() - (clock[0] as number);
        if (interruptedIndex !== index) {
          if (elapsed > limit) {
            interruptedIndex = index;
            interruptedAt = elapsed;
            Atomics.store(control, CONTROL.interruptedIndex, index);
            if (Atomics.load(control, CONTROL.index) === index)
              Atomics.store(control, CONTROL.interrupt, 2);
          }
        } else if (elapsed - interruptedAt > graceMs(limit)) {
          // The task ignored KeyboardInterrupt or hangs inside C code: only terminating the thread
          // stops it. Results of earlier tasks in this batch are lost and will be run again.
          void worker.terminate();
          finish(
            fill(
              [],
              index,
              timeoutResult(limit, 'the task ran past its limit and its worker was terminated'),
            ),
          );
        }
      }, WATCH_INTERVAL_MS);
      watch.unref();
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.postMessage({ type: 'batch', tasks: tasks.map((task) => JSON.stringify(task)) });
    });
  }

  async terminate(): Promise<void> {
    if (this.exited) return;
    // Referenced while stopping, or Node may find nothing left to wait for and exit mid-await.
    this.worker.ref();
    await this.worker.terminate();
  }
}
