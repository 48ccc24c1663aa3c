import { BenchmarkRunError } from '../errors.js';
import type { RunRequest, RunResult, SandboxLike } from '../sandbox-types.js';
import type { RevalGroup, RevalProblem } from './data.js';
import { REVAL_HARNESS_SOURCE } from './harness-source.js';

/** The official harness caps a traced run at 120 s; our cap per group (trace + gold checks). */
export const REVAL_GROUP_TIMEOUT_MS = 60_000;
/** The official harness has no limit on the output exec; an untrusted answer needs one. */
export const REVAL_OUTPUT_TIMEOUT_MS = 10_000;

/** What the tracer says about one probe point. */
export interface RevalProbeTruth {
  covered: boolean;
  /** 1-based lines that follow an occurrence of the probe line in the trace; [-1] when it never ran or ended the trace. */
  next: number[];
  /** The variable has no value after the line (never ran, or not a local there). */
  nil: boolean;
  /** repr of the true values (up to 20), in trace order. */
  values: string[];
  types: string[];
  /** A `value; type` answer the official parser accepts, or null when none exists. */
  gold: string | null;
}

export interface RevalGroupTruth {
  /** False when the program could not be traced here (e.g. it imports numpy, absent from the sandbox). */
  ok: boolean;
  error?: string;
  /** Commented setUp body shown before a ClassEval test snippet ('' when none). */
  setup: string;
  steps: number;
  probes: RevalProbeTruth[];
  /** The completed output question (gold) and whether it passes the output check. */
  outputGold: string | null;
  outputGoldPasses: boolean;
  returnRepr: string | null;
}

interface GroupResultJson {
  ok: boolean;
  error?: string;
  status?: string;
  setup?: string;
  steps?: number;
  probes?: (RevalProbeTruth & { checks: { correct: boolean; reason: string }[] })[];
  outputGold?: string | null;
  outputGoldCheck?: { passed: boolean; reason: string };
  returnRepr?: string | null;
}

/** State answers to check, per probe index: official `value; type` texts, or protocol literals. */
export type StateAnswers = Record<number, (string | { value: string })[]>;

function groupSpec(
  problem: RevalProblem,
  group: RevalGroup,
  stateAnswers?: StateAnswers,
): Record<string, unknown> {
  return {
    op: 'group',
    kind: problem.kind,
    code: problem.code,
    entryPoint: problem.entryPoint,
    test: problem.test,
    input: problem.inputs[group.inputIdx],
    inputIdx: group.inputIdx,
    outputPred: group.outputPred,
    probes: group.probes.map((p) => ({ line: p.line, var: p.variable })),
    ...(stateAnswers === undefined ? {} : { stateAnswers }),
  };
}

// The sandbox compiles `code` under "<internals>", the very filename REval's tracer follows: the
// harness is compiled under a name of its own so that none of its frames is ever traced.
const HARNESS_BOOTSTRAP = `exec(compile(${JSON.stringify(REVAL_HARNESS_SOURCE)}, "<reval-harness>", "exec"))`;

export function harnessRequest(spec: Record<string, unknown>, timeoutMs: number): RunRequest {
  // JSON text is a valid Python string literal once quoted by JSON.stringify again.
  return {
    code: HARNESS_BOOTSTRAP,
    call: `reval_call(${JSON.stringify(JSON.stringify(spec))})`,
    timeoutMs,
  };
}

/** Decodes the harness's JSON reply from a RunResult (its `json` field, or the repr of the returned str). */
export function decodeHarnessResult<T>(result: RunResult): T | undefined {
  if (result.status !== 'ok') return undefined;
  let text: unknown = result.json;
  if (typeof text === 'object' && text !== null) return text as T;
  if (typeof text !== 'string' && typeof result.repr === 'string')
    text = decodePythonStrRepr(result.repr);
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** repr() of an ASCII str (json.dumps output): quotes around, `\\` and the quote escaped. */
function decodePythonStrRepr(repr: string): string | undefined {
  const quote = repr[0];
  if ((quote !== "'" && quote !== '"') || repr[repr.length - 1] !== quote) return undefined;
  return repr.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, esc: string) => {
    if (esc.startsWith('x') && esc.length === 3)
      return String.fromCharCode(Number.parseInt(esc.slice(1), 16));
    return { n: '\n', t: '\t', r: '\r' }[esc] ?? esc;
  });
}

function failure(result: RunResult): string {
  if (result.status === 'ok') return 'the harness returned no readable result';
  const exception =
    result.exception === undefined ? '' : `: ${result.exception.type}: ${result.exception.message}`;
  return `${result.status}${exception}`;
}

function toTruth(json: GroupResultJson): RevalGroupTruth {
  if (!json.ok || json.status !== 'ok') {
    const error = json.error ?? `the traced run ended with ${json.status}`;
    return {
      ok: false,
      error,
      setup: '',
      steps: 0,
      probes: [],
      outputGold: null,
      outputGoldPasses: false,
      returnRepr: null,
    };
  }
  return {
    ok: true,
    setup: json.setup ?? '',
    steps: json.steps ?? 0,
    probes: (json.probes ?? []).map(({ covered, next, nil, values, types, gold }) => ({
      covered,
      next,
      nil,
      values,
      types,
      gold,
    })),
    outputGold: json.outputGold ?? null,
    outputGoldPasses: json.outputGoldCheck?.passed === true,
    returnRepr: json.returnRepr ?? null,
  };
}

/** Groups per sandbox task: one task's start-up (importing unittest for ClassEval) outweighs a trace. */
export const REVAL_CHUNK_SIZE = 10;

async function runBatchChecked(sandbox: SandboxLike, requests: RunRequest[]): Promise<RunResult[]> {
  try {
    return await sandbox.runBatch(requests);
  } catch (error) {
    throw new BenchmarkRunError(
      'BENCH_SANDBOX_FAILED',
      `the sandbox failed while running the REval harness: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Runs harness specs in chunks (one sandbox task each, timeout scaled by size); a chunk that
 * fails as a whole (timeout, memory, crash) is rerun one spec per task so that only the culprit
 * fails. Returns each spec's decoded reply, or `{ ok: false, error }`.
 */
async function runSpecs<T extends { ok: boolean; error?: string }>(
  sandbox: SandboxLike,
  specs: readonly Record<string, unknown>[],
  timeoutMs: number,
): Promise<T[]> {
  const out = new Array<T | undefined>(specs.length);
  const chunks: number[][] = [];
  for (let i = 0; i < specs.length; i += REVAL_CHUNK_SIZE)
    chunks.push(specs.slice(i, i + REVAL_CHUNK_SIZE).map((_, k) => i + k));
  const results = await runBatchChecked(
    sandbox,
    chunks.map((chunk) =>
      harnessRequest({ op: 'batch', specs: chunk.map((i) => specs[i]) }, timeoutMs * chunk.length),
    ),
  );
  const retry: number[] = [];
  chunks.forEach((chunk, c) => {
    const reply = decodeHarnessResult<{ ok: boolean; results?: T[] }>(results[c]!);
    if (
      reply?.ok === true &&
      Array.isArray(reply.results) &&
      reply.results.length === chunk.length
    ) {
      chunk.forEach((i, k) => {
        out[i] = reply.results![k];
      });
    } else retry.push(...chunk);
  });
  if (retry.length > 0) {
    const singles = await runBatchChecked(
      sandbox,
      retry.map((i) => harnessRequest(specs[i]!, timeoutMs)),
    );
    retry.forEach((i, k) => {
      const result = singles[k]!;
      out[i] = decodeHarnessResult<T>(result) ?? ({ ok: false, error: failure(result) } as T);
    });
  }
  return out as T[];
}

/** Traces every group once (in the sandbox) and returns the ground truth of its probes. */
export async function computeRevalTruth(
  sandbox: SandboxLike,
  groups: readonly { problem: RevalProblem; group: RevalGroup }[],
): Promise<RevalGroupTruth[]> {
  const replies = await runSpecs<GroupResultJson>(
    sandbox,
    groups.map(({ problem, group }) => groupSpec(problem, group)),
    REVAL_GROUP_TIMEOUT_MS,
  );
  return replies.map(toTruth);
}

/** Re-traces groups and checks state answers against the values the tracer sees. */
export async function checkRevalStates(
  sandbox: SandboxLike,
  requests: readonly { problem: RevalProblem; group: RevalGroup; answers: StateAnswers }[],
): Promise<({ correct: boolean; reason: string }[][] | { error: string })[]> {
  const replies = await runSpecs<GroupResultJson>(
    sandbox,
    requests.map(({ problem, group, answers }) => groupSpec(problem, group, answers)),
    REVAL_GROUP_TIMEOUT_MS,
  );
  return replies.map((json) =>
    json.ok
      ? (json.probes ?? []).map((probe) => probe.checks)
      : { error: json.error ?? 'harness error' },
  );
}

/** Runs completed output answers (already padded and screened) as REval's Output task does. */
export async function checkRevalOutputs(
  sandbox: SandboxLike,
  requests: readonly { problem: RevalProblem; group: RevalGroup; answer: string }[],
): Promise<{ passed: boolean; reason: string }[]> {
  const replies = await runSpecs<{
    ok: boolean;
    passed?: boolean;
    reason?: string;
    error?: string;
  }>(
    sandbox,
    requests.map(({ problem, group, answer }) => ({
      op: 'output',
      kind: problem.kind,
      code: problem.code,
      entryPoint: problem.entryPoint,
      test: problem.test,
      inputIdx: group.inputIdx,
      answer,
    })),
    REVAL_OUTPUT_TIMEOUT_MS,
  );
  return replies.map((json) =>
    json.ok
      ? { passed: json.passed === true, reason: json.reason ?? '' }
      : { passed: false, reason: json.error ?? 'harness error' },
  );
}
