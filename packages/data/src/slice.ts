import { parsePython, type SyntaxNode, type SyntaxTree } from './python-parser.js';
import { isOutputCall, MUTATING_METHODS, PURE_FUNCTIONS, PURE_METHODS } from './python-env.js';
import {
  boundNames,
  freeNames,
  identifierRole,
  identifiers,
  importedNames,
  namedChildren,
  readNames,
  rootName,
} from './py-names.js';

// Slicing a function to its core execution logic, on the tree-sitter tree:
//   1. clean-up everywhere: comments, docstrings and other bare constants, print/logging calls,
//      assert statements, type annotations, statements after return/raise/break/continue;
//   2. a backward slice of the entry function: keep the return statements and, transitively,
//      every statement the returned values depend on through data (definitions of live names,
//      mutations of live objects and their aliases) and control (the conditions of kept
//      branches, the headers of kept loops and their break/continue statements);
//   3. drop module-level imports, constants and helpers the result no longer uses.
// The result is re-parsed; the corpus builder then keeps it only if it returns exactly what the
// original returned on every generated input.

export interface SliceStats {
  comments: number;
  docstrings: number;
  outputCalls: number;
  asserts: number;
  annotations: number;
  unreachable: number;
  /** Statements the return value does not depend on (dependency slicing). */
  irrelevant: number;
  /** Module-level imports, constants and helpers no longer used. */
  unusedDefinitions: number;
}

export interface SliceOptions {
  /** Run the dependency slice (step 2); clean-up alone when false. Default true. */
  dependencies?: boolean;
}

export type SliceResult =
  { ok: true; code: string; changed: boolean; stats: SliceStats } | { ok: false; reason: string };

interface Edit {
  start: number;
  end: number;
  text: string;
}

const COMPOUND = new Set([
  'if_statement',
  'for_statement',
  'while_statement',
  'try_statement',
  'with_statement',
  'match_statement',
  'function_definition',
  'class_definition',
  'decorated_definition',
]);

/** Statements of a block (comments excluded). */
function blockStatements(block: SyntaxNode | null): SyntaxNode[] {
  if (block === null) return [];
  return namedChildren(block).filter((child) => child.type !== 'comment');
}

function unwrap(node: SyntaxNode | null): SyntaxNode | null {
  let current = node;
  while (current?.type === 'parenthesized_expression') current = namedChildren(current)[0] ?? null;
  return current;
}

/** The only expression of an expression statement, if it has exactly one. */
function soleExpression(statement: SyntaxNode): SyntaxNode | undefined {
  if (statement.type !== 'expression_statement') return undefined;
  const parts = namedChildren(statement).filter((child) => child.type !== 'comment');
  return parts.length === 1 ? parts[0] : undefined;
}

const CONSTANT_TYPES = new Set([
  'string',
  'concatenated_string',
  'integer',
  'float',
  'true',
  'false',
  'none',
  'ellipsis',
  'identifier',
]);

function isBareConstant(statement: SyntaxNode): boolean {
  const expression = unwrap(soleExpression(statement) ?? null);
  return expression !== null && CONSTANT_TYPES.has(expression.type);
}

function isOutputStatement(statement: SyntaxNode): boolean {
  const expression = unwrap(soleExpression(statement) ?? null);
  if (expression?.type !== 'call') return false;
  const fn = expression.childForFieldName('function');
  return fn !== null && isOutputCall(fn.text.replace(/\s+/g, ''));
}

const JUMPS = new Set([
  'return_statement',
  'raise_statement',
  'break_statement',
  'continue_statement',
]);

interface LoopContext {
  breakLive: Set<string>;
  continueLive: Set<string>;
  jumps: boolean;
}

interface BlockResult {
  live: Set<string>;
  /** A statement other than break/continue was kept. */
  keptCore: boolean;
  keptAny: boolean;
}

function union(...sets: Iterable<string>[]): Set<string> {
  const out = new Set<string>();
  for (const set of sets) for (const value of set) out.add(value);
  return out;
}

function intersects(a: Set<string>, b: Set<string>): boolean {
  for (const value of a) if (b.has(value)) return true;
  return false;
}

class AliasClasses {
  private readonly parent = new Map<string, string>();

  private find(name: string): string {
    let root = name;
    while (this.parent.has(root) && this.parent.get(root) !== root) root = this.parent.get(root)!;
    return root;
  }

  join(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra, rb);
    if (!this.parent.has(rb)) this.parent.set(rb, rb);
  }

  members(name: string): Set<string> {
    const root = this.find(name);
    const out = new Set<string>([name]);
    for (const key of this.parent.keys()) if (this.find(key) === root) out.add(key);
    return out;
  }
}

interface Effects {
  strong: Set<string>;
  weak: Set<string>;
  uses: Set<string>;
  essential: boolean;
}

/** Backward dependence slicing of one function body. */
class FunctionSlicer {
  readonly kept = new Set<number>();
  private readonly aliases = new AliasClasses();
  private readonly nested = new Map<string, Set<string>>();
  private readonly modules: Set<string>;
  private loop: LoopContext | undefined;

  constructor(
    private readonly fn: SyntaxNode,
    private readonly dropped: Set<number>,
    modules: Set<string>,
  ) {
    this.modules = modules;
    this.collectAliases(fn);
    for (const def of fn.descendantsOfType('function_definition')) {
      if (def === null || def.id === fn.id) continue;
      const name = def.childForFieldName('name')?.text;
      if (name !== undefined) this.nested.set(name, freeNames(def));
    }
  }

  run(): void {
    const body = this.fn.childForFieldName('body');
    this.block(body, new Set());
  }

  private collectAliases(fn: SyntaxNode): void {
    for (const assignment of fn.descendantsOfType('assignment')) {
      if (assignment === null) continue;
      const right = unwrap(assignment.childForFieldName('right'));
      const left = assignment.childForFieldName('left');
      if (right === null || left === null) continue;
      // `b = a[:]` copies; `b = a`, `b = a[i]`, `b = a.x`, `b = a.get(k)` may share an object with `a`.
      const copies =
        right.type === 'subscript' && right.childForFieldName('subscript')?.type === 'slice';
      const root =
        ['identifier', 'subscript', 'attribute', 'call'].includes(right.type) && !copies
          ? rootName(right)
          : undefined;
      if (root === undefined) continue;
      for (const id of identifiers(left))
        if (identifierRole(id) === 'bind') this.aliases.join(id.text, root);
    }
    for (const loop of [
      ...fn.descendantsOfType('for_statement'),
      ...fn.descendantsOfType('for_in_clause'),
    ]) {
      if (loop === null) continue;
      const left = loop.childForFieldName('left');
      const right = loop.childForFieldName('right');
      if (left === null || right === null) continue;
      for (const id of identifiers(left))
        for (const source of readNames(right)) this.aliases.join(id.text, source);
    }
  }

  private expand(names: Set<string>): Set<string> {
    const out = new Set<string>();
    for (const name of names) for (const member of this.aliases.members(name)) out.add(member);
    return out;
  }

  /** Definitions, mutations and uses of a simple statement. */
  private effects(statement: SyntaxNode): Effects {
    const strong = new Set<string>();
    const weak = new Set<string>();
    const uses = readNames(statement);
    let essential = false;
    const target = (node: SyntaxNode | null): void => {
      if (node === null) return;
      if (node.type === 'identifier') strong.add(node.text);
      else if (node.type === 'subscript' || node.type === 'attribute') {
        const root = rootName(node);
        if (root !== undefined) weak.add(root);
      } else for (const child of namedChildren(node)) target(child);
    };
    for (const assignment of statement.type === 'assignment'
      ? [statement]
      : statement.descendantsOfType('assignment')) {
      if (assignment !== null) target(assignment.childForFieldName('left'));
    }
    for (const augmented of statement.descendantsOfType('augmented_assignment')) {
      const left = augmented?.childForFieldName('left');
      if (left === null || left === undefined) continue;
      const root = left.type === 'identifier' ? left.text : rootName(left);
      if (root !== undefined) weak.add(root);
    }
    for (const walrus of statement.descendantsOfType('named_expression')) {
      const name = walrus?.childForFieldName('name');
      if (name) strong.add(name.text);
    }
    if (statement.type === 'delete_statement') {
      for (const child of namedChildren(statement)) {
        for (const item of child.type === 'expression_list' ? namedChildren(child) : [child]) {
          const root = item.type === 'identifier' ? item.text : rootName(item);
          if (root !== undefined) weak.add(root);
        }
      }
    }
    if (statement.type === 'import_statement' || statement.type === 'import_from_statement') {
      for (const name of importedNames(statement)) strong.add(name);
    }
    if (statement.type === 'global_statement' || statement.type === 'nonlocal_statement')
      essential = true;
    if (statement.type === 'return_statement') essential = true;
    for (const call of statement.type === 'call'
      ? [statement]
      : statement.descendantsOfType('call')) {
      if (call === null) continue;
      const fn = call.childForFieldName('function');
      const args = call.childForFieldName('arguments');
      const argumentRoots = (): void => {
        if (args === null) return;
        for (const arg of namedChildren(args)) {
          const value = arg.type === 'keyword_argument' ? arg.childForFieldName('value') : arg;
          const inner =
            value?.type === 'list_splat' || value?.type === 'dictionary_splat'
              ? namedChildren(value)[0]
              : value;
          const root = inner ? rootName(inner) : undefined;
          if (root !== undefined) weak.add(root);
        }
      };
      if (fn?.type === 'identifier') {
        const nestedFree = this.nested.get(fn.text);
        if (nestedFree !== undefined) {
          essential = true;
          for (const name of nestedFree) uses.add(name);
        } else if (!PURE_FUNCTIONS.has(fn.text)) argumentRoots();
      } else if (fn?.type === 'attribute') {
        const method = fn.childForFieldName('attribute')?.text ?? '';
        const receiver = fn.childForFieldName('object');
        const root = receiver ? rootName(receiver) : undefined;
        if (root !== undefined && this.modules.has(root)) {
          // A module function (math.floor, heapq.heappush): may mutate its arguments.
          if (!['math', 'string', 'operator', 're', 'json', 'statistics'].includes(root))
            argumentRoots();
        } else {
          if (root !== undefined && !PURE_METHODS.has(method)) weak.add(root);
          if (MUTATING_METHODS.has(method) || !PURE_METHODS.has(method)) {
            if (root === undefined) argumentRoots();
          }
        }
      } else argumentRoots();
    }
    return { strong, weak, uses, essential };
  }

  private keep(node: SyntaxNode): void {
    this.kept.add(node.id);
  }

  private block(block: SyntaxNode | null, liveOut: Set<string>): BlockResult {
    let live = new Set(liveOut);
    let keptCore = false;
    let keptAny = false;
    const statements = blockStatements(block).filter(
      (statement) => !this.dropped.has(statement.id),
    );
    for (let index = statements.length - 1; index >= 0; index -= 1) {
      const statement = statements[index]!;
      const result = this.statement(statement, live);
      live = result.live;
      keptCore ||= result.keptCore;
      keptAny ||= result.keptAny;
    }
    return { live, keptCore, keptAny };
  }

  private statement(statement: SyntaxNode, liveOut: Set<string>): BlockResult {
    switch (statement.type) {
      case 'pass_statement':
      case 'raise_statement':
      case 'assert_statement':
        return { live: liveOut, keptCore: false, keptAny: false };
      case 'break_statement':
      case 'continue_statement': {
        if (this.loop === undefined || !this.loop.jumps)
          return { live: liveOut, keptCore: false, keptAny: false };
        this.keep(statement);
        const target =
          statement.type === 'break_statement' ? this.loop.breakLive : this.loop.continueLive;
        return { live: new Set(target), keptCore: false, keptAny: true };
      }
      case 'if_statement':
        return this.ifStatement(statement, liveOut);
      case 'for_statement':
      case 'while_statement':
        return this.loopStatement(statement, liveOut);
      case 'function_definition':
      case 'class_definition':
      case 'decorated_definition': {
        const definition =
          statement.type === 'decorated_definition'
            ? statement.childForFieldName('definition')
            : statement;
        const name = definition?.childForFieldName('name')?.text;
        if (name === undefined || !liveOut.has(name))
          return { live: liveOut, keptCore: false, keptAny: false };
        this.keep(statement);
        const live = new Set(liveOut);
        live.delete(name);
        return { live: union(live, freeNames(statement)), keptCore: true, keptAny: true };
      }
      case 'try_statement':
      case 'with_statement':
      case 'match_statement': {
        // Kept whole: exceptions and context managers make their control flow hard to slice.
        this.keep(statement);
        for (const inner of statement.descendantsOfType('block')) {
          for (const child of blockStatements(inner))
            if (!this.dropped.has(child.id)) this.keep(child);
        }
        return { live: union(liveOut, readNames(statement)), keptCore: true, keptAny: true };
      }
      default: {
        const effects = this.effects(statement);
        if (statement.type === 'return_statement') {
          this.keep(statement);
          return { live: effects.uses, keptCore: true, keptAny: true };
        }
        const hit =
          intersects(effects.strong, liveOut) || intersects(this.expand(effects.weak), liveOut);
        if (!effects.essential && !hit) return { live: liveOut, keptCore: false, keptAny: false };
        this.keep(statement);
        const live = new Set(liveOut);
        for (const name of effects.strong) live.delete(name);
        return { live: union(live, effects.uses), keptCore: true, keptAny: true };
      }
    }
  }

  private ifStatement(statement: SyntaxNode, liveOut: Set<string>): BlockResult {
    const conditions: SyntaxNode[] = [];
    const blocks: SyntaxNode[] = [];
    const condition = statement.childForFieldName('condition');
    const consequence = statement.childForFieldName('consequence');
    if (condition) conditions.push(condition);
    if (consequence) blocks.push(consequence);
    let elseBlock: SyntaxNode | null = null;
    for (const clause of statement.childrenForFieldName('alternative')) {
      if (clause === null) continue;
      if (clause.type === 'elif_clause') {
        const c = clause.childForFieldName('condition');
        const b = clause.childForFieldName('consequence');
        if (c) conditions.push(c);
        if (b) blocks.push(b);
      } else if (clause.type === 'else_clause') elseBlock = clause.childForFieldName('body');
    }
    const results = blocks.map((block) => this.block(block, liveOut));
    const elseResult = elseBlock === null ? undefined : this.block(elseBlock, liveOut);
    const all = elseResult === undefined ? results : [...results, elseResult];
    if (!all.some((result) => result.keptAny))
      return { live: liveOut, keptCore: false, keptAny: false };
    this.keep(statement);
    const live = union(
      ...all.map((result) => result.live),
      elseResult === undefined ? liveOut : [],
      ...conditions.map(readNames),
    );
    return { live, keptCore: all.some((result) => result.keptCore), keptAny: true };
  }

  private loopStatement(statement: SyntaxNode, liveOut: Set<string>): BlockResult {
    const isFor = statement.type === 'for_statement';
    const body = statement.childForFieldName('body');
    const elseClause = statement.childForFieldName('alternative');
    const elseBody = elseClause?.childForFieldName('body') ?? null;
    const left = isFor ? statement.childForFieldName('left') : null;
    const targetDefs = left === null ? new Set<string>() : boundNames(left);
    const targetUses = left === null ? new Set<string>() : readNames(left);
    const headerUses = readNames(
      (isFor ? statement.childForFieldName('right') : statement.childForFieldName('condition'))!,
    );
    const outer = this.loop;

    const analyse = (jumps: boolean): { top: Set<string>; keptCore: boolean; keptAny: boolean } => {
      const exitResult = elseBody === null ? undefined : this.block(elseBody, liveOut);
      const exitLive = exitResult?.live ?? liveOut;
      let top = isFor ? new Set(exitLive) : union(exitLive, headerUses);
      let keptCore = exitResult?.keptCore ?? false;
      let keptAny = exitResult?.keptAny ?? false;
      for (let iteration = 0; iteration < 50; iteration += 1) {
        this.loop = { breakLive: liveOut, continueLive: top, jumps };
        const result = this.block(body, top);
        keptCore ||= result.keptCore;
        keptAny ||= result.keptAny;
        const bodyIn = new Set(result.live);
        for (const name of targetDefs) bodyIn.delete(name);
        const next = union(top, bodyIn, isFor ? targetUses : headerUses);
        if (next.size === top.size) break;
        top = next;
      }
      this.loop = outer;
      return { top, keptCore, keptAny };
    };

    // First without break/continue: a loop whose body computes nothing the result needs is
    // dropped whole; otherwise again with them, since they decide how often the body runs.
    const first = analyse(false);
    if (!first.keptCore) {
      this.loop = outer;
      return { live: liveOut, keptCore: false, keptAny: false };
    }
    const second = analyse(true);
    this.keep(statement);
    const live = isFor ? union(second.top, headerUses) : union(second.top, headerUses);
    return { live, keptCore: true, keptAny: true };
  }
}

interface CleanContext {
  dropped: Set<number>;
  edits: Edit[];
  stats: SliceStats;
}

function emptyStats(): SliceStats {
  return {
    comments: 0,
    docstrings: 0,
    outputCalls: 0,
    asserts: 0,
    annotations: 0,
    unreachable: 0,
    irrelevant: 0,
    unusedDefinitions: 0,
  };
}

/** Marks clean-up removals inside a function (recursively) and records annotation edits. */
function cleanFunction(fn: SyntaxNode, context: CleanContext): void {
  const { dropped, edits, stats } = context;
  const parameters = fn.childForFieldName('parameters');
  for (const param of parameters === null ? [] : namedChildren(parameters)) {
    if (param.type === 'typed_parameter') {
      const type = param.childForFieldName('type');
      const name = namedChildren(param)[0];
      if (type && name) {
        edits.push({ start: name.endIndex, end: type.endIndex, text: '' });
        stats.annotations += 1;
      }
    } else if (param.type === 'typed_default_parameter') {
      const name = param.childForFieldName('name');
      const value = param.childForFieldName('value');
      if (name && value) {
        edits.push({ start: name.endIndex, end: value.startIndex, text: '=' });
        stats.annotations += 1;
      }
    }
  }
  const returnType = fn.childForFieldName('return_type');
  if (returnType && parameters) {
    edits.push({ start: parameters.endIndex, end: returnType.endIndex, text: '' });
    stats.annotations += 1;
  }
  const body = fn.childForFieldName('body');
  const first = blockStatements(body)[0];
  if (first !== undefined && soleExpression(first)?.type === 'string') {
    dropped.add(first.id);
    stats.docstrings += 1;
  }
  for (const block of fn.descendantsOfType('block')) {
    // Nested functions are cleaned by their own call.
    if (block === null || enclosingFunction(block)?.id !== fn.id) continue;
    let unreachable = false;
    for (const statement of blockStatements(block)) {
      if (dropped.has(statement.id)) continue;
      if (unreachable) {
        dropped.add(statement.id);
        stats.unreachable += 1;
        continue;
      }
      if (JUMPS.has(statement.type)) unreachable = true;
      if (statement.type === 'assert_statement') {
        dropped.add(statement.id);
        stats.asserts += 1;
      } else if (isOutputStatement(statement)) {
        dropped.add(statement.id);
        stats.outputCalls += 1;
      } else if (isBareConstant(statement)) {
        dropped.add(statement.id);
        if (soleExpression(statement)?.type === 'string') stats.docstrings += 1;
        else stats.irrelevant += 1;
      } else if (statement.type === 'expression_statement') {
        const assignment = soleExpression(statement);
        if (assignment?.type === 'assignment' && assignment.childForFieldName('type') !== null) {
          const left = assignment.childForFieldName('left');
          const right = assignment.childForFieldName('right');
          stats.annotations += 1;
          if (right === null) dropped.add(statement.id);
          else if (left !== null)
            edits.push({ start: left.endIndex, end: right.startIndex, text: ' = ' });
        }
      } else if (statement.type === 'if_statement') {
        const condition = unwrap(statement.childForFieldName('condition'));
        const alternatives = statement.childrenForFieldName('alternative');
        if (
          condition !== null &&
          (condition.type === 'false' || condition.text === '0') &&
          alternatives.length === 0
        ) {
          dropped.add(statement.id);
          stats.unreachable += 1;
        }
      }
    }
  }
}

function enclosingFunction(node: SyntaxNode): SyntaxNode | null {
  let current = node.parent;
  while (current !== null && current.type !== 'function_definition') current = current.parent;
  return current;
}

function lineStart(text: string, index: number): number {
  return text.lastIndexOf('\n', index - 1) + 1;
}

function lineEnd(text: string, index: number): number {
  const end = text.indexOf('\n', index);
  return end === -1 ? text.length : end;
}

/** Deletion edit for a node, widened to whole lines when the node is alone on them. */
function deletion(text: string, node: SyntaxNode): Edit {
  let start = node.startIndex;
  let end = node.endIndex;
  const before = text.slice(lineStart(text, start), start);
  // A trailing `;` separator goes with the statement.
  const semicolon = /^[ \t]*;/.exec(text.slice(end));
  if (semicolon !== null) end += semicolon[0].length;
  const after = text.slice(end, lineEnd(text, end));
  if (/^[ \t]*$/.test(before) && /^[ \t]*(#.*)?$/.test(after)) {
    start = lineStart(text, start);
    end = Math.min(text.length, lineEnd(text, end) + 1);
  } else if (/^[ \t]*$/.test(after) && /;[ \t]*$/.test(before)) {
    start = lineStart(text, start) + before.replace(/[ \t]*;[ \t]*$/, '').length;
  }
  return { start, end, text: '' };
}

function applyEdits(text: string, edits: Edit[]): string {
  const sorted = [...edits].sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let cursor = 0;
  for (const edit of sorted) {
    if (edit.start < cursor) {
      // Overlaps an applied edit: contained deletions are redundant; replacements lose.
      if (edit.end <= cursor || edit.text !== '') continue;
      cursor = edit.end;
      continue;
    }
    out += text.slice(cursor, edit.start) + edit.text;
    cursor = edit.end;
  }
  return out + text.slice(cursor);
}

/** Rows that lie inside a multi-line string (their blank lines are part of a value). */
function stringRows(root: SyntaxNode): Set<number> {
  const rows = new Set<number>();
  for (const node of root.descendantsOfType('string')) {
    if (node === null) continue;
    for (let row = node.startPosition.row + 1; row <= node.endPosition.row; row += 1) rows.add(row);
  }
  return rows;
}

/** Builds the text edits for dropped statements, keeping every block non-empty. */
function dropEdits(text: string, root: SyntaxNode, dropped: Set<number>, edits: Edit[]): void {
  const visit = (node: SyntaxNode): void => {
    if (dropped.has(node.id)) {
      edits.push(deletion(text, node));
      return;
    }
    if (node.type === 'block') {
      const statements = blockStatements(node);
      if (statements.length > 0 && statements.every((statement) => dropped.has(statement.id))) {
        const owner = node.parent;
        if (
          owner?.type === 'else_clause' ||
          (owner?.type === 'elif_clause' && isLastClause(owner, dropped))
        ) {
          edits.push({ start: owner.startIndex, end: owner.endIndex, text: '' });
          const start = lineStart(text, owner.startIndex);
          if (/^[ \t]*$/.test(text.slice(start, owner.startIndex))) {
            edits.push({ start, end: Math.min(text.length, owner.endIndex + 1), text: '' });
          }
          return;
        }
        const [first, ...rest] = statements;
        edits.push({ start: first!.startIndex, end: first!.endIndex, text: 'pass' });
        for (const statement of rest) edits.push(deletion(text, statement));
        return;
      }
    }
    for (const child of namedChildren(node)) visit(child);
  };
  visit(root);
}

function isLastClause(clause: SyntaxNode, dropped: Set<number>): boolean {
  const statement = clause.parent;
  if (statement === null) return false;
  const alternatives = statement
    .childrenForFieldName('alternative')
    .filter((c): c is SyntaxNode => c !== null);
  const index = alternatives.findIndex((c) => c.id === clause.id);
  return alternatives.slice(index + 1).every((later) => {
    const body =
      later.type === 'else_clause'
        ? later.childForFieldName('body')
        : later.childForFieldName('consequence');
    return blockStatements(body).every((statement) => dropped.has(statement.id));
  });
}

function commentEdits(text: string, root: SyntaxNode, edits: Edit[], stats: SliceStats): void {
  for (const comment of root.descendantsOfType('comment')) {
    if (comment === null) continue;
    stats.comments += 1;
    const start = lineStart(text, comment.startIndex);
    const before = text.slice(start, comment.startIndex);
    if (/^[ \t]*$/.test(before)) {
      edits.push({ start, end: Math.min(text.length, comment.endIndex + 1), text: '' });
    } else {
      const spaces = /[ \t]*$/.exec(before)?.[0].length ?? 0;
      edits.push({ start: comment.startIndex - spaces, end: comment.endIndex, text: '' });
    }
  }
}

function blankLineEdits(text: string, root: SyntaxNode, edits: Edit[]): void {
  const inString = stringRows(root);
  const lines = text.split('\n');
  let offset = 0;
  for (const [row, line] of lines.entries()) {
    if (row > 0 && line.trim() === '' && !inString.has(row) && row < lines.length - 1) {
      edits.push({ start: offset, end: offset + line.length + 1, text: '' });
    }
    offset += line.length + 1;
  }
}

interface TopItem {
  node: SyntaxNode;
  binds: string[];
  reads: Set<string>;
}

function topItems(root: SyntaxNode): TopItem[] {
  return namedChildren(root)
    .filter((node) => node.type !== 'comment')
    .map((node) => {
      if (node.type === 'import_statement' || node.type === 'import_from_statement') {
        return { node, binds: importedNames(node), reads: new Set<string>() };
      }
      const definition =
        node.type === 'decorated_definition' ? node.childForFieldName('definition') : node;
      if (definition?.type === 'function_definition' || definition?.type === 'class_definition') {
        const name = definition.childForFieldName('name')?.text ?? '';
        const reads = freeNames(node);
        reads.delete(name);
        return { node, binds: [name], reads };
      }
      return { node, binds: [...boundNames(node)], reads: readNames(node) };
    });
}

/** Keeps only the module-level items the entry function (transitively) needs. */
function pruneModule(
  text: string,
  entryPoint: string,
  stats: SliceStats,
  tree: SyntaxTree,
): string {
  const items = topItems(tree.rootNode);
  const entry = items.findLast((item) => item.binds.includes(entryPoint));
  if (entry === undefined) return text;
  const providers = new Map<string, TopItem>();
  for (const item of items) for (const name of item.binds) providers.set(name, item);
  const needed = new Set<TopItem>([entry]);
  const queue = [entry];
  while (queue.length > 0) {
    const item = queue.pop()!;
    for (const name of item.reads) {
      const provider = providers.get(name);
      if (provider !== undefined && !needed.has(provider)) {
        needed.add(provider);
        queue.push(provider);
      }
    }
  }
  const kept = items.filter((item) => needed.has(item));
  stats.unusedDefinitions += items.length - kept.length;
  const parts = kept.filter((item) => item !== entry).map((item) => item.node.text);
  parts.push(entry.node.text);
  return `${parts.join('\n\n')}\n`;
}

async function withParsed<T>(code: string, fn: (tree: SyntaxTree) => T): Promise<T> {
  const tree = await parsePython(code);
  try {
    return fn(tree);
  } finally {
    tree.delete();
  }
}

/**
 * Slices a self-contained unit (module text whose last function `entryPoint` is the function
 * under study; see `extractFunctions`) to its core execution logic.
 */
export async function sliceUnit(
  code: string,
  entryPoint: string,
  options: SliceOptions = {},
): Promise<SliceResult> {
  const stats = emptyStats();
  const edited = await withParsed(code, (tree): string | { error: string } => {
    const root = tree.rootNode;
    if (root.hasError) return { error: 'the unit does not parse' };
    const functions = root
      .descendantsOfType('function_definition')
      .filter((node): node is SyntaxNode => node !== null);
    const entry = functions.findLast(
      (node) =>
        node.parent?.type !== 'block' && node.childForFieldName('name')?.text === entryPoint,
    );
    if (entry === undefined) return { error: `no top-level function ${entryPoint}` };
    const dropped = new Set<number>();
    const edits: Edit[] = [];
    const context: CleanContext = { dropped, edits, stats };
    for (const fn of functions) cleanFunction(fn, context);
    if (options.dependencies ?? true) {
      const modules = new Set<string>();
      for (const node of namedChildren(root)) {
        if (node.type === 'import_statement' || node.type === 'import_from_statement') {
          for (const name of importedNames(node)) modules.add(name);
        }
      }
      const slicer = new FunctionSlicer(entry, dropped, modules);
      slicer.run();
      const body = entry.childForFieldName('body');
      const markIrrelevant = (block: SyntaxNode | null): void => {
        for (const statement of blockStatements(block)) {
          if (dropped.has(statement.id)) continue;
          if (!slicer.kept.has(statement.id)) {
            dropped.add(statement.id);
            stats.irrelevant += 1;
            continue;
          }
          if (!COMPOUND.has(statement.type) || statement.type === 'function_definition') continue;
          if (
            [
              'try_statement',
              'with_statement',
              'match_statement',
              'class_definition',
              'decorated_definition',
            ].includes(statement.type)
          ) {
            continue;
          }
          for (const child of namedChildren(statement)) {
            if (child.type === 'block') markIrrelevant(child);
            else
              for (const inner of namedChildren(child))
                if (inner.type === 'block') markIrrelevant(inner);
          }
        }
      };
      markIrrelevant(body);
    }
    commentEdits(code, root, edits, stats);
    dropEdits(code, root, dropped, edits);
    blankLineEdits(code, root, edits);
    return applyEdits(code, edits);
  });
  if (typeof edited !== 'string') return { ok: false, reason: edited.error };
  const pruned = await withParsed(edited, (tree): string | { error: string } => {
    if (tree.rootNode.hasError) return { error: 'slicing produced code that does not parse' };
    return pruneModule(edited, entryPoint, stats, tree);
  });
  if (typeof pruned !== 'string') return { ok: false, reason: pruned.error };
  const reparsed = await withParsed(pruned, (tree) => !tree.rootNode.hasError);
  if (!reparsed) return { ok: false, reason: 'slicing produced code that does not parse' };
  return { ok: true, code: pruned, changed: normalize(pruned) !== normalize(code), stats };
}

function normalize(code: string): string {
  return code.replace(/\s+/g, ' ').trim();
}
