import type { Rng } from '@codereasoner/common';

/** The shape of a parameter value, for generating inputs. */
export type ValueType =
  | { kind: 'int'; min?: number; max?: number }
  | { kind: 'float' }
  | { kind: 'bool' }
  | { kind: 'none' }
  | { kind: 'str'; alphabet?: Alphabet; maxLength?: number }
  | { kind: 'char'; alphabet?: Alphabet }
  | { kind: 'list'; of: ValueType; maxLength?: number }
  | { kind: 'tuple'; items: ValueType[] }
  | { kind: 'dict'; key: ValueType; value: ValueType; maxLength?: number };

export type Alphabet = 'lower' | 'mixed' | 'digits' | 'text' | 'word' | 'vowels';

/** Python values as far as inputs need them. */
export type PyValue =
  | { t: 'int'; v: number }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'none' }
  | { t: 'str'; v: string }
  | { t: 'list'; v: PyValue[] }
  | { t: 'tuple'; v: PyValue[] }
  | { t: 'dict'; v: [PyValue, PyValue][] };

const ALPHABETS: Record<Alphabet, string> = {
  lower: 'abcdefghijklmnopqrstuvwxyz',
  vowels: 'aeiouxyz',
  mixed: 'abcdeABCDExyzXYZ0123 _-.',
  digits: '0123456789',
  text: 'abcdefghij klmnop ABC ,.!? 123',
  word: 'abcdefghiklmnoprstuwy',
};

const WORDS = [
  'apple',
  'banana',
  'cat',
  'dog',
  'echo',
  'fig',
  'grape',
  'hello',
  'world',
  'python',
  'code',
  'data',
  'level',
  'noon',
  'racecar',
  'sun',
  'moon',
  'star',
  'tree',
  'river',
  'stone',
  'x',
  'ab',
  'zz',
  'Alpha',
  'BETA',
  'gamma',
  'Delta',
  'kiwi',
  'lemon',
  'mango',
  'night',
  'day',
  'red',
  'blue',
  'green',
  'a1',
  'b2',
];

function randomString(rng: Rng, alphabet: Alphabet, maxLength: number): string {
  if (alphabet === 'text' && rng.chance(0.5)) {
    const count = rng.range(0, 4);
    const words: string[] = [];
    for (let i = 0; i < count; i += 1) words.push(rng.pick(WORDS));
    return words.join(rng.chance(0.8) ? ' ' : rng.pick([', ', '-', '  ']));
  }
  if (alphabet === 'word' && rng.chance(0.6)) return rng.pick(WORDS);
  const chars = ALPHABETS[alphabet];
  const length = rng.range(0, maxLength);
  let out = '';
  for (let i = 0; i < length; i += 1) out += chars[rng.int(chars.length)];
  return out;
}

/** A random value of the given type (small sizes, biased towards interesting cases). */
export function randomValue(rng: Rng, type: ValueType, depth = 0): PyValue {
  switch (type.kind) {
    case 'int': {
      const min = type.min ?? -5;
      const max = type.max ?? 20;
      return {
        t: 'int',
        v: rng.chance(0.15)
          ? rng.pick([0, 1, 2, -1].filter((v) => v >= min && v <= max).concat([min]))
          : rng.range(min, max),
      };
    }
    case 'float':
      return { t: 'float', v: rng.range(-20, 40) / 4 };
    case 'bool':
      return { t: 'bool', v: rng.chance(0.5) };
    case 'none':
      return { t: 'none' };
    case 'str':
      return { t: 'str', v: randomString(rng, type.alphabet ?? 'text', type.maxLength ?? 10) };
    case 'char': {
      const chars = ALPHABETS[type.alphabet ?? 'lower'];
      return { t: 'str', v: chars[rng.int(chars.length)]! };
    }
    case 'list': {
      const length = rng.chance(0.08) ? 0 : rng.range(1, type.maxLength ?? (depth > 0 ? 3 : 7));
      const items: PyValue[] = [];
      for (let i = 0; i < length; i += 1) items.push(randomValue(rng, type.of, depth + 1));
      return { t: 'list', v: items };
    }
    case 'tuple':
      return { t: 'tuple', v: type.items.map((item) => randomValue(rng, item, depth + 1)) };
    case 'dict': {
      const length = rng.chance(0.08) ? 0 : rng.range(1, type.maxLength ?? 4);
      const entries: [PyValue, PyValue][] = [];
      const seen = new Set<string>();
      for (let i = 0; i < length * 2 && entries.length < length; i += 1) {
        const key = randomValue(rng, type.key, depth + 1);
        const text = pyRepr(key);
        if (seen.has(text)) continue;
        seen.add(text);
        entries.push([key, randomValue(rng, type.value, depth + 1)]);
      }
      return { t: 'dict', v: entries };
    }
  }
}

function strRepr(value: string): string {
  // Python's repr: single quotes unless the text has ' and no ".
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

function floatRepr(value: number): string {
  if (Number.isInteger(value)) return `${value}.0`;
  return String(value);
}

/** The value as Python's `repr` prints it. */
export function pyRepr(value: PyValue): string {
  switch (value.t) {
    case 'int':
      return String(value.v);
    case 'float':
      return floatRepr(value.v);
    case 'bool':
      return value.v ? 'True' : 'False';
    case 'none':
      return 'None';
    case 'str':
      return strRepr(value.v);
    case 'list':
      return `[${value.v.map(pyRepr).join(', ')}]`;
    case 'tuple':
      return value.v.length === 1
        ? `(${pyRepr(value.v[0]!)},)`
        : `(${value.v.map(pyRepr).join(', ')})`;
    case 'dict':
      return `{${value.v.map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  }
}

/** Parses a type written as a Python annotation (`List[int]`, `dict[str, int]`, `Optional[str]`). */
export function typeFromAnnotation(annotation: string): ValueType | undefined {
  const text = annotation.replace(/\s+/g, '').replace(/^typing\./, '');
  const generic = /^([A-Za-z_.]+)\[(.*)\]$/.exec(text);
  const base = (generic?.[1] ?? text).replace(/^typing\./, '').toLowerCase();
  const args = generic === null ? [] : splitTypeArgs(generic[2]!);
  switch (base) {
    case 'int':
      return { kind: 'int' };
    case 'float':
      return { kind: 'float' };
    case 'bool':
      return { kind: 'bool' };
    case 'str':
      return { kind: 'str' };
    case 'list':
    case 'sequence':
    case 'iterable':
      return {
        kind: 'list',
        of: (args[0] === undefined ? undefined : typeFromAnnotation(args[0])) ?? { kind: 'int' },
      };
    case 'set':
      return undefined;
    case 'tuple': {
      if (args.length === 2 && args[1] === '...') {
        const of = typeFromAnnotation(args[0]!) ?? { kind: 'int' };
        return { kind: 'tuple', items: [of, of, of] };
      }
      const items = args.map((arg) => typeFromAnnotation(arg));
      if (items.length === 0 || items.some((item) => item === undefined)) return undefined;
      return { kind: 'tuple', items: items as ValueType[] };
    }
    case 'dict':
    case 'mapping':
      return {
        kind: 'dict',
        key: (args[0] === undefined ? undefined : typeFromAnnotation(args[0])) ?? {
          kind: 'str',
          alphabet: 'word',
        },
        value: (args[1] === undefined ? undefined : typeFromAnnotation(args[1])) ?? { kind: 'int' },
      };
    case 'optional':
      return args[0] ? typeFromAnnotation(args[0]) : undefined;
    default:
      return undefined;
  }
}

function splitTypeArgs(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '[') depth += 1;
    if (ch === ']') depth -= 1;
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  if (current !== '') out.push(current);
  return out;
}

/** The type of a literal default value, e.g. `5` -> int, `'a'` -> str, `[]` -> list[int]. */
export function typeFromDefault(text: string): ValueType | undefined {
  const value = text.trim();
  if (/^-?\d+$/.test(value)) return { kind: 'int' };
  if (/^-?\d*\.\d+$/.test(value)) return { kind: 'float' };
  if (value === 'True' || value === 'False') return { kind: 'bool' };
  if (/^(['"]).?\1$/.test(value)) return { kind: 'char', alphabet: 'mixed' };
  if (/^['"]/.test(value)) return { kind: 'str' };
  if (value.startsWith('[')) return { kind: 'list', of: { kind: 'int' } };
  if (value.startsWith('{'))
    return { kind: 'dict', key: { kind: 'str', alphabet: 'word' }, value: { kind: 'int' } };
  if (value.startsWith('(')) return { kind: 'tuple', items: [{ kind: 'int' }, { kind: 'int' }] };
  return undefined;
}
