import type { CheckRequest, CheckResult, Sandbox } from '@codereasoner/sandbox';
import { extractAnswer } from './answer.js';
import { withTree, type SyntaxNode } from './python-parser.js';
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

// State answers must match in type as well as value (REval's rule: `1` is not `True`);
// output answers compare with plain `==` as CRUXEval and LiveCodeBench do.
const STATE_HELPER = [
  'def __cr_state_match(value, candidates):',
  '    return any(type(value) is type(c) and value == c for c in candidates)',
  '',
].join('\n');

const NON_EXPRESSION_STATEMENT_CHILDREN = new Set(['assignment', 'augmented_assignment', 'yield']);

function significantChildren(node: SyntaxNode): SyntaxNode[] {
  return node.namedChildren.filter(
    (child): child is SyntaxNode => child !== null && child.type !== 'comment',
  );
}

const LITERAL_LEAVES = new Set(['integer', 'float', 'true', 'false', 'none', 'ellipsis']);
const LITERAL_CALLS = new Set(['set', 'frozenset', 'float', 'tuple', 'list', 'dict']);

/**
 * Whether a node is a Python literal: numbers, strings (no f-string fields), True/False/None,
 * and tuples, lists, sets and dicts of literals, plus what `repr` prints for values without a
 * literal syntax (`set()`, `frozenset({...})`, `float('nan')`). Answers are restricted to
 * literals so a policy cannot smuggle in an object whose `__eq__` always says yes.
 */
export function isLiteralNode(node: SyntaxNode): boolean {
  if (LITERAL_LEAVES.has(node.type)) return true;
  switch (node.type) {
    case 'string':
      return !node.namedChildren.some((child) => child?.type === 'interpolation');
    case 'concatenated_string':
      return significantChildren(node).every(isLiteralNode);
    case 'unary_operator': {
      const operand = node.childForFieldName('argument');
      return (
        operand !== null && ['+', '-'].includes(node.child(0)?.type ?? '') && isLiteralNode(operand)
      );
    }
    case 'binary_operator': {
      // Complex numbers: 1+2j, -1-0.5j.
      const left = node.childForFieldName('left');
      const right = node.childForFieldName('right');
      const operator = node.childForFieldName('operator')?.type ?? '';
      const numeric = (n: SyntaxNode | null): boolean =>
        n !== null &&
        (['integer', 'float'].includes(n.type) ||
          (n.type === 'unary_operator' && isLiteralNode(n)));
      return ['+', '-'].includes(operator) && numeric(left) && numeric(right);
    }
    case 'parenthesized_expression':
    case 'list':
    case 'tuple':
    case 'set':
    case 'expression_list':
      return significantChildren(node).every(isLiteralNode);
    case 'dictionary':
      return significantChildren(node).every((pair) => {
        if (pair.type !== 'pair') return false;
        const key = pair.childForFieldName('key');
        const value = pair.childForFieldName('value');
        return key !== null && value !== null && isLiteralNode(key) && isLiteralNode(value);
      });
    case 'call': {
      const fn = node.childForFieldName('function');
      const args = node.childForFieldName('arguments');
      if (
        fn?.type !== 'identifier' ||
        !LITERAL_CALLS.has(fn.text) ||
        args?.type !== 'argument_list'
      )
        return false;
      return significantChildren(args).every(isLiteralNode);
    }
    default:
      return false;
  }
}

/** True when `text` parses as exactly one Python expression (a bare tuple `1, 2` included). */
export async function isSingleExpression(
  text: string,
  options: { literal?: boolean } = {},
): Promise<boolean> {
  if (text.trim() === '') return false;
  return withTree(text, (tree) => {
    const root = tree.rootNode;
    if (root.hasError) return false;
    const statements = significantChildren(root);
    if (statements.length !== 1 || statements[0]!.type !== 'expression_statement') return false;
    const parts = significantChildren(statements[0]!);
    if (parts.some((child) => NON_EXPRESSION_STATEMENT_CHILDREN.has(child.type))) return false;
    return !(options.literal ?? false) || parts.every(isLiteralNode);
  });
}

/**
 * True when `text` is exactly an argument list of literals (positional or `name=literal`):
 * `name(<text>)` parses as one call of `name` whose parentheses are the ones we put around it.
 * Rejects injections such as `1); import os; (2` or `0) if 1 else (5` that would close the call
 * early, and non-literal arguments.
 */
export async function isArgumentList(text: string, name = '__cr_f'): Promise<boolean> {
  const source = `${name}(\n${text}\n)`;
  return withTree(source, (tree) => {
    const root = tree.rootNode;
    if (root.hasError) return false;
    const statements = significantChildren(root);
    if (statements.length !== 1 || statements[0]!.type !== 'expression_statement') return false;
    const expressions = significantChildren(statements[0]!);
    if (expressions.length !== 1) return false;
    const call = expressions[0]!;
    if (call.type !== 'call') return false;
    const fn = call.childForFieldName('function');
    const args = call.childForFieldName('arguments');
    if (fn === null || fn.type !== 'identifier' || fn.text !== name) return false;
    if (args === null || args.type !== 'argument_list') return false;
    if (args.startIndex !== name.length || args.endIndex !== source.length) return false;
    return significantChildren(args).every((arg) => {
      if (arg.type === 'keyword_argument') {
        const value = arg.childForFieldName('value');
        return value !== null && isLiteralNode(value);
      }
      return isLiteralNode(arg);
    });
  });
}

type Plan =
  | { kind: 'done'; result: VerifyResult }
  | { kind: 'check'; request: CheckRequest; describe: (check: CheckResult) => VerifyResult };

function describeCheck(check: CheckResult, wrong: (check: CheckResult) => string): VerifyResult {
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

async function plan(task: TaskRecord, completion: string, timeoutMs: number): Promise<Plan> {
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
    case 'output': {
      if (!(await isSingleExpression(answer, { literal: true }))) {
        return {
          kind: 'done',
          result: { correct: false, reason: 'invalid: the answer is not a Python literal' },
        };
      }
      // The gold value is computed, the answer parsed as a literal (twice guarded: above, and
      // by the sandbox's literal mode), and the two compared with ==.
      return {
        kind: 'check',
        request: {
          code: '',
          call: `(\n${task.output}\n)`,
          expected: answer,
          expectedMode: 'literal',
          timeoutMs,
        },
        describe: (check) =>
          describeCheck(check, () => `answered ${answer}, expected ${task.output}`),
      };
    }
    case 'state': {
      if (!(await isSingleExpression(answer, { literal: true }))) {
        return {
          kind: 'done',
          result: { correct: false, reason: 'invalid: the answer is not a Python literal' },
        };
      }
      const golds = acceptable(task)
        .map((gold) => `(\n${gold}\n),`)
        .join(' ');
      return {
        kind: 'check',
        request: {
          code: STATE_HELPER,
          call: `__cr_state_match((\n${answer}\n), (${golds}))`,
          expected: 'True',
          timeoutMs,
        },
        describe: (check) =>
          describeCheck(check, () => `answered ${answer}, expected ${task.answer}`),
      };
    }
    case 'input': {
      if (!(await isArgumentList(answer))) {
        return {
          kind: 'done',
          result: {
            correct: false,
            reason: 'invalid: the answer is not an argument list of Python literals',
          },
        };
      }
      return {
        kind: 'check',
        request: {
          code: task.code,
          call: `${task.entryPoint}(\n${answer}\n)`,
          expected: task.output,
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
}

/**
 * Verifies completions by execution: output answers are evaluated and compared with `==`;
 * input answers are run through the function and its result compared with the gold output;
 * state answers must equal the traced value in value and type; coverage and path answers are
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
  for (const item of items) plans.push(await plan(item.task, item.completion, timeoutMs));
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
