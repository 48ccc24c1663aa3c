import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendJsonLine, readJsonLines, writeFileAtomic, writeJsonLines } from './atomic-write.js';

describe('writeFileAtomic', () => {
  it('creates the directory, replaces the file and leaves no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-atomic-'));
    const path = join(dir, 'nested', 'a.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, 'two');
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await readdir(join(dir, 'nested'))).toEqual(['a.json']);
  });
});

describe('JSON lines journal', () => {
  it('appends complete lines and reads them back', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'ct-jsonl-')), 'j.jsonl');
    await appendJsonLine(path, { step: 1 });
    await appendJsonLine(path, { step: 2 });
    expect(await readJsonLines(path)).toEqual({
      values: [{ step: 1 }, { step: 2 }],
      truncatedTail: false,
    });
  });

  it('drops and reports a last line torn by a crash, but refuses corruption earlier on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-jsonl-'));
    const torn = join(dir, 'torn.jsonl');
    await writeFile(torn, '{"step":1}\n{"step":2}\n{"ste');
    expect(await readJsonLines(torn)).toEqual({
      values: [{ step: 1 }, { step: 2 }],
      truncatedTail: true,
    });
    const corrupt = join(dir, 'corrupt.jsonl');
    await writeFile(corrupt, '{"step":1}\nnot json\n{"step":3}\n');
    await expect(readJsonLines(corrupt)).rejects.toThrow(/corrupt\.jsonl:2: not valid JSON/);
  });

  it('reads a missing file as empty and rewrites a file with exactly the given values', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'ct-jsonl-')), 'j.jsonl');
    expect(await readJsonLines(path)).toEqual({ values: [], truncatedTail: false });
    await writeJsonLines(path, [{ a: 1 }, { b: 2 }]);
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
  });
});
