import type { TraceResult } from '@codereasoner/sandbox';
import { parsePython, type SyntaxNode } from './python-parser.js';
import { boundNames, namedChildren } from './py-names.js';
import type { Split, TaskRecord, TaskType } from '@codereasoner/protocol';
import type { Rng } from '@codereasoner/common';

// Questions from a traced call. Conventions (see README):
// - coverage: "Is line L executed …?" -> `yes` / `no` (REval: YES/NO);
// - state: the repr of variable v right after the FIRST execution of line L (REval accepts any
//   execution and wants `value; type`: bench appends the type);
// - path: the line executed right after the FIRST execution of line L, or -1 when nothing runs
//   after it (REval wants the line's text: bench maps numbers to text);
// Only lines that start a statement inside a function are asked about.

export interface LineInfo {
  line: number;
  /** Name of the innermost function containing the line. */
  owner: string;
  /** Names the statement starting on this line binds (assignment, augmented, loop targets). */
  assigns: string[];
  /** The line holds a comprehension, lambda or generator: its locals differ between Python versions. */
  hasInnerScope: boolean;
  /** if/elif/while/for header or a conditional expression: a decision point. */
  decision: boolean;
  /** Statement kind starting on the line. */
  kind: string;
}

const ASK_KINDS = new Set([
  'expression_statement',
  'return_statement',
  'if_statement',
  'elif_clause',
  'for_statement',
  'while_statement',
  'augmented_assignment',
  'break_statement',
  'continue_statement',
  'delete_statement',
  'raise_statement',
  'pass_statement',
]);

const INNER_SCOPES = [
  'list_comprehension',
  'set_comprehension',
  'dictionary_comprehension',
  'generator_expression',
  'lambda',
];

/** Statement-start lines of every function in `code`, with what each binds. */
export async function analyzeLines(code: string): Promise<Map<number, LineInfo>> {
  const tree = await parsePython(code);
  try {
    const lines = new Map<number, LineInfo>();
    const visitBlock = (block: SyntaxNode, owner: string): void => {
      for (const statement of namedChildren(block)) {
        if (statement.type === 'comment') continue;
        record(statement, owner);
      }
    };
    const record = (statement: SyntaxNode, owner: string): void => {
      const line = statement.startPosition.row + 1;
      if (statement.type === 'function_definition') {
        const body = statement.childForFieldName('body');
        if (body) visitBlock(body, statement.childForFieldName('name')?.text ?? owner);
        return;
      }
      if (statement.type === 'decorated_definition' || statement.type === 'class_definition')
        return;
      const header =
        statement.type === 'if_statement' ||
        statement.type === 'for_statement' ||
        statement.type === 'while_statement';
      const headerPart: SyntaxNode | null = header
        ? (statement.childForFieldName('condition') ?? statement.childForFieldName('right'))
        : statement;
      const assigns =
        statement.type === 'for_statement'
          ? [...boundNames(statement.childForFieldName('left')!)]
          : statement.type === 'expression_statement' || statement.type === 'delete_statement'
            ? [...boundNames(statement)]
            : [];
      const inner =
        headerPart !== null &&
        INNER_SCOPES.some((type) => headerPart.descendantsOfType(type).length > 0);
      const decision =
        header ||
        (headerPart !== null &&
          headerPart.descendantsOfType('conditional_expression').length > 0) ||
        (headerPart?.descendantsOfType('boolean_operator').length ?? 0) > 0;
      if (ASK_KINDS.has(statement.type) && !lines.has(line)) {
        lines.set(line, {
          line,
          owner,
          assigns,
          hasInnerScope: inner,
          decision,
          kind: statement.type,
        });
      }
      if (statement.type === 'if_statement') {
        const consequence = statement.childForFieldName('consequence');
        if (consequence) visitBlock(consequence, owner);
        for (const clause of statement.childrenForFieldName('alternative')) {
          if (clause === null) continue;
          if (clause.type === 'elif_clause') {
            const elifLine = clause.startPosition.row + 1;
            const condition = clause.childForFieldName('condition');
            lines.set(elifLine, {
              line: elifLine,
              owner,
              assigns: [],
              hasInnerScope:
                condition !== null &&
                INNER_SCOPES.some((type) => condition.descendantsOfType(type).length > 0),
              decision: true,
              kind: 'elif_clause',
            });
            const body = clause.childForFieldName('consequence');
            if (body) visitBlock(body, owner);
          } else {
            const body = clause.childForFieldName('body');
            if (body) visitBlock(body, owner);
          }
        }
        return;
      }
      for (const child of namedChildren(statement)) {
        if (child.type === 'block') visitBlock(child, owner);
        else if (
          child.type === 'else_clause' ||
          child.type === 'except_clause' ||
          child.type === 'finally_clause'
        ) {
          for (const inner of namedChildren(child))
            if (inner.type === 'block') visitBlock(inner, owner);
        }
      }
    };
    for (const node of namedChildren(tree.rootNode)) {
      if (node.type === 'function_definition') record(node, '');
      if (node.type === 'decorated_definition') {
        const definition = node.childForFieldName('definition');
        if (definition?.type === 'function_definition') record(definition, '');
      }
    }
    return lines;
  } finally {
    tree.delete();
  }
}

/** Whether a traced call took a decision: a loop or branch line (or conditional expression) ran. */
export function tookDecision(trace: TraceResult, lines: Map<number, LineInfo>): boolean {
  return trace.coverage.some((line) => lines.get(line)?.decision === true);
}

export interface TaskPlanOptions {
  taskTypes: readonly TaskType[];
  coveragePerCall: number;
  maxReprChars: number;
}

export interface CallContext {
  programId: string;
  callId: string;
  split: Split;
  code: string;
  entryPoint: string;
  input: string;
  output: string;
  trace: TraceResult;
  meta: Record<string, unknown>;
}

/** Task records for one call; state answers still need their round-trip check (see `stateReprs`). */
export function planTasks(
  call: CallContext,
  lines: Map<number, LineInfo>,
  rng: Rng,
  options: TaskPlanOptions,
): TaskRecord[] {
  const tasks: TaskRecord[] = [];
  const types = new Set(options.taskTypes);
  const base = {
    programId: call.programId,
    callId: call.callId,
    split: call.split,
    code: call.code,
    entryPoint: call.entryPoint,
    input: call.input,
    output: call.output,
  };
  const meta = (extra: Record<string, unknown>): Record<string, unknown> => ({
    ...call.meta,
    steps: call.trace.steps,
    ...extra,
  });
  if (types.has('output'))
    tasks.push({
      ...base,
      id: `${call.callId}-output`,
      type: 'output',
      answer: call.output,
      meta: meta({}),
    });
  if (types.has('input'))
    tasks.push({
      ...base,
      id: `${call.callId}-input`,
      type: 'input',
      answer: call.input,
      meta: meta({}),
    });
  const { path, states, coverage } = call.trace;
  const covered = new Set(coverage);
  const askable = [...lines.values()]
    .filter((info) => info.kind !== 'pass_statement')
    .map((info) => info.line);
  if (types.has('coverage') && options.coveragePerCall > 0) {
    const yes = rng.shuffle(askable.filter((line) => covered.has(line)));
    const no = rng.shuffle(askable.filter((line) => !covered.has(line)));
    const chosen: [number, 'yes' | 'no'][] = [];
    // Balance yes and no answers where the program allows it.
    for (
      let i = 0;
      chosen.length < options.coveragePerCall && (i < yes.length || i < no.length);
      i += 1
    ) {
      if (i < no.length && chosen.length < options.coveragePerCall) chosen.push([no[i]!, 'no']);
      if (i < yes.length && chosen.length < options.coveragePerCall) chosen.push([yes[i]!, 'yes']);
    }
    for (const [line, answer] of chosen.sort((a, b) => a[0] - b[0])) {
      tasks.push({
        ...base,
        id: `${call.callId}-coverage-L${line}`,
        type: 'coverage',
        line,
        answer,
        meta: meta({}),
      });
    }
  }
  const firstIndex = new Map<number, number>();
  path.forEach((line, index) => {
    if (!firstIndex.has(line)) firstIndex.set(line, index);
  });
  if (types.has('path')) {
    const candidates = askable.filter((line) => firstIndex.has(line));
    // Prefer lines where control does not simply fall to the next line.
    const jumps = candidates.filter((line) => {
      const index = firstIndex.get(line)!;
      return path[index + 1] !== line + 1;
    });
    const pool = jumps.length > 0 && rng.chance(0.7) ? jumps : candidates;
    if (pool.length > 0) {
      const line = rng.pick(pool);
      const index = firstIndex.get(line)!;
      const next = index + 1 < path.length ? path[index + 1]! : -1;
      const allNext = new Set<number>();
      path.forEach((entry, at) => {
        if (entry === line) allNext.add(at + 1 < path.length ? path[at + 1]! : -1);
      });
      tasks.push({
        ...base,
        id: `${call.callId}-path-L${line}`,
        type: 'path',
        line,
        answer: String(next),
        meta: meta({ nextLines: [...allNext].sort((a, b) => a - b) }),
      });
    }
  }
  if (types.has('state')) {
    const candidates: { line: number; variable: string; value: string; values: string[] }[] = [];
    for (const info of lines.values()) {
      if (info.assigns.length === 0 || info.hasInnerScope) continue;
      const index = firstIndex.get(info.line);
      if (index === undefined) continue;
      const nextLine = index + 1 < path.length ? path[index + 1]! : undefined;
      // The locals snapshot after a line is the next state's: it must be the same function's frame.
      if (nextLine !== undefined && lines.get(nextLine)?.owner !== info.owner) continue;
      const locals = states[index]?.locals ?? {};
      for (const variable of info.assigns) {
        const value = locals[variable];
        if (value === undefined || value.length > options.maxReprChars) continue;
        const values = new Set<string>();
        path.forEach((entry, at) => {
          const seen = entry === info.line ? states[at]?.locals[variable] : undefined;
          if (seen !== undefined) values.add(seen);
        });
        candidates.push({ line: info.line, variable, value, values: [...values] });
      }
    }
    if (candidates.length > 0) {
      const chosen = rng.pick(candidates);
      tasks.push({
        ...base,
        id: `${call.callId}-state-L${chosen.line}-${chosen.variable}`,
        type: 'state',
        line: chosen.line,
        variable: chosen.variable,
        answer: chosen.value,
        meta: meta({ values: chosen.values.slice(0, 8) }),
      });
    }
  }
  return tasks;
}
