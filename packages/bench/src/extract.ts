// Answer extraction exactly as each official harness does it, quirks included (each quirk is
// named at its line and listed in the README). Python semantics are reproduced, not approximated:
// `s.split(x)[1]` is the text between the first and the second `x` (JavaScript's `split` agrees),
// `str.strip()` strips Python's whitespace set (`pyStrip`, not `String.prototype.trim`), and
// `s[:3]` counts code points.

/** The REval question kinds (`evaluation.py`'s Coverage, State, Path and Output tasks). */
export type RevalTask = 'coverage' | 'state' | 'path' | 'output';

/**
 * Emulates a generation stop word: the text ends before its first occurrence. Every official
 * harness here requests `stop=['[/ANSWER]']` (CRUXEval, REval), so its parser never sees text
 * after the first `[/ANSWER]`; cutting here gives the same verdicts whether or not a server
 * honours `stop`.
 */
export function cutAtStopWord(completion: string, stop: string): string {
  const at = completion.indexOf(stop);
  return at >= 0 ? completion.slice(0, at) : completion;
}

// str.isspace() in CPython: \t\n\v\f\r, the four information separators \x1c-\x1f, space, NEL
// (\x85) and the Unicode spaces. JavaScript's trim() also strips U+FEFF and not \x1c-\x1f/\x85.
// A scan, not a regular expression: `\s+$` backtracks quadratically on long runs of spaces.
const PY_WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001,
  0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f,
  0x205f, 0x3000,
]);

/** Python's `str.strip()` (no argument). */
export function pyStrip(text: string): string {
  let start = 0;
  while (start < text.length && PY_WHITESPACE.has(text.charCodeAt(start))) start += 1;
  return pyRstrip(text.slice(start));
}

/** Python's `str.rstrip()` (no argument). */
export function pyRstrip(text: string): string {
  let end = text.length;
  while (end > 0 && PY_WHITESPACE.has(text.charCodeAt(end - 1))) end -= 1;
  return text.slice(0, end);
}

function between(text: string, separator: string, index: 0 | 1): string {
  return text.split(separator)[index]!;
}

/**
 * CRUXEval-O as the chat-API harness extracts it (`openai/openai_prompt.py`, the variant whose
 * system message and chat call the official prompts here use): direct, the text after the first
 * `==` (up to a second one), stripped; CoT, the same inside the text after the first `[ANSWER]`,
 * and without `[ANSWER]` the last line, stripped, with no `==` split (quirk: `assert f(1) == 2` on
 * the last line is run as the answer and fails).
 */
export function extractCruxOutput(completion: string, cot: boolean): string {
  let gen = cutAtStopWord(completion, '[/ANSWER]');
  if (cot) {
    if (!gen.includes('[ANSWER]')) return lastLine(gen);
    gen = pyStrip(between(gen, '[ANSWER]', 1));
  }
  if (gen.includes('==')) gen = between(gen, '==', 1);
  return pyStrip(gen);
}

/**
 * CRUXEval-I (`openai/openai_prompt.py`): the text before the first `==`; then, when `assert f`
 * occurs, `"f" + <text after the first "assert f">`; CoT inside the text after the first
 * `[ANSWER]`, and without `[ANSWER]` the last line, stripped, as it is (quirk, as for -O).
 */
export function extractCruxInput(completion: string, cot: boolean): string {
  let gen = cutAtStopWord(completion, '[/ANSWER]');
  if (cot) {
    if (!gen.includes('[ANSWER]')) return lastLine(gen);
    gen = pyStrip(between(gen, '[ANSWER]', 1));
  }
  if (gen.includes('==')) gen = pyStrip(between(gen, '==', 0));
  if (gen.includes('assert f')) gen = `f${pyStrip(between(gen, 'assert f', 1))}`;
  return pyStrip(gen);
}

/** `gen.split('\n')[-1].strip()`: a completion ending in a newline has an empty last line. */
function lastLine(text: string): string {
  const lines = text.split('\n');
  return pyStrip(lines[lines.length - 1]!);
}

/**
 * LiveCodeBench `extract_execution_code` (`lcb_runner/utils/extraction_utils.py`). Its chat
 * runner sends no stop word, so nothing is cut first: `[/ANSWER]` ends a multi-line answer,
 * otherwise only the first line (after `==`) is kept.
 */
export function extractLcbOutput(completion: string, cot: boolean): string {
  let out = completion;
  if (cot && out.includes('[ANSWER]')) out = pyStrip(between(out, '[ANSWER]', 1));
  if (out.includes('==')) out = pyStrip(between(out, '==', 1));
  if (out.includes('[/ANSWER]')) out = pyStrip(between(out, '[/ANSWER]', 0));
  else out = pyStrip(between(out, '\n', 0));
  return pyStrip(out);
}

export type RevalExtraction = { ok: true; text: string } | { ok: false; reason: string };

/**
 * The common steps of REval's `_postprocess` (`evaluation.py`), per task, on the completion as
 * the harness receives it (cut at the stop word `[/ANSWER]`, which all its model classes request):
 *
 * - CoT: a response without `[/THOUGHT]` is rejected (coverage reads it as NO, path as -2, state
 *   and output as ERROR). Coverage looks for the tag after upper-casing, so `[/thought]` counts;
 *   the other tasks look for it as written.
 * - Coverage upper-cases and strips the whole response first, so `[answer]` is a tag there and
 *   only there. State replaces curly quotes and strips first.
 * - Then `[ANSWER]`: keep what follows, stripped; `[/ANSWER]`, then a truncated `[/ANSWER`: keep
 *   what precedes, stripped. Quirk: path and output strip only when one of these tags is found, so
 *   an untagged `"\n-1\n"` stays as it is (path then reads its empty first line; output then
 *   executes leading whitespace as written).
 */
export function extractRevalAnswer(
  completion: string,
  task: RevalTask,
  cot: boolean,
): RevalExtraction {
  let resp = cutAtStopWord(completion, '[/ANSWER]');
  if (task === 'coverage') resp = pyStrip(resp.toUpperCase());
  if (cot && !resp.includes('[/THOUGHT]'))
    return { ok: false, reason: 'CoT response without [/THOUGHT]' };
  if (task === 'state') {
    resp = pyStrip(
      resp
        .replaceAll('\u2018', "'")
        .replaceAll('\u2019', "'")
        .replaceAll('\u201c', '"')
        .replaceAll('\u201d', '"'),
    );
  }
  let at = resp.indexOf('[ANSWER]');
  if (at !== -1) resp = pyStrip(resp.slice(at + '[ANSWER]'.length));
  at = resp.indexOf('[/ANSWER]');
  if (at !== -1) resp = pyStrip(resp.slice(0, at));
  at = resp.indexOf('[/ANSWER');
  if (at !== -1) resp = pyStrip(resp.slice(0, at));
  return { ok: true, text: resp };
}

/**
 * REval coverage on `extractRevalAnswer(…, 'coverage', …)`'s text: upper-cased and stripped;
 * empty → NO; otherwise YES/NO looked for in the first three characters (code points),
 * both or neither → NO.
 */
export function parseRevalCoverage(text: string): boolean {
  const answer = pyStrip(text.toUpperCase()); // idempotent on the extracted text
  if (answer === '') return false;
  const head = Array.from(answer).slice(0, 3).join('');
  const yes = head.includes('YES');
  const no = head.includes('NO');
  if (yes === no) return false;
  return yes;
}

/**
 * REval path: the first line of the extracted text, stripped; empty → [-2], `-1` → [-1];
 * otherwise every 1-based line whose stripped text is equal ([-2] when none).
 */
export function parseRevalPath(text: string, codeLines: readonly string[]): number[] {
  const first = pyStrip(text.split('\n')[0]!);
  if (first === '') return [-2];
  if (first === '-1') return [-1];
  const lines: number[] = [];
  codeLines.forEach((line, index) => {
    if (pyStrip(line) === first) lines.push(index + 1);
  });
  return lines.length > 0 ? lines : [-2];
}

/**
 * REval output, `_postprocess_phase2` then `penalty_pattern`: the answer `ERROR` becomes
 * `assert False` (rejected); an answer with fewer lines (after stripping) than the question gets
 * the missing leading lines from the question; otherwise the answer is kept as it is, leading
 * whitespace included; trivially true assertions, or fewer `assert`s than the question has, are
 * rejected before execution.
 */
export function completeRevalOutput(
  answer: string,
  question: string,
): { code: string; penalty: string | undefined } {
  if (answer === 'ERROR')
    return { code: 'assert False', penalty: revalPenalty('assert False', question) };
  const inLines = pyStrip(question).split('\n');
  const resLines = pyStrip(answer).split('\n');
  const code =
    resLines.length >= inLines.length
      ? answer
      : [...inLines.slice(0, inLines.length - resLines.length), ...resLines].join('\n');
  return { code, penalty: revalPenalty(code, question) };
}

function revalPenalty(code: string, question: string): string | undefined {
  for (const pattern of ['assertTrue(True)', 'assertFalse(False)', 'assert True', 'assert False']) {
    if (code.includes(pattern)) return `trivial assertion ${pattern}`;
  }
  const given = countOf(question, 'assert');
  if (given === 0) return undefined;
  const generated = countOf(code, 'assert');
  return generated < given ? `${generated} assert(s) where the question has ${given}` : undefined;
}

function countOf(text: string, word: string): number {
  return text.split(word).length - 1;
}
