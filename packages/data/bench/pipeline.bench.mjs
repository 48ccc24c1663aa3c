/* global console, performance, process */
// Corpus pipeline throughput: 2,000 generated programs through every stage (parse, extract,
// slice, dedup, decontaminate, inputs, run + trace + re-run in the sandbox, filters, tasks,
// writing). Prints one JSON document. Env: BENCH_COUNT (default 2000), BENCH_ENGINES
// (default "pyodide,cpython"; cpython is skipped without python3), BENCH_WORKERS.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '@codereasoner/sandbox';
import { buildCorpus } from '../dist/index.js';

const count = Number(process.env.BENCH_COUNT ?? 2000);
const engines = (process.env.BENCH_ENGINES ?? 'pyodide,cpython').split(',');
const workers = Number(process.env.BENCH_WORKERS ?? Math.min(availableParallelism(), 8));
const benchmarks = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  '..',
  'shared',
  'benchmarks',
);
const decontaminate = existsSync(benchmarks) ? { paths: [benchmarks] } : undefined;

const results = [];
for (const engine of engines) {
  let sandbox;
  const startedSandbox = performance.now();
  try {
    sandbox = await Sandbox.create({ engine, workers });
  } catch (error) {
    results.push({ engine, skipped: String(error.message ?? error) });
    continue;
  }
  const sandboxStartMs = performance.now() - startedSandbox;
  const outDir = await mkdtemp(join(tmpdir(), `cr-data-bench-${engine}-`));
  const loadBefore = loadavg()[0];
  const started = performance.now();
  const manifest = await buildCorpus(
    {
      outDir,
      seed: 0,
      source: { kind: 'generator', count },
      ...(decontaminate ? { decontaminate } : {}),
    },
    { sandbox },
  );
  const seconds = (performance.now() - started) / 1000;
  await sandbox.close();
  await rm(outDir, { recursive: true, force: true });
  results.push({
    engine,
    python: manifest.versions.python,
    workers,
    sandboxStartMs: Math.round(sandboxStartMs),
    seconds: Number(seconds.toFixed(2)),
    programsPerSecond: Number((count / seconds).toFixed(1)),
    keptProgramsPerSecond: Number((manifest.counts.programs.total / seconds).toFixed(1)),
    loadAverage: { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0].toFixed(2)) },
    stages: Object.fromEntries(manifest.stages.map((stage) => [stage.name, stage.count])),
    calls: manifest.calls,
    rejections: manifest.rejections,
    programs: manifest.counts.programs,
    tasks: manifest.counts.tasks,
  });
}
console.log(
  JSON.stringify(
    {
      benchmark: 'corpus-pipeline',
      programs: count,
      decontaminatedAgainst: decontaminate ? benchmarks : null,
      cores: availableParallelism(),
      results,
    },
    null,
    2,
  ),
);
