import { parsePython, type SyntaxNode } from './python-parser.js';
import { ALLOWED_BUILTINS } from './python-env.js';
import { boundNames, identifierRole, importedNames, namedChildren } from './py-names.js';

/**
 * Renames identifiers generically: the entry function becomes `f`, helpers `g1`, `g2`, …, and
 * every other name bound in the module (parameters, locals, loop and comprehension variables,
 * constants) `v0`, `v1`, … in order of first appearance. One name maps to one new name across
 * the whole module, so scoping is preserved; attribute names, imported names and builtins stay,
 * and keyword arguments follow the parameters they name when the callee is a renamed function.
 */
export async function renameIdentifiers(
  code: string,
  entryPoint: string,
): Promise<{ code: string; entryPoint: string; mapping: Record<string, string> }> {
  const tree = await parsePython(code);
  try {
    const root = tree.rootNode;
    const imported = new Set<string>();
    for (const node of [
      ...root.descendantsOfType('import_statement'),
      ...root.descendantsOfType('import_from_statement'),
    ]) {
      if (node !== null) for (const name of importedNames(node)) imported.add(name);
    }
    const bound = boundNames(root);
    const renamable = (name: string): boolean =>
      bound.has(name) && !imported.has(name) && !ALLOWED_BUILTINS.has(name) && name !== 'self';
    // New names may reuse old names that are renamed away themselves; all edits apply at once.
    const taken = new Set<string>();
    for (const id of root.descendantsOfType('identifier'))
      if (id !== null && !renamable(id.text)) taken.add(id.text);
    const functions: string[] = [];
    for (const node of root.descendantsOfType('function_definition')) {
      const name = node?.childForFieldName('name')?.text;
      if (name !== undefined && node?.parent?.type !== 'block' && !functions.includes(name))
        functions.push(name);
    }
    const mapping = new Map<string, string>();
    const fresh = (base: string): string => {
      let candidate = base;
      for (let i = 2; taken.has(candidate) || [...mapping.values()].includes(candidate); i += 1)
        candidate = `${base}_${i}`;
      return candidate;
    };
    mapping.set(entryPoint, fresh('f'));
    let helperIndex = 1;
    for (const name of functions)
      if (!mapping.has(name)) mapping.set(name, fresh(`g${helperIndex++}`));
    let variableIndex = 0;
    for (const id of root.descendantsOfType('identifier')) {
      if (id === null) continue;
      const name = id.text;
      if (mapping.has(name) || !renamable(name)) continue;
      if (identifierRole(id) === 'other') continue;
      mapping.set(name, fresh(`v${variableIndex++}`));
    }
    const edits: { start: number; end: number; text: string }[] = [];
    for (const id of root.descendantsOfType('identifier')) {
      if (id === null) continue;
      const target = mapping.get(id.text);
      if (target === undefined) continue;
      const role = identifierRole(id);
      if (role === 'other') {
        if (!isKeywordOfRenamedCall(id, mapping)) continue;
      }
      if (
        id.parent?.type === 'global_statement' ||
        id.parent?.type === 'nonlocal_statement' ||
        role !== 'other' ||
        isKeywordOfRenamedCall(id, mapping)
      ) {
        edits.push({ start: id.startIndex, end: id.endIndex, text: target });
      }
    }
    edits.sort((a, b) => a.start - b.start);
    let out = '';
    let cursor = 0;
    for (const edit of edits) {
      if (edit.start < cursor) continue;
      out += code.slice(cursor, edit.start) + edit.text;
      cursor = edit.end;
    }
    out += code.slice(cursor);
    return {
      code: out,
      entryPoint: mapping.get(entryPoint)!,
      mapping: Object.fromEntries(mapping),
    };
  } finally {
    tree.delete();
  }
}

function isKeywordOfRenamedCall(id: SyntaxNode, mapping: Map<string, string>): boolean {
  const keyword = id.parent;
  if (keyword?.type !== 'keyword_argument' || keyword.childForFieldName('name')?.id !== id.id)
    return false;
  const call = keyword.parent?.parent;
  const fn = call?.type === 'call' ? call.childForFieldName('function') : null;
  return fn?.type === 'identifier' && mapping.has(fn.text) && namedChildren(keyword).length > 0;
}
