import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCompletion } from './answer.js';
import type { TaskRecord } from './records.js';
import { isArgumentList, isSingleExpression, verify, verifyBatch } from './verify.js';

const code = [
  'def f(nums, sep):',
  '    out = []',
  '    for x in nums:',
  '        if x % 2 == 0:',
  '            out.append(x * 2)',
  '    return sep.join(str(v) for v in out)',
  '',
].join('\n');

function task(overrides: Partial<TaskRecord>): TaskRecord {
  return {
    id: 't',
    programId: 'p',
    callId: 'c',
    type: 'output',
    split: 'eval',
    code,
    entryPoint: 'f',
    input: "[1, 2, 4], '-'",
    output: "'4-8'",
    answer: "'4-8'",
    meta: {},
    ...overrides,
  };
}

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
}, 60_000);
afterAll(async () => {
  await sandbox.close();
});

describe('verify', () => {
  it('accepts equivalent output values and rejects wrong ones', async () => {
    const t = task({});
    const t2 = task({ output: '[1, 2]', answer: '[1, 2]' });
    const results = await verifyBatch(sandbox, [
      { task: t, completion: formatCompletion('"4-8"', 'x') },
      { task: t2, completion: '<answer>[1,2]</answer>' },
      { task: t2, completion: '<answer>(1, 2)</answer>' },
      { task: t, completion: "<answer>'4-8 '</answer>" },
      { task: t, completion: "<answer>f([1, 2, 4], '-')</answer>" },
      { task: t, completion: "<answer>type('X', (), {'__eq__': lambda s, o: True})()</answer>" },
      { task: t, completion: 'no tags here' },
    ]);
    expect(results).toEqual([
      { correct: true, reason: 'correct' },
      { correct: true, reason: 'correct' },
      { correct: false, reason: 'wrong: answered (1, 2), expected [1, 2]' },
      { correct: false, reason: "wrong: answered '4-8 ', expected '4-8'" },
      { correct: false, reason: 'invalid: the answer is not a Python literal' },
      { correct: false, reason: 'invalid: the answer is not a Python literal' },
      { correct: false, reason: 'no_answer: no <answer> tag' },
    ]);
  });

  it('runs input answers through the function and rejects injections', async () => {
    const t = task({ type: 'input', answer: "[1, 2, 4], '-'" });
    const results = await verifyBatch(sandbox, [
      { task: t, completion: "<answer>[2, 4], '-'</answer>" },
      { task: t, completion: '<answer>assert f(nums=[4, 2, 2], sep="-") == \'4-8\'</answer>' },
      { task: t, completion: "<answer>[2, 4], '+'</answer>" },
      { task: t, completion: "<answer>[2, 4], '-'; import os</answer>" },
      { task: t, completion: "<answer>[0], '-') if 0 else ('4-8'</answer>" },
      { task: t, completion: "<answer>list(range(5)), '-'</answer>" },
      { task: t, completion: '<answer>[2], 3</answer>' },
    ]);
    expect(results[0]).toEqual({ correct: true, reason: 'correct' });
    expect(results[1]).toEqual({
      correct: false,
      reason: "wrong: f(nums=[4, 2, 2], sep=\"-\") returned '8-4-4', expected '4-8'",
    });
    expect(results[2]).toEqual({
      correct: false,
      reason: "wrong: f([2, 4], '+') returned '4+8', expected '4-8'",
    });
    expect(results[3]).toEqual({
      correct: false,
      reason: 'invalid: the answer is not an argument list of Python literals',
    });
    // Closing the call early unbalances the text: extraction already refuses it.
    expect(results[4]).toEqual({
      correct: false,
      reason: 'no_answer: unbalanced brackets or unterminated string',
    });
    expect(results[5]).toEqual({
      correct: false,
      reason: 'invalid: the answer is not an argument list of Python literals',
    });
    expect(results[6]!.correct).toBe(false);
    expect(results[6]!.reason).toBe(
      "exception: AttributeError: 'int' object has no attribute 'join'",
    );
  });

  it('verifies an empty argument list for a zero-argument function (CRUXEval-I sample_135)', async () => {
    const zero = task({
      type: 'input',
      // CRUXEval sample_135 as it is
      code: "def f():\n    d = {\n        'Russia': [('Moscow', 'Russia'), ('Vladivostok', 'Russia')],\n        'Kazakhstan': [('Astana', 'Kazakhstan')],\n    }\n    return list(d.keys())",
      input: '',
      output: "['Russia', 'Kazakhstan']",
      answer: '',
    });
    const results = await verifyBatch(sandbox, [
      { task: zero, completion: formatCompletion('', 'f takes no arguments') },
      { task: zero, completion: '<answer>f()</answer>' },
      { task: zero, completion: '<answer>1</answer>' },
      // a function that needs arguments is not called with none by accident
      { task: task({ type: 'input' }), completion: '<answer></answer>' },
    ]);
    expect(results.slice(0, 2)).toEqual([
      { correct: true, reason: 'correct' },
      { correct: true, reason: 'correct' },
    ]);
    expect(results[2]!.reason).toMatch(
      /^exception: TypeError: f\(\) takes 0 positional arguments but 1 was given/,
    );
    expect(results[3]!.reason).toMatch(
      /^exception: TypeError: f\(\) missing 2 required positional arguments/,
    );
  });

  it('compares state answers by value and type', async () => {
    const t = task({ type: 'state', line: 5, variable: 'out', answer: '[4]' });
    const flag = task({ type: 'state', line: 5, variable: 'flag', answer: 'True' });
    const results = await verifyBatch(sandbox, [
      { task: t, completion: '<answer>out = [4]</answer>' },
      { task: t, completion: '<answer>[4]; list</answer>' },
      { task: t, completion: '<answer>[4, 8]</answer>' },
      { task: flag, completion: '<answer>1</answer>' },
      { task: flag, completion: '<answer>True</answer>' },
      {
        task: { ...t, meta: { acceptableAnswers: ['[4, 8]'] } },
        completion: '<answer>[4, 8]</answer>',
      },
    ]);
    expect(results.map((r) => r.correct)).toEqual([true, true, false, false, true, true]);
    expect(results[3]!.reason).toBe('wrong: answered 1, expected True');
  });

  it('compares coverage and path answers with the trace', async () => {
    const coverage = task({ type: 'coverage', line: 5, answer: 'yes' });
    const path = task({ type: 'path', line: 4, answer: '3' });
    expect(await verify(sandbox, coverage, '<answer>Yes</answer>')).toEqual({
      correct: true,
      reason: 'correct',
    });
    expect(await verify(sandbox, coverage, '<answer>no</answer>')).toEqual({
      correct: false,
      reason: 'wrong: answered no, expected yes',
    });
    expect(await verify(sandbox, path, '<answer>line 3</answer>')).toEqual({
      correct: true,
      reason: 'correct',
    });
    expect(await verify(sandbox, path, '<answer>5</answer>')).toEqual({
      correct: false,
      reason: 'wrong: answered 5, expected 3',
    });
    expect(
      await verify(sandbox, { ...path, meta: { acceptableAnswers: ['5'] } }, '<answer>5</answer>'),
    ).toEqual({
      correct: true,
      reason: 'correct',
    });
  });

  it('reports timeouts of input answers', async () => {
    const loop = task({
      type: 'input',
      code: 'def f(n):\n    while n != 0:\n        n -= 2\n    return n\n',
      output: '0',
    });
    const [result] = await verifyBatch(
      sandbox,
      [{ task: loop, completion: '<answer>3</answer>' }],
      { timeoutMs: 300 },
    );
    expect(result).toEqual({
      correct: false,
      reason: 'timeout: the check ran past its time limit',
    });
  });
});

describe('answer syntax checks', () => {
  it('knows literals and argument lists', async () => {
    expect(
      await isSingleExpression("{'a': (1, -2.5, 1+2j)}, set(), frozenset({1}), float('nan')", {
        literal: true,
      }),
    ).toBe(true);
    expect(await isSingleExpression('x + 1', { literal: true })).toBe(false);
    expect(await isSingleExpression('x + 1')).toBe(true);
    expect(await isSingleExpression('x = 1')).toBe(false);
    expect(await isSingleExpression('1\n2')).toBe(false);
    expect(await isSingleExpression("f'{x}'", { literal: true })).toBe(false);
    expect(await isArgumentList("[1, 2], key='a'")).toBe(true);
    expect(await isArgumentList('1)(2')).toBe(false);
    expect(await isArgumentList('*[1]')).toBe(false);
  });
});
