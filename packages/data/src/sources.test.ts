import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodePythonSource, readSource, type SourceUnit } from './sources.js';

async function units(path: string): Promise<SourceUnit[]> {
  const out: SourceUnit[] = [];
  for await (const unit of readSource({ kind: 'directory', path }, 0, 0)) out.push(unit);
  return out;
}

describe('directory sources', () => {
  it('reads UTF-8 and declared encodings as Python does, and reports what it cannot read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'data-sources-'));
    await writeFile(join(dir, 'a_utf8.py'), 'def f(x):\n    return "é" + x\n');
    // "é" in Latin-1 is the single byte 0xE9: invalid UTF-8
    await writeFile(
      join(dir, 'b_latin1_declared.py'),
      Buffer.from('# -*- coding: latin-1 -*-\ndef f(x):\n    return "\xe9" + x\n', 'latin1'),
    );
    await writeFile(
      join(dir, 'c_latin1.py'),
      Buffer.from('def f(x):\n    return "\xe9" + x\n', 'latin1'),
    );
    await symlink(join(dir, 'gone.py'), join(dir, 'd_dangling.py'));
    const read = await units(dir);
    expect(read.map((u) => u.ref)).toEqual([
      'a_utf8.py',
      'b_latin1_declared.py',
      'c_latin1.py',
      'd_dangling.py',
    ]);
    expect(read[0]).toMatchObject({ code: 'def f(x):\n    return "é" + x\n' });
    expect(read[0]!.problem).toBeUndefined();
    expect(read[1]!.code).toContain('return "é" + x');
    expect(read[1]!.problem).toBeUndefined();
    expect(read[2]).toMatchObject({ code: '' });
    expect(read[2]!.problem).toMatch(/^not valid UTF-8 \(line 2\) and no coding declaration/);
    expect(read[3]).toMatchObject({ code: '', problem: 'cannot be read (ENOENT)' });
  });

  it('never hands on replacement characters', () => {
    const result = decodePythonSource(Buffer.from([0x78, 0x3d, 0x27, 0xff, 0x27, 0x0a]));
    expect(result).toEqual({
      problem: expect.stringContaining('not valid UTF-8 (line 1)'),
    });
    expect(decodePythonSource(Buffer.from('\ufeffx = 1\n'))).toEqual({ code: 'x = 1\n' });
  });
});
