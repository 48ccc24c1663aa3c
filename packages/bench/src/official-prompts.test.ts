import { describe, expect, it } from 'vitest';
import {
  cruxCotInputPrompt,
  cruxDirectOutputPrompt,
  lcbCotPrompt,
  lcbDirectPrompt,
  revalPrompt,
} from './official-prompts.js';

// REval's prompts/direct_coverage.txt as the repository has it (without the vendored copy's extra
// "output the raw string" line), to be filled with str.format.
const DIRECT_COVERAGE_TXT = `You are given a Python function and a question on the function. Answer the question with only YES or NO, considering executing the provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra information. Provide your answer in [ANSWER] and [/ANSWER] tags, following the examples.

[PYTHON]
def f(x):
    if x > 2:
        return x*2
    else:
        return x
f(3)
[/PYTHON]
[QUESTION]
Is Line 3 (        return x*2) executed when f(3) is called?
[/QUESTION]
[ANSWER]
YES
[/ANSWER]

[PYTHON]
class A:
    def g(self, x):
        if x > 2:
            return self.h(x)
        else:
            return x

    def h(self, y):
        return y*2

a = A()
assertEqual(a.g(1), 1)
[/PYTHON]
[QUESTION]
Is Line 9 (        return y*2) executed when the above test code is called?
[/QUESTION]
[ANSWER]
NO
[/ANSWER]

[PYTHON]
{code}
{invocation}
[/PYTHON]
[QUESTION]
Is Line {line} ({codeline}) executed when {invocation_abbr} is called?
[/QUESTION]
[ANSWER]`;

const fields = {
  code: 'def g(a):\n    b = a + 1\n    return b\n',
  invocation: 'g(1)',
  invocationAbbr: 'g(1)',
  line: 2,
  codeline: '    b = a + 1',
  variable: 'b',
};

describe('REval prompts', () => {
  it('fills the coverage template exactly', () => {
    const expected = DIRECT_COVERAGE_TXT.replace('{code}', fields.code)
      .replace('{invocation}', fields.invocation)
      .replace('{line}', '2')
      .replace('{codeline}', fields.codeline)
      .replace('{invocation_abbr}', fields.invocationAbbr);
    expect(revalPrompt('coverage', false, fields)).toBe(expected);
  });

  it('asks for value and type in state prompts and ends CoT prompts after [THOUGHT]', () => {
    const state = revalPrompt('state', true, fields);
    expect(state).toContain(
      'what is the value and type of the variable b after Line 2 is executed? If not, answer Nil.\n[/QUESTION]\n[THOUGHT]',
    );
    expect(state.endsWith('[/QUESTION]\n[THOUGHT]')).toBe(true);
    expect(state.match(/\[PYTHON\]/g)).toHaveLength(4); // 3 shots + the query
    expect(state).toContain('Do NOT output any extra information.  Think step by step.');
  });

  it('quotes the line text in path prompts and has no question block in output prompts', () => {
    expect(revalPrompt('path', false, fields)).toContain(
      'If the line `    b = a + 1` is executed when g(1) is called, answer with the next line',
    );
    const output = revalPrompt('output', false, { ...fields, invocation: '\nassert g(1) == ??' });
    expect(
      output.endsWith(
        '[PYTHON]\ndef g(a):\n    b = a + 1\n    return b\n\n\nassert g(1) == ??\n[/PYTHON]\n[ANSWER]',
      ),
    ).toBe(true);
    expect(output).not.toContain('[QUESTION]');
  });
});

describe('CRUXEval and LiveCodeBench prompts', () => {
  it('end right after the opening tag the model continues from', () => {
    const direct = cruxDirectOutputPrompt('def f(x):\n    return x', '1');
    expect(
      direct.endsWith(
        '[PYTHON]\ndef f(x):\n    return x\nassert f(1) == ??\n[/PYTHON]\n[ANSWER]\n',
      ),
    ).toBe(true);
    expect(direct.match(/\[ANSWER\]\nassert f/g)).toHaveLength(2); // two shots
    const cot = cruxCotInputPrompt('def f(x):\n    return x', '1');
    expect(cot.endsWith('assert f(??) == 1\n[/PYTHON]\n[THOUGHT]\n')).toBe(true);
    expect(lcbDirectPrompt('def g(a):\n    return a', 'g(a = 1)')).toContain(
      'assert g(a = 1) == ??\n[/PYTHON]\n[ANSWER]\n',
    );
    expect(lcbCotPrompt('def g(a):\n    return a', 'g(a = 1)')).toContain(
      'assert performOperation(s = "hi") == "bhihia"',
    );
  });
});
