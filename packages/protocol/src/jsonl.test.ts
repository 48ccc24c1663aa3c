import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetFormatError } from './errors.js';
import { appendJsonl, readJsonlAll, writeJsonl } from './jsonl.js';
import type { TaskRecord } from './records.js';
import { taskRecordSchema } from './schemas.js';

const good: TaskRecord = {
  id: 'p1-c0-output',
  programId: 'p1',
  callId: 'p1-c0',
  type: 'output',
  split: 'train',
  code: 'def f(x):\n    return x + 1\n',
  entryPoint: 'f',
  input: '1',
  output: '2',
  answer: '2',
  meta: {},
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-data-jsonl-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('task record schema', () => {
  it('accepts a valid record and lists every issue of a bad one', () => {
    expect(taskRecordSchema.check(good)).toEqual([]);
    const issues = taskRecordSchema.check({ ...good, type: 'state', answer: 'x', extra: 1 });
    expect(issues).toContainEqual(expect.stringMatching(/^\/: unknown property 'extra'; known: /));
    expect(issues).toContain("/: must have required property 'line'");
    expect(issues).toContain("/: must have required property 'variable'");
  });

  it('constrains coverage and path answers', () => {
    expect(taskRecordSchema.check({ ...good, type: 'coverage', line: 2, answer: 'YES' })).toEqual([
      '/answer: must be one of "yes", "no" (got "YES")',
    ]);
    expect(taskRecordSchema.check({ ...good, type: 'path', line: 2, answer: '0' })).toEqual([
      '/answer: must match pattern "^(-1|[1-9][0-9]*)$"',
    ]);
  });
});

describe('readJsonl', () => {
  it('reads back what was written', async () => {
    const path = join(dir, 'ok.jsonl');
    await writeJsonl(path, [good], taskRecordSchema);
    await appendJsonl(path, [{ ...good, id: 'second' }], taskRecordSchema);
    const records = await readJsonlAll(path, taskRecordSchema);
    expect(records.map((record) => record.id)).toEqual(['p1-c0-output', 'second']);
  });

  it('refuses to write an invalid record', async () => {
    const path = join(dir, 'never.jsonl');
    await expect(
      writeJsonl(path, [{ ...good, split: 'dev' } as unknown as TaskRecord], taskRecordSchema),
    ).rejects.toThrow(/\/split: must be one of "train", "eval" \(got "dev"\)/);
    await expect(readFile(path, 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('throws DatasetFormatError with path and line for bad JSON and bad records', async () => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(path, `${JSON.stringify(good)}\n\n{"id": 1\n`);
    const error = await readJsonlAll(path, taskRecordSchema).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetFormatError);
    expect(error).toMatchObject({ path, line: 3, code: 'DATASET_FORMAT' });

    await writeFile(path, `${JSON.stringify({ ...good, meta: 5 })}\n`);
    const second = await readJsonlAll(path, taskRecordSchema).catch((e: unknown) => e);
    expect(second).toMatchObject({
      path,
      line: 1,
      issues: ['TaskRecord /meta: must be object (got 5)'],
    });
  });

  it('skips a truncated last line only when asked (resuming)', async () => {
    const path = join(dir, 'truncated.jsonl');
    await writeFile(path, `${JSON.stringify(good)}\n{"id": "p1-c`);
    await expect(readJsonlAll(path, taskRecordSchema)).rejects.toMatchObject({ line: 2 });
    const seen: number[] = [];
    const records = await readJsonlAll(path, taskRecordSchema, {
      allowTruncatedLastLine: true,
      onTruncatedLine: ({ line }) => seen.push(line),
    });
    expect(records).toHaveLength(1);
    expect(seen).toEqual([2]);
  });

  it('reports a missing file as DatasetFormatError', async () => {
    await expect(readJsonlAll(join(dir, 'missing.jsonl'), taskRecordSchema)).rejects.toMatchObject({
      line: 0,
      issues: ['file does not exist'],
    });
  });
});
