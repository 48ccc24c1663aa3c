import { parsePython, type SyntaxNode } from './python-parser.js';
import { ALLOWED_BUILTINS, ALLOWED_MODULES } from './python-env.js';
import { freeNames, importedModules, importedNames, namedChildren, readNames } from './py-names.js';

/** One parameter of an extracted function, as written in the source. */
export interface ParamInfo {
  name: string;
  annotation?: string;
  default?: string;
}

/** A function with every module-level definition it needs: a self-contained module text. */
export interface FunctionUnit {
  entryPoint: string;
  /** Imports, constants and helpers in source order, then the function itself. */
  code: string;
  params: ParamInfo[];
}

export type UnitOutcome =
  | { ok: true; unit: FunctionUnit }
  | { ok: false; entryPoint: string; reason: 'unsupported' | 'not_self_contained'; detail: string };

export type ExtractResult = { status: 'syntax_error' } | { status: 'ok'; outcomes: UnitOutcome[] };

interface ModuleItem {
  kind: 'import' | 'constant' | 'function';
  node: SyntaxNode;
  /** Names the item binds at module level. */
  binds: string[];
  /** Free names it reads. */
  reads: Set<string>;
  /** For imports: the top-level modules imported. */
  modules: string[];
}

const CACHE_DECORATORS = new Set(['functools.lru_cache', 'lru_cache', 'functools.cache', 'cache']);

function functionOf(node: SyntaxNode): SyntaxNode | undefined {
  if (node.type === 'function_definition') return node;
  if (node.type === 'decorated_definition') {
    const definition = node.childForFieldName('definition');
    if (definition?.type === 'function_definition') return definition;
  }
  return undefined;
}

function moduleItems(root: SyntaxNode): ModuleItem[] {
  const items: ModuleItem[] = [];
  for (const node of namedChildren(root)) {
    if (node.type === 'import_statement' || node.type === 'import_from_statement') {
      items.push({
        kind: 'import',
        node,
        binds: importedNames(node),
        reads: new Set(),
        modules: importedModules(node),
      });
      continue;
    }
    if (node.type === 'future_import_statement') continue;
    const fn = functionOf(node);
    if (fn !== undefined) {
      const name = fn.childForFieldName('name')?.text ?? '';
      const reads = freeNames(node);
      reads.delete(name);
      items.push({ kind: 'function', node, binds: [name], reads, modules: [] });
      continue;
    }
    if (node.type === 'expression_statement') {
      const assignment = namedChildren(node)[0];
      if (assignment?.type !== 'assignment' || namedChildren(node).length !== 1) continue;
      const binds: string[] = [];
      let current: SyntaxNode | null = assignment;
      let valid = true;
      while (current?.type === 'assignment') {
        const left = current.childForFieldName('left');
        if (left?.type === 'identifier') binds.push(left.text);
        else if (
          left?.type === 'pattern_list' &&
          namedChildren(left).every((c) => c.type === 'identifier')
        ) {
          binds.push(...namedChildren(left).map((c) => c.text));
        } else valid = false;
        current = current.childForFieldName('right');
      }
      if (!valid || binds.length === 0 || current === null) continue;
      items.push({ kind: 'constant', node, binds, reads: readNames(current), modules: [] });
    }
  }
  return items;
}

function signatureProblem(fn: SyntaxNode, decorated: SyntaxNode | undefined): string | undefined {
  if (fn.children.some((child) => child?.type === 'async')) return 'async function';
  if (decorated !== undefined) {
    for (const decorator of namedChildren(decorated).filter((c) => c.type === 'decorator')) {
      const text = decorator.text.replace(/^@/, '').replace(/\(.*$/s, '').trim();
      if (!CACHE_DECORATORS.has(text)) return `decorator @${text}`;
    }
  }
  const parameters = fn.childForFieldName('parameters');
  const params = parameters === null ? [] : namedChildren(parameters);
  if (params.length === 0) return 'no parameters';
  for (const param of params) {
    if (param.type === 'list_splat_pattern' || param.type === 'dictionary_splat_pattern')
      return 'variadic parameters';
    if (param.type === 'keyword_separator') return 'keyword-only parameters';
    if (param.type === 'typed_parameter' && namedChildren(param)[0]?.type !== 'identifier')
      return 'variadic parameters';
  }
  const body = fn.childForFieldName('body');
  if (body !== null && containsOwnYield(body)) return 'generator function';
  return undefined;
}

function containsOwnYield(node: SyntaxNode): boolean {
  for (const child of namedChildren(node)) {
    if (child.type === 'yield') return true;
    if (
      child.type === 'function_definition' ||
      child.type === 'lambda' ||
      child.type === 'class_definition'
    )
      continue;
    if (containsOwnYield(child)) return true;
  }
  return false;
}

export function paramInfo(fn: SyntaxNode): ParamInfo[] {
  const parameters = fn.childForFieldName('parameters');
  if (parameters === null) return [];
  const infos: ParamInfo[] = [];
  for (const param of namedChildren(parameters)) {
    switch (param.type) {
      case 'identifier':
        infos.push({ name: param.text });
        break;
      case 'default_parameter':
        infos.push({
          name: param.childForFieldName('name')?.text ?? '',
          default: param.childForFieldName('value')?.text ?? '',
        });
        break;
      case 'typed_parameter':
        infos.push({
          name: namedChildren(param)[0]?.text ?? '',
          annotation: param.childForFieldName('type')?.text ?? '',
        });
        break;
      case 'typed_default_parameter':
        infos.push({
          name: param.childForFieldName('name')?.text ?? '',
          annotation: param.childForFieldName('type')?.text ?? '',
          default: param.childForFieldName('value')?.text ?? '',
        });
        break;
      default:
        break;
    }
  }
  return infos;
}

/** Names used inside a function that need the outside world: imports of disallowed modules. */
function innerImportProblem(node: SyntaxNode): string | undefined {
  for (const imported of [
    ...node.descendantsOfType('import_statement'),
    ...node.descendantsOfType('import_from_statement'),
  ]) {
    if (imported === null) continue;
    for (const module of importedModules(imported))
      if (!ALLOWED_MODULES.has(module)) return `imports ${module}`;
  }
  return undefined;
}

/**
 * Every top-level function of a module as a self-contained unit: the function plus the
 * module-level helpers, constants and imports it (transitively) uses. Functions that need
 * anything else (an undefined or disallowed name, a non-allowed module) are reported as
 * `not_self_contained`; async functions, generators, variadic or keyword-only signatures,
 * functions without parameters and decorated functions as `unsupported`.
 */
export async function extractFunctions(source: string): Promise<ExtractResult> {
  const tree = await parsePython(source);
  try {
    const root = tree.rootNode;
    if (root.hasError) return { status: 'syntax_error' };
    const items = moduleItems(root);
    const byName = new Map<string, ModuleItem>();
    for (const item of items) for (const name of item.binds) byName.set(name, item);
    const outcomes: UnitOutcome[] = [];
    for (const item of items) {
      if (item.kind !== 'function') continue;
      const fn = functionOf(item.node)!;
      const entryPoint = fn.childForFieldName('name')?.text ?? '';
      const problem = signatureProblem(
        fn,
        item.node.type === 'decorated_definition' ? item.node : undefined,
      );
      if (problem !== undefined) {
        outcomes.push({ ok: false, entryPoint, reason: 'unsupported', detail: problem });
        continue;
      }
      const needed = new Set<ModuleItem>([item]);
      const queue = [item];
      let missing: string | undefined;
      while (queue.length > 0 && missing === undefined) {
        const current = queue.pop()!;
        if (current.kind === 'import') {
          const bad = current.modules.find((module) => !ALLOWED_MODULES.has(module));
          if (bad !== undefined) missing = `imports ${bad}`;
          continue;
        }
        const inner = innerImportProblem(current.node);
        if (inner !== undefined) {
          missing = inner;
          break;
        }
        for (const name of current.reads) {
          const provider = byName.get(name);
          if (provider !== undefined) {
            if (!needed.has(provider)) {
              needed.add(provider);
              queue.push(provider);
            }
          } else if (!ALLOWED_BUILTINS.has(name)) {
            missing = `uses ${name}`;
            break;
          }
        }
      }
      if (missing !== undefined) {
        outcomes.push({ ok: false, entryPoint, reason: 'not_self_contained', detail: missing });
        continue;
      }
      const parts = items
        .filter((other) => other !== item && needed.has(other))
        .map((other) => other.node.text);
      parts.push(item.node.text);
      outcomes.push({
        ok: true,
        unit: { entryPoint, code: `${parts.join('\n\n')}\n`, params: paramInfo(fn) },
      });
    }
    return { status: 'ok', outcomes };
  } finally {
    tree.delete();
  }
}
