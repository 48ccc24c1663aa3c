import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCompletion } from './answer.js';
import type { TaskRecord } from './records.js';
import { verifiedReward, verify, verifyBatch } from './verify.js';

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

const CALL_RULE =
  'a call is a literal only for set, frozenset, float, complex, dict, list, tuple, range or a str method on a string literal';

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
      {
        correct: false,
        reason: `invalid: the answer is not a Python literal (${CALL_RULE})`,
      },
      {
        correct: false,
        reason: `invalid: the answer is not a Python literal (${CALL_RULE})`,
      },
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
    expect(results[3]!.correct).toBe(false);
    expect(results[3]!.reason).toMatch(/^invalid: the answer is not a Python literal/);
    // Closing the call early unbalances the text: extraction already refuses it.
    expect(results[4]).toEqual({
      correct: false,
      reason: 'no_answer: unbalanced brackets or unterminated string',
    });
    // range() is a literal constructor, but not inside another call (list(range(10**12))).
    expect(results[5]).toEqual({
      correct: false,
      reason:
        'invalid: the answer is not a Python literal (range(...) inside another call is not a literal)',
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

describe('issue 12: answers that rewrite the judge (reproductions)', () => {
  // A lone \r (byte-level tokenizers emit it) is a newline for CPython: once the answer was pasted
  // into code, the `#` ended there and `or True` ran, while the literal check (tree-sitter, whose
  // comment runs through \r; py-scan, which misread the raw string) saw one string literal.
  it('scores the lone-\\r raw-string state answer wrong', async () => {
    const t = task({ type: 'state', line: 5, variable: 'out', answer: '[4]' });
    const [result] = await verifyBatch(sandbox, [
      { task: t, completion: "<answer>r'\\'' #\r), ()) or True or ((1\r#'</answer>" },
    ]);
    expect(result!.correct).toBe(false);
    // Extraction now ends the comment at \r too: what is left is the string r'\'', a wrong value.
    expect(result!.reason).toBe("wrong: answered r'\\'', expected [4]");
  });

  it('scores the input answer of the same kind wrong', async () => {
    const t = task({ type: 'input', answer: "[1, 2, 4], '-'" });
    const results = await verifyBatch(sandbox, [
      { task: t, completion: "<answer>r'\\'' #\r) if 0 else ('4-8'\r#'</answer>" },
      { task: t, completion: "<answer>r'\\'' #\r), '-') if 0 else ('4-8'\r#'</answer>" },
      { task: t, completion: "<answer>[2, 4], f'-'</answer>" },
    ]);
    expect(results.map((r) => r.correct)).toEqual([false, false, false]);
  });

  it('accepts what the literal rule admits, gold inputs of CRUXEval-I included', async () => {
    const out = task({ output: "({'a': (1, -2.5, (1+2j))}, set(), frozenset({1}), nan)" });
    const lambdaTask = task({
      type: 'input',
      code: 'def f(xs, key):\n    return [x for x in xs if key(x)]\n',
      output: '[0, 1]',
    });
    const results = await verifyBatch(sandbox, [
      {
        task: task({ output: "({'a': (1, -2.5, (1+2j))}, set(), frozenset({1}))" }),
        completion: "<answer>{'a': (1, -2.5, 1+2j)}, set(), frozenset({1})</answer>",
      },
      { task: out, completion: "<answer>float('nan')</answer>" },
      { task: lambdaTask, completion: '<answer>[0, 3, 1], lambda x: x < 2</answer>' },
      { task: lambdaTask, completion: "<answer>[0, 3, 1], lambda x: __import__('os')</answer>" },
      { task: task({ output: "['a', 'b']" }), completion: "<answer>'a-b'.split('-')</answer>" },
      { task: task({ output: "'4-8'" }), completion: "<answer>f'4-8'</answer>" },
    ]);
    expect(results.map((r) => r.correct)).toEqual([true, false, true, false, true, false]);
  });
});

describe('verifiedReward', () => {
  it('gives 1 to a verified answer and 0 to a wrong, a gamed or a missing one, starting the sandbox lazily', async () => {
    let started = 0;
    const reward = verifiedReward(async () => {
      started += 1;
      return sandbox;
    });
    expect(started).toBe(0);
    const t = task({});
    const rewards = await reward({
      completions: [
        "<answer>'4-8'</answer>",
        "<answer>'4-9'</answer>",
        "<answer>type('X', (), {'__eq__': lambda s, o: True})()</answer>",
        'no tags here',
      ],
      rows: [{ task: t }, { task: t }, { task: t }, { task: t }],
    });
    expect(rewards).toEqual([1, 0, 0, 0]);
    expect(started).toBe(1);
  });
});
