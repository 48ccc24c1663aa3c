import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from './atomic-write.js';
import {
  JsonlFormatError,
  appendJsonLine,
  appendJsonLines,
  readJsonLines,
  readJsonlJournal,
  writeJsonLines,
} from './jsonl.js';

const dir = () => mkdtemp(join(tmpdir(), 'common-jsonl-'));

describe('the JSONL rule', () => {
  it('appends complete lines and reads them back with their line numbers', async () => {
    const path = join(await dir(), 'sub', 'j.jsonl');
    await appendJsonLine(path, { step: 1 });
    await appendJsonLines(path, [{ step: 2 }, { step: 3 }]);
    expect(await readFile(path, 'utf8')).toBe('{"step":1}\n{"step":2}\n{"step":3}\n');
    expect(await readJsonLines(path)).toEqual({
      values: [{ step: 1 }, { step: 2 }, { step: 3 }],
      lines: [1, 2, 3],
      truncatedTail: false,
    });
  });

  it('keeps a last line without its newline when it parses, and appends after it on a new line', async () => {
    const path = join(await dir(), 'published.jsonl');
    await writeFile(path, '{"a":1}\n\n{"a":2}');
    expect((await readJsonLines(path, { tornTail: 'error' })).values).toEqual([{ a: 1 }, { a: 2 }]);
    await appendJsonLine(path, { a: 3 });
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n\n{"a":2}\n{"a":3}\n');
  });

  it('drops a torn last line by default, and refuses it for a finished file', async () => {
    const path = join(await dir(), 'torn.jsonl');
    await writeFile(path, '{"step":1}\n{"step":2}\n{"ste');
    const torn: number[] = [];
    expect(await readJsonLines(path, { onTornTail: (line) => torn.push(line) })).toEqual({
      values: [{ step: 1 }, { step: 2 }],
      lines: [1, 2],
      truncatedTail: true,
    });
    expect(torn).toEqual([3]);
    await expect(readJsonLines(path, { tornTail: 'error' })).rejects.toThrow(
      /torn\.jsonl:3: not valid JSON .*cut off/,
    );
  });

  it('always refuses an unparsable line before the last, naming path:line', async () => {
    const path = join(await dir(), 'corrupt.jsonl');
    await writeFile(path, '{"step":1}\nnot json\n{"step":3}\n');
    const error = await readJsonLines(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JsonlFormatError);
    expect((error as JsonlFormatError).line).toBe(2);
    await expect(
      readJsonLines(path, { invalidLine: (line) => new RangeError(`line ${line}`) }),
    ).rejects.toThrow(RangeError);
  });

  it('a journal read removes the torn tail from the file so the next append is whole', async () => {
    const path = join(await dir(), 'journal.jsonl');
    await writeFile(path, '{"i":1}\n{"i"');
    expect((await readJsonlJournal(path)).values).toEqual([{ i: 1 }]);
    await appendJsonLine(path, { i: 2 });
    expect(await readFile(path, 'utf8')).toBe('{"i":1}\n{"i":2}\n');
  });

  it('reads a missing file as empty unless told otherwise', async () => {
    const path = join(await dir(), 'none.jsonl');
    expect(await readJsonLines(path)).toEqual({ values: [], lines: [], truncatedTail: false });
    await expect(readJsonLines(path, { missingIsEmpty: false })).rejects.toThrow(/ENOENT/);
  });

  it('writeJsonLines and writeFileAtomic replace a file whole', async () => {
    const base = await dir();
    const path = join(base, 'w.jsonl');
    await writeJsonLines(path, [{ a: 1 }, { b: 2 }]);
    expect(await readFile(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
    await writeFileAtomic(join(base, 'deep', 'x.bin'), [
      new Uint8Array([1, 2]),
      new Uint8Array([3]),
    ]);
    expect([...(await readFile(join(base, 'deep', 'x.bin')))]).toEqual([1, 2, 3]);
  });
});
