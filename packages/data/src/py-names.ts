import type { SyntaxNode } from './python-parser.js';

// Name analysis over tree-sitter-python trees: which identifiers a subtree reads, which it
// binds. Scopes are not modelled precisely (a comprehension variable counts as a name of the
// enclosing function); every use here tolerates that over-approximation, and the corpus
// builder checks every transformed program by execution anyway.

export function namedChildren(node: SyntaxNode): SyntaxNode[] {
  return node.namedChildren.filter((child): child is SyntaxNode => child !== null);
}

export function children(node: SyntaxNode): SyntaxNode[] {
  return node.children.filter((child): child is SyntaxNode => child !== null);
}

function isField(parent: SyntaxNode, field: string, node: SyntaxNode): boolean {
  const child = parent.childForFieldName(field);
  return child !== null && child.id === node.id;
}

const PARAMETER_CONTAINERS = new Set([
  'parameters',
  'lambda_parameters',
  'default_parameter',
  'typed_parameter',
  'typed_default_parameter',
  'list_splat_pattern',
  'dictionary_splat_pattern',
]);

/** Whether an identifier node is a binding occurrence or a non-name (attribute, keyword) rather than a read. */
export function identifierRole(node: SyntaxNode): 'read' | 'bind' | 'readwrite' | 'other' {
  const parent = node.parent;
  if (parent === null) return 'read';
  switch (parent.type) {
    case 'attribute':
      return isField(parent, 'attribute', node) ? 'other' : 'read';
    case 'keyword_argument':
      return isField(parent, 'name', node) ? 'other' : 'read';
    case 'function_definition':
    case 'class_definition':
      return isField(parent, 'name', node) ? 'bind' : 'read';
    case 'dotted_name':
    case 'aliased_import':
    case 'import_statement':
    case 'import_from_statement':
      return 'other';
    case 'global_statement':
    case 'nonlocal_statement':
      return 'other';
    case 'named_expression':
      return isField(parent, 'name', node) ? 'bind' : 'read';
    case 'default_parameter':
    case 'typed_default_parameter':
      return isField(parent, 'name', node) ? 'bind' : 'read';
    case 'typed_parameter':
      // The first child is the parameter (identifier or splat); the `type` field is read.
      return isField(parent, 'type', node) ? 'read' : 'bind';
    case 'parameters':
    case 'lambda_parameters':
    case 'list_splat_pattern':
    case 'dictionary_splat_pattern':
      return PARAMETER_CONTAINERS.has(parent.type) && insideParameters(parent) ? 'bind' : 'read';
    default:
      break;
  }
  if (isAssignmentTarget(node)) {
    const statement = targetOwner(node);
    return statement?.type === 'augmented_assignment' && isField(statement, 'left', node)
      ? 'readwrite'
      : 'bind';
  }
  return 'read';
}

function insideParameters(node: SyntaxNode): boolean {
  let current: SyntaxNode | null = node;
  while (current !== null) {
    if (current.type === 'parameters' || current.type === 'lambda_parameters') return true;
    if (!PARAMETER_CONTAINERS.has(current.type)) return false;
    current = current.parent;
  }
  return false;
}

const PATTERN_WRAPPERS = new Set([
  'pattern_list',
  'tuple_pattern',
  'list_pattern',
  'tuple',
  'list',
  'parenthesized_expression',
  'list_splat_pattern',
  'as_pattern_target',
  'expression_list',
]);

/** The statement (assignment, for, with, except, comprehension clause) whose target contains `node`, if any. */
function targetOwner(node: SyntaxNode): SyntaxNode | null {
  let current: SyntaxNode = node;
  let parent = current.parent;
  while (parent !== null && PATTERN_WRAPPERS.has(parent.type)) {
    current = parent;
    parent = current.parent;
  }
  if (parent === null) return null;
  switch (parent.type) {
    case 'assignment':
    case 'augmented_assignment':
    case 'for_statement':
    case 'for_in_clause':
      return isField(parent, 'left', current) ? parent : null;
    case 'as_pattern':
      return isField(parent, 'alias', current) ? parent : null;
    case 'delete_statement':
      return parent;
    default:
      return null;
  }
}

function isAssignmentTarget(node: SyntaxNode): boolean {
  return targetOwner(node) !== null;
}

/** Every identifier node under `node` (node included). */
export function identifiers(node: SyntaxNode): SyntaxNode[] {
  if (node.type === 'identifier') return [node];
  return node
    .descendantsOfType('identifier')
    .filter((child): child is SyntaxNode => child !== null);
}

/** Names read under `node`. */
export function readNames(node: SyntaxNode): Set<string> {
  const names = new Set<string>();
  for (const id of identifiers(node)) {
    const role = identifierRole(id);
    if (role === 'read' || role === 'readwrite') names.add(id.text);
  }
  return names;
}

/** Names bound under `node` (assignment and loop targets, parameters, defs, imports, walrus, as-targets). */
export function boundNames(node: SyntaxNode): Set<string> {
  const names = new Set<string>();
  for (const id of identifiers(node)) {
    const role = identifierRole(id);
    if (role === 'bind' || role === 'readwrite') names.add(id.text);
  }
  for (const imported of [
    ...node.descendantsOfType('import_statement'),
    ...node.descendantsOfType('import_from_statement'),
  ]) {
    if (imported !== null) for (const name of importedNames(imported)) names.add(name);
  }
  for (const declared of [
    ...node.descendantsOfType('global_statement'),
    ...node.descendantsOfType('nonlocal_statement'),
  ]) {
    if (declared === null) continue;
    for (const id of namedChildren(declared)) names.add(id.text);
  }
  return names;
}

/** Names an import statement binds (`import a.b` binds `a`; `from m import x as y` binds `y`). */
export function importedNames(node: SyntaxNode): string[] {
  const names: string[] = [];
  if (node.type === 'import_statement') {
    for (const child of namedChildren(node)) {
      if (child.type === 'aliased_import') names.push(child.childForFieldName('alias')?.text ?? '');
      else if (child.type === 'dotted_name') names.push(child.text.split('.')[0] ?? '');
    }
  } else if (node.type === 'import_from_statement') {
    const moduleNode = node.childForFieldName('module_name');
    for (const child of namedChildren(node)) {
      if (moduleNode !== null && child.id === moduleNode.id) continue;
      if (child.type === 'aliased_import') names.push(child.childForFieldName('alias')?.text ?? '');
      else if (child.type === 'dotted_name') names.push(child.text);
      else if (child.type === 'wildcard_import') names.push('*');
    }
  }
  return names.filter((name) => name !== '');
}

/** Top module of an import statement (`import a.b` -> ['a']; `from a.b import c` -> ['a']). */
export function importedModules(node: SyntaxNode): string[] {
  if (node.type === 'import_statement') {
    return namedChildren(node).map((child) => {
      const dotted = child.type === 'aliased_import' ? child.childForFieldName('name') : child;
      return (dotted?.text ?? '').split('.')[0] ?? '';
    });
  }
  const moduleNode = node.childForFieldName('module_name');
  if (moduleNode === null) return [''];
  if (moduleNode.type === 'relative_import') return ['.'];
  return [moduleNode.text.split('.')[0] ?? ''];
}

/** Names a function reads that it does not bind anywhere inside (its free names). */
export function freeNames(functionNode: SyntaxNode): Set<string> {
  const bound = boundNames(functionNode);
  const free = new Set<string>();
  for (const name of readNames(functionNode)) if (!bound.has(name)) free.add(name);
  // Decorators and default values are evaluated in the enclosing scope.
  return free;
}

/** Root name of an attribute/subscript chain (`a.b[1].c` -> `a`), or undefined. */
export function rootName(node: SyntaxNode): string | undefined {
  let current: SyntaxNode | null = node;
  while (current !== null) {
    if (current.type === 'identifier') return current.text;
    if (current.type === 'attribute' || current.type === 'subscript')
      current = current.childForFieldName(current.type === 'attribute' ? 'object' : 'value');
    else if (current.type === 'parenthesized_expression')
      current = namedChildren(current)[0] ?? null;
    else if (current.type === 'call') {
      const fn = current.childForFieldName('function');
      current = fn?.type === 'attribute' ? fn.childForFieldName('object') : null;
    } else return undefined;
  }
  return undefined;
}
