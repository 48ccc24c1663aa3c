/** What the main thread sends a worker for one task (both engines, same shape). */
export interface TaskPayload {
  kind: 'run' | 'check' | 'trace' | 'judge';
  code: string;
  call?: string;
  expected?: string;
  expectedMode?: 'eval' | 'literal';
  assertion?: string;
  answer?: string;
  answerForm?: 'value' | 'arguments' | 'call';
  function?: string;
  golds?: string[];
  compare?: 'eq' | 'typed';
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
  jsonOmitted?: boolean;
  reprRoundTrips?: boolean;
  exception?: { type: string; message: string };
  stdout?: string;
  stdoutTruncated?: boolean;
  stderr?: string;
  detail?: string;
  actualRepr?: string;
  literal?: boolean;
  valueRepr?: string;
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
  /** Characters of recorded trace states (locals, returns, per-entry overhead) per task. */
  maxTraceChars: number;
  /** Characters of a value's JSON form when its repr was cut. */
  maxJsonChars: number;
  /** Characters of one encoded result, all fields together: the backstop behind the field caps. */
  maxResultChars: number;
}

/** Cap on a trace's recorded states, in characters (reprs, names, per-entry overhead). */
export const MAX_TRACE_CHARS = 8_000_000;

/** Cap on the JSON form of a value whose repr was cut (REval's harness returns long JSON strs). */
export const MAX_JSON_CHARS = 8_000_000;

/** Room in one encoded result for everything but the capped fields (keys, numbers, details). */
const RESULT_OVERHEAD_CHARS = 100_000;

/**
 * The limits sent to every worker: the field caps, and the cap on a whole encoded result, which
 * the worker enforces before a result leaves it and the host checks again on arrival.
 */
export function workerLimits(options: {
  memoryLimitMb: number;
  maxOutputChars: number;
  maxReprChars: number;
}): WorkerLimits {
  return {
    memoryLimitMb: options.memoryLimitMb,
    maxOutputChars: options.maxOutputChars,
    maxReprChars: options.maxReprChars,
    maxTraceChars: MAX_TRACE_CHARS,
    maxJsonChars: MAX_JSON_CHARS,
    // stdout, the repr, actualRepr and the exception message each up to their cap, plus a trace
    // and a JSON form.
    maxResultChars:
      options.maxOutputChars +
      4 * options.maxReprChars +
      MAX_TRACE_CHARS +
      MAX_JSON_CHARS +
      RESULT_OVERHEAD_CHARS,
  };
}

/**
 * Whether a result's JSON text is within the whole-result cap. Python counts code points, a
 * JavaScript string UTF-16 units (an astral character is two), hence the factor of 2.
 */
export function withinResultCap(text: string, limits: WorkerLimits): boolean {
  return text.length <= 2 * limits.maxResultChars;
}

export function oversizedResult(limits: WorkerLimits): RawResult {
  return {
    status: 'sandbox_error',
    stdout: '',
    detail: `the worker sent a result over ${limits.maxResultChars} characters; the worker was replaced`,
    durationMs: 0,
    fatal: true,
  };
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
