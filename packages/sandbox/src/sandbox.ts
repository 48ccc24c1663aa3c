import { CPythonWorker } from './cpython-engine.js';
import { ConfigValidationError } from './errors.js';
import { resolveSandboxOptions } from './options.js';
import { WorkerPool } from './pool.js';
import { workerLimits, type RawResult, type TaskPayload, type WorkerLimits } from './protocol.js';
import { PyodideWorker } from './pyodide-engine.js';
import {
  CHECK_STATUSES,
  RUN_STATUSES,
  type CheckRequest,
  type CheckResult,
  type CheckStatus,
  type JudgeRequest,
  type ResolvedSandboxOptions,
  type RunRequest,
  type RunResult,
  type RunStatus,
  type SandboxInfo,
  type SandboxOptions,
  type TraceRequest,
  type TraceResult,
} from './types.js';

const RUN_STATUS_SET = new Set<string>(RUN_STATUSES);
const CHECK_STATUS_SET = new Set<string>(CHECK_STATUSES);

/**
 * Runs, checks and traces untrusted Python in a pool of isolated interpreters.
 *
 * ```ts
 * const sandbox = await Sandbox.create();
 * const result = await sandbox.check({ code: 'def f(x):\n    return x * 2', assertion: 'assert f(3) == 6' });
 * await sandbox.close();
 * ```
 */
export class Sandbox {
  readonly options: ResolvedSandboxOptions;
  private readonly pool: WorkerPool;

  private constructor(options: ResolvedSandboxOptions, pool: WorkerPool) {
    this.options = options;
    this.pool = pool;
  }

  /** Start the workers (Pyodide: about 1.5 s each, in parallel) and return a ready sandbox. */
  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const resolved = resolveSandboxOptions(options);
    const limits: WorkerLimits = workerLimits(resolved);
    const start =
      resolved.engine === 'cpython'
        ? () => CPythonWorker.start(limits, resolved.pythonPath)
        : () => PyodideWorker.start(limits);
    const pool = await WorkerPool.create(resolved.workers, start);
    return new Sandbox(resolved, pool);
  }

  info(): SandboxInfo {
    return {
      engine: this.options.engine,
      workers: this.pool.size,
      pythonVersion: this.pool.pythonVersion,
      startupMs: [...this.pool.startupMs],
      restarts: this.pool.restarts,
      peakMemoryMb: this.pool.peakMemoryBytes.map(
        (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10,
      ),
    };
  }

  async run(request: RunRequest): Promise<RunResult> {
    return (await this.runBatch([request]))[0] as RunResult;
  }

  async runBatch(requests: RunRequest[]): Promise<RunResult[]> {
    const tasks = requests.map((request, index) => this.runPayload(request, index, 'runBatch'));
    return (await this.pool.submit(tasks)).map(toRunResult);
  }

  async check(request: CheckRequest): Promise<CheckResult> {
    return (await this.checkBatch([request]))[0] as CheckResult;
  }

  async checkBatch(requests: CheckRequest[]): Promise<CheckResult[]> {
    const tasks = requests.map((request, index) => this.checkPayload(request, index));
    return (await this.pool.submit(tasks)).map(toCheckResult);
  }

  async trace(request: TraceRequest): Promise<TraceResult> {
    return (await this.traceBatch([request]))[0] as TraceResult;
  }

  async traceBatch(requests: TraceRequest[]): Promise<TraceResult[]> {
    const tasks = requests.map((request, index) => {
      const payload = this.runPayload(request, index, 'traceBatch');
      payload.kind = 'trace';
      if (request.setup !== undefined) {
        requireString(request.setup, `traceBatch[${index}].setup`);
        payload.setup = request.setup;
      }
      if (request.maxSteps !== undefined) {
        if (!Number.isInteger(request.maxSteps) || request.maxSteps < 1) {
          throw new ConfigValidationError('Trace request', [
            `/${index}/maxSteps: must be a positive integer`,
          ]);
        }
        payload.maxSteps = request.maxSteps;
      }
      return payload;
    });
    return (await this.pool.submit(tasks)).map(toTraceResult);
  }

  /** Stop every worker. Pending tasks are rejected with SandboxError('closed'). */
  async close(): Promise<void> {
    await this.pool.close();
  }

  private timeout(value: number | undefined, where: string): number {
    if (value === undefined) return this.options.timeoutMs;
    if (!Number.isInteger(value) || value < 1) {
      throw new ConfigValidationError('Sandbox request', [
        `${where}/timeoutMs: must be a positive integer (ms)`,
      ]);
    }
    return value;
  }

  private runPayload(request: RunRequest, index: number, method: string): TaskPayload {
    const where = `${method}[${index}]`;
    if (typeof request !== 'object' || request === null) {
      throw new ConfigValidationError('Sandbox request', [`${where}: must be an object`]);
    }
    requireString(request.code, `${where}.code`);
    requireString(request.call, `${where}.call`);
    const payload: TaskPayload = {
      kind: 'run',
      code: request.code,
      call: request.call,
      timeoutMs: this.timeout(request.timeoutMs, where),
    };
    if (request.stdin !== undefined) {
      requireString(request.stdin, `${where}.stdin`);
      payload.stdin = request.stdin;
    }
    return payload;
  }

  private checkPayload(request: CheckRequest, index: number): TaskPayload {
    const where = `checkBatch[${index}]`;
    if (typeof request !== 'object' || request === null) {
      throw new ConfigValidationError('Check request', [`${where}: must be an object`]);
    }
    requireString(request.code, `${where}.code`);
    const timeoutMs = this.timeout(request.timeoutMs, where);
    if ('answer' in request) return judgePayload(request, where, timeoutMs);
    if ('assertion' in request) {
      requireString(request.assertion, `${where}.assertion`);
      return { kind: 'check', code: request.code, assertion: request.assertion, timeoutMs };
    }
    requireString(request.call, `${where}.call`);
    requireString(request.expected, `${where}.expected`);
    const mode = request.expectedMode ?? 'eval';
    if (mode !== 'eval' && mode !== 'literal') {
      throw new ConfigValidationError('Check request', [
        `${where}.expectedMode: must be 'eval' or 'literal'`,
      ]);
    }
    return {
      kind: 'check',
      code: request.code,
      call: request.call,
      expected: request.expected,
      expectedMode: mode,
      timeoutMs,
    };
  }
}

function judgePayload(request: JudgeRequest, where: string, timeoutMs: number): TaskPayload {
  requireString(request.answer, `${where}.answer`);
  const issues: string[] = [];
  const form = request.answerForm ?? 'value';
  if (!['value', 'arguments', 'call'].includes(form))
    issues.push(`${where}.answerForm: must be 'value', 'arguments' or 'call'`);
  const compare = request.compare ?? 'eq';
  if (compare !== 'eq' && compare !== 'typed')
    issues.push(`${where}.compare: must be 'eq' or 'typed'`);
  if (
    form !== 'value' &&
    (typeof request.function !== 'string' || !/^[A-Za-z_]\w*$/.test(request.function))
  )
    issues.push(`${where}.function: must name the function an '${form}' answer calls`);
  const golds = request.golds ?? [];
  if (!Array.isArray(golds) || golds.some((gold) => typeof gold !== 'string'))
    issues.push(`${where}.golds: must be an array of strings`);
  if (issues.length > 0) throw new ConfigValidationError('Check request', issues);
  const payload: TaskPayload = {
    kind: 'judge',
    code: request.code,
    answer: request.answer,
    answerForm: form,
    golds,
    compare,
    timeoutMs,
  };
  if (request.function !== undefined) payload.function = request.function;
  return payload;
}

function requireString(value: unknown, where: string): void {
  if (typeof value !== 'string') {
    throw new ConfigValidationError('Sandbox request', [
      `${where}: must be a string (got ${value === null ? 'null' : typeof value})`,
    ]);
  }
}

function common(raw: RawResult): { stdout: string; durationMs: number } {
  return { stdout: raw.stdout ?? '', durationMs: raw.durationMs ?? 0 };
}

function toRunResult(raw: RawResult): RunResult {
  const status = (RUN_STATUS_SET.has(raw.status) ? raw.status : 'sandbox_error') as RunStatus;
  const result: RunResult = { status, ...common(raw) };
  if (raw.repr !== undefined) result.repr = raw.repr;
  if (raw.reprTruncated) result.reprTruncated = true;
  if (raw.json !== undefined) result.json = raw.json;
  if (raw.jsonOmitted) result.jsonOmitted = true;
  if (raw.reprRoundTrips !== undefined) result.reprRoundTrips = raw.reprRoundTrips;
  if (raw.exception !== undefined) result.exception = raw.exception;
  if (raw.stdoutTruncated) result.stdoutTruncated = true;
  if (raw.stderr !== undefined) result.stderr = raw.stderr;
  if (raw.detail !== undefined) result.detail = raw.detail;
  if (!RUN_STATUS_SET.has(raw.status)) result.detail = `unexpected status ${raw.status}`;
  return result;
}

function toCheckResult(raw: RawResult): CheckResult {
  const status = (CHECK_STATUS_SET.has(raw.status) ? raw.status : 'sandbox_error') as CheckStatus;
  const result: CheckResult = { status, ...common(raw) };
  if (raw.detail !== undefined) result.detail = raw.detail;
  if (raw.actualRepr !== undefined) result.actualRepr = raw.actualRepr;
  if (typeof raw.literal === 'boolean') result.literal = raw.literal;
  if (typeof raw.valueRepr === 'string') result.valueRepr = raw.valueRepr;
  if (raw.exception !== undefined) result.exception = raw.exception;
  if (!CHECK_STATUS_SET.has(raw.status)) result.detail = `unexpected status ${raw.status}`;
  return result;
}

function toTraceResult(raw: RawResult): TraceResult {
  return {
    ...toRunResult(raw),
    coverage: raw.coverage ?? [],
    path: raw.path ?? [],
    states: raw.states ?? [],
    steps: raw.steps ?? 0,
    truncated: raw.truncated ?? false,
  };
}
