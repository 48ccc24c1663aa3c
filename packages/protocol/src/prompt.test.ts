import { describe, expect, it } from 'vitest';
import { lineText, numberLines, renderPrompt } from './prompt.js';
import type { TaskRecord } from './records.js';

const code =
  'def f(nums):\n    total = 0\n    for x in nums:\n        total += x\n    return total\n';

function task(overrides: Partial<TaskRecord>): TaskRecord {
  return {
    id: 't',
    programId: 'p',
    callId: 'c',
    type: 'output',
    split: 'train',
    code,
    entryPoint: 'f',
    input: '[1, 2]',
    output: '3',
    answer: '3',
    meta: {},
    ...overrides,
  };
}

describe('renderPrompt', () => {
  it('renders output prompts with plain code and the call', () => {
    const [system, user] = renderPrompt(task({}), { reasoning: false });
    expect(system).toEqual({
      role: 'system',
      content:
        'You are an expert Python programmer who reasons precisely about how Python code executes. ' +
        'Give only the final answer inside <answer></answer>, with no explanation.',
    });
    expect(user!.content).toBe(
      '```python\n' +
        code.trimEnd() +
        '\n```\nWhat does `f([1, 2])` return? Answer with the returned value as a Python literal.',
    );
  });

  it('asks for <think> reasoning by default', () => {
    expect(renderPrompt(task({}))[0]!.content).toContain(
      'Think step by step inside <think></think>',
    );
  });

  it('numbers lines for coverage, state and path and quotes the line', () => {
    const user = renderPrompt(task({ type: 'state', line: 4, variable: 'total', answer: '1' }))[1]!
      .content;
    expect(user).toContain('1\tdef f(nums):\n2\t    total = 0\n');
    expect(user).toContain(
      'What is the value of `total` right after line 4 (`total += x`) is executed for the first time',
    );
    const path = renderPrompt(task({ type: 'path', line: 5, answer: '-1' }))[1]!.content;
    expect(path).toContain('which line is executed right after line 5 (`return total`)');
    expect(path).toContain('or -1 if execution ends after that line');
    const coverage = renderPrompt(task({ type: 'coverage', line: 4, answer: 'yes' }))[1]!.content;
    expect(coverage).toMatch(
      /Is line 4 \(`total \+= x`\) executed when `f\(\[1, 2\]\)` is called\? Answer yes or no\.$/,
    );
  });

  it('renders input prompts with the output and a placeholder', () => {
    const user = renderPrompt(task({ type: 'input', answer: '[1, 2]' }))[1]!.content;
    expect(user).toContain('Find an input such that `f(??) == 3`.');
    expect(user).not.toContain('1\tdef');
  });

  it('numberLines and lineText agree', () => {
    expect(numberLines('a\nb\n')).toBe('1\ta\n2\tb');
    expect(lineText(code, 3)).toBe('for x in nums:');
  });
});
