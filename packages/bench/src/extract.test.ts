import { describe, expect, it } from 'vitest';
import {
  completeRevalOutput,
  extractCruxInput,
  extractCruxOutput,
  extractLcbOutput,
  extractRevalAnswer,
  parseRevalCoverage,
  parseRevalPath,
} from './extract.js';

describe('CRUXEval extraction (inference/tasks + openai_prompt.py)', () => {
  it('output: text after the first ==, up to a second one', () => {
    expect(extractCruxOutput('assert f(17) == 17\n', false)).toBe('17');
    expect(extractCruxOutput('assert f("a") == "b" == "c"', false)).toBe('"b"');
    expect(extractCruxOutput('[1, 2]', false)).toBe('[1, 2]');
    expect(extractCruxOutput('assert f(1) == 2\n[/ANSWER]\nmore == text', false)).toBe('2');
  });

  it('CoT: after the first [ANSWER], else the last line as it is (openai_prompt.py)', () => {
    expect(extractCruxOutput('steps\n[/THOUGHT]\n[ANSWER]\nassert f(1) == 5\n', true)).toBe('5');
    expect(extractCruxOutput('I think\nassert f(1) == 6', true)).toBe('assert f(1) == 6');
    expect(extractCruxInput('I think\nassert f(1) == 6', true)).toBe('assert f(1) == 6');
    expect(extractCruxOutput('I think\n6\n', true)).toBe('');
    expect(extractCruxOutput('I think\nthe answer is 7', true)).toBe('the answer is 7');
  });

  it('input: text before the first ==, rebuilt from "assert f"', () => {
    expect(extractCruxInput('assert f([1, 2]) == 3', false)).toBe('f([1, 2])');
    expect(extractCruxInput('[ANSWER]\nassert f("x") == "y"', false)).toBe('f("x")');
    expect(extractCruxInput('f(16)', false)).toBe('f(16)');
    expect(extractCruxInput('x\n[/THOUGHT]\n[ANSWER]\nassert f(16) == 17\n', true)).toBe('f(16)');
    expect(extractCruxInput('', false)).toBe('');
  });
});

describe('LiveCodeBench extract_execution_code', () => {
  it('keeps the text after ==, cut at [/ANSWER] or else at the first line', () => {
    expect(extractLcbOutput('assert g(a = 1) == [1, 2]\n[/ANSWER]', false)).toBe('[1, 2]');
    expect(extractLcbOutput('assert g(a = 1) == 5\nsome more text', false)).toBe('5');
    expect(extractLcbOutput('thinking\n[ANSWER]\nassert g(a = 1) == "x"\n[/ANSWER]', true)).toBe(
      '"x"',
    );
  });

  it('mis-parses a CoT answer whose == appears in the reasoning (documented harness behaviour)', () => {
    expect(
      extractLcbOutput('since a == b holds\n[ANSWER]\nassert g() == 3\n[/ANSWER]', false),
    ).toBe('b holds');
  });
});

describe('REval extraction (evaluation.py)', () => {
  it('takes the text between [ANSWER] and [/ANSWER] (or a truncated [/ANSWER)', () => {
    expect(extractRevalAnswer('[ANSWER]\nYES\n[/ANSWER]', 'path', false)).toEqual({
      ok: true,
      text: 'YES',
    });
    expect(extractRevalAnswer('NO\n[/ANS', 'path', false)).toEqual({ ok: true, text: 'NO\n[/ANS' });
    expect(extractRevalAnswer('NO\n[/ANSWER', 'path', false)).toEqual({ ok: true, text: 'NO' });
    expect(extractRevalAnswer(' 1; int ', 'state', false)).toEqual({ ok: true, text: '1; int' });
    expect(extractRevalAnswer('\n-1\n', 'path', false)).toEqual({ ok: true, text: '\n-1\n' });
    expect(extractRevalAnswer('\nno\n', 'coverage', false)).toEqual({ ok: true, text: 'NO' });
  });

  it('rejects a CoT response without [/THOUGHT] (any case for coverage only)', () => {
    expect(extractRevalAnswer('[ANSWER]\nYES\n[/ANSWER]', 'coverage', true).ok).toBe(false);
    expect(extractRevalAnswer('reasoning\n[/THOUGHT]\n[ANSWER]\nYES', 'path', true)).toEqual({
      ok: true,
      text: 'YES',
    });
    expect(extractRevalAnswer('r\n[/thought]\n[answer]\nyes', 'coverage', true)).toEqual({
      ok: true,
      text: 'YES',
    });
    expect(extractRevalAnswer('r\n[/thought]\n[ANSWER]\n-1', 'path', true).ok).toBe(false);
  });

  it('coverage reads YES/NO from the first three characters', () => {
    expect(parseRevalCoverage('YES')).toBe(true);
    expect(parseRevalCoverage('yes, it runs')).toBe(true);
    expect(parseRevalCoverage('No')).toBe(false);
    expect(parseRevalCoverage('')).toBe(false);
    expect(parseRevalCoverage('It is executed')).toBe(false);
  });

  it('path maps the first line to every line with that text', () => {
    const code = ['def f(x):', '    y = 1', '    if x:', '        y = 1', '    return y'];
    expect(parseRevalPath('y = 1', code)).toEqual([2, 4]);
    expect(parseRevalPath('return y\nmore', code)).toEqual([5]);
    expect(parseRevalPath('-1', code)).toEqual([-1]);
    expect(parseRevalPath('', code)).toEqual([-2]);
    expect(parseRevalPath('z = 2', code)).toEqual([-2]);
  });

  it('output pads missing leading lines from the question and applies penalty_pattern', () => {
    const question = 'a = A(3)\nassertEqual(a.f(2), ??)\nassertEqual(a.f(4), ??)';
    expect(completeRevalOutput('assertEqual(a.f(2), 5)\nassertEqual(a.f(4), 7)', question)).toEqual(
      {
        code: 'a = A(3)\nassertEqual(a.f(2), 5)\nassertEqual(a.f(4), 7)',
        penalty: undefined,
      },
    );
    // One line for three: the first two lines come from the question (its ?? then fails at run time).
    expect(completeRevalOutput('assertEqual(a.f(4), 7)', question)).toEqual({
      code: 'a = A(3)\nassertEqual(a.f(2), ??)\nassertEqual(a.f(4), 7)',
      penalty: undefined,
    });
    expect(
      completeRevalOutput('a = A(3)\nprint(a)\nassertEqual(a.f(4), 7)', question).penalty,
    ).toBe('1 assert(s) where the question has 2');
    expect(completeRevalOutput('assert True', 'assert g(1) == ??').penalty).toBe(
      'trivial assertion assert True',
    );
    expect(completeRevalOutput('', 'assert g(1) == ??').penalty).toBe(
      '0 assert(s) where the question has 1',
    );
  });
});
