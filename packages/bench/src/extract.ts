// Answer extraction exactly as each official harness does it. Python's `s.split(x)[1]` is the
// text between the first and the second `x`, which JavaScript's `split` reproduces.

/** Emulates the harness's stop word: generation ends before the first `[/ANSWER]`. */
export function cutAtStopWord(completion: string, stop: string): string {
  const at = completion.indexOf(stop);
  return at >= 0 ? completion.slice(0, at) : completion;
}

function lastLine(text: string): string {
  const lines = text.split('\n');
  return lines[lines.length - 1]!.trim();
}

/**
 * CRUXEval-O (`inference/tasks/output_prediction.py`, and `openai/openai_prompt.py` for CoT
 * without an [ANSWER] tag): CoT keeps the text after the first `[ANSWER]` (else the last line),
 * then the text after the first `==` (up to a second one), stripped.
 */
export function extractCruxOutput(completion: string, cot: boolean): string {
  let gen = cutAtStopWord(completion, '[/ANSWER]');
  if (cot) gen = gen.includes('[ANSWER]') ? gen.split('[ANSWER]')[1]!.trim() : lastLine(gen);
  if (gen.includes('==')) gen = gen.split('==')[1]!.trim();
  return gen.trim();
}

/**
 * CRUXEval-I (`inference/tasks/input_prediction.py` at HEAD): CoT as for -O; then the text before
 * the first `==`; then, when `assert f` occurs, `"f" + text after "assert f"`.
 */
export function extractCruxInput(completion: string, cot: boolean): string {
  let gen = cutAtStopWord(completion, '[/ANSWER]');
  if (cot) gen = gen.includes('[ANSWER]') ? gen.split('[ANSWER]')[1]!.trim() : lastLine(gen);
  if (gen.includes('==')) gen = gen.split('==')[0]!.trim();
  if (gen.includes('assert f')) gen = `f${gen.split('assert f')[1]!.trim()}`;
  return gen.trim();
}

/** LiveCodeBench `extract_execution_code` (`lcb_runner/utils/extraction_utils.py`). */
export function extractLcbOutput(completion: string, cot: boolean): string {
  let out = completion;
  if (cot && out.includes('[ANSWER]')) out = out.split('[ANSWER]')[1]!.trim();
  if (out.includes('==')) out = out.split('==')[1]!.trim();
  if (out.includes('[/ANSWER]')) out = out.split('[/ANSWER]')[0]!.trim();
  else out = out.split('\n')[0]!.trim();
  return out.trim();
}

export type RevalExtraction = { ok: true; text: string } | { ok: false; reason: string };

/**
 * REval's common step (`evaluation.py`): in CoT mode a response without `[/THOUGHT]` is wrong;
 * the answer is the text after the first `[ANSWER]`, cut at `[/ANSWER]` (or a truncated
 * `[/ANSWER`), stripped.
 */
export function extractRevalAnswer(completion: string, cot: boolean): RevalExtraction {
  if (cot && !completion.includes('[/THOUGHT]'))
    return { ok: false, reason: 'CoT response without [/THOUGHT]' };
  let text = completion;
  const open = text.indexOf('[ANSWER]');
  if (open >= 0) text = text.slice(open + '[ANSWER]'.length);
  const close = text.indexOf('[/ANSWER');
  if (close >= 0) text = text.slice(0, close);
  return { ok: true, text: text.trim() };
}

/** REval coverage: upper-case, first three characters; YES → true, NO → false, both/neither/empty → false. */
export function parseRevalCoverage(text: string): boolean {
  const answer = text.toUpperCase().trim();
  if (answer === '') return false;
  const head = answer.slice(0, 3);
  const yes = head.includes('YES');
  const no = head.includes('NO');
  if (yes === no) return false;
  return yes;
}

/**
 * REval path: `-1` → [-1]; empty → [-2]; otherwise the first line, stripped, maps to every
 * 1-based line whose stripped text is equal ([-2] when none).
 */
export function parseRevalPath(text: string, codeLines: readonly string[]): number[] {
  const first = text.split('\n')[0]!.trim();
  if (first === '') return [-2];
  if (first === '-1') return [-1];
  const lines: number[] = [];
  codeLines.forEach((line, index) => {
    if (line.trim() === first) lines.push(index + 1);
  });
  return lines.length > 0 ? lines : [-2];
}

/**
 * REval output, `_postprocess_phase2` then `penalty_pattern`: an answer with fewer lines than the
 * question gets the missing leading lines from the question; trivially true assertions, or fewer
 * `assert`s than the question has, are rejected before execution.
 */
export function completeRevalOutput(
  answer: string,
  question: string,
): { code: string; penalty: string | undefined } {
  const inLines = question.trim().split('\n');
  const resLines = answer.trim().split('\n');
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
