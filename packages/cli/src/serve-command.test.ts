import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// End to end through the built `cr` binary, as a user (or a cluster's process manager) runs it.
const bin = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');

const task = {
  id: 'p0-c0-output',
  programId: 'p0',
  callId: 'c0',
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
let tasksPath: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-serve-cli-'));
  tasksPath = join(dir, 'tasks.jsonl');
  await writeFile(tasksPath, `${JSON.stringify(task)}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cr(args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, NO_COLOR: '1', CR_SERVE_TOKEN: '' },
  });
}

function finished(
  child: ChildProcessWithoutNullStreams,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolvePromise) =>
    child.on('close', (code) => resolvePromise({ code, stdout, stderr })),
  );
}

// Each test starts `cr` processes (seconds each on a loaded machine): a hang guard, not a speed check.
describe('cr serve', { timeout: 180_000 }, () => {
  it('serves, and on SIGTERM finishes the request in flight before exiting 0', async () => {
    const child = cr(['serve', '--port', '0', '--workers', '1', '--tasks', tasksPath]);
    const done = finished(child);
    const url = await new Promise<string>((resolvePromise, reject) => {
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const match = /^(http:\/\/\S+)\n/m.exec(text);
        if (match) resolvePromise(match[1]!);
      });
      child.on('close', () => reject(new Error('cr serve exited before listening')));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const verified = await fetch(`${url}/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: [{ task_id: task.id, completion: '<answer>2</answer>' }] }),
    });
    expect(await verified.json()).toMatchObject({ results: [{ correct: true, reward: 1 }] });

    const slow = fetch(`${url}/run_code`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        code: 'import time\nstart = time.time()\nwhile time.time() - start < 1.5:\n    pass\nprint("finished")',
        language: 'python',
      }),
    });
    // Signal once the request is being executed.
    for (;;) {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      if (/^cr_in_flight 1$/m.test(metrics)) break;
      await new Promise((resolvePromise) => setTimeout(resolvePromise, 20));
    }
    child.kill('SIGTERM');
    const response = await slow;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: 'Success',
      run_result: { stdout: 'finished\n' },
    });
    const exit = await done;
    expect(exit.code).toBe(0);
    expect(exit.stderr).toContain('cr serve: draining');
    expect(exit.stderr).toContain('cr serve: stopped');
  });

  it('refuses to start on a task file with duplicate ids, saying which', async () => {
    const duplicate = join(dir, 'dup.jsonl');
    await writeFile(duplicate, `${JSON.stringify(task)}\n${JSON.stringify(task)}\n`);
    const exit = await finished(cr(['serve', '--port', '0', '--tasks', duplicate]));
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain(`Task id '${task.id}' appears twice`);
  });
});

describe('cr export', { timeout: 180_000 }, () => {
  it('writes each format', async () => {
    for (const [format, file] of [
      ['verl', 'train.parquet'],
      ['openrlhf', 'openrlhf.jsonl'],
      ['trl', 'trl.jsonl'],
    ] as const) {
      const out = join(dir, file);
      const exit = await finished(
        cr(['export', '--format', format, '--tasks', tasksPath, '--out', out]),
      );
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stdout).toBe(`${out}\t1 rows\n`);
    }
    // PAR1 magic at both ends: a parquet file (its content is checked in @codereasoner/data).
    const parquet = await readFile(join(dir, 'train.parquet'));
    expect(parquet.subarray(0, 4).toString()).toBe('PAR1');
    expect(parquet.subarray(-4).toString()).toBe('PAR1');
    const openrlhf = JSON.parse(await readFile(join(dir, 'openrlhf.jsonl'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(openrlhf).toMatchObject({ label: task.id, type: 'output' });
  });

  it('says what is wrong with a bad --out or --format', async () => {
    const exit = await finished(
      cr(['export', '--format', 'verl', '--tasks', tasksPath, '--out', join(dir, 'x.jsonl')]),
    );
    expect(exit.code).toBe(2);
    expect(exit.stderr).toContain('verl reads parquet');
    const wrong = await finished(
      cr(['export', '--format', 'nemo', '--tasks', tasksPath, '--out', 'x']),
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('Allowed choices are verl, openrlhf, trl');
  });
});
