import { findTopLevel, scanPython, splitCall, stripComments } from './py-scan.js';
import type { TaskType } from './records.js';

/**
 * The one answer format for every task type: optional reasoning inside `<think>…</think>`,
 * then the answer inside `<answer>…</answer>`:
 *
 *     <think>
 *     x starts at 0 ...
 *     </think>
 *     <answer>[1, 2]</answer>
 */
export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';
export const ANSWER_OPEN = '<answer>';
export const ANSWER_CLOSE = '</answer>';

/** Renders a completion in the protocol's answer format. */
export function formatCompletion(answer: string, reasoning?: string): string {
  const body = `${ANSWER_OPEN}${answer.trim()}${ANSWER_CLOSE}`;
  if (reasoning === undefined || reasoning.trim() === '') return body;
  return `${THINK_OPEN}\n${reasoning.trim()}\n${THINK_CLOSE}\n${body}`;
}

export type ExtractResult = { ok: true; answer: string } | { ok: false; reason: string };

const ANSWER_BLOCK = /<answer>([\s\S]*?)<\/answer>/gi;
const CRUX_BLOCK = /\[ANSWER\]([\s\S]*?)\[\/ANSWER\]/g;

/**
 * Pulls the answer out of a model completion, tolerating the usual noise.
 *
 * Rules, in order:
 * 1. The answer is the content of the LAST complete `<answer>…</answer>` block that is not
 *    empty (a model that restates or corrects itself means its final answer). Without one, an
 *    opening `<answer>` whose closing tag was cut off (length limit) yields the text after the
 *    last opening tag; CRUXEval-style `[ANSWER]…[/ANSWER]` blocks are accepted the same way.
 *    No tag at all fails with reason `no <answer> tag`.
 *    Newlines are normalised first (`\r\n` and a lone `\r` become `\n`, as in CPython).
 * 2. Code fences (```python … ```), surrounding backticks and `#` comments are removed.
 * 3. Per type:
 *    - output/state: a restated assertion `assert f(x) == y` or `f(x) == y` keeps `y` (text
 *      after the first top-level `==`); state also drops a leading `name =` and REval's
 *      `value; type` suffix (split at the last top-level `;`).
 *    - input: `assert f(x) == y` keeps `f(x)`; a call `name(args)` keeps `args` (unless `name`
 *      is a constructor the judge admits as a value: `range(1, 3)` is one argument). An empty
 *      block (`<answer></answer>`) or an empty call (`f()`) is the empty argument list `''` of a
 *      zero-argument function (CRUXEval-I sample_135); every other type rejects an empty answer.
 *    - output/state/input: when the first line is a complete expression the rest is treated
 *      as trailing prose and dropped; one trailing period after a literal is dropped.
 *    - coverage: the first yes-like or no-like word, case-insensitive: yes/true/executed →
 *      `yes`, no/false/not/never/nil → `no`.
 *    - path: the first integer (`-1` means the call returns); `line 7` → `7`.
 * 4. output/state/input answers holding `??` outside string literals are refused as the
 *    prompt's unfilled placeholder (`f(??)`, `assert f(x) == ??`): `?` is no Python token, so
 *    such an answer could never be valid. Inside a string (`'??!!??'`) it is data.
 */
export function extractAnswer(completion: string, type: TaskType): ExtractResult {
  // Newlines as CPython's tokenizer reads them (\r\n and a lone \r end a line, so a `#` comment
  // ends there too); the judge normalises the same way before parsing.
  const block = findAnswerBlock(completion.replace(/\r\n?/g, '\n'), type === 'input');
  if (!block.ok) return block;
  const text = cleanBlock(block.answer);
  if (text === '')
    return type === 'input' ? { ok: true, answer: '' } : { ok: false, reason: 'empty answer' };
  switch (type) {
    case 'coverage':
      return extractCoverage(text);
    case 'path':
      return extractPath(text);
    case 'input':
      return extractInput(text);
    case 'output':
    case 'state':
      return extractValue(text, type);
  }
}

/** `allowEmpty`: a complete but empty block is an answer (`''`), not a failure. A cut-off empty tag never is. */
function findAnswerBlock(completion: string, allowEmpty: boolean): ExtractResult {
  for (const pattern of [ANSWER_BLOCK, CRUX_BLOCK]) {
    const blocks = [...completion.matchAll(pattern)].map((match) => match[1] ?? '');
    const nonEmpty = blocks.filter((block) => block.trim() !== '');
    if (nonEmpty.length > 0) return { ok: true, answer: nonEmpty[nonEmpty.length - 1]! };
    if (blocks.length > 0)
      return allowEmpty ? { ok: true, answer: '' } : { ok: false, reason: 'empty answer' };
  }
  const lower = completion.toLowerCase();
  const open = lower.lastIndexOf(ANSWER_OPEN);
  if (open >= 0) {
    const rest = completion.slice(open + ANSWER_OPEN.length);
    if (rest.trim() !== '') return { ok: true, answer: rest };
    return { ok: false, reason: 'empty answer (unterminated <answer> tag)' };
  }
  const cruxOpen = completion.lastIndexOf('[ANSWER]');
  if (cruxOpen >= 0 && completion.slice(cruxOpen + 8).trim() !== '') {
    return { ok: true, answer: completion.slice(cruxOpen + 8) };
  }
  return { ok: false, reason: 'no <answer> tag' };
}

function cleanBlock(raw: string): string {
  let text = raw.trim();
  const fence = /^```[\w+-]*[ \t]*\n?([\s\S]*?)\n?[ \t]*```$/.exec(text);
  if (fence !== null) text = fence[1]!.trim();
  else if (text.startsWith('```')) text = text.replace(/^```[\w+-]*[ \t]*\n?/, '').trim();
  if (/^`[^`]+`$/.test(text)) text = text.slice(1, -1).trim();
  return text;
}

function dropTrailingProse(text: string): string {
  let result = text.trim();
  const newline = result.indexOf('\n');
  if (newline > 0) {
    const first = result.slice(0, newline).trim();
    if (first !== '' && scanPython(first).balanced) result = first;
  }
  // "The answer is 'abc'." -> drop the sentence's period after a literal.
  if (/['")\]}]\.$/.test(result) && scanPython(result.slice(0, -1)).balanced)
    result = result.slice(0, -1);
  return result.trim();
}

/** `??` outside string literals: the prompt's placeholder, never valid Python. */
function hasPlaceholder(text: string): boolean {
  const { depth } = scanPython(text);
  for (let at = text.indexOf('??'); at >= 0; at = text.indexOf('??', at + 1)) {
    if (depth[at]! >= 0 && depth[at + 1]! >= 0) return true;
  }
  return false;
}

const placeholder = (): ExtractResult => ({
  ok: false,
  reason: 'answer still contains the ?? placeholder',
});

function stripAssert(text: string): string {
  return /^assert\s/.test(text) ? text.slice(6).trim() : text;
}

function extractValue(text: string, type: 'output' | 'state'): ExtractResult {
  let value = stripAssert(stripComments(text).trim());
  const eq = findTopLevel(value, '==');
  if (eq >= 0) value = value.slice(eq + 2).trim();
  else if (type === 'state') {
    const assign = /^[A-Za-z_][A-Za-z_0-9]*\s*=(?!=)/.exec(value);
    if (assign !== null) value = value.slice(assign[0].length).trim();
  }
  value = dropTrailingProse(value);
  if (type === 'state') {
    const scan = scanPython(value);
    let semicolon = -1;
    for (
      let at = findTopLevel(value, ';', scan);
      at >= 0;
      at = findTopLevel(value, ';', scan, at + 1)
    )
      semicolon = at;
    if (semicolon > 0) value = value.slice(0, semicolon).trim();
  }
  if (value === '') return { ok: false, reason: 'empty answer' };
  if (hasPlaceholder(value)) return placeholder();
  if (!scanPython(value).balanced)
    return { ok: false, reason: 'unbalanced brackets or unterminated string' };
  return { ok: true, answer: value };
}

const VALUE_CONSTRUCTORS = new Set([
  'set',
  'frozenset',
  'float',
  'complex',
  'dict',
  'list',
  'tuple',
  'range',
]);

function extractInput(text: string): ExtractResult {
  let value = stripAssert(stripComments(text).trim());
  const eq = findTopLevel(value, '==');
  if (eq >= 0) value = value.slice(0, eq).trim();
  value = dropTrailingProse(value);
  const call = splitCall(value);
  // `range(100, 120)` or `dict(e=1)` is one argument (a value the judge's literal rule admits),
  // not the function's call restated (CRUXEval-I samples 522, 694, 760).
  if (call !== undefined && !VALUE_CONSTRUCTORS.has(call.name)) {
    value = call.args.trim();
    // `f()`: the call of a zero-argument function
    if (value === '') return { ok: true, answer: '' };
  }
  if (value === '') return { ok: false, reason: 'empty answer' };
  if (hasPlaceholder(value)) return placeholder();
  if (!scanPython(value).balanced)
    return { ok: false, reason: 'unbalanced brackets or unterminated string' };
  return { ok: true, answer: value };
}

const YES = new Set(['yes', 'true', 'executed', 'covered', 'runs', 'reached']);
const NO = new Set(['no', 'false', 'not', 'never', 'nil', 'none']);

function extractCoverage(text: string): ExtractResult {
  // The first yes-like or no-like word decides ("Yes.", "It is executed", "not executed").
  for (const match of text.matchAll(/[A-Za-z]+/g)) {
    const word = match[0].toLowerCase();
    if (YES.has(word)) return { ok: true, answer: 'yes' };
    if (NO.has(word)) return { ok: true, answer: 'no' };
  }
  return { ok: false, reason: `expected yes or no, got ${JSON.stringify(text.slice(0, 40))}` };
}

function extractPath(text: string): ExtractResult {
  const match = /-?\d+/.exec(text);
  if (match === null)
    return {
      ok: false,
      reason: `expected a line number or -1, got ${JSON.stringify(text.slice(0, 40))}`,
    };
  const line = Number.parseInt(match[0], 10);
  if (line === 0 || line < -1)
    return { ok: false, reason: `line ${line} is not a line number (use -1 for "returns")` };
  return { ok: true, answer: String(line) };
}
