import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchmarkConfigError, BenchmarkDataError, BenchmarkRunError } from './errors.js';
import { createOracleModel, type GoldAwareModel } from './models.js';
import type { BenchmarkSummary, ItemRecord } from './report.js';
import { runBenchmark, runBenchmarks } from './run-benchmark.js';
import { FIXTURES } from './test-paths.js';
import type { ChatModel, ChatRequest, ChatResponse } from './types.js';

let sandbox: Sandbox;
let root: string;

beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
  root = await mkdtemp(join(tmpdir(), 'bench-run-'));
});

afterAll(async () => {
  await sandbox?.close();
  await rm(root, { recursive: true, force: true });
});

/** Wraps a model, counting the questions it is asked and failing on the call number `failOn`. */
function counting(
  inner: GoldAwareModel,
  failOn?: number,
): GoldAwareModel & { asked: number; calls: number } {
  const model = {
    id: inner.id,
    asked: 0,
    calls: 0,
    learnGold: inner.learnGold.bind(inner),
    async complete(requests: ChatRequest[]): Promise<ChatResponse[]> {
      model.calls += 1;
      if (model.calls === failOn) throw new Error('connection reset');
      model.asked += requests.length;
      return inner.complete(requests);
    },
  };
  return model;
}

async function lines(path: string): Promise<ItemRecord[]> {
  return (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ItemRecord);
}

describe('runBenchmark: resume, subsets, bad input', () => {
  it('keeps what was scored before a model failure and resumes without recomputing it', async () => {
    const outDir = join(root, 'resume');
    const options = {
      benchmark: 'cruxeval' as const,
      dataPath: FIXTURES,
      sandbox,
      outDir,
      batchSize: 4,
    };
    const failing = counting(createOracleModel(), 2);
    const error = await runBenchmark({ ...options, model: failing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BenchmarkRunError);
    expect((error as BenchmarkRunError).code).toBe('BENCH_MODEL_FAILED');
    expect((error as Error).message).toContain('4 of 12 questions done and saved');
    expect(await lines(join(outDir, 'items.jsonl'))).toHaveLength(4);

    // An interrupted append leaves half a line: it is dropped and that item redone.
    await writeFile(
      join(outDir, 'items.jsonl'),
      `${await readFile(join(outDir, 'items.jsonl'), 'utf8')}{"key":"output/sam`,
    );
    const again = counting(createOracleModel());
    const summary = await runBenchmark({ ...options, model: again });
    expect(summary.items).toEqual({ total: 12, resumed: 4, scoredNow: 8 });
    expect(again.asked).toBe(8);
    expect(summary.headline).toEqual({ 'CRUXEval-O': 100, 'CRUXEval-I': 100 });
    const records = await lines(join(outDir, 'items.jsonl'));
    expect(new Set(records.map((r) => r.key)).size).toBe(12);

    const written = JSON.parse(
      await readFile(join(outDir, 'summary.json'), 'utf8'),
    ) as BenchmarkSummary;
    expect(written.packages['@codereasoner/bench']).toMatch(/^\d+\.\d+\.\d+/);
    expect(written.packages['@codereasoner/sandbox']).toMatch(/^\d+\.\d+\.\d+/);
    expect(written.packages.openai).toMatch(/^\d+\.\d+\.\d+/);
    expect(written.dataFiles[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await readFile(join(outDir, 'report.md'), 'utf8')).toContain(
      '| **oracle** (this run) | 100.0 | 100.0 | – | – |',
    );

    // A third run has nothing left to ask.
    const idle = counting(createOracleModel());
    expect((await runBenchmark({ ...options, model: idle })).items.scoredNow).toBe(0);
    expect(idle.calls).toBe(0);
  });

  it('refuses to mix settings in one output directory', async () => {
    const outDir = join(root, 'mismatch');
    await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: FIXTURES,
      model: createOracleModel(),
      sandbox,
      outDir,
      limit: 1,
    });
    const error = await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: FIXTURES,
      model: createOracleModel(),
      sandbox,
      outDir,
      limit: 1,
      temperature: 0.8,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BenchmarkRunError);
    expect((error as BenchmarkRunError).code).toBe('BENCH_OUTDIR_MISMATCH');
    expect((error as Error).message).toContain('temperature: 0 there, 0.8 now');
  });

  it('never stops on malformed model output', async () => {
    const garbage: ChatModel = {
      id: 'garbage',
      async complete(requests) {
        // wrong sample counts, non-strings, a missing response
        return requests.slice(1).map((_, i) => ({
          texts: i % 2 === 0 ? [42 as unknown as string] : [],
          finishReasons: [],
        }));
      },
    };
    const summary = await runBenchmark({
      benchmark: 'livecodebench',
      dataPath: FIXTURES,
      model: garbage,
      sandbox,
      outDir: join(root, 'garbage'),
      n: 2,
    });
    expect(summary.tasks.output).toMatchObject({ items: 12, samples: 24, score: 0 });
  });

  it('selects tasks, ids and limit', async () => {
    const summary = await runBenchmark({
      benchmark: 'reval',
      dataPath: join(FIXTURES, 'reval'),
      model: createOracleModel(),
      sandbox,
      outDir: join(root, 'subset'),
      tasks: ['path', 'coverage'],
      ids: ['DREval/2', 'DREval/1'],
      limit: 1,
    });
    expect(Object.keys(summary.tasks)).toEqual(['coverage', 'path']);
    expect(summary.tasks.coverage!.items).toBe(8); // DREval/1 only: 2 groups x 4 probes
    expect(summary.reval).toEqual({
      average: undefined,
      consistency: undefined,
      consistencyPoints: 0,
    });
  });

  it('lists every invalid option, and names a missing file or a mistyped id', async () => {
    const base = {
      dataPath: FIXTURES,
      model: createOracleModel(),
      sandbox,
      outDir: join(root, 'bad'),
    };
    const error = await runBenchmark({
      ...base,
      benchmark: 'cruxeval',
      n: 0,
      temperature: -1,
      tasks: ['state'],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BenchmarkConfigError);
    expect((error as BenchmarkConfigError).issues).toEqual([
      '/n: must be >= 1',
      '/temperature: must be >= 0',
    ]);
    const task = await runBenchmark({ ...base, benchmark: 'cruxeval', tasks: ['state'] }).catch(
      (e: unknown) => e,
    );
    expect((task as BenchmarkConfigError).issues).toEqual([
      '/tasks: state not a task of cruxeval (tasks: output, input)',
    ]);
    const id = await runBenchmark({ ...base, benchmark: 'cruxeval', ids: ['sample_9999'] }).catch(
      (e: unknown) => e,
    );
    expect((id as BenchmarkConfigError).issues[0]).toContain('/ids: sample_9999 not in');
    const missing = await runBenchmark({
      ...base,
      benchmark: 'livecodebench',
      dataPath: join(FIXTURES, 'reval'),
    }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(BenchmarkDataError);
  });
});

describe('runBenchmarks', () => {
  it('runs several benchmarks into one report and skips one whose data is absent', async () => {
    const outDir = join(root, 'all');
    const { summaries, skipped, report } = await runBenchmarks({
      benchmarks: ['cruxeval', 'livecodebench', 'reval'],
      dataPath: join(FIXTURES, 'bad'),
      model: createOracleModel(),
      sandbox,
      outDir,
      skipMissing: true,
    });
    // bad/ has malformed files only under other names: every benchmark is missing there.
    expect(summaries).toHaveLength(0);
    expect(skipped.map((s) => s.benchmark)).toEqual(['cruxeval', 'livecodebench', 'reval']);
    expect(await readFile(report, 'utf8')).toContain('- livecodebench skipped: ');

    const full = await runBenchmarks({
      dataPath: FIXTURES,
      model: createOracleModel(),
      sandbox,
      outDir: join(root, 'all2'),
      limit: 1,
      tasks: { reval: ['coverage'] },
    });
    expect(full.summaries.map((s) => s.benchmark)).toEqual(['cruxeval', 'livecodebench', 'reval']);
    expect(await readFile(full.report, 'utf8')).toContain(
      '| **oracle** (this run) | 100.0 | 100.0 | 100.0 | – |',
    );
  });
});
