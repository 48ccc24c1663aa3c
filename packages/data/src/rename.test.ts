import { describe, expect, it } from 'vitest';
import { renameIdentifiers } from './rename.js';

describe('renameIdentifiers', () => {
  it('renames functions, parameters and locals but not attributes, imports or builtin keywords', async () => {
    const code = [
      'import math',
      '',
      'def scale(value, factor=2):',
      '    return math.floor(value * factor)',
      '',
      'def process(items, key):',
      '    out = [scale(x, factor=key) for x in items]',
      '    return sorted(out, reverse=True)[:len(items)]',
      '',
    ].join('\n');
    const result = await renameIdentifiers(code, 'process');
    expect(result.entryPoint).toBe('f');
    expect(result.code).toBe(
      [
        'import math',
        '',
        'def g1(v0, v1=2):',
        '    return math.floor(v0 * v1)',
        '',
        'def f(v2, v3):',
        '    v4 = [g1(v5, v1=v3) for v5 in v2]',
        '    return sorted(v4, reverse=True)[:len(v2)]',
        '',
      ].join('\n'),
    );
  });

  it('keeps names that would collide apart', async () => {
    const result = await renameIdentifiers(
      'def f(v0, g1):\n    v1 = v0 + g1\n    return v1\n',
      'f',
    );
    expect(result.code).toBe('def f(v0, v1):\n    v2 = v0 + v1\n    return v2\n');
  });
});
