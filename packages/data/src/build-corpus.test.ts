import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CALL_REJECTIONS,
  PROGRAM_REJECTIONS,
  buildCorpus,
  resolveCorpusOptions,
} from './build-corpus.js';
import {
  callRecordSchema,
  corpusManifestSchema,
  programRecordSchema,
  readJsonlAll,
  taskRecordSchema,
  type CorpusManifest,
  type TaskRecord,
} from '@codereasoner/protocol';

const fixtures = join(import.meta.dirname, '__fixtures__');

// One source record per rejection reason (program-level, then call-level).
const REJECTED: Record<string, string> = {
  syntax_error: 'def f(x)\n    return x\n',
  no_function: 'LIMIT = 3\n',
  unsupported: 'def f(*args):\n    return args\n',
  not_self_contained: 'import os\n\ndef f(x):\n    return os.getcwd() + str(x)\n',
  no_return: 'def f(items):\n    items.append(1)\n',
  too_long: `def f(x):\n    y = 0\n${Array.from({ length: 44 }, (_, i) => `    y = y + ${i}\n`).join('')}    return y\n`,
  duplicate:
    'def g(nums):\n    total = 0\n    for n in nums:\n        if n > 0:\n            total += n\n    return total\n\n' +
    'def h(values):\n    acc = 0\n    for v in values:\n        if v > 0:\n            acc += v\n    return acc\n',
  // The slicer follows names, not objects reached through a container: `b[0]` is `a`.
  slice_mismatch:
    'def f(xs):\n    a = []\n    b = [a]\n    b[0].append(len(xs))\n    for x in xs:\n        if x:\n            a.append(x)\n    return a\n',
  exception: 'def f(x):\n    for i in range(2):\n        x = x / 0\n    return x\n',
  timeout: 'def f(x):\n    n = 0\n    while True:\n        n += 1\n    return n\n',
  resource_limit:
    "def f(x):\n    print('x' * 20000)\n    if x:\n        return [x]\n    return []\n",
  execution_error: 'def f(x):\n    nonlocal y\n    if x:\n        return 1\n    return 2\n',
  nondeterministic:
    "def f(x):\n    tag = ''\n    for i in range(2):\n        tag = str(object())[-6:]\n    return tag\n",
  repr_not_roundtrip:
    "def f(x):\n    v = float('nan')\n    for i in range(3):\n        v = v + i\n    return v\n",
  output_too_long:
    'def f(x):\n    out = []\n    for i in range(60):\n        out.append(i)\n    return out\n',
  too_many_steps: 'def f(x):\n    t = 0\n    for i in range(2000):\n        t += i\n    return t\n',
  too_few_steps: 'def f(x):\n    if x:\n        return 1\n    return 2\n',
  trivial:
    'def f(x):\n    a = [x]\n    b = a + a\n    c = b + a\n    d = c * 2\n    return len(d)\n',
};

let dir: string;
let sandbox: Sandbox;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-data-corpus-'));
  sandbox = await Sandbox.create({ workers: 2 });
}, 60_000);
afterAll(async () => {
  await sandbox.close();
  await rm(dir, { recursive: true, force: true });
});

async function readManifest(outDir: string): Promise<CorpusManifest> {
  return JSON.parse(await readFile(join(outDir, 'manifest.json'), 'utf8')) as CorpusManifest;
}

describe('buildCorpus rejections', () => {
  it('exercises every rejection reason and keeps the good programs', async () => {
    const source = join(dir, 'source.jsonl');
    const crux = (await readFile(join(fixtures, 'cruxeval-sample.jsonl'), 'utf8'))
      .trim()
      .split('\n');
    const contaminated = (JSON.parse(crux[3]!) as { code: string }).code;
    const records = [
      ...Object.entries(REJECTED).map(([reason, code]) => ({ reason, code })),
      { reason: 'contaminated', code: contaminated },
    ];
    await writeFile(source, records.map((record) => JSON.stringify(record)).join('\n') + '\n');
    const outDir = join(dir, 'rejections');
    const manifest = await buildCorpus(
      {
        outDir,
        seed: 5,
        source: { kind: 'jsonl', path: source },
        timeoutMs: 400,
        inputsPerProgram: 4,
        callsPerProgram: 2,
        decontaminate: { paths: [join(fixtures, 'cruxeval-sample.jsonl')] },
      },
      { sandbox },
    );
    expect(corpusManifestSchema.check(manifest)).toEqual([]);
    for (const reason of PROGRAM_REJECTIONS)
      expect(manifest.rejections.programs[reason], reason).toBeGreaterThan(0);
    for (const reason of CALL_REJECTIONS)
      expect(manifest.rejections.calls[reason], reason).toBeGreaterThan(0);
    expect(manifest.rejections.programs['duplicate']).toBe(1);
    expect(manifest.rejections.programs['contaminated']).toBe(1);
    expect(manifest.rejections.programs['slice_mismatch']).toBe(1);
    const programs = await readJsonlAll(join(outDir, 'programs.jsonl'), programRecordSchema);
    // Only the first copy of the duplicated function survives.
    expect(programs.map((program) => program.originalEntryPoint)).toEqual(['g']);
    expect(manifest.stages[0]).toEqual({ name: 'source_units', count: records.length });
    expect(manifest.counts.programs.total).toBe(1);
  }, 60_000);
});

describe('buildCorpus on generated programs', () => {
  const options = (outDir: string, seed = 3) =>
    ({
      outDir,
      seed,
      source: { kind: 'generator', count: 24 },
      batchSize: 8,
      evalFraction: 0.25,
    }) as const;

  it('writes valid records, splits by program and asks all five kinds of questions', async () => {
    const outDir = join(dir, 'generated');
    const manifest = await buildCorpus(options(outDir), { sandbox });
    expect(manifest.complete).toBe(true);
    expect(manifest.seed).toBe(3);
    expect(manifest.versions.python).toBe('3.14.2');
    expect(manifest.counts.programs.total).toBeGreaterThan(12);
    const programs = await readJsonlAll(join(outDir, 'programs.jsonl'), programRecordSchema);
    const calls = await readJsonlAll(join(outDir, 'calls.jsonl'), callRecordSchema);
    const train = await readJsonlAll(join(outDir, 'tasks', 'train.jsonl'), taskRecordSchema);
    const evalTasks = await readJsonlAll(join(outDir, 'tasks', 'eval.jsonl'), taskRecordSchema);
    expect(programs).toHaveLength(manifest.counts.programs.total);
    expect(calls).toHaveLength(manifest.counts.calls.total);
    expect(train.length + evalTasks.length).toBe(manifest.counts.tasks.total);
    const trainPrograms = new Set(train.map((task) => task.programId));
    const evalPrograms = new Set(evalTasks.map((task) => task.programId));
    expect(evalPrograms.size).toBeGreaterThan(0);
    for (const id of evalPrograms) expect(trainPrograms.has(id)).toBe(false);
    const types = new Set(train.map((task) => task.type));
    expect([...types].sort()).toEqual(['coverage', 'input', 'output', 'path', 'state']);
    // Gold answers agree with the call records.
    const byCall = new Map(calls.map((call) => [call.id, call]));
    for (const task of train) {
      const call = byCall.get(task.callId)!;
      expect(task.output).toBe(call.output);
      if (task.type === 'output') expect(task.answer).toBe(call.output);
      if (task.type === 'input') expect(task.answer).toBe(call.input);
      if (task.type === 'coverage')
        expect(task.answer).toBe(call.coverage.includes(task.line!) ? 'yes' : 'no');
    }
    // Rerunning a finished build returns its manifest unchanged.
    expect(await buildCorpus(options(outDir), { sandbox })).toEqual(manifest);
  }, 60_000);

  it('resumes a killed build and ends with the same corpus as an uninterrupted one', async () => {
    const whole = join(dir, 'whole');
    const resumed = join(dir, 'resumed');
    await buildCorpus(options(whole), { sandbox });
    let batches = 0;
    const killed = await buildCorpus(options(resumed), {
      sandbox,
      onProgress: () => {
        batches += 1;
        if (batches === 2) throw new Error('killed');
      },
    }).catch((error: unknown) => error);
    expect((killed as Error).message).toBe('killed');
    const partial = await readManifest(resumed);
    expect(partial.complete).toBe(false);
    expect(partial.stages[0]!.count).toBe(16);
    // A half-written line of the next batch, as a kill during an append leaves it.
    await writeFile(join(resumed, 'programs.jsonl'), '{"id": "p-trunc', { flag: 'a' });
    const events: number[] = [];
    const manifest = await buildCorpus(options(resumed), {
      sandbox,
      onProgress: (event) => events.push(event.completed),
    });
    expect(events).toEqual([24]);
    for (const file of ['programs.jsonl', 'calls.jsonl', 'tasks/train.jsonl', 'tasks/eval.jsonl']) {
      expect(await readFile(join(resumed, file), 'utf8'), file).toBe(
        await readFile(join(whole, file), 'utf8'),
      );
    }
    expect(manifest).toEqual(await readManifest(whole));
  }, 60_000);

  it('gives the same corpus for the same seed and another for another seed', async () => {
    const again = join(dir, 'again');
    const other = join(dir, 'other');
    await buildCorpus({ ...options(again), batchSize: 5 }, { sandbox });
    await buildCorpus(options(other, 4), { sandbox });
    const tasks = (outDir: string): Promise<string> =>
      readFile(join(outDir, 'tasks', 'train.jsonl'), 'utf8');
    expect(await tasks(again)).toBe(await tasks(join(dir, 'generated')));
    expect(await tasks(other)).not.toBe(await tasks(again));
  }, 60_000);

  it('refuses to resume with other options', async () => {
    await expect(
      buildCorpus({ ...options(join(dir, 'generated')), rename: true }, { sandbox }),
    ).rejects.toMatchObject({
      code: 'CORPUS_OPTIONS_CHANGED',
    });
  });

  it('renames identifiers generically when asked, keeping behaviour', async () => {
    const outDir = join(dir, 'renamed');
    await buildCorpus(
      { ...options(outDir), source: { kind: 'generator', count: 6 }, rename: true },
      { sandbox },
    );
    const programs = await readJsonlAll(join(outDir, 'programs.jsonl'), programRecordSchema);
    expect(programs.length).toBeGreaterThan(0);
    for (const program of programs) {
      expect(program.entryPoint).toBe('f');
      expect(program.params.every((name) => /^v\d+$/.test(name))).toBe(true);
    }
    const tasks = await readJsonlAll(join(outDir, 'tasks', 'train.jsonl'), taskRecordSchema);
    const output = tasks.find((task: TaskRecord) => task.type === 'output')!;
    const [check] = await sandbox.checkBatch([
      { code: output.code, call: `f(${output.input})`, expected: output.answer },
    ]);
    expect(check!.status).toBe('passed');
  }, 60_000);
});

describe('resolveCorpusOptions', () => {
  it('fills defaults and lists every invalid option', () => {
    expect(resolveCorpusOptions({ outDir: 'x' })).toMatchObject({
      seed: 0,
      source: { kind: 'generator', count: 1000, difficulty: 'mixed' },
      taskTypes: ['output', 'input', 'coverage', 'state', 'path'],
      engine: 'pyodide',
    });
    let issues: string[] = [];
    try {
      resolveCorpusOptions({
        outDir: 'x',
        evalFraction: 2,
        taskTypes: ['output', 'guess' as 'output'],
        minSteps: 9,
        maxSteps: 3,
      });
    } catch (error) {
      issues = (error as { issues: string[] }).issues;
    }
    expect(issues).toContain('/evalFraction: must be <= 1');
    expect(issues).toContain(
      '/taskTypes/1: must be one of "output", "input", "coverage", "state", "path" (got "guess")',
    );
    expect(issues).toContain('/minSteps: must not exceed maxSteps');
  });
});
