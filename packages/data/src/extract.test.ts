import { describe, expect, it } from 'vitest';
import { extractFunctions } from './extract.js';

describe('extractFunctions', () => {
  it('pulls in the helpers, constants and imports a function uses, transitively', async () => {
    const source = [
      'import math',
      'import os',
      'from collections import Counter',
      '',
      'SCALE = 3',
      'UNUSED = 9',
      '',
      'def helper(x):',
      '    return deep(x) * SCALE',
      '',
      'def deep(x):',
      '    return math.floor(x)',
      '',
      'def main(items: list, k=2):',
      '    c = Counter(items)',
      '    return [helper(v) for v in c.values()][:k]',
      '',
      'def reads_files(path):',
      '    return os.listdir(path)',
      '',
      'class Box:',
      '    def size(self):',
      '        return 1',
      '',
      'def uses_box(n):',
      '    return Box().size() + n',
      '',
      'def gen(n):',
      '    yield n',
      '',
      'def variadic(*values):',
      '    return values',
    ].join('\n');
    const result = await extractFunctions(source);
    expect(result.status).toBe('ok');
    if (result.status !== 'ok') return;
    const byName = new Map(
      result.outcomes.map((o) => [o.ok ? o.unit.entryPoint : o.entryPoint, o]),
    );
    const main = byName.get('main');
    expect(main).toMatchObject({ ok: true });
    if (main?.ok !== true) return;
    expect(main.unit.code).toBe(
      [
        'import math',
        '',
        'from collections import Counter',
        '',
        'SCALE = 3',
        '',
        'def helper(x):',
        '    return deep(x) * SCALE',
        '',
        'def deep(x):',
        '    return math.floor(x)',
        '',
        'def main(items: list, k=2):',
        '    c = Counter(items)',
        '    return [helper(v) for v in c.values()][:k]',
        '',
      ].join('\n'),
    );
    expect(main.unit.params).toEqual([
      { name: 'items', annotation: 'list' },
      { name: 'k', default: '2' },
    ]);
    expect(byName.get('reads_files')).toEqual({
      ok: false,
      entryPoint: 'reads_files',
      reason: 'not_self_contained',
      detail: 'imports os',
    });
    expect(byName.get('uses_box')).toEqual({
      ok: false,
      entryPoint: 'uses_box',
      reason: 'not_self_contained',
      detail: 'uses Box',
    });
    expect(byName.get('gen')).toEqual({
      ok: false,
      entryPoint: 'gen',
      reason: 'unsupported',
      detail: 'generator function',
    });
    expect(byName.get('variadic')).toEqual({
      ok: false,
      entryPoint: 'variadic',
      reason: 'unsupported',
      detail: 'variadic parameters',
    });
    // Methods are not extracted.
    expect(byName.has('size')).toBe(false);
  });

  it('rejects disallowed builtins and reports syntax errors', async () => {
    const result = await extractFunctions('def f(p):\n    return open(p).read()\n');
    expect(result).toEqual({
      status: 'ok',
      outcomes: [{ ok: false, entryPoint: 'f', reason: 'not_self_contained', detail: 'uses open' }],
    });
    expect(await extractFunctions('def f(:\n  pass\n')).toEqual({ status: 'syntax_error' });
  });
});
