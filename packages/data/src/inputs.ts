import type { ParamInfo } from './extract.js';
import { parsePython, type SyntaxNode } from './python-parser.js';
import { namedChildren } from './py-names.js';
import type { Rng } from '@codereasoner/common';
import {
  pyRepr,
  randomValue,
  typeFromAnnotation,
  typeFromDefault,
  type ValueType,
} from './values.js';

// Type-aware inputs: each parameter gets candidate types from (in order of trust) the
// generator's hint, its annotation, its default value and how the body uses it; inputs are
// drawn from those candidates with a seeded RNG. Wrong guesses are harmless: a call that raises
// is dropped by the execution filters.

const STR_METHODS = new Set([
  'upper',
  'lower',
  'strip',
  'lstrip',
  'rstrip',
  'split',
  'rsplit',
  'replace',
  'startswith',
  'endswith',
  'isdigit',
  'isalpha',
  'isalnum',
  'isspace',
  'isupper',
  'islower',
  'title',
  'capitalize',
  'swapcase',
  'find',
  'rfind',
  'center',
  'ljust',
  'rjust',
  'zfill',
  'partition',
  'rpartition',
  'casefold',
  'splitlines',
  'format',
  'encode',
  'expandtabs',
  'removeprefix',
  'removesuffix',
  'istitle',
  'isnumeric',
  'isdecimal',
]);
const LIST_METHODS = new Set([
  'append',
  'extend',
  'insert',
  'pop',
  'remove',
  'sort',
  'reverse',
  'clear',
]);
const DICT_METHODS = new Set(['items', 'keys', 'values', 'get', 'setdefault', 'update', 'popitem']);

const INT: ValueType = { kind: 'int' };
const STR: ValueType = { kind: 'str' };
const LIST_INT: ValueType = { kind: 'list', of: { kind: 'int' } };
const LIST_STR: ValueType = { kind: 'list', of: { kind: 'str', alphabet: 'word', maxLength: 6 } };
const DICT: ValueType = {
  kind: 'dict',
  key: { kind: 'str', alphabet: 'word', maxLength: 5 },
  value: { kind: 'int' },
};

/** Scores of candidate types for each parameter, inferred from how the function uses it. */
function usageScores(fn: SyntaxNode, params: string[]): Map<string, Map<string, number>> {
  const scores = new Map<string, Map<string, number>>();
  for (const name of params) scores.set(name, new Map());
  const add = (name: string, type: string, weight: number): void => {
    const map = scores.get(name);
    if (map !== undefined) map.set(type, (map.get(type) ?? 0) + weight);
  };
  // Loop variables iterating over a parameter: their use says what the elements are.
  const elementOf = new Map<string, string>();
  for (const loop of [
    ...fn.descendantsOfType('for_statement'),
    ...fn.descendantsOfType('for_in_clause'),
  ]) {
    const left = loop?.childForFieldName('left');
    const right = loop?.childForFieldName('right');
    if (left?.type === 'identifier' && right?.type === 'identifier' && scores.has(right.text))
      elementOf.set(left.text, right.text);
    if (right?.type === 'call' && scores.size > 0) {
      const callee = right.childForFieldName('function');
      const arg = namedChildren(right.childForFieldName('arguments')!)[0];
      if (callee?.type === 'attribute' && callee.childForFieldName('attribute')?.text === 'items') {
        const owner = callee.childForFieldName('object');
        if (owner?.type === 'identifier') add(owner.text, 'dict', 4);
      }
      if (callee?.text === 'range' && arg?.type === 'identifier') add(arg.text, 'int', 4);
      if (
        callee?.text === 'enumerate' &&
        arg?.type === 'identifier' &&
        left?.type === 'pattern_list'
      ) {
        const element = namedChildren(left)[1];
        if (element?.type === 'identifier') elementOf.set(element.text, arg.text);
      }
    }
  }
  for (const id of fn.descendantsOfType('identifier')) {
    if (id === null) continue;
    const name = id.text;
    const owner = scores.has(name) ? name : elementOf.get(name);
    if (owner === undefined) continue;
    const isElement = owner !== name;
    const parent = id.parent;
    if (parent === null) continue;
    if (parent.type === 'attribute' && parent.childForFieldName('object')?.id === id.id) {
      const method = parent.childForFieldName('attribute')?.text ?? '';
      if (STR_METHODS.has(method))
        add(owner, isElement ? (elementLooksLikeChar(fn, name) ? 'str' : 'list_str') : 'str', 3);
      if (!isElement && LIST_METHODS.has(method)) add(owner, 'list', 3);
      if (!isElement && DICT_METHODS.has(method)) add(owner, 'dict', 4);
      if (method === 'join' && !isElement) add(owner, 'sep', 3);
    } else if (parent.type === 'binary_operator' || parent.type === 'augmented_assignment') {
      const other = parent.childForFieldName(
        parent.childForFieldName('left')?.id === id.id ? 'right' : 'left',
      );
      if (other?.type === 'integer' || other?.type === 'float')
        add(owner, isElement ? 'list_int' : 'int', 2);
      if (other?.type === 'string') add(owner, isElement ? 'str' : 'str', 2);
    } else if (parent.type === 'comparison_operator') {
      const others = namedChildren(parent).filter((child) => child.id !== id.id);
      if (others.some((child) => child.type === 'integer'))
        add(owner, isElement ? 'list_int' : 'int', 2);
      if (others.some((child) => child.type === 'string'))
        add(owner, isElement ? 'str' : parent.text.includes(' in ') ? 'char' : 'str', 2);
    } else if (
      parent.type === 'subscript' &&
      parent.childForFieldName('value')?.id === id.id &&
      !isElement
    ) {
      const index = parent.childForFieldName('subscript');
      if (index?.type === 'string') add(owner, 'dict', 4);
      else add(owner, 'list', 1);
    } else if (parent.type === 'argument_list') {
      const call = parent.parent;
      const callee = call?.childForFieldName('function')?.text ?? '';
      if (
        !isElement &&
        ['len', 'sorted', 'sum', 'max', 'min', 'reversed', 'enumerate', 'list', 'set'].includes(
          callee,
        )
      )
        add(owner, 'list', 1);
      if (!isElement && ['range', 'abs', 'chr'].includes(callee)) add(owner, 'int', 3);
      if (['ord'].includes(callee)) add(owner, isElement ? 'str' : 'char', 3);
      if (callee === 'sum' && !isElement) add(owner, 'list_int', 2);
    } else if (parent.type === 'for_statement' || parent.type === 'for_in_clause') {
      if (parent.childForFieldName('right')?.id === id.id) add(owner, 'list', 1);
    }
  }
  return scores;
}

function elementLooksLikeChar(_fn: SyntaxNode, name: string): boolean {
  return ['c', 'ch', 'char', 'letter', 'symbol'].includes(name);
}

function typeOfLabel(label: string, scores: Map<string, number>): ValueType {
  switch (label) {
    case 'int':
      return { kind: 'int', min: -3, max: 15 };
    case 'str':
      return STR;
    case 'char':
      return { kind: 'char', alphabet: 'mixed' };
    case 'sep':
      return { kind: 'char', alphabet: 'mixed' };
    case 'dict':
      return DICT;
    case 'list_str':
      return LIST_STR;
    case 'list_int':
      return LIST_INT;
    case 'list':
      return (scores.get('list_str') ?? 0) > (scores.get('list_int') ?? 0) ||
        (scores.get('str') ?? 0) > 2
        ? LIST_STR
        : LIST_INT;
    default:
      return INT;
  }
}

/** Ranked candidate types per parameter (best first). */
export async function inferParamTypes(
  code: string,
  entryPoint: string,
  params: ParamInfo[],
  hints: Record<string, ValueType> = {},
): Promise<Map<string, ValueType[]>> {
  const tree = await parsePython(code);
  try {
    const fn = tree.rootNode
      .descendantsOfType('function_definition')
      .findLast(
        (node) =>
          node?.childForFieldName('name')?.text === entryPoint && node.parent?.type !== 'block',
      );
    const usage = fn
      ? usageScores(
          fn,
          params.map((p) => p.name),
        )
      : new Map<string, Map<string, number>>();
    const result = new Map<string, ValueType[]>();
    for (const param of params) {
      const candidates: ValueType[] = [];
      const hint = hints[param.name];
      if (hint !== undefined) candidates.push(hint);
      const annotated =
        param.annotation === undefined ? undefined : typeFromAnnotation(param.annotation);
      if (annotated !== undefined) candidates.push(annotated);
      const defaulted = param.default === undefined ? undefined : typeFromDefault(param.default);
      if (defaulted !== undefined) candidates.push(defaulted);
      const scores = usage.get(param.name) ?? new Map<string, number>();
      const ranked = [...scores.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      for (const [label] of ranked.slice(0, 2)) candidates.push(typeOfLabel(label, scores));
      if (candidates.length === 0) candidates.push(INT, STR, LIST_INT);
      result.set(param.name, candidates);
    }
    return result;
  } finally {
    tree.delete();
  }
}

/**
 * `count` distinct argument lists (as call-argument source text). The first candidate type of
 * each parameter is used most; the others are tried now and then when there is no hint.
 */
export function generateInputs(
  rng: Rng,
  params: ParamInfo[],
  candidates: Map<string, ValueType[]>,
  count: number,
  hinted: boolean,
): string[] {
  const inputs: string[] = [];
  const seen = new Set<string>();
  for (let attempt = 0; attempt < count * 6 && inputs.length < count; attempt += 1) {
    const args = params.map((param) => {
      const types = candidates.get(param.name) ?? [INT];
      const type = hinted || types.length === 1 || rng.chance(0.7) ? types[0]! : rng.pick(types);
      return pyRepr(randomValue(rng, type));
    });
    const text = args.join(', ');
    if (seen.has(text)) continue;
    seen.add(text);
    inputs.push(text);
  }
  return inputs;
}
