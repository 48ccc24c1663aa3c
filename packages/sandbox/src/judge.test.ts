import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from './sandbox.js';
import type { Engine } from './types.js';

const hasPython =
  spawnSync('python3', ['-c', 'import sys; assert sys.version_info >= (3, 9)']).status === 0;
const engines: { engine: Engine; skip: string | false }[] = [
  { engine: 'pyodide', skip: false },
  { engine: 'cpython', skip: hasPython ? false : ' (skipped: no python3 >= 3.9 on PATH)' },
];
const code = 'def f(xs, key=None):\n    return [x for x in xs if key is None or key(x)]\n';

for (const { engine, skip } of engines) {
  describe.skipIf(skip !== false)(`judge requests, ${engine} engine${skip || ''}`, () => {
    let sandbox: Sandbox;
    beforeAll(async () => {
      sandbox = await Sandbox.create({ engine, workers: 1 });
    }, 60_000);
    afterAll(async () => {
      await sandbox?.close();
    });

    it('decides literals with CPython after newline normalisation, and compares values', async () => {
      const results = await sandbox.checkBatch([
        { code: '', answer: "[1, (2, 'a')] # a comment", golds: ["[1, (2, 'a')]"] },
        // issue 12: the lone \r ends the comment; `or True` is not a literal
        { code: '', answer: "r'\\'' #\r), ()) or True or ((1\r#'", golds: ['5'] },
        { code: '', answer: '1', golds: ['True'] },
        { code: '', answer: '1', golds: ['True'], compare: 'typed' },
        { code: '', answer: "type('X', (), {'__eq__': lambda s, o: True})()", golds: ['5'] },
        {
          code,
          answer: '[0, 3, 1], lambda x: x < 2',
          answerForm: 'arguments',
          function: 'f',
          golds: ['[0, 1]'],
        },
        {
          code,
          answer: "[0, 3], lambda x: __import__('os')",
          answerForm: 'arguments',
          function: 'f',
          golds: ['[0]'],
        },
        {
          code,
          answer: 'f(0 #\r) if 0 else (1\r)',
          answerForm: 'call',
          function: 'f',
          golds: ['[0]'],
        },
        { code, answer: 'f(range(3))', answerForm: 'call', function: 'f', golds: ['[0, 1, 2]'] },
        { code: '', answer: "float('nan')", golds: [] },
        { code: '', answer: '10**10**10', golds: [] },
      ]);
      expect(results.map((r) => [r.status, r.literal])).toEqual([
        ['passed', true],
        ['failed', false],
        ['passed', true],
        ['failed', true],
        ['failed', false],
        ['passed', true],
        ['failed', false],
        ['failed', false],
        ['passed', true],
        ['passed', true],
        ['failed', false],
      ]);
      expect(results[9]!.valueRepr).toBe('nan');
      expect(results[1]!.detail).toMatch(/^not a literal: /);
    });

    it('refuses malformed judge requests with every issue listed', async () => {
      await expect(
        sandbox.checkBatch([
          { code: '', answer: '1', answerForm: 'arguments', compare: 'loose' as 'eq' },
        ]),
      ).rejects.toThrow(/answerForm|function|compare/);
    });
  });
}
