import { describe, expect, it } from 'vitest';
import { extractAnswer, formatCompletion } from './answer.js';

describe('formatCompletion', () => {
  it('puts reasoning in <think> and the answer in <answer>', () => {
    expect(formatCompletion('[1, 2]', 'x doubles')).toBe(
      '<think>\nx doubles\n</think>\n<answer>[1, 2]</answer>',
    );
    expect(formatCompletion(' 3 ')).toBe('<answer>3</answer>');
  });

  it('round-trips through extractAnswer for every task type', () => {
    expect(extractAnswer(formatCompletion("'ab'", 'r'), 'output')).toEqual({
      ok: true,
      answer: "'ab'",
    });
    expect(extractAnswer(formatCompletion('[1], 2'), 'input')).toEqual({
      ok: true,
      answer: '[1], 2',
    });
    expect(extractAnswer(formatCompletion('yes'), 'coverage')).toEqual({ ok: true, answer: 'yes' });
    expect(extractAnswer(formatCompletion("{'a': 1}"), 'state')).toEqual({
      ok: true,
      answer: "{'a': 1}",
    });
    expect(extractAnswer(formatCompletion('-1'), 'path')).toEqual({ ok: true, answer: '-1' });
    expect(extractAnswer(formatCompletion(''), 'input')).toEqual({ ok: true, answer: '' });
  });
});

describe('extractAnswer', () => {
  it('reports a missing tag', () => {
    expect(extractAnswer('The answer is 3', 'output')).toEqual({
      ok: false,
      reason: 'no <answer> tag',
    });
    expect(extractAnswer('<answer>  </answer>', 'output')).toEqual({
      ok: false,
      reason: 'empty answer',
    });
  });

  it('takes the last non-empty answer block when there are several', () => {
    const text =
      '<think>maybe <answer>1</answer>?</think> no wait <answer>2</answer> <answer></answer>';
    expect(extractAnswer(text, 'output')).toEqual({ ok: true, answer: '2' });
  });

  it('accepts an answer whose closing tag was cut off, and CRUXEval tags', () => {
    expect(extractAnswer('<think>t</think><answer>[1, 2]', 'output')).toEqual({
      ok: true,
      answer: '[1, 2]',
    });
    expect(extractAnswer('[ANSWER]assert f(1) == 5[/ANSWER]', 'output')).toEqual({
      ok: true,
      answer: '5',
    });
  });

  it('strips code fences, backticks and comments', () => {
    expect(
      extractAnswer('<answer>\n```python\n[1, 2]  # a list\n```\n</answer>', 'output'),
    ).toEqual({
      ok: true,
      answer: '[1, 2]',
    });
    expect(extractAnswer('<answer>`"a#b"`</answer>', 'output')).toEqual({
      ok: true,
      answer: '"a#b"',
    });
  });

  it('keeps the right side of a restated assertion for output, the call arguments for input', () => {
    expect(extractAnswer("<answer>assert f('a==b') == 'x == y'</answer>", 'output')).toEqual({
      ok: true,
      answer: "'x == y'",
    });
    expect(extractAnswer("<answer>assert f([1, 2], 'a') == 3</answer>", 'input')).toEqual({
      ok: true,
      answer: "[1, 2], 'a'",
    });
    expect(extractAnswer('<answer>f(x=(1, 2))</answer>', 'input')).toEqual({
      ok: true,
      answer: 'x=(1, 2)',
    });
    expect(extractAnswer('<answer>[1, 2]</answer>', 'input')).toEqual({
      ok: true,
      answer: '[1, 2]',
    });
    expect(extractAnswer('<answer>f(??)</answer>', 'input')).toEqual({
      ok: false,
      reason: 'answer still contains the ?? placeholder',
    });
  });

  it('refuses the ?? placeholder only outside string literals', () => {
    const placeholder = { ok: false, reason: 'answer still contains the ?? placeholder' };
    // the prompt echoed back: `assert f(x) == ??`, `f(??)`, or a placeholder left in a value
    expect(extractAnswer('<answer>assert f(1) == ??</answer>', 'output')).toEqual(placeholder);
    expect(extractAnswer('<answer>??</answer>', 'state')).toEqual(placeholder);
    expect(extractAnswer('<answer>[??, 2]</answer>', 'output')).toEqual(placeholder);
    expect(extractAnswer("<answer>f('a', ??)</answer>", 'input')).toEqual(placeholder);
    // gold values that merely contain ?? (2 trace-teacher answers were refused before)
    expect(extractAnswer("<answer>'??!!??'</answer>", 'output')).toEqual({
      ok: true,
      answer: "'??!!??'",
    });
    expect(extractAnswer('<answer>assert f(1) == "a??"</answer>', 'output')).toEqual({
      ok: true,
      answer: '"a??"',
    });
    expect(extractAnswer("<answer>x = ['??', '?']</answer>", 'state')).toEqual({
      ok: true,
      answer: "['??', '?']",
    });
    expect(extractAnswer("<answer>f('??!!??', 2)</answer>", 'input')).toEqual({
      ok: true,
      answer: "'??!!??', 2",
    });
  });

  it('reads an empty block or f() as the empty argument list of a zero-argument function, for input only', () => {
    const none = { ok: true, answer: '' };
    expect(extractAnswer('<answer></answer>', 'input')).toEqual(none);
    expect(extractAnswer('<think>f takes nothing</think>\n<answer> </answer>', 'input')).toEqual(
      none,
    );
    expect(extractAnswer('<answer>f()</answer>', 'input')).toEqual(none);
    expect(extractAnswer('<answer>assert f() == 3</answer>', 'input')).toEqual(none);
    expect(extractAnswer('<answer>```python\nf()\n```</answer>', 'input')).toEqual(none);
    expect(extractAnswer('[ANSWER]assert f() == 3[/ANSWER]', 'input')).toEqual(none);
    expect(extractAnswer('<answer>1</answer> <answer></answer>', 'input')).toEqual({
      ok: true,
      answer: '1',
    });
    // still no answer: a cut-off tag, a comment alone, no tag, and every other type
    expect(extractAnswer('<answer>', 'input')).toEqual({
      ok: false,
      reason: 'empty answer (unterminated <answer> tag)',
    });
    expect(extractAnswer('<answer># nothing</answer>', 'input')).toEqual({
      ok: false,
      reason: 'empty answer',
    });
    expect(extractAnswer('', 'input')).toEqual({ ok: false, reason: 'no <answer> tag' });
    for (const type of ['output', 'state', 'coverage', 'path'] as const) {
      expect(extractAnswer('<answer></answer>', type)).toEqual({
        ok: false,
        reason: 'empty answer',
      });
    }
    expect(extractAnswer('<answer>f()</answer>', 'output')).toEqual({ ok: true, answer: 'f()' });
  });

  it('drops trailing prose after a complete first line and a final period', () => {
    expect(extractAnswer("<answer>'abc'\nbecause the loop appends</answer>", 'output')).toEqual({
      ok: true,
      answer: "'abc'",
    });
    expect(extractAnswer("<answer>'abc'.</answer>", 'output')).toEqual({
      ok: true,
      answer: "'abc'",
    });
    expect(extractAnswer('<answer>{\n  "a": 1,\n}</answer>', 'output')).toEqual({
      ok: true,
      answer: '{\n  "a": 1,\n}',
    });
  });

  it('normalises state answers written as assignments or REval `value; type`', () => {
    expect(extractAnswer('<answer>total = 6</answer>', 'state')).toEqual({ ok: true, answer: '6' });
    expect(extractAnswer("<answer>['a;b']; list</answer>", 'state')).toEqual({
      ok: true,
      answer: "['a;b']",
    });
  });

  it('reads coverage words and rejects anything else', () => {
    expect(extractAnswer('<answer>YES.</answer>', 'coverage')).toEqual({ ok: true, answer: 'yes' });
    expect(extractAnswer('<answer>It is not executed</answer>', 'coverage')).toEqual({
      ok: true,
      answer: 'no',
    });
    expect(extractAnswer('<answer>True</answer>', 'coverage')).toEqual({ ok: true, answer: 'yes' });
    const bad = extractAnswer('<answer>maybe</answer>', 'coverage');
    expect(bad.ok).toBe(false);
    expect(bad.ok ? '' : bad.reason).toMatch(/expected yes or no/);
  });

  it('reads path line numbers', () => {
    expect(extractAnswer('<answer>Line 7</answer>', 'path')).toEqual({ ok: true, answer: '7' });
    expect(extractAnswer('<answer>-1</answer>', 'path')).toEqual({ ok: true, answer: '-1' });
    expect(extractAnswer('<answer>0</answer>', 'path').ok).toBe(false);
    expect(extractAnswer('<answer>the end</answer>', 'path').ok).toBe(false);
  });

  it('rejects unbalanced values', () => {
    expect(extractAnswer('<answer>[1, 2</answer>', 'output')).toEqual({
      ok: false,
      reason: 'unbalanced brackets or unterminated string',
    });
  });
});
