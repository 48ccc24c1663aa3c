// Benchmark of @codereasoner/sandbox: verifications per second for 1,600 CRUXEval-style
// assertions with 1 and 2 workers on each available engine, worker start-up time and peak memory
// per worker. Prints one JSON object. Usage: pnpm --filter @codereasoner/sandbox bench
// Also: the first 200 of them with `import math` prepended, which makes the harness restore and
// check the whole interpreter after each (tasks that import or reflect take that path; plain
// CRUXEval programs almost never do).
// Environment: CR_CRUXEVAL (path to cruxeval.jsonl), CR_BENCH_REPEATS (default 3),
// CR_BENCH_ENGINES (comma list, default every available engine), CR_BENCH_WORKERS (default "1,2").
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const cruxPath =
  process.env.CR_CRUXEVAL ?? resolve(here, '../../../../shared/benchmarks/cruxeval/cruxeval.jsonl');
const repeats = Number(process.env.CR_BENCH_REPEATS ?? 3);
const workerCounts = (process.env.CR_BENCH_WORKERS ?? '1,2').split(',').map(Number);
const TOTAL = 1600;

/** 1,600 assertions: each CRUXEval sample in the task form and in the official harness's form. */
function loadAssertions() {
  if (existsSync(cruxPath)) {
    const samples = readFileSync(cruxPath, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line));
    const requests = [];
    for (const sample of samples) {
      requests.push({
        code: sample.code,
        assertion: `assert f(${sample.input}) == ${sample.output}`,
      });
      requests.push({
        code: sample.code,
        assertion: `assert ${sample.output} == f(${sample.input})`,
      });
    }
    return { source: cruxPath, requests: requests.slice(0, TOTAL) };
  }
  // Generated stand-ins of the same size and shape when the benchmark data is not present.
  const requests = [];
  for (let i = 0; requests.length < TOTAL; i += 1) {
    const code = `def f(xs):\n    out = []\n    for x in xs:\n        if x % ${(i % 5) + 2} == 0:\n            out.append(x * ${i % 7})\n    return out`;
    const xs = Array.from({ length: 8 }, (_, j) => (i * 7 + j * 3) % 23);
    const expected = xs.filter((x) => x % ((i % 5) + 2) === 0).map((x) => x * (i % 7));
    requests.push({
      code,
      assertion: `assert f(${JSON.stringify(xs)}) == ${JSON.stringify(expected)}`,
    });
  }
  return { source: 'generated', requests };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function measure(engine, workers, requests) {
  const createStarted = performance.now();
  const sandbox = await Sandbox.create({ engine, workers, timeoutMs: 3000 });
  const createMs = performance.now() - createStarted;
  try {
    await sandbox.checkBatch(requests.slice(0, 50)); // warm-up: JIT, first imports
    // Round 0 sees every program for the first time (cold compile caches, as in one pass over a
    // data set); later rounds repeat them (as when many samples of one problem are checked).
    const rates = [];
    let statuses = {};
    for (let round = 0; round < repeats + 1; round += 1) {
      const started = performance.now();
      const results = await sandbox.checkBatch(requests);
      const seconds = (performance.now() - started) / 1000;
      rates.push(requests.length / seconds);
      statuses = {};
      for (const result of results) statuses[result.status] = (statuses[result.status] ?? 0) + 1;
    }
    const importing = requests
      .slice(0, 200)
      .map((request) => ({ ...request, code: `import math\n${request.code}` }));
    const importingRates = [];
    let importingStatuses = {};
    for (let round = 0; round < repeats; round += 1) {
      const started = performance.now();
      const results = await sandbox.checkBatch(importing);
      importingRates.push(importing.length / ((performance.now() - started) / 1000));
      importingStatuses = {};
      for (const result of results)
        importingStatuses[result.status] = (importingStatuses[result.status] ?? 0) + 1;
    }
    const info = sandbox.info();
    return {
      engine,
      workers,
      pythonVersion: info.pythonVersion,
      coldVerificationsPerSecond: Math.round(rates[0]),
      warmVerificationsPerSecond: Math.round(median(rates.slice(1))),
      roundsPerSecond: rates.map((rate) => Math.round(rate)),
      importingVerificationsPerSecond: Math.round(median(importingRates)),
      importingRoundsPerSecond: importingRates.map((rate) => Math.round(rate)),
      importingStatuses,
      statuses,
      createMs: Math.round(createMs),
      workerStartupMs: info.startupMs,
      peakMemoryMbPerWorker: info.peakMemoryMb,
    };
  } finally {
    await sandbox.close();
  }
}

const { source, requests } = loadAssertions();
const hasPython = spawnSync('python3', ['--version']).status === 0;
const engines = (process.env.CR_BENCH_ENGINES ?? (hasPython ? 'pyodide,cpython' : 'pyodide')).split(
  ',',
);
const loadBefore = loadavg();
const runs = [];
for (const engine of engines) {
  for (const workers of workerCounts) runs.push(await measure(engine, workers, requests));
}
console.log(
  JSON.stringify(
    {
      benchmark: 'sandbox.checkBatch, CRUXEval-style assertions',
      assertions: requests.length,
      source,
      repeats,
      cpus: cpus().length,
      node: process.version,
      loadAverageBefore: loadBefore.map((value) => Math.round(value * 100) / 100),
      loadAverageAfter: loadavg().map((value) => Math.round(value * 100) / 100),
      runs,
    },
    null,
    2,
  ),
);
