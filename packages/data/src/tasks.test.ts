import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateInputs, inferParamTypes } from './inputs.js';
import { Rng } from '@codereasoner/common';
import { analyzeLines, planTasks, tookDecision } from './tasks.js';

const code = [
  'def double(v):', //                  1
  '    return v * 2', //                2
  '', //                                3
  'def f(nums, limit):', //             4
  '    out = []', //                    5
  '    for n in nums:', //              6
  '        if n > limit:', //           7
  '            out.append(double(n))', // 8
  '        elif n < 0:', //             9
  '            break', //               10
  '    total = sum(out)', //            11
  '    return [total, out]', //         12
  '',
].join('\n');

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
}, 60_000);
afterAll(async () => {
  await sandbox.close();
});

describe('analyzeLines', () => {
  it('finds statement lines, owners, bindings and decisions', async () => {
    const lines = await analyzeLines(code);
    expect([...lines.keys()].sort((a, b) => a - b)).toEqual([2, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(lines.get(2)).toMatchObject({
      owner: 'double',
      kind: 'return_statement',
      decision: false,
    });
    expect(lines.get(6)).toMatchObject({ owner: 'f', assigns: ['n'], decision: true });
    expect(lines.get(9)).toMatchObject({ kind: 'elif_clause', decision: true });
    expect(lines.get(11)).toMatchObject({ assigns: ['total'], decision: false });
  });
});

describe('planTasks', () => {
  it('derives every answer from the trace with the documented conventions', async () => {
    const trace = await sandbox.trace({ code, call: 'f([3, 1, -2, 5], 2)' });
    expect(trace.path).toEqual([5, 6, 7, 8, 2, 6, 7, 9, 6, 7, 9, 10, 11, 12]);
    const lines = await analyzeLines(code);
    expect(tookDecision(trace, lines)).toBe(true);
    const tasks = planTasks(
      {
        programId: 'p',
        callId: 'p-c0',
        split: 'train',
        code,
        entryPoint: 'f',
        input: '[3, 1, -2, 5], 2',
        output: trace.repr!,
        trace,
        meta: {},
      },
      lines,
      new Rng(1),
      {
        taskTypes: ['output', 'input', 'coverage', 'state', 'path'],
        coveragePerCall: 2,
        maxReprChars: 80,
      },
    );
    expect(tasks.map((task) => task.type)).toEqual([
      'output',
      'input',
      'coverage',
      'coverage',
      'path',
      'state',
    ]);
    expect(tasks[0]).toMatchObject({ answer: '[6, [6]]', output: '[6, [6]]' });
    expect(tasks[1]).toMatchObject({ answer: '[3, 1, -2, 5], 2' });
    // Every line ran except none: all coverage answers come from the trace.
    for (const task of tasks.filter((t) => t.type === 'coverage')) {
      expect(task.answer).toBe(trace.coverage.includes(task.line!) ? 'yes' : 'no');
    }
    const path = tasks.find((task) => task.type === 'path')!;
    const first = trace.path.indexOf(path.line!);
    expect(path.answer).toBe(String(trace.path[first + 1] ?? -1));
    const state = tasks.find((task) => task.type === 'state')!;
    expect(state.variable).toBeDefined();
    const index = trace.path.indexOf(state.line!);
    expect(state.answer).toBe(trace.states[index]!.locals[state.variable!]);
    // Line 8 calls a helper: its "after" snapshot is the helper's frame, so it is never asked.
    expect(state.line).not.toBe(8);
  });
});

describe('inputs', () => {
  it('infers parameter types from annotations, defaults and use', async () => {
    const source =
      'def g(words, n: int, sep=",", table=None):\n    out = []\n    for w in words:\n        out.append(w.upper())\n    return sep.join(out[:n]) + str(table.get("a"))\n';
    const types = await inferParamTypes(source, 'g', [
      { name: 'words' },
      { name: 'n', annotation: 'int' },
      { name: 'sep', default: '","' },
      { name: 'table', default: 'None' },
    ]);
    expect(types.get('words')![0]).toMatchObject({ kind: 'list', of: { kind: 'str' } });
    expect(types.get('n')![0]).toEqual({ kind: 'int' });
    expect(types.get('sep')![0]).toMatchObject({ kind: 'char' });
    expect(types.get('table')![0]).toMatchObject({ kind: 'dict' });
  });

  it('draws distinct, seeded argument lists', () => {
    const params = [{ name: 'xs' }, { name: 'k' }];
    const candidates = new Map([
      ['xs', [{ kind: 'list' as const, of: { kind: 'int' as const } }]],
      ['k', [{ kind: 'int' as const, min: 0, max: 3 }]],
    ]);
    const a = generateInputs(new Rng(9), params, candidates, 5, true);
    expect(a).toHaveLength(5);
    expect(new Set(a).size).toBe(5);
    expect(generateInputs(new Rng(9), params, candidates, 5, true)).toEqual(a);
    for (const input of a) expect(input).toMatch(/^\[(-?\d+(, -?\d+)*)?\], [0-3]$/);
  });
});
