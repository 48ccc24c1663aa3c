import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TaskRecord } from '@codereasoner/protocol';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readSftDataset } from './dataset.js';
import { distill } from './distill.js';
import { SftAbortedError, TeacherError } from './errors.js';
import {
  createChatTeacher,
  createTraceTeacher,
  deciderStep,
  type Teacher,
  type TeacherResult,
} from './teachers.js';

const fixture = fileURLToPath(new URL('./__fixtures__/tasks.jsonl', import.meta.url));
let tasks: TaskRecord[];
let sandbox: Sandbox;
let root: string;

// A local chat-completions server standing in for a remote teacher: answers depend on the task
// in the prompt and on the request's seed (= the rejection-sampling attempt).
let server: Server;
let baseURL: string;
const requests: { seed: number | undefined; user: string }[] = [];
let failNext = 0;

function answerFor(user: string, seed: number): string {
  if (user.includes('f([3, 1, 2])') && user.includes('return?')) {
    // wrong on the first attempt, right on the second
    return seed === 0
      ? '<think>3 + 1 + 2</think>\n<answer>6</answer>'
      : '<think>only 3 and 2 exceed 1</think>\n<answer>5</answer>';
  }
  if (user.includes("g('hello world')") && user.includes('return?'))
    return "<answer>'hello world'</answer>"; // always wrong
  if (user.includes('Is line 5')) return '<think>x=3 > 1</think>\n<answer>yes</answer>';
  return 'no idea';
}

beforeAll(async () => {
  const text = await readFile(fixture, 'utf8');
  tasks = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as TaskRecord);
  sandbox = await Sandbox.create({ workers: 1 });
  root = await mkdtemp(join(tmpdir(), 'cr-sft-teachers-'));
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        messages: { role: string; content: string }[];
        seed?: number;
        n?: number;
      };
      const user = body.messages.find((message) => message.role === 'user')?.content ?? '';
      requests.push({ seed: body.seed, user });
      if (failNext > 0) {
        failNext--;
        response.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': '5' });
        response.end(JSON.stringify({ error: { message: 'slow down' } }));
        return;
      }
      const content = answerFor(user, body.seed ?? 0);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          created: 0,
          model: 'teacher',
          choices: Array.from({ length: body.n ?? 1 }, (_, index) => ({
            index,
            message: { role: 'assistant', content },
            finish_reason: 'stop',
          })),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  baseURL = `http://127.0.0.1:${address.port}/v1`;
}, 60_000);

afterAll(async () => {
  await sandbox?.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  requests.length = 0;
  failNext = 0;
});

async function collect(teacher: Teacher, some: TaskRecord[]): Promise<TeacherResult[]> {
  const out: TeacherResult[] = [];
  for await (const result of teacher.teach(some)) out.push(result);
  return out;
}

const byId = (id: string): TaskRecord => {
  const task = tasks.find((candidate) => candidate.id === id);
  if (!task) throw new Error(`no fixture task ${id}`);
  return task;
};

describe('trace teacher', () => {
  it('writes verified chains from the real trace for every task type', async () => {
    const results = await collect(createTraceTeacher(sandbox), tasks);
    expect(results.map((result) => [result.task.id, result.correct, result.reason])).toEqual(
      tasks.map((task) => [task.id, true, 'correct']),
    );
    const output = results.find((result) => result.task.id === 'p1-output')!;
    expect(output.completion).toBe(
      [
        '<think>',
        's = 0 | s=0',
        'for x in xs | x=3',
        'if x > 1 | True',
        's += x | s=3',
        'for x in xs | x=1',
        'if x > 1 | False',
        'for x in xs | x=2',
        'if x > 1 | True',
        's += x | s=5',
        'for x in xs | done',
        'return s',
        'Result: 5',
        '</think>',
        '<answer>5</answer>',
      ].join('\n'),
    );
    const chains = Object.fromEntries(results.map((result) => [result.task.id, result.completion]));
    expect(chains['p1-input']).toMatch(/^<think>\nTry f\(\[3, 1, 2\]\)\ns = 0 \| s=0\n/);
    expect(chains['p1-state']).toContain('\nL5 s += x | s=3\n');
    expect(chains['p1-state']).toContain('After L5: s=3\n</think>\n<answer>3</answer>');
    expect(chains['p1-path']).toContain('After L4: L5\n</think>');
    expect(chains['p2-coverage']).toContain('L8 never runs\n</think>\n<answer>no</answer>');
  });

  it('writes compact chains, verified the same way, for every task type', async () => {
    const teacher = createTraceTeacher(sandbox, { format: 'compact' });
    expect(teacher.id).toBe('trace-compact');
    const results = await collect(teacher, tasks);
    expect(results.map((result) => [result.task.id, result.correct, result.reason])).toEqual(
      tasks.map((task) => [task.id, true, 'correct']),
    );
    const chains = Object.fromEntries(results.map((result) => [result.task.id, result.completion]));
    const body = [
      'L2 s=0',
      'L3 x=3',
      'L4 True',
      'L5 s=3',
      'L3 x=1',
      'L4 False',
      'L3 x=2',
      'L4 True',
      'L5 s=5',
      'L3 done',
      'L6',
      'Result: 5',
    ];
    const completion = (lines: string[], answer: string): string =>
      ['<think>', ...lines, '</think>', `<answer>${answer}</answer>`].join('\n');
    expect(chains['p1-output']).toBe(completion(body, '5'));
    expect(chains['p1-input']).toBe(completion(['Try f([3, 1, 2])', ...body], '[3, 1, 2]'));
    expect(chains['p1-coverage']).toBe(completion([...body, 'L5 runs'], 'yes'));
    expect(chains['p1-state']).toBe(completion([...body, 'After L5: s=3'], '3'));
    expect(chains['p1-path']).toBe(completion([...body, 'After L4: L5'], '5'));
    expect(chains['p2-coverage']).toContain('L8 never runs\n</think>\n<answer>no</answer>');
    // shorter than the full chain of the same task
    const full = await collect(createTraceTeacher(sandbox), [byId('p1-output')]);
    expect(chains['p1-output']!.length).toBeLessThan(full[0]!.completion.length);
  });

  it("stops coverage, state and path chains at the step that decides the answer (stopAt: 'answer')", async () => {
    const teacher = createTraceTeacher(sandbox, { format: 'compact', stopAt: 'answer' });
    expect(teacher.id).toBe('trace-compact-to-answer');
    const results = await collect(teacher, tasks);
    expect(results.map((result) => [result.task.id, result.correct, result.reason])).toEqual(
      tasks.map((task) => [task.id, true, 'correct']),
    );
    const chains = Object.fromEntries(results.map((result) => [result.task.id, result.completion]));
    const completion = (lines: string[], answer: string): string =>
      ['<think>', ...lines, '</think>', `<answer>${answer}</answer>`].join('\n');
    // f([3, 1, 2]): line 5 first runs at the fourth step, line 4 first at the third
    const toFirstL5 = ['L2 s=0', 'L3 x=3', 'L4 True', 'L5 s=3'];
    expect(chains['p1-coverage']).toBe(completion([...toFirstL5, 'L5 runs'], 'yes'));
    expect(chains['p1-state']).toBe(completion([...toFirstL5, 'After L5: s=3'], '3'));
    // the path answer is the line after the first L4: that step is the last one written
    expect(chains['p1-path']).toBe(completion([...toFirstL5, 'After L4: L5'], '5'));
    // output and input chains, and a line that never runs, still need the whole trace
    const whole = Object.fromEntries(
      (await collect(createTraceTeacher(sandbox, { format: 'compact' }), tasks)).map((result) => [
        result.task.id,
        result.completion,
      ]),
    );
    for (const id of ['p1-output', 'p1-input', 'p2-coverage']) expect(chains[id]).toBe(whole[id]);
    expect(chains['p2-coverage']).toContain('Result: ');
  });

  it('finds the deciding step from the trace, or none where the whole trace decides', () => {
    const trace = {
      status: 'ok',
      repr: '1',
      path: [2, 3, 4, 3, 4, 6],
      states: [],
      truncated: false,
    };
    const task = (type: string, line: number, answer: string) =>
      ({ ...byId('p1-state'), type, line, answer }) as TaskRecord;
    expect(deciderStep(task('state', 4, '1'), trace)).toBe(2);
    expect(deciderStep(task('coverage', 3, 'yes'), trace)).toBe(1);
    expect(deciderStep(task('coverage', 5, 'no'), trace)).toBeUndefined();
    expect(deciderStep(task('path', 4, '3'), trace)).toBe(3);
    // nothing runs after the last line: the path answer -1 needs the trace to its end
    expect(deciderStep(task('path', 6, '-1'), trace)).toBeUndefined();
    expect(deciderStep({ ...byId('p1-output') }, trace)).toBeUndefined();
  });

  it('refuses an unknown place to stop a chain', () => {
    expect(() => createTraceTeacher(sandbox, { stopAt: 'middle' as never })).toThrow(
      'stopAt must be one of "end", "answer", got "middle"',
    );
  });

  it('never keeps a chain whose answer or result execution does not confirm', async () => {
    const wrongAnswer = { ...byId('p1-output'), id: 'bad-answer', answer: '6' };
    // the answer (yes) is right, but the recorded output is not what the call returns
    const wrongOutput = { ...byId('p1-coverage'), id: 'bad-output', output: '6' };
    for (const format of ['full', 'compact'] as const) {
      const outDir = join(root, `reject-${format}`);
      const teacher = createTraceTeacher(sandbox, { format });
      const results = await collect(teacher, [wrongAnswer, wrongOutput]);
      expect(results.map((result) => result.correct)).toEqual([false, false]);
      expect(results[0]!.reason).toMatch(/^wrong/);
      expect(results[1]!.reason).toBe("the chain's result 5 is not the task's output 6");
      const stats = await distill([wrongAnswer, wrongOutput, byId('p1-output')], teacher, {
        outDir,
      });
      expect(stats).toMatchObject({ total: 3, accepted: 1 });
      expect((await readSftDataset(stats.datasetPath)).map((record) => record.id)).toEqual([
        'p1-output',
      ]);
    }
  });

  it('refuses an unknown chain format', () => {
    expect(() => createTraceTeacher(sandbox, { format: 'short' as never })).toThrow(TeacherError);
    expect(() => createTraceTeacher(sandbox, { format: 'short' as never })).toThrow(
      'format must be one of "full", "compact", got "short"',
    );
  });

  it('is deterministic', async () => {
    const a = await collect(createTraceTeacher(sandbox), tasks.slice(0, 3));
    const b = await collect(createTraceTeacher(sandbox, { batchSize: 1 }), tasks.slice(0, 3));
    expect(b.map((result) => result.completion)).toEqual(a.map((result) => result.completion));
  });
});

describe('distill', () => {
  it('writes the messages-layout data set with answer-only twins, stats, and resumes', async () => {
    const outDir = join(root, 'trace-distill');
    const stats = await distill(tasks, createTraceTeacher(sandbox), { outDir });
    expect(stats).toMatchObject({
      teacher: 'trace',
      total: 10,
      accepted: 10,
      acceptanceRate: 1,
      resumed: 0,
    });
    expect(stats.byType.state).toEqual({
      total: 2,
      accepted: 2,
      acceptanceRate: 1,
      meanAttempts: 1,
    });
    const records = await readSftDataset(stats.datasetPath);
    expect(records.map((record) => record.id)).toEqual(tasks.map((task) => task.id));
    const first = records[0]!;
    expect(first.messages.map((message) => message.role)).toEqual(['system', 'user', 'assistant']);
    expect(first.messages[0]!.content).toContain('Think step by step');
    expect(first.answer_messages[0]!.content).toContain('no explanation');
    expect(first.answer_messages[2]!.content).toBe('<answer>5</answer>');

    // an interrupted run: the log lost its last two lines, the last one cut in half
    const logText = await readFile(stats.logPath, 'utf8');
    const logLines = logText.trim().split('\n');
    await writeFile(
      stats.logPath,
      `${logLines.slice(0, 8).join('\n')}\n${logLines[8]!.slice(0, 10)}`,
    );
    const counting = createTraceTeacher(sandbox);
    let taught = 0;
    const again = await distill(
      tasks,
      { id: counting.id, teach: (some) => ((taught = some.length), counting.teach(some)) },
      { outDir },
    );
    // the 9th and 10th tasks were in the data set already: recovered, not taught again
    expect(taught).toBe(0);
    expect(again).toMatchObject({ total: 10, accepted: 10, resumed: 10 });
    expect((await readSftDataset(stats.datasetPath)).length).toBe(10);
    expect((await readFile(stats.logPath, 'utf8')).trim().split('\n')).toHaveLength(10);
  });
});

describe('distill with a signal', () => {
  it('stops after the task in flight, keeps what it logged, and a re-run finishes the rest', async () => {
    const outDir = join(root, 'abort-distill');
    const controller = new AbortController();
    const error = await distill(tasks, createTraceTeacher(sandbox), {
      outDir,
      signal: controller.signal,
      onProgress: (event) => {
        if (event.completed === 3) controller.abort();
      },
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SftAbortedError);
    expect(error).toMatchObject({
      name: 'AbortError',
      operation: 'distill',
      completed: 3,
      total: 10,
    });
    expect((await readSftDataset(join(outDir, 'sft.jsonl'))).map((record) => record.id)).toEqual(
      tasks.slice(0, 3).map((task) => task.id),
    );
    const counting = createTraceTeacher(sandbox);
    let taught = 0;
    const stats = await distill(
      tasks,
      { id: counting.id, teach: (some) => ((taught = some.length), counting.teach(some)) },
      { outDir, signal: new AbortController().signal },
    );
    expect(taught).toBe(7);
    expect(stats).toMatchObject({ total: 10, accepted: 10, resumed: 3 });
  });
});

describe('chat teacher', () => {
  const chosen = () => [byId('p1-output'), byId('p2-output'), byId('p1-coverage')];

  it('keeps only verified answers, retrying rejected tasks up to k attempts', async () => {
    const teacher = createChatTeacher({
      model: { baseURL, model: 'teacher', initialBackoffMs: 1 },
      sandbox,
      attempts: 3,
    });
    const results = await collect(teacher, chosen());
    expect(results.map((result) => [result.task.id, result.correct, result.attempts])).toEqual([
      ['p1-output', true, 2],
      ['p2-output', false, 3],
      ['p1-coverage', true, 1],
    ]);
    expect(results[0]!.completion).toContain('<answer>5</answer>');
    expect(results[1]!.reason).toMatch(/^wrong/);
    // attempt a uses seed a; a task stops being asked once accepted
    expect(requests.map((request) => request.seed)).toEqual([0, 0, 0, 1, 1, 2]);
  });

  it('retries a 429 from the endpoint and answers a re-run from the cache', async () => {
    const cacheDir = join(root, 'chat-cache');
    const make = () =>
      createChatTeacher({
        model: { baseURL, model: 'teacher', cacheDir, initialBackoffMs: 1 },
        sandbox,
        attempts: 3,
      });
    failNext = 2;
    const first = await distill(chosen(), make(), { outDir: join(root, 'chat-a') });
    expect(requests).toHaveLength(6 + 2);
    expect(first).toMatchObject({ total: 3, accepted: 2 });
    expect(first.byType.output).toEqual({
      total: 2,
      accepted: 1,
      acceptanceRate: 0.5,
      meanAttempts: 2.5,
    });
    expect(first.rejections).toEqual({ wrong: 1 });

    requests.length = 0;
    const second = await distill(chosen(), make(), { outDir: join(root, 'chat-b') });
    expect(requests).toHaveLength(0);
    expect(second).toMatchObject({ total: 3, accepted: 2 });
    expect(await readFile(second.datasetPath, 'utf8')).toBe(
      await readFile(first.datasetPath, 'utf8'),
    );
  });
});
