import { Rng } from '@codereasoner/common';
import type { ValueType } from './values.js';

// A seeded generator of short Python functions in the style of CRUXEval's: one entry function
// over lists, strings, dicts or ints, with accumulators, loops (for/while, nested), branches,
// string methods, comprehensions and module-level helpers (one may call another), plus optional
// boilerplate (docstrings, comments, prints, logging, dead stores, annotations) that slicing
// must remove. Difficulty knobs bound loop nesting, branches, helpers and length.

export interface DifficultyKnobs {
  /** Deepest loop nesting (0 = straight-line code with comprehensions). */
  maxLoopDepth: number;
  /** Most if-statements in the entry function. */
  maxBranches: number;
  /** Module-level helpers (0-2; with 2 the second calls the first). */
  helpers: number;
  /** Statements per loop body, at most. */
  maxBodyStatements: number;
  /** Statements of core logic in the entry function, at most (boilerplate not counted). */
  maxStatements: number;
  /** Probability of comprehension-based steps. */
  comprehensions: number;
  /** Probability of each kind of boilerplate (docstring, prints, logging, dead stores, annotations). */
  boilerplate: number;
  /**
   * Most items in a list or dict argument: the loop trip count over the main argument. Default
   * 7 for lists of ints, 6 for lists of words, 5 for dicts.
   */
  maxItems?: number;
  /** Largest int in a list of ints (smallest: minus a quarter of it); default 20. */
  maxInt?: number;
  /** Longest string argument; default 12 (text with spaces and punctuation). */
  maxStrLength?: number;
}

/** The named levels, easiest first (their order is the curriculum's). */
export const DIFFICULTY_LEVELS = ['basic', 'easy', 'medium', 'hard'] as const;
export type DifficultyName = (typeof DIFFICULTY_LEVELS)[number];
/** A weight per level: each program draws its level with these odds. */
export interface DifficultyMix {
  mix: Partial<Record<DifficultyName, number>>;
}
export type Difficulty = DifficultyName | 'mixed' | DifficultyKnobs | DifficultyMix;

export const DIFFICULTY_PRESETS: Readonly<Record<DifficultyName, DifficultyKnobs>> = {
  // one loop or two straight-line steps, no helpers, three items of one-digit ints, short words:
  // a trace of a few lines that a sub-million-parameter model can follow
  basic: {
    maxLoopDepth: 1,
    maxBranches: 1,
    helpers: 0,
    maxBodyStatements: 1,
    maxStatements: 2,
    comprehensions: 0.3,
    boilerplate: 0.25,
    maxItems: 3,
    maxInt: 9,
    maxStrLength: 5,
  },
  easy: {
    maxLoopDepth: 1,
    maxBranches: 1,
    helpers: 0,
    maxBodyStatements: 2,
    maxStatements: 6,
    comprehensions: 0.3,
    boilerplate: 0.25,
  },
  medium: {
    maxLoopDepth: 2,
    maxBranches: 2,
    helpers: 1,
    maxBodyStatements: 3,
    maxStatements: 9,
    comprehensions: 0.3,
    boilerplate: 0.3,
  },
  hard: {
    maxLoopDepth: 3,
    maxBranches: 4,
    helpers: 2,
    maxBodyStatements: 3,
    maxStatements: 12,
    comprehensions: 0.35,
    boilerplate: 0.35,
  },
};

export interface GeneratedProgram {
  code: string;
  entryPoint: string;
  /** The type of each parameter (what the generator meant), for input generation. */
  paramTypes: Record<string, ValueType>;
  difficulty: string;
}

type Theme = 'list_int' | 'str' | 'list_str' | 'dict' | 'int';
type ElemKind = 'int' | 'char' | 'word';
type AccKind = 'list_int' | 'list_str' | 'total' | 'count' | 'out' | 'counts' | 'seen' | 'best';

interface Acc {
  kind: AccKind;
  name: string;
  updated: boolean;
}

interface Elem {
  kind: ElemKind;
  expr: string;
}

interface Helper {
  name: string;
  takes: ElemKind | 'list';
  gives: 'bool' | 'int' | 'str';
  code: string;
}

const NAME_POOLS: Record<string, string[]> = {
  list_int: ['nums', 'arr', 'values', 'numbers', 'data', 'xs', 'lst', 'items', 'nums'],
  str: ['text', 's', 'string', 'line', 'msg', 'word', 'text', 's'],
  list_str: ['words', 'names', 'strings', 'tokens', 'items', 'parts'],
  dict: ['d', 'counts', 'mapping', 'scores', 'dic', 'inventory', 'table'],
  int: ['n', 'num', 'x', 'm', 'number', 'n'],
  i: ['i', 'j', 'idx', 'pos'],
  k: ['k', 'n', 'limit', 'threshold', 'target', 'size', 'step', 'm'],
  char: ['ch', 'c', 'char', 'letter', 'sep', 'fill'],
  prefix: ['prefix', 'suffix', 'sub', 'pattern', 'key'],
  flag: ['flag', 'reverse', 'strict', 'keep'],
  intElem: ['x', 'n', 'num', 'v', 'val', 'item'],
  charElem: ['ch', 'c', 'char', 'letter'],
  wordElem: ['word', 'w', 'name', 'token', 'item'],
  list_intAcc: ['result', 'res', 'out', 'output', 'ans', 'acc', 'new_list', 'collected'],
  list_strAcc: ['result', 'res', 'parts', 'pieces', 'chunks', 'out'],
  totalAcc: ['total', 'acc', 'score', 'res', 'value', 'prod'],
  countAcc: ['count', 'cnt', 'counter', 'hits', 'matches'],
  outAcc: ['out', 'result', 'res', 'new_text', 'output', 'buf', 's2'],
  countsAcc: ['counts', 'freq', 'seen_count', 'tally', 'occ'],
  seenAcc: ['seen', 'visited', 'unique', 'found'],
  bestAcc: ['best', 'biggest', 'smallest', 'peak', 'top'],
};

const VOWELS = ["'aeiou'", "'aeiouAEIOU'", "'xyz'", "'abc'"];

class Builder {
  readonly lines: string[] = [];
  readonly used = new Set<string>();
  readonly accs: Acc[] = [];
  readonly helpers: Helper[] = [];
  branches = 0;
  printCount = 0;
  deadCounter: string | undefined;
  logging = false;
  /** In dict loops: the value variable, offered as a second element. */
  dictValue: Elem | undefined;
  /** Accumulator kinds this program builds (chosen up front so the code stays focused). */
  targets: AccKind[] = [];
  /** Statements of core logic left to emit. */
  budget = 0;

  constructor(
    readonly rng: Rng,
    readonly knobs: DifficultyKnobs,
  ) {}

  fresh(pool: string): string {
    const names = NAME_POOLS[pool] ?? [pool];
    const start = this.rng.int(names.length);
    for (let i = 0; i < names.length; i += 1) {
      const name = names[(start + i) % names.length]!;
      if (!this.used.has(name)) {
        this.used.add(name);
        return name;
      }
    }
    for (let i = 2; ; i += 1) {
      const name = `${names[0]}${i}`;
      if (!this.used.has(name)) {
        this.used.add(name);
        return name;
      }
    }
  }

  emit(indent: number, line: string): void {
    this.lines.push(`${'    '.repeat(indent)}${line}`);
  }

  acc(kind: AccKind): Acc | undefined {
    return this.accs.find((acc) => acc.kind === kind);
  }
}

interface Param {
  name: string;
  type: ValueType;
  role: Theme | 'k' | 'char' | 'prefix' | 'flag';
  annotation: string;
}

/** `mixed` is the original corpus's mix (no basic programs), kept so its programs stay the same. */
const MIXED: DifficultyMix = { mix: { easy: 3, medium: 4, hard: 3 } };

function knobsFor(rng: Rng, difficulty: Difficulty): { knobs: DifficultyKnobs; label: string } {
  if (typeof difficulty === 'object' && !('mix' in difficulty))
    return { knobs: difficulty, label: 'custom' };
  const mix = difficulty === 'mixed' ? MIXED : difficulty;
  let name: DifficultyName;
  if (typeof mix === 'object') {
    const weights = DIFFICULTY_LEVELS.map((level): [DifficultyName, number] => [
      level,
      mix.mix[level] ?? 0,
    ]).filter(([, weight]) => weight > 0);
    if (weights.length === 0)
      throw new RangeError(
        `difficulty mix ${JSON.stringify(mix.mix)} gives no level a positive weight; name at least one of ${DIFFICULTY_LEVELS.join(', ')}`,
      );
    name = rng.weighted<DifficultyName>(weights);
  } else name = mix;
  return { knobs: DIFFICULTY_PRESETS[name], label: name };
}

/** Argument types at a level: the knobs bound list/dict sizes (loop trip counts) and values. */
function themeTypes(
  knobs: DifficultyKnobs,
): Record<Theme, { type: ValueType; annotation: string }> {
  const { maxItems, maxInt, maxStrLength } = knobs;
  if (maxItems === undefined && maxInt === undefined && maxStrLength === undefined)
    return THEME_TYPES;
  const int: ValueType =
    maxInt === undefined
      ? { kind: 'int' }
      : { kind: 'int', min: -Math.floor(maxInt / 4), max: maxInt };
  // short strings use the mixed alphabet (letters of both cases, digits, separators) so that
  // character tests still go both ways; long ones keep the word-and-punctuation text
  const str: ValueType =
    maxStrLength === undefined
      ? THEME_TYPES.str.type
      : { kind: 'str', alphabet: maxStrLength < 12 ? 'mixed' : 'text', maxLength: maxStrLength };
  return {
    list_int: {
      type: { kind: 'list', of: int, ...(maxItems === undefined ? {} : { maxLength: maxItems }) },
      annotation: 'list[int]',
    },
    str: { type: str, annotation: 'str' },
    list_str: {
      type: {
        kind: 'list',
        of: { kind: 'str', alphabet: 'word', maxLength: Math.min(6, maxStrLength ?? 6) },
        maxLength: maxItems ?? 6,
      },
      annotation: 'list[str]',
    },
    dict: {
      type: {
        kind: 'dict',
        key: { kind: 'str', alphabet: 'word', maxLength: Math.min(5, maxStrLength ?? 5) },
        value: int,
        maxLength: maxItems ?? 5,
      },
      annotation: 'dict[str, int]',
    },
    // the int theme loops over range(n) or n's digits: its bound is the trip count
    int: {
      type: { kind: 'int', min: 0, max: maxItems === undefined ? 60 : 2 * maxItems },
      annotation: 'int',
    },
  };
}

const THEME_TYPES: Record<Theme, { type: ValueType; annotation: string }> = {
  list_int: { type: { kind: 'list', of: { kind: 'int' } }, annotation: 'list[int]' },
  str: { type: { kind: 'str', alphabet: 'text', maxLength: 12 }, annotation: 'str' },
  list_str: {
    type: { kind: 'list', of: { kind: 'str', alphabet: 'word', maxLength: 6 }, maxLength: 6 },
    annotation: 'list[str]',
  },
  dict: {
    type: {
      kind: 'dict',
      key: { kind: 'str', alphabet: 'word', maxLength: 5 },
      value: { kind: 'int' },
      maxLength: 5,
    },
    annotation: 'dict[str, int]',
  },
  int: { type: { kind: 'int', min: 0, max: 60 }, annotation: 'int' },
};

// ---------------------------------------------------------------------------------------------
// Helpers

function makeHelpers(b: Builder, theme: Theme): void {
  const rng = b.rng;
  const kind: ElemKind =
    theme === 'str' ? 'char' : theme === 'list_str' || theme === 'dict' ? 'word' : 'int';
  const pools: Record<ElemKind, (() => Helper)[]> = {
    int: [
      () =>
        helper(b, 'is_even', 'int', 'bool', (n, x) => [
          `def ${n}(${x}):`,
          `    return ${x} % 2 == 0`,
        ]),
      () =>
        helper(b, 'is_big', 'int', 'bool', (n, x) => [
          `def ${n}(${x}):`,
          `    return ${x} > ${rng.range(3, 12)}`,
        ]),
      () =>
        helper(b, 'square', 'int', 'int', (n, x) => [`def ${n}(${x}):`, `    return ${x} * ${x}`]),
      () =>
        helper(b, 'step', 'int', 'int', (n, x) => [
          `def ${n}(${x}):`,
          `    if ${x} % 2 == 0:`,
          `        return ${x} // 2`,
          `    return 3 * ${x} + 1`,
        ]),
      () =>
        helper(b, 'clamp', 'int', 'int', (n, x) => [
          `def ${n}(${x}):`,
          `    return max(0, min(${x}, ${rng.range(5, 15)}))`,
        ]),
      () =>
        helper(b, 'digit_sum', 'int', 'int', (n, x) => [
          `def ${n}(${x}):`,
          `    total = 0`,
          `    ${x} = abs(${x})`,
          `    while ${x} > 0:`,
          `        total += ${x} % 10`,
          `        ${x} //= 10`,
          `    return total`,
        ]),
    ],
    char: [
      () =>
        helper(b, 'is_vowel', 'char', 'bool', (n, x) => [
          `def ${n}(${x}):`,
          `    return ${x}.lower() in 'aeiou'`,
        ]),
      () =>
        helper(b, 'swap', 'char', 'str', (n, x) => [
          `def ${n}(${x}):`,
          `    return ${x}.lower() if ${x}.isupper() else ${x}.upper()`,
        ]),
      () =>
        helper(b, 'shift', 'char', 'str', (n, x) => [
          `def ${n}(${x}):`,
          `    if ${x}.isalpha() and ${x}.islower():`,
          `        return chr((ord(${x}) - ord('a') + ${rng.range(1, 5)}) % 26 + ord('a'))`,
          `    return ${x}`,
        ]),
      () =>
        helper(b, 'is_sep', 'char', 'bool', (n, x) => [
          `def ${n}(${x}):`,
          `    return ${x} in ' ,.-_!?'`,
        ]),
    ],
    word: [
      () =>
        helper(b, 'is_palindrome', 'word', 'bool', (n, x) => [
          `def ${n}(${x}):`,
          `    return ${x} == ${x}[::-1]`,
        ]),
      () =>
        helper(b, 'first_upper', 'word', 'str', (n, x) => [
          `def ${n}(${x}):`,
          `    return ${x}[:1].upper() + ${x}[1:]`,
        ]),
      () =>
        helper(b, 'strip_vowels', 'word', 'str', (n, x) => [
          `def ${n}(${x}):`,
          `    return ''.join(c for c in ${x} if c not in 'aeiou')`,
        ]),
      () =>
        helper(b, 'score', 'word', 'int', (n, x) => [
          `def ${n}(${x}):`,
          `    return sum(ord(c) % ${rng.range(3, 9)} for c in ${x})`,
        ]),
      () =>
        helper(b, 'is_short', 'word', 'bool', (n, x) => [
          `def ${n}(${x}):`,
          `    return len(${x}) <= ${rng.range(2, 4)}`,
        ]),
    ],
  };
  const first = rng.pick(pools[kind])();
  b.helpers.push(first);
  if (b.knobs.helpers >= 2) {
    // The second helper calls the first (nested helper calls).
    const second =
      first.gives === 'bool'
        ? helper(b, 'count_matching', 'list', 'int', (n, x) => [
            `def ${n}(${x}):`,
            `    return sum(1 for e in ${x} if ${first.name}(e))`,
          ])
        : first.gives === 'int'
          ? helper(b, 'twice', kind, 'int', (n, x) => [
              `def ${n}(${x}):`,
              `    return ${first.name}(${first.name}(${x}))`,
            ])
          : helper(b, 'apply_all', 'list', 'str', (n, x) => [
              `def ${n}(${x}):`,
              `    return ''.join(${first.name}(e) for e in ${x})`,
            ]);
    b.helpers.push(second);
  }
}

function helper(
  b: Builder,
  base: string,
  takes: Helper['takes'],
  gives: Helper['gives'],
  body: (name: string, arg: string) => string[],
): Helper {
  const name = b.used.has(base) ? `${base}_${b.helpers.length + 1}` : base;
  b.used.add(name);
  const arg = takes === 'list' ? 'seq' : takes === 'int' ? 'x' : takes === 'char' ? 'ch' : 'w';
  return { name, takes, gives, code: body(name, arg).join('\n') };
}

function helperFor(
  b: Builder,
  takes: ElemKind | 'list',
  gives?: Helper['gives'],
): Helper | undefined {
  const options = b.helpers.filter(
    (h) => h.takes === takes && (gives === undefined || h.gives === gives),
  );
  return options.length === 0 ? undefined : b.rng.pick(options);
}

// ---------------------------------------------------------------------------------------------
// Expressions

function kParam(params: Param[]): string | undefined {
  return params.find((p) => p.role === 'k')?.name;
}

function charParam(params: Param[]): string | undefined {
  return params.find((p) => p.role === 'char')?.name;
}

function condition(b: Builder, elem: Elem, params: Param[], index?: string): string {
  const rng = b.rng;
  const k = kParam(params);
  const c = charParam(params);
  const e = elem.expr;
  const predicate = helperFor(b, elem.kind, 'bool');
  if (predicate !== undefined && rng.chance(0.45))
    return `${rng.chance(0.25) ? 'not ' : ''}${predicate.name}(${e})`;
  const options: string[] = [];
  switch (elem.kind) {
    case 'int':
      options.push(
        `${e} % ${rng.range(2, 5)} == ${rng.chance(0.7) ? 0 : 1}`,
        `${e} > ${k ?? rng.range(0, 10)}`,
        `${e} < ${k ?? rng.range(-2, 6)}`,
        `${e} % 2 == 1`,
        `${e} >= 0`,
        `${e} != ${k ?? rng.range(0, 5)}`,
      );
      if (index !== undefined) options.push(`${index} % 2 == 0`, `${e} > ${index}`);
      break;
    case 'char':
      options.push(
        `${e}.isdigit()`,
        `${e}.isalpha()`,
        `${e}.isupper()`,
        `${e} in ${rng.pick(VOWELS)}`,
        `${e} == ${c ?? "' '"}`,
        `${e}.isspace()`,
        `${e} != ${c ?? "'a'"}`,
        `${e}.islower()`,
      );
      if (index !== undefined)
        options.push(`${index} % 2 == 0`, `${index} > ${k ?? rng.range(1, 4)}`);
      break;
    case 'word': {
      const prefix = params.find((p) => p.role === 'prefix')?.name;
      options.push(
        `len(${e}) > ${k ?? rng.range(2, 5)}`,
        `${e}.startswith(${prefix ?? rng.pick(["'a'", "'b'", "'s'", "'th'"])})`,
        `${e}.endswith(${prefix ?? rng.pick(["'s'", "'e'", "'y'"])})`,
        `${e} == ${e}[::-1]`,
        `${e}.isalpha()`,
        `${e}[:1] in ${rng.pick(VOWELS)}`,
        `${e}.lower() != ${e}`,
      );
      if (index !== undefined) options.push(`${index} % 2 == 1`);
      break;
    }
  }
  let cond = rng.pick(options);
  if (rng.chance(0.15) && b.knobs.maxBranches > 1) {
    cond = `${cond} ${rng.chance(0.5) ? 'and' : 'or'} ${rng.pick(options.filter((o) => o !== cond))}`;
  }
  return cond;
}

/** A transformation of an element into another element (local temporaries). */
function derive(b: Builder, elem: Elem): Elem {
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const derived = deriveOnce(b, elem);
    if (derived.kind === elem.kind || b.targets.some((kind) => accepts(kind, derived.kind)))
      return derived;
  }
  return elem.kind === 'int'
    ? { kind: 'int', expr: `${elem.expr} + 1` }
    : { kind: elem.kind, expr: `${elem.expr}.lower()` };
}

function deriveOnce(b: Builder, elem: Elem): Elem {
  const rng = b.rng;
  const helperInt = helperFor(b, elem.kind, 'int');
  const helperStr = helperFor(b, elem.kind, 'str');
  switch (elem.kind) {
    case 'int': {
      if (helperInt !== undefined && rng.chance(0.5))
        return { kind: 'int', expr: `${helperInt.name}(${elem.expr})` };
      return {
        kind: 'int',
        expr: rng.pick([
          `${elem.expr} * ${rng.range(2, 4)}`,
          `${elem.expr} + ${rng.range(1, 9)}`,
          `${elem.expr} - ${rng.range(1, 5)}`,
          `abs(${elem.expr})`,
          `${elem.expr} // 2`,
          `${elem.expr} ** 2`,
          `-${elem.expr}`,
        ]),
      };
    }
    case 'char':
      if (helperStr !== undefined && rng.chance(0.5))
        return { kind: 'char', expr: `${helperStr.name}(${elem.expr})` };
      return rng.chance(0.8)
        ? { kind: 'char', expr: `${elem.expr}.${rng.pick(['upper', 'lower', 'swapcase'])}()` }
        : { kind: 'int', expr: `ord(${elem.expr})` };
    case 'word':
      if (helperStr !== undefined && rng.chance(0.5))
        return { kind: 'word', expr: `${helperStr.name}(${elem.expr})` };
      if (helperInt !== undefined && rng.chance(0.3))
        return { kind: 'int', expr: `${helperInt.name}(${elem.expr})` };
      return rng.chance(0.7)
        ? {
            kind: 'word',
            expr: rng.pick([
              `${elem.expr}.upper()`,
              `${elem.expr}[::-1]`,
              `${elem.expr}.capitalize()`,
              `${elem.expr}.strip('aeiou')`,
              `${elem.expr}[1:]`,
              `${elem.expr} + ${elem.expr}[:1]`,
              `${elem.expr}.replace('a', '')`,
            ]),
          }
        : {
            kind: 'int',
            expr: rng.pick([
              `len(${elem.expr})`,
              `${elem.expr}.count('a')`,
              `len(set(${elem.expr}))`,
            ]),
          };
  }
}

/** Whether an accumulator kind can take elements of a kind. */
function accepts(acc: AccKind, elem: ElemKind): boolean {
  switch (acc) {
    case 'list_int':
    case 'best':
      return elem === 'int';
    case 'total':
      return elem !== 'char';
    case 'list_str':
    case 'out':
    case 'count':
    case 'counts':
      return true;
    case 'seen':
      return true;
  }
}

/** An accumulator for `elem`: one of the program's targets when one fits, else a counter. */
function targetFor(b: Builder, elem: ElemKind, preamble: string[]): Acc {
  const fitting = b.targets.filter((kind) => accepts(kind, elem));
  return ensureAcc(b, fitting.length > 0 ? b.rng.pick(fitting) : 'count', preamble);
}

function accInit(kind: AccKind, rng: Rng): string {
  switch (kind) {
    case 'list_int':
    case 'list_str':
      return '[]';
    case 'total':
      return rng.pick(['0', '0', '1']);
    case 'count':
      return '0';
    case 'out':
      return "''";
    case 'counts':
      return '{}';
    case 'seen':
      return 'set()';
    case 'best':
      return rng.pick(['0', '-1', 'None']);
  }
}

function ensureAcc(b: Builder, kind: AccKind, preamble: string[]): Acc {
  const existing = b.acc(kind);
  if (existing !== undefined) return existing;
  const pool = kind === 'best' ? 'bestAcc' : `${kind}Acc`;
  const acc: Acc = { kind, name: b.fresh(pool), updated: false };
  b.accs.push(acc);
  preamble.push(`${acc.name} = ${accInit(kind, b.rng)}`);
  return acc;
}

function update(b: Builder, elem: Elem, acc: Acc, index?: string): string {
  const rng = b.rng;
  const e = elem.expr;
  acc.updated = true;
  switch (acc.kind) {
    case 'list_int':
      return rng.pick([
        `${acc.name}.append(${e})`,
        `${acc.name}.append(${e} * ${rng.range(2, 3)})`,
        `${acc.name}.insert(0, ${e})`,
        index !== undefined ? `${acc.name}.append(${e} + ${index})` : `${acc.name}.append(-${e})`,
        `${acc.name} += [${e}, ${e}]`,
      ]);
    case 'list_str':
      return elem.kind === 'int'
        ? `${acc.name}.append(str(${e}))`
        : rng.pick([
            `${acc.name}.append(${e})`,
            `${acc.name}.insert(0, ${e})`,
            `${acc.name}.append(${e}.upper())`,
            `${acc.name}.extend([${e}, '-'])`,
          ]);
    case 'total':
      return elem.kind === 'int'
        ? rng.pick([
            `${acc.name} += ${e}`,
            `${acc.name} -= ${e}`,
            `${acc.name} = ${acc.name} * 2 + ${e}`,
            `${acc.name} += ${e} % 3`,
          ])
        : `${acc.name} += len(${e})`;
    case 'count':
      return rng.pick([`${acc.name} += 1`, `${acc.name} += 1`, `${acc.name} += 2`]);
    case 'out':
      return elem.kind === 'int'
        ? rng.pick([`${acc.name} += str(${e})`, `${acc.name} = str(${e}) + ${acc.name}`])
        : rng.pick([
            `${acc.name} += ${e}`,
            `${acc.name} = ${e} + ${acc.name}`,
            `${acc.name} += ${e} * 2`,
            `${acc.name} += ${e}[::-1]`,
          ]);
    case 'counts':
      return rng.pick([
        `${acc.name}[${e}] = ${acc.name}.get(${e}, 0) + 1`,
        `${acc.name}[${e}] = ${index ?? `len(${acc.name})`}`,
      ]);
    case 'seen':
      return `${acc.name}.add(${e})`;
    case 'best':
      if (acc.name.startsWith('small'))
        return `${acc.name} = ${e} if ${acc.name} is None or ${e} < ${acc.name} else ${acc.name}`;
      return elem.kind === 'int'
        ? `${acc.name} = ${e} if ${acc.name} is None or ${e} > ${acc.name} else ${acc.name}`
        : `${acc.name} = ${e}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Loops

interface LoopHeader {
  lines: string[];
  /** Lines at the start of the body (reading the element, advancing a while index). */
  bodyStart: string[];
  elem: Elem;
  index?: string;
  isWhile: boolean;
}

function loopOver(b: Builder, theme: Theme, source: string): LoopHeader {
  const rng = b.rng;
  switch (theme) {
    case 'list_int': {
      const x = b.fresh('intElem');
      const form = rng.weighted<string>([
        ['for', 5],
        ['enumerate', 2],
        ['range', 2],
        ['while', 1],
        ['sorted', 1],
        ['pairs', 1],
      ]);
      if (form === 'enumerate') {
        const i = b.fresh('i');
        return {
          lines: [`for ${i}, ${x} in enumerate(${source}):`],
          bodyStart: [],
          elem: { kind: 'int', expr: x },
          index: i,
          isWhile: false,
        };
      }
      if (form === 'range') {
        const i = b.fresh('i');
        return {
          lines: [`for ${i} in range(len(${source})):`],
          bodyStart: [],
          elem: { kind: 'int', expr: `${source}[${i}]` },
          index: i,
          isWhile: false,
        };
      }
      if (form === 'pairs') {
        const i = b.fresh('i');
        return {
          lines: [`for ${i} in range(1, len(${source})):`],
          bodyStart: [],
          elem: { kind: 'int', expr: `${source}[${i}] - ${source}[${i} - 1]` },
          index: i,
          isWhile: false,
        };
      }
      if (form === 'while') {
        const i = b.fresh('i');
        return {
          lines: [`${i} = 0`, `while ${i} < len(${source}):`],
          bodyStart: [`${x} = ${source}[${i}]`, `${i} += ${rng.chance(0.8) ? 1 : 2}`],
          elem: { kind: 'int', expr: x },
          index: i,
          isWhile: true,
        };
      }
      const iterable =
        form === 'sorted'
          ? rng.pick([`sorted(${source})`, `${source}[::-1]`, `reversed(${source})`])
          : source;
      return {
        lines: [`for ${x} in ${iterable}:`],
        bodyStart: [],
        elem: { kind: 'int', expr: x },
        isWhile: false,
      };
    }
    case 'str': {
      const form = rng.weighted<string>([
        ['for', 5],
        ['enumerate', 2],
        ['words', 2],
        ['while', 1],
      ]);
      if (form === 'words') {
        const w = b.fresh('wordElem');
        return {
          lines: [`for ${w} in ${source}.split():`],
          bodyStart: [],
          elem: { kind: 'word', expr: w },
          isWhile: false,
        };
      }
      const ch = b.fresh('charElem');
      if (form === 'enumerate') {
        const i = b.fresh('i');
        return {
          lines: [`for ${i}, ${ch} in enumerate(${source}):`],
          bodyStart: [],
          elem: { kind: 'char', expr: ch },
          index: i,
          isWhile: false,
        };
      }
      if (form === 'while') {
        const i = b.fresh('i');
        return {
          lines: [`${i} = 0`, `while ${i} < len(${source}):`],
          bodyStart: [`${ch} = ${source}[${i}]`, `${i} += 1`],
          elem: { kind: 'char', expr: ch },
          index: i,
          isWhile: true,
        };
      }
      return {
        lines: [`for ${ch} in ${source}:`],
        bodyStart: [],
        elem: { kind: 'char', expr: ch },
        isWhile: false,
      };
    }
    case 'list_str': {
      const w = b.fresh('wordElem');
      if (rng.chance(0.3)) {
        const i = b.fresh('i');
        return {
          lines: [`for ${i}, ${w} in enumerate(${source}):`],
          bodyStart: [],
          elem: { kind: 'word', expr: w },
          index: i,
          isWhile: false,
        };
      }
      return {
        lines: [`for ${w} in ${rng.chance(0.2) ? `sorted(${source})` : source}:`],
        bodyStart: [],
        elem: { kind: 'word', expr: w },
        isWhile: false,
      };
    }
    case 'dict': {
      const key = b.fresh(rng.pick(['key', 'k', 'name']));
      const value = b.fresh(rng.pick(['value', 'v', 'val', 'score']));
      b.dictValue = { kind: 'int', expr: value };
      if (rng.chance(0.3)) {
        return {
          lines: [`for ${key} in sorted(${source}):`],
          bodyStart: [`${value} = ${source}[${key}]`],
          elem: { kind: 'word', expr: key },
          isWhile: false,
        };
      }
      return {
        lines: [`for ${key}, ${value} in ${source}.items():`],
        bodyStart: [],
        elem: { kind: 'word', expr: key },
        isWhile: false,
      };
    }
    case 'int': {
      if (rng.chance(0.35)) {
        const digit = b.fresh(rng.pick(['d', 'digit', 'r']));
        return {
          lines: [`while ${source} > 0:`],
          bodyStart: [
            `${digit} = ${source} % ${rng.pick([10, 10, 2, 3])}`,
            `${source} //= ${rng.pick([10, 10, 2])}`,
          ],
          elem: { kind: 'int', expr: digit },
          isWhile: true,
        };
      }
      const i = b.fresh(rng.pick(['i', 'j', 'step']));
      const bound = rng.pick([
        `range(${source})`,
        `range(1, ${source} + 1)`,
        `range(${source} % 12)`,
        `range(2, ${source})`,
      ]);
      return {
        lines: [`for ${i} in ${bound}:`],
        bodyStart: [],
        elem: { kind: 'int', expr: i },
        isWhile: false,
      };
    }
  }
}

/** Inner loop for nested iteration over something the element offers. */
function innerLoop(
  b: Builder,
  outer: LoopHeader,
  theme: Theme,
  params: Param[],
): LoopHeader | undefined {
  const rng = b.rng;
  const e = outer.elem;
  if (e.kind === 'word') {
    const ch = b.fresh('charElem');
    return {
      lines: [`for ${ch} in ${e.expr}:`],
      bodyStart: [],
      elem: { kind: 'char', expr: ch },
      isWhile: false,
    };
  }
  if (e.kind === 'int') {
    const j = b.fresh(rng.pick(['j', 'k2', 't']));
    const primary = params.find((p) => p.role === theme);
    if (
      outer.index !== undefined &&
      primary !== undefined &&
      theme === 'list_int' &&
      rng.chance(0.6)
    ) {
      return {
        lines: [`for ${j} in range(${outer.index} + 1, len(${primary.name})):`],
        bodyStart: [],
        elem: {
          kind: 'int',
          expr: rng.pick([
            `${e.expr} + ${primary.name}[${j}]`,
            `${primary.name}[${j}] - ${e.expr}`,
            `${primary.name}[${j}]`,
          ]),
        },
        isWhile: false,
      };
    }
    return {
      lines: [`for ${j} in range(${e.expr} % ${rng.range(3, 5)}):`],
      bodyStart: [],
      elem: { kind: 'int', expr: rng.pick([j, `${j} * ${e.expr}`, `${e.expr} + ${j}`]) },
      isWhile: false,
    };
  }
  if (e.kind === 'char' && theme === 'str') {
    const primary = params.find((p) => p.role === 'str');
    if (primary === undefined) return undefined;
    const other = b.fresh(rng.pick(['other', 'c2', 'd']));
    return {
      lines: [`for ${other} in ${primary.name}[:${rng.range(2, 4)}]:`],
      bodyStart: [],
      elem: { kind: 'char', expr: rng.chance(0.5) ? other : e.expr },
      isWhile: false,
    };
  }
  return undefined;
}

function loopBody(
  b: Builder,
  header: LoopHeader,
  theme: Theme,
  params: Param[],
  depth: number,
  indent: number,
  preamble: string[],
): void {
  const rng = b.rng;
  for (const line of header.bodyStart) b.emit(indent, line);
  if (b.deadCounter !== undefined && depth === 1 && rng.chance(0.7))
    b.emit(indent, `${b.deadCounter} += 1`);
  if (b.printCount < 1 && rng.chance(b.knobs.boilerplate * 0.5)) {
    b.printCount += 1;
    b.emit(
      indent,
      b.logging
        ? `logger.debug("visiting %s", ${header.elem.expr})`
        : `print('visiting', ${header.elem.expr})`,
    );
  }
  let elem = header.elem;
  // Dict loops also offer the value.
  const value = b.dictValue;
  if (theme === 'dict' && value !== undefined && depth === 1 && rng.chance(0.6)) elem = value;
  const count = Math.max(1, Math.min(rng.range(1, b.knobs.maxBodyStatements), b.budget));
  let emitted = 0;
  let nested = false;
  const updateLine = (target: Elem): string =>
    update(b, target, targetFor(b, target.kind, preamble), header.index);
  for (let s = 0; s < count; s += 1) {
    const choice = rng.weighted<string>([
      ['update', 4],
      ['if', b.branches < b.knobs.maxBranches ? 4 : 0],
      ['derive', emitted === 0 ? 1.5 : 0.5],
      ['dedupe', b.acc('seen') === undefined ? 0.6 : 0],
      ['nested', depth < b.knobs.maxLoopDepth && !nested && b.budget >= 3 ? 2.5 : 0],
    ]);
    b.budget -= 1;
    if (choice === 'derive') {
      const temp = b.fresh(rng.pick(['tmp', 'y', 'cur', 'val2', 'item2', 'z']));
      const derived = derive(b, elem);
      b.emit(indent, `${temp} = ${derived.expr}`);
      elem = { kind: derived.kind, expr: temp };
      continue;
    }
    if (choice === 'nested') {
      const inner = innerLoop(b, { ...header, elem }, theme, params);
      if (inner !== undefined) {
        nested = true;
        for (const line of inner.lines) b.emit(indent, line);
        loopBody(b, inner, theme, params, depth + 1, indent + 1, preamble);
        emitted += 1;
        continue;
      }
    }
    if (choice === 'dedupe') {
      // The classic "first time seen" idiom.
      const seen = ensureAcc(b, 'seen', preamble);
      seen.updated = true;
      b.emit(indent, `if ${elem.expr} not in ${seen.name}:`);
      b.emit(indent + 1, `${seen.name}.add(${elem.expr})`);
      b.emit(indent + 1, updateLine(elem));
      emitted += 1;
      continue;
    }
    if (choice === 'if') {
      b.branches += 1;
      b.emit(indent, `if ${condition(b, elem, params, header.index)}:`);
      const jump = rng.chance(0.2)
        ? header.isWhile
          ? 'break'
          : rng.pick(['continue', 'break'])
        : undefined;
      b.emit(indent + 1, updateLine(elem));
      if (jump !== undefined) b.emit(indent + 1, jump);
      if (rng.chance(0.35) && b.branches < b.knobs.maxBranches) {
        b.branches += 1;
        b.emit(indent, `elif ${condition(b, elem, params, header.index)}:`);
        b.emit(indent + 1, updateLine(elem));
      }
      if (rng.chance(0.4)) {
        b.emit(indent, 'else:');
        b.emit(indent + 1, updateLine(elem));
      }
      emitted += 1;
      continue;
    }
    b.emit(indent, updateLine(elem));
    emitted += 1;
  }
  if (emitted === 0) b.emit(indent, updateLine(elem));
}

// ---------------------------------------------------------------------------------------------
// Straight-line steps (comprehensions, string methods)

function straightSteps(
  b: Builder,
  theme: Theme,
  params: Param[],
): { lines: string[]; results: { name: string; type: AccKind }[] } {
  const rng = b.rng;
  const primary = params.find((p) => p.role === theme)!;
  const p = primary.name;
  const k = kParam(params);
  const c = charParam(params);
  const lines: string[] = [];
  const results: { name: string; type: AccKind }[] = [];
  const steps = Math.min(
    rng.range(2, 3 + Math.min(2, b.knobs.maxBranches)),
    Math.max(1, b.knobs.maxStatements),
  );
  const predicateInt = helperFor(b, 'int', 'bool');
  const mapInt = helperFor(b, 'int', 'int');
  const mapWord = helperFor(b, 'word', 'str');
  const mapChar = helperFor(b, 'char', 'str');
  let current = p;
  for (let s = 0; s < steps; s += 1) {
    const name = b.fresh(
      rng.pick(['result', 'filtered', 'mapped', 'parts', 'tmp', 'out', 'res', 'new']),
    );
    switch (theme) {
      case 'list_int': {
        const x = rng.pick(['x', 'n', 'v']);
        const cond =
          predicateInt && rng.chance(0.5)
            ? `${predicateInt.name}(${x})`
            : rng.pick([
                `${x} % 2 == 0`,
                `${x} > ${k ?? rng.range(0, 8)}`,
                `${x} != ${k ?? 0}`,
                `${x} % 3`,
              ]);
        const mapped =
          mapInt && rng.chance(0.5)
            ? `${mapInt.name}(${x})`
            : rng.pick([x, `${x} * 2`, `${x} + 1`, `abs(${x})`, `${x} ** 2`, `${x} % 5`]);
        lines.push(
          rng.pick([
            `${name} = [${mapped} for ${x} in ${current} if ${cond}]`,
            `${name} = [${mapped} for ${x} in ${current}]`,
            `${name} = sorted(${current}, reverse=${rng.chance(0.5) ? 'True' : 'False'})`,
            `${name} = ${current}[${rng.pick(['::-1', '1:', ':-1', '::2', `:${k ?? 3}`])}]`,
            `${name} = list(dict.fromkeys(${current}))`,
            `${name} = ${current} + [${mapped.replace(new RegExp(`\\b${x}\\b`, 'g'), `len(${current})`)}]`,
          ]),
        );
        results.push({ name, type: 'list_int' });
        current = name;
        break;
      }
      case 'str': {
        const ch = rng.pick(['ch', 'c']);
        const mapped =
          mapChar && rng.chance(0.5)
            ? `${mapChar.name}(${ch})`
            : rng.pick([ch, `${ch}.upper()`, `${ch} * 2`, `${ch}.swapcase()`]);
        const str = rng.pick([
          `${name} = ''.join(${mapped} for ${ch} in ${current} if ${rng.pick([`${ch}.isalpha()`, `not ${ch}.isdigit()`, `${ch} != ${c ?? "' '"}`, `${ch} not in 'aeiou'`])})`,
          `${name} = ${current}.${rng.pick(['upper', 'lower', 'strip', 'title', 'swapcase', 'capitalize', 'lstrip', 'rstrip'])}()`,
          `${name} = ${current}.replace(${c ?? rng.pick(["'a'", "' '", "'o'"])}, ${rng.pick(["''", "'*'", "'_'", "'AB'"])})`,
          `${name} = ${current}[::-1]`,
          `${name} = ${current}.center(${k ?? rng.range(4, 12)}, ${rng.pick(["'*'", "'-'", "'.'"])})`,
          `${name} = ${current}.zfill(${k ?? rng.range(3, 9)})`,
          `${name} = ${rng.pick(["'-'", "' '", "''", "', '"])}.join(${current}.split(${c ?? ''}))`,
          `${name} = ${current}[${k ?? rng.range(1, 3)}:] + ${current}[:${k ?? rng.range(1, 3)}]`,
        ]);
        lines.push(str);
        results.push({ name, type: 'out' });
        current = name;
        break;
      }
      case 'list_str': {
        const w = rng.pick(['w', 'word', 's']);
        const mapped =
          mapWord && rng.chance(0.5)
            ? `${mapWord.name}(${w})`
            : rng.pick([w, `${w}.upper()`, `${w}[::-1]`, `${w}.capitalize()`, `${w}[:2]`]);
        lines.push(
          rng.pick([
            `${name} = [${mapped} for ${w} in ${current} if ${rng.pick([`len(${w}) > ${k ?? 2}`, `${w}.isalpha()`, `${w}`, `${w}[:1] in 'aeiou'`])}]`,
            `${name} = sorted(${current}, key=${rng.pick(['len', 'str.lower', `lambda ${w}: ${w}[::-1]`])})`,
            `${name} = [${mapped} for ${w} in ${current}]`,
            `${name} = ${current}[::-1]`,
          ]),
        );
        results.push({ name, type: 'list_str' });
        current = name;
        break;
      }
      case 'dict': {
        const [kk, vv] = rng.pick([
          ['k', 'v'],
          ['key', 'value'],
          ['name', 'score'],
        ] as const);
        const form = rng.int(4);
        if (form === 0) {
          lines.push(
            `${name} = {${kk}: ${vv} ${rng.pick(['* 2', '+ 1', '% 3', '- 1'])} for ${kk}, ${vv} in ${p}.items() if ${vv} ${rng.pick(['>', '<', '!=', '>='])} ${k ?? rng.range(0, 5)}}`,
          );
          results.push({ name, type: 'counts' });
        } else if (form === 1) {
          lines.push(`${name} = sorted(${p}, key=lambda ${kk}: (${p}[${kk}], ${kk}))`);
          results.push({ name, type: 'list_str' });
        } else if (form === 2) {
          lines.push(
            `${name} = [${kk} for ${kk}, ${vv} in ${p}.items() if ${vv} % 2 == ${rng.int(2)}]`,
          );
          results.push({ name, type: 'list_str' });
        } else {
          lines.push(
            `${name} = sum(${vv} for ${vv} in ${p}.values() if ${vv} > ${k ?? rng.range(0, 5)})`,
          );
          results.push({ name, type: 'total' });
        }
        break;
      }
      case 'int': {
        const form = rng.int(4);
        if (form === 0)
          lines.push(
            `${name} = [${rng.pick(['i * i', 'i % 3', 'i + 1', 'i * 2'])} for i in range(${current === p ? p : `len(${current})`} % 10) if i % ${rng.range(2, 3)}]`,
          );
        else if (form === 1) lines.push(`${name} = [int(d) for d in str(${p})]`);
        else if (form === 2)
          lines.push(`${name} = [${p} // ${rng.range(2, 5)}, ${p} % ${rng.range(2, 7)}, ${p} * 2]`);
        else lines.push(`${name} = list(range(${p} % 7, ${p} % 7 + ${rng.range(2, 5)}))`);
        results.push({ name, type: 'list_int' });
        current = name;
        break;
      }
    }
  }
  return { lines, results };
}

function returnExpression(b: Builder, results: { name: string; type: AccKind }[]): string {
  const rng = b.rng;
  const pick = rng.pick(results);
  const other = results.length > 1 ? rng.pick(results.filter((r) => r !== pick)) : undefined;
  const forms: string[] = [pick.name];
  switch (pick.type) {
    case 'list_int':
      forms.push(
        `sorted(${pick.name})`,
        `${pick.name}[::-1]`,
        `sum(${pick.name})`,
        `len(${pick.name})`,
        `${pick.name}[:3]`,
        `max(${pick.name}) if ${pick.name} else -1`,
      );
      break;
    case 'list_str':
      forms.push(
        `''.join(${pick.name})`,
        `' '.join(${pick.name})`,
        `len(${pick.name})`,
        `${pick.name}[-2:]`,
        `sorted(${pick.name})`,
      );
      break;
    case 'out':
      forms.push(
        `${pick.name}.strip()`,
        `${pick.name}.upper()`,
        `${pick.name}[::-1]`,
        `len(${pick.name})`,
        `${pick.name}[:6]`,
      );
      break;
    case 'counts':
      forms.push(
        `sorted(${pick.name}.items())`,
        `len(${pick.name})`,
        `max(${pick.name}.values()) if ${pick.name} else 0`,
        `list(${pick.name}.keys())`,
      );
      break;
    case 'seen':
      forms.push(`sorted(${pick.name})`, `len(${pick.name})`);
      break;
    case 'total':
    case 'count':
      forms.push(`${pick.name} % ${rng.range(5, 100)}`, `${pick.name} * 2`);
      break;
    case 'best':
      break;
  }
  let expr = rng.pick(forms);
  if (other !== undefined && rng.chance(0.3)) {
    const second = other.type === 'seen' ? `sorted(${other.name})` : other.name;
    expr = `${expr}, ${second}`;
  }
  return expr;
}

// ---------------------------------------------------------------------------------------------

const DOCSTRINGS = [
  'Process the input and return the computed result.',
  'Compute a summary of the given values.',
  'Transform the data according to a few simple rules.',
  'Helper used by the report generator.',
  'Return a cleaned-up version of the input.',
];

/**
 * One generated program: `index` selects it, `seed` the corpus; the same pair always gives the
 * same program.
 */
export function generateProgram(
  seed: number,
  index: number,
  difficulty: Difficulty = 'mixed',
): GeneratedProgram {
  const rng = Rng.derive(seed, 'generator', index);
  const { knobs, label } = knobsFor(rng, difficulty);
  const b = new Builder(rng, knobs);
  const theme = rng.weighted<Theme>([
    ['list_int', 30],
    ['str', 30],
    ['list_str', 14],
    ['dict', 12],
    ['int', 14],
  ]);
  const entry = rng.pick(['f', 'f', 'f', 'solve', 'process', 'transform', 'compute', 'func']);
  b.used.add(entry);
  const params: Param[] = [];
  const primaryName = b.fresh(theme);
  const types = themeTypes(knobs);
  params.push({
    name: primaryName,
    type: types[theme].type,
    role: theme,
    annotation: types[theme].annotation,
  });
  const extras = rng.weighted<number>([
    [0, 4],
    [1, 5],
    [2, 1],
  ]);
  for (let e = 0; e < extras; e += 1) {
    const role = rng.weighted<Param['role']>([
      ['k', params.some((p) => p.role === 'k') ? 0 : 5],
      [
        'char',
        params.some((p) => p.role === 'char') || (theme !== 'str' && theme !== 'list_str') ? 0 : 4,
      ],
      ['prefix', params.some((p) => p.role === 'prefix') || theme !== 'list_str' ? 0 : 3],
      ['flag', params.some((p) => p.role === 'flag') ? 0 : 1],
    ]);
    const name = b.fresh(role);
    const type: ValueType =
      role === 'k'
        ? { kind: 'int', min: 0, max: 9 }
        : role === 'char'
          ? { kind: 'char', alphabet: theme === 'str' ? 'mixed' : 'lower' }
          : role === 'prefix'
            ? { kind: 'str', alphabet: 'lower', maxLength: 2 }
            : { kind: 'bool' };
    const annotation = role === 'k' ? 'int' : role === 'flag' ? 'bool' : 'str';
    params.push({ name, type, role, annotation });
  }
  if (knobs.helpers > 0 && rng.chance(0.75)) makeHelpers(b, theme);

  const boiler = (): boolean => rng.chance(knobs.boilerplate);
  const annotate = boiler();
  b.logging = boiler() && rng.chance(0.5);
  const body: string[] = [];

  if (boiler()) body.push(`    """${rng.pick(DOCSTRINGS)}"""`);
  if (boiler()) {
    b.deadCounter = b.fresh(rng.pick(['steps', 'iterations', 'calls', 'ops']));
    body.push(`    ${b.deadCounter} = 0`);
  }
  if (boiler()) {
    const copy =
      (theme === 'list_int' || theme === 'list_str') && rng.chance(0.5)
        ? `list(${primaryName})`
        : primaryName;
    body.push(`    original = ${copy}  # keep a copy for debugging`);
  }

  const flag = params.find((p) => p.role === 'flag')?.name;
  let results: { name: string; type: AccKind }[];
  const useLoop = knobs.maxLoopDepth > 0 && !rng.chance(knobs.comprehensions * 0.6);
  b.budget = knobs.maxStatements;
  const baseElem: ElemKind =
    theme === 'str' ? 'char' : theme === 'list_str' ? 'word' : theme === 'dict' ? 'word' : 'int';
  const candidates = (
    ['list_int', 'list_str', 'total', 'count', 'out', 'counts', 'best'] as AccKind[]
  ).filter((kind) => accepts(kind, baseElem));
  b.targets = [rng.pick(candidates)];
  if (rng.chance(0.35))
    b.targets.push(rng.pick(candidates.filter((kind) => kind !== b.targets[0])));
  if (theme === 'dict' && !b.targets.some((kind) => accepts(kind, 'int'))) b.targets.push('total');
  if (useLoop) {
    const preamble: string[] = [];
    if (rng.chance(0.25)) {
      const normalise: Record<Theme, string[]> = {
        list_int: [
          `${primaryName} = sorted(${primaryName})`,
          `${primaryName} = [x for x in ${primaryName} if x >= 0]`,
          `${primaryName} = list(${primaryName})`,
        ],
        str: [
          `${primaryName} = ${primaryName}.lower()`,
          `${primaryName} = ${primaryName}.strip()`,
          `${primaryName} = ${primaryName}.replace(' ', '')`,
        ],
        list_str: [
          `${primaryName} = [w.lower() for w in ${primaryName}]`,
          `${primaryName} = sorted(${primaryName})`,
        ],
        dict: [`${primaryName} = dict(${primaryName})`],
        int: [`${primaryName} = abs(${primaryName})`],
      };
      preamble.push(rng.pick(normalise[theme]));
    }
    const header = loopOver(b, theme, primaryName);
    b.lines.length = 0;
    for (const line of header.lines) b.emit(1, line);
    loopBody(b, header, theme, params, 1, 2, preamble);
    const loopLines = [...b.lines];
    b.lines.length = 0;
    if (boiler()) body.push('    # accumulate the results');
    for (const line of preamble) body.push(`    ${line}`);
    body.push(...loopLines);
    // A second, sequential loop sometimes (over the first loop's list result).
    const listAcc = b.acc('list_int');
    if (listAcc !== undefined && knobs.maxLoopDepth >= 2 && rng.chance(0.25)) {
      const y = b.fresh('intElem');
      const init: string[] = [];
      const acc2 = ensureAcc(b, rng.pick<AccKind>(['total', 'count', 'best']), init);
      for (const line of init) body.push(`    ${line}`);
      body.push(`    for ${y} in ${listAcc.name}:`);
      body.push(`        if ${condition(b, { kind: 'int', expr: y }, params)}:`);
      body.push(`            ${update(b, { kind: 'int', expr: y }, acc2)}`);
    }
    const updated = b.accs.filter((acc) => acc.updated && acc.kind !== 'seen');
    results = (updated.length > 0 ? updated : b.accs).map((acc) => ({
      name: acc.name,
      type: acc.kind,
    }));
    if (results.length === 0) {
      results = [
        {
          name: primaryName,
          type:
            theme === 'str'
              ? 'out'
              : theme === 'list_str'
                ? 'list_str'
                : theme === 'dict'
                  ? 'counts'
                  : 'total',
        },
      ];
    }
    // Post-loop transformations.
    if (rng.chance(0.35)) {
      const target = rng.pick(results);
      const post: Partial<Record<AccKind, string[]>> = {
        list_int: [
          `${target.name}.sort()`,
          `${target.name}.reverse()`,
          `${target.name} = ${target.name}[:${params.find((p) => p.role === 'k')?.name ?? rng.range(2, 5)}]`,
        ],
        list_str: [`${target.name}.sort()`, `${target.name} = ${target.name}[::-1]`],
        out: [
          `${target.name} = ${target.name}.strip()`,
          `${target.name} = ${target.name}.replace('a', 'A')`,
          `${target.name} = ${target.name}[::-1]`,
        ],
        total: [
          `${target.name} = ${target.name} % ${rng.range(7, 100)}`,
          `${target.name} = abs(${target.name})`,
        ],
        count: [`${target.name} = ${target.name} * 2`],
      };
      const options = post[target.type];
      if (options !== undefined) body.push(`    ${rng.pick(options)}`);
    }
  } else {
    const steps = straightSteps(b, theme, params);
    results = steps.results;
    const cond =
      flag ??
      (b.knobs.maxBranches > 0 && rng.chance(0.6)
        ? `len(${results[0]!.name}) > ${params.find((p) => p.role === 'k')?.name ?? rng.range(1, 4)}`
        : undefined);
    if (cond !== undefined && steps.lines.length >= 2) {
      const split = rng.range(1, steps.lines.length - 1);
      for (const line of steps.lines.slice(0, split)) body.push(`    ${line}`);
      body.push(`    if ${cond}:`);
      for (const line of steps.lines.slice(split)) body.push(`        ${line}`);
      // Names defined only inside the branch must also exist on the other path.
      body.push('    else:');
      for (const result of results.slice(split))
        body.push(`        ${result.name} = ${results[split - 1]!.name}`);
      b.branches += 1;
    } else for (const line of steps.lines) body.push(`    ${line}`);
  }

  if (flag !== undefined && useLoop && rng.chance(0.5)) {
    const target = results[0]!;
    if (target.type === 'list_int' || target.type === 'list_str' || target.type === 'out') {
      body.push(`    if ${flag}:`);
      body.push(`        ${target.name} = ${target.name}[::-1]`);
    }
  }
  if (boiler())
    body.push(`    debug_info = {'size': len(str(${primaryName})), 'kind': '${theme}'}`);
  const ret = returnExpression(b, results);
  if (b.printCount < 2 && boiler())
    body.push(
      b.logging
        ? `    logger.info("returning %r", ${results[0]!.name})`
        : `    print('result:', ${results[0]!.name})`,
    );
  body.push(`    return ${ret}`);

  const signature = params
    .map((p) => (annotate ? `${p.name}: ${p.annotation}` : p.name))
    .join(', ');
  const module: string[] = [];
  if (b.logging) module.push('import logging', '', 'logger = logging.getLogger(__name__)', '');
  for (const h of b.helpers) module.push(h.code, '');
  module.push(`def ${entry}(${signature})${annotate ? ' -> object' : ''}:`, ...body);
  const paramTypes: Record<string, ValueType> = {};
  for (const p of params) paramTypes[p.name] = p.type;
  return { code: `${module.join('\n')}\n`, entryPoint: entry, paramTypes, difficulty: label };
}
