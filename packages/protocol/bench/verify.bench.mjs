/* global console, performance, process */
// Verification throughput: `verifyBatch` (the GRPO reward, held-out evaluation and distillation
// judge) on one Pyodide worker. 1,600 completions built from the CRUXEval records (800 output
// answers, 800 input answers, each the gold answer), judged in one batch per round, like a GRPO
// step's rewards. Prints one JSON document.
// Env: CR_CRUXEVAL (path to cruxeval.jsonl), BENCH_REPEATS (default 5), BENCH_ENGINE (default
// pyodide), BENCH_WORKERS (default 1).
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '@codereasoner/sandbox';
import { formatCompletion, verifyBatch } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const cruxPath =
  process.env.CR_CRUXEVAL ?? resolve(here, '../../../../shared/benchmarks/cruxeval/cruxeval.jsonl');
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const engine = process.env.BENCH_ENGINE ?? 'pyodide';
const workers = Number(process.env.BENCH_WORKERS ?? 1);

const records = readFileSync(cruxPath, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line));

const items = [];
for (const type of ['output', 'input']) {
  for (const record of records) {
    const task = {
      id: `${record.id}/${type}`,
      programId: record.id,
      callId: record.id,
      type,
      split: 'eval',
      code: record.code,
      entryPoint: 'f',
      input: record.input,
      output: record.output,
      answer: type === 'output' ? record.output : record.input,
      meta: {},
    };
    items.push({ task, completion: formatCompletion(task.answer) });
  }
}

const sandbox = await Sandbox.create({ engine, workers, timeoutMs: 3000 });
try {
  await verifyBatch(sandbox, items.slice(0, 50)); // warm-up
  const rates = [];
  let correct = 0;
  for (let round = 0; round < repeats; round += 1) {
    const started = performance.now();
    const results = await verifyBatch(sandbox, items);
    const seconds = (performance.now() - started) / 1000;
    rates.push(Math.round(items.length / seconds));
    correct = results.filter((result) => result.correct).length;
  }
  console.log(
    JSON.stringify(
      {
        benchmark: 'data.verifyBatch, CRUXEval gold answers (output + input)',
        engine,
        workers,
        completions: items.length,
        correct,
        verificationsPerSecond: rates,
        loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
      },
      null,
      2,
    ),
  );
} finally {
  await sandbox.close();
}
