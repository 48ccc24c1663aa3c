// A small lexical scanner for Python expression text. Answer extraction is synchronous (it runs
// inside reward functions and graders), so it cannot wait for tree-sitter's WebAssembly to load;
// it only needs to know, for each character, whether it is inside a string, a comment or
// brackets. Verification then judges the extracted text with CPython's parser in the sandbox.

export interface ScanResult {
  /** depth[i]: bracket depth before character i; -1 inside a string or comment. */
  depth: Int32Array;
  /** comment[i] = 1 when character i belongs to a `#` comment. */
  comment: Uint8Array;
  /** False when a string is unterminated or brackets do not balance. */
  balanced: boolean;
}

export function scanPython(text: string): ScanResult {
  const depth = new Int32Array(text.length);
  const comment = new Uint8Array(text.length);
  let level = 0;
  let balanced = true;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '#') {
      // A lone \r ends a line (and so a comment) for CPython as \n does.
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') {
        comment[i] = 1;
        depth[i++] = -1;
      }
      continue;
    }
    if (ch === '"' || ch === "'") {
      const triple = text.startsWith(ch.repeat(3), i);
      const quote = triple ? ch.repeat(3) : ch;
      depth[i] = -1;
      let j = i + quote.length;
      let closed = false;
      while (j < text.length) {
        // Even in a raw string a backslash keeps the next character (a quote included) inside
        // the string: r'\'' is one string, as CPython's tokenizer reads it.
        if (text[j] === '\\') {
          depth[j] = -1;
          if (j + 1 < text.length) depth[j + 1] = -1;
          j += 2;
          continue;
        }
        if (text.startsWith(quote, j)) {
          for (let k = 0; k < quote.length; k += 1) depth[j + k] = -1;
          j += quote.length;
          closed = true;
          break;
        }
        if (!triple && (text[j] === '\n' || text[j] === '\r')) break;
        depth[j] = -1;
        j += 1;
      }
      for (let k = i; k < j; k += 1) depth[k] = -1;
      if (!closed) balanced = false;
      i = j;
      continue;
    }
    if (ch === '(' || ch === '[' || ch === '{') {
      depth[i] = level;
      level += 1;
    } else if (ch === ')' || ch === ']' || ch === '}') {
      level -= 1;
      if (level < 0) {
        balanced = false;
        level = 0;
      }
      depth[i] = level;
    } else {
      depth[i] = level;
    }
    i += 1;
  }
  if (level !== 0) balanced = false;
  return { depth, comment, balanced };
}

/** Index of the first occurrence of `token` at bracket depth 0 outside strings and comments, or -1. */
export function findTopLevel(
  text: string,
  token: string,
  scan: ScanResult = scanPython(text),
  from = 0,
): number {
  for (let i = from; i <= text.length - token.length; i += 1) {
    if (scan.depth[i] !== 0) continue;
    if (!text.startsWith(token, i)) continue;
    let inside = true;
    for (let k = 1; k < token.length; k += 1) if (scan.depth[i + k] !== 0) inside = false;
    if (inside) return i;
  }
  return -1;
}

/** Every index of `token` at depth 0, outside strings and comments. */
export function findAllTopLevel(
  text: string,
  token: string,
  scan: ScanResult = scanPython(text),
): number[] {
  const found: number[] = [];
  let at = findTopLevel(text, token, scan, 0);
  while (at >= 0) {
    found.push(at);
    at = findTopLevel(text, token, scan, at + token.length);
  }
  return found;
}

/** Drops `#` comments (outside strings) and trailing whitespace on each line. */
export function stripComments(text: string): string {
  const scan = scanPython(text);
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    if (scan.comment[i] === 1) continue;
    out += text[i];
  }
  return out
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/**
 * If the whole text is one call `name(...)`, returns the name and the argument text between the
 * outer parentheses; otherwise undefined.
 */
export function splitCall(text: string): { name: string; args: string } | undefined {
  const trimmed = text.trim();
  const match = /^([A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*)\s*\(/.exec(trimmed);
  if (match === null) return undefined;
  const open = match[0].length - 1;
  const scan = scanPython(trimmed);
  if (!scan.balanced) return undefined;
  // The '(' after the name must close at the very end of the text.
  const level = scan.depth[open]!;
  for (let i = open + 1; i < trimmed.length; i += 1) {
    if (trimmed[i] === ')' && scan.depth[i] === level) {
      if (i !== trimmed.length - 1) return undefined;
      return { name: match[1]!, args: trimmed.slice(open + 1, i) };
    }
  }
  return undefined;
}
