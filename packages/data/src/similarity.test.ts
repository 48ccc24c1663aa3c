import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateProgram } from './generator.js';
import { parsePython } from './python-parser.js';
import {
  buildContaminationIndex,
  codeTokens,
  contaminationScore,
  normalizedTreeHash,
} from './similarity.js';

async function hashOf(code: string): Promise<string> {
  const tree = await parsePython(code);
  try {
    return normalizedTreeHash(tree.rootNode);
  } finally {
    tree.delete();
  }
}

describe('normalizedTreeHash', () => {
  it('ignores names, comments and layout but not structure or constants', async () => {
    const a = await hashOf(
      'def f(xs):\n    t = 0\n    for x in xs:\n        t += x  # sum\n    return t\n',
    );
    const renamed = await hashOf(
      'def g(values):\n    acc = 0\n    for v in values:\n        acc += v\n\n    return acc\n',
    );
    const constant = await hashOf(
      'def f(xs):\n    t = 1\n    for x in xs:\n        t += x\n    return t\n',
    );
    const method = await hashOf(
      'def f(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t.real\n',
    );
    expect(renamed).toBe(a);
    expect(constant).not.toBe(a);
    expect(method).not.toBe(a);
  });
});

describe('decontamination', () => {
  it('flags a renamed benchmark program and passes generated ones', async () => {
    const index = await buildContaminationIndex(
      [join(import.meta.dirname, '__fixtures__', 'cruxeval-sample.jsonl')],
      13,
    );
    expect(index.programs).toBe(5);
    const copy =
      'def solve(arr):\n    res = []\n    for k in arr:\n        res.append((arr.count(k), k))\n    res.sort(reverse=True)\n    return res\n';
    expect(contaminationScore(copy, index)).toBe(1);
    for (let i = 0; i < 50; i += 1)
      expect(contaminationScore(generateProgram(2, i).code, index)).toBeLessThan(0.5);
  });

  it('matches programs shorter than n tokens as a whole, from .py files too', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'cr-data-bench-'));
    await writeFile(join(folder, 'tiny.py'), 'def f(x):\n    return x * 2\n');
    const index = await buildContaminationIndex([folder], 13);
    expect(index.files).toEqual([join(folder, 'tiny.py')]);
    expect(contaminationScore('def double(value):\n    return value * 2\n', index)).toBe(1);
    expect(contaminationScore('def double(value):\n    return value * 3\n', index)).toBe(0);
    await rm(folder, { recursive: true, force: true });
  });

  it('tokenizes without comments and with identifiers abstracted', () => {
    expect(codeTokens("x = len(s.upper())  # note\nprint('a')")).toEqual([
      'ID',
      '=',
      'len',
      '(',
      'ID',
      '.',
      'upper',
      '(',
      ')',
      ')',
      'print',
      '(',
      "'a'",
      ')',
    ]);
  });

  it('fails clearly on a missing path', async () => {
    await expect(buildContaminationIndex(['/nonexistent/bench'], 10)).rejects.toMatchObject({
      code: 'DECONTAMINATION_PATH',
    });
  });
});
