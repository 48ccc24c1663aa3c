import { preTokenize } from './byte-level.js';

/**
 * Oniguruma's `\s` with Unicode strings (what Hugging Face `tokenizers` compiles `Split` patterns
 * with): U+0009-U+000D, U+0085 and the Zs/Zl/Zp categories. JavaScript's `\s` differs (it lacks
 * U+0085 and adds U+FEFF), so patterns are rewritten to this explicit set.
 */
const ONIG_SPACE = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** Thrown by the translator with a message the tokenizer wraps with the field's path. */
export class PatternError extends Error {}

/**
 * Rewrites an Oniguruma pattern of the kind tokenizer files use into an equivalent JavaScript
 * `u`-flag pattern: `(?i:...)` groups (unsupported by Node 20's regexp engine) become explicit
 * `[xX]` classes, `\s`/`\S` become the Oniguruma set. Constructs whose meaning could differ and
 * that no supported family uses (nested case-insensitive classes, `\S` inside a class, `\h`,
 * possessive or atomic groups, inline flags other than `i`) are refused.
 */
export function onigurumaToJs(pattern: string): string {
  let out = '';
  let inClass = false;
  // depth of groups, and the depths at which a (?i: group opened
  const groupStack: boolean[] = [];
  let caseInsensitive = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new PatternError('the pattern ends with a lone backslash');
      if (next === 's') out += inClass ? ONIG_SPACE : `[${ONIG_SPACE}]`;
      else if (next === 'S') {
        if (inClass) throw new PatternError('\\S inside a character class is not supported');
        out += `[^${ONIG_SPACE}]`;
      } else if (next === 'p' || next === 'P') {
        const end = pattern.indexOf('}', i);
        if (pattern[i + 2] !== '{' || end < 0)
          throw new PatternError(`\\${next} must be followed by {Property}`);
        out += pattern.slice(i, end + 1);
        i = end;
        continue;
      } else if ('hHRXKGAzZ'.includes(next) || /[1-9]/.test(next))
        throw new PatternError(`the escape \\${next} is not supported`);
      else out += `\\${next}`;
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[') throw new PatternError('nested character classes are not supported');
      if (c === ']') inClass = false;
      else if (caseInsensitive > 0 && /[a-zA-Z]/.test(c))
        throw new PatternError('letters inside a class of a (?i:...) group are not supported');
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (pattern[i + 1] === '^') {
        out += '^';
        i++;
      }
      if (pattern[i + 1] === ']')
        throw new PatternError('a class starting with ] is not supported');
      continue;
    }
    if (c === '(') {
      if (pattern.startsWith('(?i:', i)) {
        groupStack.push(true);
        caseInsensitive++;
        out += '(?:';
        i += 3;
        continue;
      }
      if (pattern[i + 1] === '?') {
        const kind = pattern[i + 2];
        if (kind !== ':' && kind !== '=' && kind !== '!')
          throw new PatternError(`the group (?${kind ?? ''} is not supported`);
      }
      groupStack.push(false);
      out += c;
      continue;
    }
    if (c === ')') {
      const wasInsensitive = groupStack.pop();
      if (wasInsensitive === undefined) throw new PatternError('unbalanced )');
      if (wasInsensitive) caseInsensitive--;
      out += c;
      continue;
    }
    if ((c === '+' || c === '*' || c === '?' || c === '}') && pattern[i + 1] === '+')
      throw new PatternError('possessive quantifiers are not supported');
    if (caseInsensitive > 0 && /[a-zA-Z]/.test(c)) {
      out += `[${c.toLowerCase()}${c.toUpperCase()}]`;
      continue;
    }
    out += c;
  }
  if (inClass || groupStack.length > 0) throw new PatternError('unbalanced [ or (');
  return out;
}

/** One step of a Hugging Face pre-tokenizer `Sequence` that we run: split every piece. */
export type PreTokenizerStep =
  | { kind: 'split'; regex: RegExp }
  /** ByteLevel with use_regex: the GPT-2 split. */
  | { kind: 'gpt2' };

/** `Split` with behaviour `Isolated`: every match is a piece, and so is every gap between matches. */
function splitIsolated(text: string, regex: RegExp, out: string[]): void {
  regex.lastIndex = 0;
  let last = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    if (m[0] === '') {
      // An empty match splits nothing (as in `tokenizers`); step over it.
      regex.lastIndex++;
      continue;
    }
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
}

/** Applies the steps in order; each step splits the pieces the previous one produced. */
export function runPreTokenizer(steps: readonly PreTokenizerStep[], text: string): string[] {
  let pieces = [text];
  for (const step of steps) {
    const next: string[] = [];
    for (const piece of pieces) {
      if (step.kind === 'gpt2') for (const p of preTokenize(piece)) next.push(p);
      else splitIsolated(piece, step.regex, next);
    }
    pieces = next;
  }
  return pieces;
}
