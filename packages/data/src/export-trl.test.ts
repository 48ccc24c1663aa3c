import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTrl } from './export-trl.js';
import type { TaskRecord } from '@codereasoner/protocol';

const tasks: TaskRecord[] = [
  {
    id: 'a',
    programId: 'p',
    callId: 'c',
    type: 'output',
    split: 'train',
    code: 'def f(x):\n    return x * 2\n',
    entryPoint: 'f',
    input: '3',
    output: '6',
    answer: '6',
    meta: {},
  },
  {
    id: 'b',
    programId: 'p',
    callId: 'c',
    type: 'path',
    split: 'train',
    code: 'def f(x):\n    return x * 2\n',
    entryPoint: 'f',
    input: '3',
    output: '6',
    line: 2,
    answer: '-1',
    meta: {},
  },
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-data-trl-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exportTrl', () => {
  it('writes SFT rows with system, user and assistant messages', async () => {
    const path = join(dir, 'sft.jsonl');
    const result = await exportTrl(tasks, { outPath: path, kind: 'sft' });
    expect(result).toEqual({ path, count: 2 });
    const rows = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows[0]).toMatchObject({ id: 'a', type: 'output' });
    const messages = rows[0]!['messages'] as { role: string; content: string }[];
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    expect(messages[2]!.content).toBe('<answer>6</answer>');
    expect(messages[0]!.content).toContain('Give only the final answer');
  });

  it('uses given completions and skips tasks without one', async () => {
    const path = join(dir, 'distilled.jsonl');
    const result = await exportTrl(tasks, {
      outPath: path,
      kind: 'sft',
      completion: (task) =>
        task.id === 'a' ? '<think>\n3 * 2\n</think>\n<answer>6</answer>' : undefined,
    });
    expect(result.count).toBe(1);
    const row = JSON.parse((await readFile(path, 'utf8')).trim()) as {
      messages: { role: string; content: string }[];
    };
    expect(row.messages[0]!.content).toContain('Think step by step');
    expect(row.messages[2]!.content).toBe('<think>\n3 * 2\n</think>\n<answer>6</answer>');
  });

  it('writes prompt-only GRPO rows with the gold columns', async () => {
    const path = join(dir, 'grpo.jsonl');
    await exportTrl(tasks, { outPath: path, kind: 'grpo' });
    const rows = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows[1]).toMatchObject({
      id: 'b',
      type: 'path',
      line: 2,
      variable: null,
      answer: '-1',
      entry_point: 'f',
    });
    expect((rows[1]!['prompt'] as unknown[]).length).toBe(2);
    expect(rows[1]!['messages']).toBeUndefined();
  });
});
