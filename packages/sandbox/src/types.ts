export type Engine = 'pyodide' | 'cpython';

export interface SandboxOptions {
  /** Which Python runs the code. Default `'pyodide'` (embedded, hostile code safe). */
  engine?: Engine;
  /** Worker threads (Pyodide) or processes (CPython). Default: number of CPU cores. */
  workers?: number;
  /** Wall-clock limit per task in ms, unless a request sets its own. Default 5000. */
  timeoutMs?: number;
  /** Memory cap per worker in MiB (Pyodide: WebAssembly heap; CPython: RLIMIT_AS). Default 512. */
  memoryLimitMb?: number;
  /** Characters of stdout kept per task; printing more ends the task as `output_limit`. Default 10000. */
  maxOutputChars?: number;
  /** Characters kept of any repr (results, trace locals). Default 10000. */
  maxReprChars?: number;
  /** CPython engine only: the interpreter to run. Default `python3` on PATH. */
  pythonPath?: string;
}

export interface ResolvedSandboxOptions {
  engine: Engine;
  workers: number;
  timeoutMs: number;
  memoryLimitMb: number;
  maxOutputChars: number;
  maxReprChars: number;
  pythonPath: string;
}

/** `code`: definitions (module-level statements); `call`: one expression evaluated after them. */
export interface RunRequest {
  code: string;
  call: string;
  timeoutMs?: number;
  /** What the code reads from `sys.stdin` (default: empty, i.e. EOF), for whole programs that read their input. */
  stdin?: string;
}

/** How a run or a check can end other than with a value or a verdict. */
const FAILURE_STATUSES = [
  'exception',
  'timeout',
  'memory',
  'syntax_error',
  'output_limit',
  'sandbox_error',
] as const;

/** Every status a run can end in; a harness status outside it becomes 'sandbox_error'. */
export const RUN_STATUSES = ['ok', ...FAILURE_STATUSES] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface RunResult {
  status: RunStatus;
  /** repr of the call's value (cut at maxReprChars). */
  repr?: string;
  /** true when `repr` was cut at maxReprChars. */
  reprTruncated?: boolean;
  /** The value as JSON when it has an exact one (tuples become arrays; no NaN, no non-str keys, no ints beyond 2**53-1), up to 8,000,000 characters. */
  json?: unknown;
  /** true when the value has a JSON form longer than 8,000,000 characters, which is not sent. */
  jsonOmitted?: boolean;
  /** Whether `eval(repr(v)) == v` holds (in the namespace of `code`). */
  reprRoundTrips?: boolean;
  exception?: { type: string; message: string };
  /** What the task printed (cut at maxOutputChars). */
  stdout: string;
  stdoutTruncated?: boolean;
  /** What the task wrote to stderr (cut at maxOutputChars), when it wrote anything. */
  stderr?: string;
  /** Why the status, in words, for anything other than `ok`. */
  detail?: string;
  durationMs: number;
}

export type CheckRequest =
  | {
      code: string;
      call: string;
      /** passed iff eval(call) == eval(expected); each parsed alone, `expected` without the definitions of `code`. */
      expected: string;
      /**
       * `'eval'` (default): `expected` is any expression. `'literal'`: it must be a Python literal
       * (what `repr` prints for plain values, plus `set()`, `frozenset(...)`, `float('nan')`), so an
       * answer cannot smuggle in an object whose `__eq__` always says yes.
       */
      expectedMode?: 'eval' | 'literal';
      timeoutMs?: number;
    }
  | { code: string; assertion: string; timeoutMs?: number }
  | JudgeRequest;

/**
 * Judges a model's answer by the one rule every scorer shares: `answer` travels as a value (never
 * pasted into code); in the sandbox its newlines are normalised (\r\n and a lone \r become \n, as
 * CPython's tokenizer does), CPython's `ast.parse(mode='eval')` reads it, and it is accepted only
 * when its tree is on the literal whitelist (see the README: literals, `set()`/`frozenset()`/
 * `float('nan')`-style reprs, side-effect-free constructors on literals, `str` methods on a string
 * literal, and in argument lists lambdas over their own parameters). Only the value of the
 * whitelisted tree reaches the comparison. `literal` in the result says whether it was accepted.
 */
export interface JudgeRequest {
  /** Definitions (trusted): the function an argument-list answer calls; golds are evaluated after them. */
  code: string;
  /** The model's answer text. */
  answer: string;
  /**
   * `'value'` (default): one literal. `'arguments'`: an argument list of literals (`1, [2], k='x'`)
   * passed to `function`. `'call'`: the call `function(<argument list>)` as one expression.
   */
  answerForm?: 'value' | 'arguments' | 'call';
  /** The function of `code` an `'arguments'` or `'call'` answer calls. */
  function?: string;
  /**
   * Expressions (trusted) for the expected value; passed iff one of them equals the answer's value
   * (for `'arguments'`/`'call'`: the function's result). Empty or absent: only the literal decision
   * is made (`passed` iff literal), nothing runs.
   */
  golds?: string[];
  /** `'eq'` (default): `gold == value`. `'typed'`: also `type(value) is type(gold)` (REval's rule). */
  compare?: 'eq' | 'typed';
  timeoutMs?: number;
}

/** Every status a check can end in; a harness status outside it becomes 'sandbox_error'. */
export const CHECK_STATUSES = ['passed', 'failed', ...FAILURE_STATUSES] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export interface CheckResult {
  status: CheckStatus;
  detail?: string;
  /** Judge requests only: whether the answer is a literal by the judge's rule (false: `failed`). */
  literal?: boolean;
  /**
   * Judge requests with no golds, `'value'` form: repr of the literal's value (absent when longer
   * than maxReprChars), text from which the value can be rebuilt without running the answer.
   */
  valueRepr?: string;
  /** repr of the computed side (the call; for an assertion, the side that is not a literal). */
  actualRepr?: string;
  exception?: { type: string; message: string };
  stdout: string;
  durationMs: number;
}

export interface TraceRequest {
  code: string;
  /** An expression, or (trace only) a block of statements such as a ClassEval test snippet. */
  call: string;
  /** Line events recorded at most (default 10000); past it, or past 8 million characters of recorded states (reprs, names, 16 per entry), tracing stops and `truncated` is set (the call still runs to the end). */
  maxSteps?: number;
  timeoutMs?: number;
  /** Statements run after `code` and before `call`, untraced (e.g. a test's setUp body). */
  setup?: string;
}

export interface TraceState {
  line: number;
  /** repr of each local after this path entry (REval: the locals of the next state; the last keeps its own). */
  locals: Record<string, string>;
  /** repr of the value returned at this entry, when a frame returned here. */
  return?: string;
  /** Exception type raised at this entry, when one was. */
  exception?: string;
}

export interface TraceResult extends RunResult {
  /** Sorted distinct 1-based lines of `code` that ran. */
  coverage: number[];
  /** Lines in execution order (REval rule: consecutive events on one line merged). */
  path: number[];
  states: TraceState[];
  /** Line events seen in traced frames (capped at maxSteps). */
  steps: number;
  truncated: boolean;
}

export interface SandboxInfo {
  engine: Engine;
  workers: number;
  /** Python version of the engine, e.g. "3.14.2". */
  pythonVersion: string;
  /** Start-up time of each worker started so far, in ms (replacements included). */
  startupMs: number[];
  /** Workers replaced after a hard timeout or a crash. */
  restarts: number;
  /** Peak memory of each live worker in MiB: Pyodide, WebAssembly heap + its JavaScript heap; CPython, peak RSS. */
  peakMemoryMb: number[];
}
