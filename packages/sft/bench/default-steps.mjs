// The `cr` default run's SFT steps on its own data: `trainSft` for a few steps from the run's base
// checkpoint (its model, tokenizer and distilled data set, read-only), printing JSON with each
// step's wall and process CPU time (all threads), loss and gradient norm, so two builds can be
// compared step by step and checked for equal losses. Run it under `node --cpu-prof` to profile.
// Usage: node bench/default-steps.mjs --run /tmp/ra8/runs/default [--steps 20] [--workers 1|2]
//   [--skip 2] (steps left out of the figures: kernel compilation and first-call warm-up)
//   [--dist <copy of dist/>] (another build of this package, for before/after on the same machine)
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, loadCheckpoint } from '@codereasoner/core-tensors';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    steps: { type: 'string', default: '20' },
    workers: { type: 'string', default: '2' },
    skip: { type: 'string', default: '2' },
    // another build of this package to compare with (a copy of dist/ made before a change)
    dist: { type: 'string' },
  },
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
});
if (values.run === undefined) {
  console.error(
    'usage: node bench/default-steps.mjs --run <run dir of a `cr run-all`> [--steps N] [--workers W]',
  );
  process.exit(2);
}
const { trainSft } = await import(
  values.dist === undefined
    ? '../dist/index.js'
    : pathToFileURL(join(resolve(values.dist), 'index.js')).href
);
const steps = Number(values.steps);
const skip = Number(values.skip);
const workers = Number(values.workers);
const runConfig = JSON.parse(await readFile(join(values.run, 'config.json'), 'utf8'));
const backend = await initBackend();
const loadAtStart = loadavg().map((x) => Number(x.toFixed(2)));
const { model, tokenizer } = await loadCheckpoint(join(values.run, 'sft', 'base'), {
  trainable: true,
});
const outDir = await mkdtemp(join(tmpdir(), 'cr-sft-steps-'));
const metrics = [];
const controller = new AbortController();
let mark = { wall: performance.now(), cpu: process.cpuUsage() };
const began = mark.wall;
await trainSft({
  model,
  tokenizer,
  train: join(values.run, 'sft', 'distill', 'sft.jsonl'),
  outDir,
  config: {
    ...runConfig.sft,
    seed: runConfig.seed,
    // the run's schedule (warmup, cosine over all its steps), cut after `steps`
    maxSeconds: 0,
    evalEvery: 0,
    checkpointEvery: 0,
    workers,
  },
  onMetrics: (m) => {
    if (m.kind !== 'step') return;
    const now = { wall: performance.now(), cpu: process.cpuUsage() };
    const cpu = (now.cpu.user + now.cpu.system - mark.cpu.user - mark.cpu.system) / 1e6;
    metrics.push({
      step: m.step,
      loss: m.loss,
      gradNorm: m.gradNorm,
      targetTokens: m.targetTokens,
      wallSeconds: Number(((now.wall - mark.wall) / 1000).toFixed(4)),
      cpuSeconds: Number(cpu.toFixed(4)),
    });
    mark = now;
    // stop after `steps`: abort is checked after every step
    if (m.step >= steps) controller.abort();
  },
  signal: controller.signal,
});
const timed = metrics.slice(skip);
const sum = (f) => timed.reduce((s, m) => s + f(m), 0);
const sorted = (f) => timed.map(f).sort((a, b) => a - b);
const median = (xs) => xs[Math.floor(xs.length / 2)];
const tokens = sum((m) => m.targetTokens);
// every trained weight's bits, so two builds can be checked for equal results
const hash = createHash('sha256');
for (const name of [...model.parameters.keys()].sort())
  hash.update(new Uint8Array(model.parameters.get(name).dataSync().buffer));
console.log(
  JSON.stringify({
    backend: backend.active,
    cpus: cpus().length,
    workers,
    loadAverageAtStart: loadAtStart,
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
    steps: metrics.length,
    timedSteps: timed.length,
    wallSecondsPerStep: Number((sum((m) => m.wallSeconds) / timed.length).toFixed(4)),
    medianWallSecondsPerStep: median(sorted((m) => m.wallSeconds)),
    cpuSecondsPerStep: Number((sum((m) => m.cpuSeconds) / timed.length).toFixed(4)),
    medianCpuSecondsPerStep: median(sorted((m) => m.cpuSeconds)),
    targetTokensPerCpuSecond: Math.round(tokens / sum((m) => m.cpuSeconds)),
    weightsSha256: hash.digest('hex'),
    totalSeconds: Number(((performance.now() - began) / 1000).toFixed(2)),
    metrics,
  }),
);
model.dispose();
await rm(outDir, { recursive: true, force: true });
