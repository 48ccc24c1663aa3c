/** What the main thread sends a worker for one task (both engines, same shape). */
export interface TaskPayload {
  kind: 'run' | 'check' | 'trace';
  code: string;
  call?: string;
  expected?: string;
  expectedMode?: 'eval' | 'literal';
  assertion?: string;
  setup?: string;
  maxSteps?: number;
  /** run only: what the program reads from sys.stdin (default: empty). */
  stdin?: string;
  timeoutMs: number;
}

/** A result as the harness produces it; `sandbox.ts` narrows it to the public result types. */
export interface RawResult {
  status: string;
  repr?: string;
  reprTruncated?: boolean;
  json?: unknown;
  reprRoundTrips?: boolean;
  exception?: { type: string; message: string };
  stdout?: string;
  stdoutTruncated?: boolean;
  stderr?: string;
  detail?: string;
  actualRepr?: string;
  coverage?: number[];
  path?: number[];
  states?: { line: number; locals: Record<string, string>; return?: string; exception?: string }[];
  steps?: number;
  truncated?: boolean;
  durationMs?: number;
  /** The harness could not restore the interpreter: the worker must be replaced. */
  fatal?: boolean;
}

/**
 * One round trip's outcome. `results[i]` is undefined for tasks that got no answer because the
 * worker died first; `dead` says the worker must be replaced before the next round trip.
 */
export interface Outcome {
  results: (RawResult | undefined)[];
  dead: boolean;
}

/** One Python interpreter (a worker thread or a process) that runs batches of tasks. */
export interface EngineWorker {
  readonly pythonVersion: string;
  readonly startupMs: number;
  /** Peak memory of this worker seen so far, in bytes (0 when unknown). */
  readonly peakMemoryBytes: number;
  execute(tasks: TaskPayload[]): Promise<Outcome>;
  terminate(): Promise<void>;
}

export interface WorkerLimits {
  memoryLimitMb: number;
  maxOutputChars: number;
  maxReprChars: number;
}

/** Extra time a task gets after its limit to stop on its own before its worker is killed. */
export function graceMs(timeoutMs: number): number {
  return Math.max(200, Math.min(1000, timeoutMs / 2));
}

export function timeoutResult(timeoutMs: number, detail?: string): RawResult {
  return {
    status: 'timeout',
    stdout: '',
    detail: detail ?? `the task ran longer than its limit of ${timeoutMs} ms`,
    durationMs: timeoutMs,
  };
}
