import type { CheckResult, JudgeRequest, Sandbox } from '@codereasoner/sandbox';
import { extractAnswer } from './answer.js';
import type { TaskRecord } from './records.js';

/** What verification needs from a sandbox (a `Sandbox` fits). */
export type VerifySandbox = Pick<Sandbox, 'checkBatch'>;

export interface VerifyResult {
  correct: boolean;
  /**
   * `correct`, or why not, as `<kind>: <detail>` with kind one of `no_answer` (extraction
   * failed), `invalid` (not a single expression / argument list), `wrong`, `exception`,
   * `timeout`, `error` (any other sandbox status).
   */
  reason: string;
}

export interface VerifyOptions {
  /** Per-check time limit in the sandbox (default 3000 ms, CRUXEval's limit). */
  timeoutMs?: number;
}

type Plan =
  | { kind: 'done'; result: VerifyResult }
  | { kind: 'check'; request: JudgeRequest; describe: (check: CheckResult) => VerifyResult };

function describeCheck(check: CheckResult, wrong: (check: CheckResult) => string): VerifyResult {
  if (check.literal === false) {
    return {
      correct: false,
      reason: `invalid: the answer is not a Python literal${check.detail === undefined ? '' : ` (${check.detail.replace(/^not a literal: /, '')})`}`,
    };
  }
  switch (check.status) {
    case 'passed':
      return { correct: true, reason: 'correct' };
    case 'failed':
      return { correct: false, reason: `wrong: ${wrong(check)}` };
    case 'exception':
      return {
        correct: false,
        reason: `exception: ${check.exception === undefined ? (check.detail ?? 'the answer raised') : `${check.exception.type}: ${check.exception.message}`}`,
      };
    case 'timeout':
      return { correct: false, reason: 'timeout: the check ran past its time limit' };
    case 'syntax_error':
      return {
        correct: false,
        reason: `invalid: syntax error${check.detail === undefined ? '' : ` (${check.detail})`}`,
      };
    default:
      return {
        correct: false,
        reason: `error: sandbox status ${check.status}${check.detail === undefined ? '' : ` (${check.detail})`}`,
      };
  }
}

function acceptable(task: TaskRecord): string[] {
  const extra = task.meta['acceptableAnswers'];
  return [
    task.answer,
    ...(Array.isArray(extra)
      ? extra.filter((value): value is string => typeof value === 'string')
      : []),
  ];
}

function plan(task: TaskRecord, completion: string, timeoutMs: number): Plan {
  const extracted = extractAnswer(completion, task.type);
  if (!extracted.ok)
    return { kind: 'done', result: { correct: false, reason: `no_answer: ${extracted.reason}` } };
  const answer = extracted.answer;
  switch (task.type) {
    case 'coverage':
    case 'path': {
      const golds = acceptable(task);
      const correct = golds.includes(answer);
      return {
        kind: 'done',
        result: {
          correct,
          reason: correct ? 'correct' : `wrong: answered ${answer}, expected ${task.answer}`,
        },
      };
    }
    case 'output':
    case 'state': {
      // State answers must match in type as well as value (REval's rule: `1` is not `True`);
      // output answers compare with plain `==` as CRUXEval and LiveCodeBench do.
      const golds = task.type === 'state' ? acceptable(task) : [task.output];
      return {
        kind: 'check',
        request: {
          code: '',
          answer,
          answerForm: 'value',
          golds,
          compare: task.type === 'state' ? 'typed' : 'eq',
          timeoutMs,
        },
        describe: (check) =>
          describeCheck(
            check,
            () =>
              `answered ${answer}, expected ${task.type === 'state' ? task.answer : task.output}`,
          ),
      };
    }
    case 'input':
      return {
        kind: 'check',
        request: {
          code: task.code,
          answer,
          answerForm: 'arguments',
          function: task.entryPoint,
          golds: [task.output],
          timeoutMs,
        },
        describe: (check) =>
          describeCheck(
            check,
            (result) =>
              `${task.entryPoint}(${answer}) returned ${result.actualRepr ?? '?'}, expected ${task.output}`,
          ),
      };
  }
}

/**
 * Verifies completions by execution, judging every answer by the sandbox's one rule (a
 * `JudgeRequest`: the answer travels as a value, CPython's parser decides in the sandbox whether
 * it is a literal, or an argument list of literals, and only its value is compared): output
 * answers are compared with `==`; input answers are passed to the function and its result
 * compared with the gold output; state answers must equal the traced value in value and type; coverage and path answers are
 * compared with the trace's gold answer (and `meta.acceptableAnswers` when a task lists
 * alternatives). All sandbox work goes in one `checkBatch`. This is the GRPO reward.
 */
export async function verifyBatch(
  sandbox: VerifySandbox,
  items: readonly { task: TaskRecord; completion: string }[],
  options: VerifyOptions = {},
): Promise<VerifyResult[]> {
  const timeoutMs = options.timeoutMs ?? 3000;
  const plans: Plan[] = [];
  for (const item of items) plans.push(plan(item.task, item.completion, timeoutMs));
  const checks = plans.flatMap((entry) => (entry.kind === 'check' ? [entry.request] : []));
  const results = checks.length === 0 ? [] : await sandbox.checkBatch(checks);
  let next = 0;
  return plans.map((entry) => {
    if (entry.kind === 'done') return entry.result;
    const check = results[next++];
    if (check === undefined)
      return { correct: false, reason: 'error: the sandbox returned fewer results than checks' };
    return entry.describe(check);
  });
}

/** Verifies one completion (see `verifyBatch`). */
export async function verify(
  sandbox: VerifySandbox,
  task: TaskRecord,
  completion: string,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const [result] = await verifyBatch(sandbox, [{ task, completion }], options);
  return result!;
}

/** What `verifiedReward` reads of a GRPO batch: the completions and their data set rows. */
export interface VerifiedRewardInput {
  completions: string[];
  /** Row i holds the task of completion i under `task` (the row layout `cr grpo` trains on). */
  rows: Record<string, unknown>[];
}

/**
 * The paper's reward: 1 when the sandbox verifies the completion's answer against the task's
 * execution ground truth (`verifyBatch`, the same judge as evaluation), else 0. The result is a
 * plain reward function (structurally `@codereasoner/grpo`'s `RewardFunction`, which this package
 * does not import). `sandbox` may be a function, so the sandbox starts only when rewards are
 * first needed.
 */
export function verifiedReward(
  sandbox: VerifySandbox | (() => Promise<VerifySandbox>),
  options: VerifyOptions = {},
): (input: VerifiedRewardInput) => Promise<number[]> {
  return async ({ completions, rows }) => {
    const judge = typeof sandbox === 'function' ? await sandbox() : sandbox;
    const results = await verifyBatch(
      judge,
      completions.map((completion, index) => ({
        task: rows[index]!.task as TaskRecord,
        completion,
      })),
      options,
    );
    return results.map((result) => (result.correct ? 1 : 0));
  };
}
