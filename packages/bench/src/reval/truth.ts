import { BenchmarkRunError } from '../errors.js';
import type { RunRequest, RunResult } from '@codereasoner/sandbox';
import { revalHarnessSource } from '../python-assets.js';
import type { SandboxLike } from '../types.js';
import type { RevalGroup, RevalProblem } from './data.js';

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

interface StateCheckJson {
  correct: boolean;
  reason: string;
  skipped?: boolean;
  notJudged?: boolean;
}

interface GroupResultJson {
  ok: boolean;
  error?: string;
  status?: string;
  setup?: string;
  steps?: number;
  probes?: (RevalProbeTruth & { checks: StateCheckJson[] })[];
  outputGold?: string | null;
  outputGoldCheck?: { passed: boolean; reason: string };
  returnRepr?: string | null;
}

/** One state answer as the harness checks it (see `_value_source` in the harness). */
export interface StateAnswerSpec {
  text: string;
  /** `official`: REval's `value; type` text; `value`: the protocol's bare literal. */
  format: 'official' | 'value';
  /** The value text the sandbox's judge saw (absent: the answer has no value text, e.g. Nil). */
  judged?: string;
  /** repr of the judged literal's value (absent: not a literal). */
  canonical?: string;
  /** A non-literal value text may be evaluated (official scoring, in a pass of its own). */
  evaluate?: boolean;
  /** Checked in another pass. */
  skip?: boolean;
}

/** State answers to check, per probe index: official `value; type` texts, or protocol literals. */
export type StateAnswers = Record<number, (string | { value: string })[]>;

type StateAnswerSpecs = Record<number, StateAnswerSpec[]>;

// Python's str.strip() whitespace (JavaScript's trim() differs: \x1c-\x1f, \x85, \ufeff).
const PY_SPACE =
  '[ \\t\\n\\r\\x0b\\x0c\\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');
const pyStrip = (text: string): string => text.replace(PY_STRIP, '');

/**
 * The value text of a state answer, cut as the official `State._postprocess` cuts it (quotes
 * straightened, stripped, `Nil` handled, split at the last `;`); undefined when there is none.
 * The harness uses the judge's decision only when its own cut gives exactly this text.
 */
export function revalStateValueText(
  text: string,
  format: 'official' | 'value',
): string | undefined {
  if (format === 'value') {
    const value = pyStrip(text);
    return value.toLowerCase() === 'nil' || value === '[Nil]' ? undefined : value;
  }
  const resp = pyStrip(text.replace(/[\u2018\u2019]/g, "'").replace(/[\u201c\u201d]/g, '"'));
  if (resp.toLowerCase() === 'nil' || resp === '[Nil]') return undefined;
  const semicolon = resp.lastIndexOf(';');
  if (semicolon === -1) return undefined;
  const value = pyStrip(resp.slice(0, semicolon));
  return value.toLowerCase() === 'nil' ? undefined : value;
}

function groupSpec(
  problem: RevalProblem,
  group: RevalGroup,
  stateAnswers?: StateAnswerSpecs,
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
// harness (python/reval-harness.py) is passed as a string value and compiled under a name of its
// own, so that none of its frames is ever traced.
let harnessBootstrap: string | undefined;

export function harnessRequest(spec: Record<string, unknown>, timeoutMs: number): RunRequest {
  harnessBootstrap ??= `exec(compile(${JSON.stringify(revalHarnessSource())}, "<reval-harness>", "exec"))`;
  // JSON text is a valid Python string literal once quoted by JSON.stringify again.
  return {
    code: harnessBootstrap,
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

/** One checked state answer; `literal: false` when its value text is not a literal. */
export interface StateCheck {
  correct: boolean;
  reason: string;
  literal: boolean;
}

/**
 * Re-traces groups and checks state answers against the values the tracer sees. Every value
 * text is first judged by the sandbox's judge (CPython's parser and the literal whitelist, no
 * evaluation); the harness rebuilds a literal's value from the judge's repr of it, so the
 * answer's text never runs. Strict: a non-literal value fails. Official (default): non-literal
 * values are evaluated as the official harness does, in a pass apart from every literal answer
 * (such an answer could change the harness it runs in), and their passes are flagged.
 */
export async function checkRevalStates(
  sandbox: SandboxLike,
  requests: readonly { problem: RevalProblem; group: RevalGroup; answers: StateAnswers }[],
  options: { strict?: boolean } = {},
): Promise<(StateCheck[][] | { error: string })[]> {
  const specs: StateAnswerSpecs[] = requests.map(({ answers }) =>
    Object.fromEntries(
      Object.entries(answers).map(([probe, list]) => [
        Number(probe),
        list.map((answer): StateAnswerSpec => {
          const format = typeof answer === 'string' ? 'official' : 'value';
          const text = typeof answer === 'string' ? answer : answer.value;
          const judged = revalStateValueText(text, format);
          return { text, format, ...(judged === undefined ? {} : { judged }) };
        }),
      ]),
    ),
  );
  const all = specs.flatMap((spec) => Object.values(spec).flat());
  const judgedAnswers = all.filter((answer) => answer.judged !== undefined);
  const verdicts =
    judgedAnswers.length === 0
      ? []
      : await sandbox.checkBatch(
          judgedAnswers.map((answer) => ({ code: '', answer: answer.judged!, golds: [] })),
        );
  judgedAnswers.forEach((answer, k) => {
    const verdict = verdicts[k]!;
    if (verdict.literal === true && verdict.valueRepr !== undefined)
      answer.canonical = verdict.valueRepr;
  });
  const literal = (answer: StateAnswerSpec) =>
    answer.judged === undefined || answer.canonical !== undefined;
  const strict = options.strict ?? false;
  // Pass 1: literal answers (and, strict, everything: non-literals fail there without running).
  const first = await runSpecs<GroupResultJson>(
    sandbox,
    requests.map(({ problem, group }, r) =>
      groupSpec(
        problem,
        group,
        mapSpecs(specs[r]!, (answer) => ({ ...answer, skip: !strict && !literal(answer) })),
      ),
    ),
    REVAL_GROUP_TIMEOUT_MS,
  );
  const out: (StateCheck[][] | { error: string })[] = first.map((json, r) =>
    json.ok
      ? (json.probes ?? []).map((probe, p) =>
          probe.checks.map((check, a) => ({
            correct: check.correct,
            reason: check.reason,
            literal: literal(specs[r]![p]![a]!) && check.notJudged !== true,
          })),
        )
      : { error: json.error ?? 'harness error' },
  );
  if (strict) return out;
  // Pass 2 (official): the non-literal answers, evaluated as the official harness does.
  const again = requests.flatMap((request, r) => {
    const result = out[r]!;
    if ('error' in result) return [];
    const spec = mapSpecs(specs[r]!, (answer, p, a) => {
      const needed = !literal(answer) || result[p]?.[a]?.literal === false;
      return { ...answer, skip: !needed, evaluate: needed };
    });
    return Object.values(spec).some((list) => list.some((answer) => !answer.skip))
      ? [{ r, spec: groupSpec(request.problem, request.group, spec) }]
      : [];
  });
  if (again.length === 0) return out;
  const second = await runSpecs<GroupResultJson>(
    sandbox,
    again.map(({ spec }) => spec),
    REVAL_GROUP_TIMEOUT_MS,
  );
  again.forEach(({ r }, k) => {
    const json = second[k]!;
    const result = out[r] as StateCheck[][];
    (json.ok ? (json.probes ?? []) : []).forEach((probe, p) =>
      probe.checks.forEach((check, a) => {
        if (check.skipped !== true)
          result[p]![a] = { correct: check.correct, reason: check.reason, literal: false };
      }),
    );
    if (!json.ok) {
      for (const [p, list] of result.entries())
        list.forEach((check, a) => {
          if (!check.literal || check.reason === 'judged in another pass')
            result[p]![a] = {
              correct: false,
              reason: json.error ?? 'harness error',
              literal: false,
            };
        });
    }
  });
  return out;
}

function mapSpecs(
  specs: StateAnswerSpecs,
  map: (answer: StateAnswerSpec, probe: number, at: number) => StateAnswerSpec,
): StateAnswerSpecs {
  return Object.fromEntries(
    Object.entries(specs).map(([probe, list]) => [
      Number(probe),
      list.map((answer, at) => map(answer, Number(probe), at)),
    ]),
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
