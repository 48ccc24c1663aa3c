// Where a decode step of the onnx generation engine spends its time. Prints JSON.
//   node bench/onnx-profile.mjs [--shapes cli-default,core-default] [--repeats 3]
//   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/onnx-profile.mjs --shapes cli-default
//   node bench/onnx-profile.mjs --cpu-profile /tmp/prof/<file>.cpuprofile
// For each shape (bench/shapes.mjs) it generates with engine 'onnx' (1 thread, weights in the
// graph) through a wrapped onnxruntime-node (setOnnxRuntimeLoader) that
// - opens the session with onnxruntime's profiler (SessionOptions.enableProfiling) and groups its
//   per-node kernel times of the decode runs by op type;
// - times every session.run from JS: the time inside run() less the profiler's model_run is the
//   binding (feeds turned into OrtValues, outputs into Tensors, the setImmediate hop);
// - the rest of generate's time is JS around the session (sampling, masks, cache writes).
// --cpu-profile FILE only sums a V8 CPU profile (node --cpu-prof of an earlier run) by function
// self time and prints the top ones.
// Run after `pnpm build`. CR_BENCH_DIST points at another build to compare before/after.
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { CausalLM, initBackend, setOnnxRuntimeLoader } = await import(
  process.env.CR_BENCH_DIST ?? '../dist/index.js'
);
import { SHAPES } from './shapes.mjs';

const { values: args } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'cli-default,core-default' },
    repeats: { type: 'string', default: '3' },
    'cpu-profile': { type: 'string' },
  },
});

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');
const profileDir = mkdtempSync(join(tmpdir(), 'cr-onnx-profile-'));
/** Every session.run of the wrapped sessions: wall ms inside run(). */
let runs = [];
let profilePrefix = 'decoder';
/** Whether sessions opened now get onnxruntime's profiler (off for the plain-timing pass). */
let profiling = true;
const sessions = [];

setOnnxRuntimeLoader(() => ({
  ...ort,
  InferenceSession: {
    create: async (bytes, options) => {
      const session = await ort.InferenceSession.create(
        bytes,
        profiling
          ? {
              ...options,
              enableProfiling: true,
              profileFilePrefix: join(profileDir, profilePrefix),
            }
          : options,
      );
      sessions.push(session);
      const run = session.run.bind(session);
      session.run = async (...runArgs) => {
        const t0 = performance.now();
        const out = await run(...runArgs);
        runs.push(performance.now() - t0);
        return out;
      };
      return session;
    },
  },
}));

function randomIds(rows, length, vocab, seed) {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: rows }, () =>
    Array.from({ length }, () => Math.floor(next() * vocab)),
  );
}

/** onnxruntime's profile (a Chrome trace) of the decode runs (or the prefills): kernel time per op type. */
function summariseOrtProfile(events, firstRunToKeep, runsPerGenerate, prefill) {
  const runEvents = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  // every generate's first run is its prefill
  const kept = runEvents
    .slice(firstRunToKeep)
    .filter((_, i) => (i % runsPerGenerate === 0) === prefill);
  if (kept.length === 0) return undefined;
  const inKept = (ts) => kept.some((run) => ts >= run.ts && ts < run.ts + run.dur);
  const byOp = new Map();
  let kernelUs = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !inKept(e.ts)) continue;
    const op = e.args?.op_name ?? 'unknown';
    const entry = byOp.get(op) ?? { op, calls: 0, us: 0 };
    entry.calls++;
    entry.us += e.dur;
    kernelUs += e.dur;
    byOp.set(op, entry);
  }
  const modelRunUs = kept.reduce((a, e) => a + e.dur, 0);
  const steps = kept.length;
  const r = (us) => Math.round((us / steps / 1000) * 1000) / 1000;
  return {
    runs: steps,
    modelRunMsPerStep: r(modelRunUs),
    kernelMsPerStep: r(kernelUs),
    // onnxruntime's own time between kernels (allocation, shape inference, the executor)
    executorMsPerStep: r(modelRunUs - kernelUs),
    byOp: [...byOp.values()]
      .sort((a, b) => b.us - a.us)
      .map((e) => ({
        op: e.op,
        callsPerStep: Math.round((e.calls / steps) * 10) / 10,
        msPerStep: r(e.us),
        share: Math.round((e.us / kernelUs) * 1000) / 1000,
      })),
  };
}

/** The generation `repeats` times; the one of least CPU time, with its runs' wall times. */
async function timeGenerations(model, prompts, generateOptions, repeats) {
  let best;
  for (let r = 0; r < repeats; r++) {
    const startRuns = runs.length;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await model.generate(prompts, generateOptions);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    const mine = runs.slice(startRuns);
    // run 0 is the prefill
    const decodeRuns = mine.slice(1);
    const result = {
      generateMs: wall,
      cpuMs: (cpu.user + cpu.system) / 1000,
      prefillRunMs: mine[0],
      decodeSteps: decodeRuns.length,
      decodeRunMs: decodeRuns.reduce((a, b) => a + b, 0),
    };
    if (best === undefined || result.cpuMs < best.cpuMs) best = result;
  }
  return best;
}

async function profileShape(name, repeats) {
  const { config, generate } = SHAPES[name];
  await initBackend({ backend: 'wasm' });
  const model = CausalLM.create(config, { seed: 1 });
  const prompts = randomIds(generate.batch, generate.prompt, config.vocabSize, 11);
  const options = (maxNewTokens) => ({
    maxNewTokens,
    temperature: 1,
    seed: 1,
    batchSize: generate.batch,
    engine: 'onnx',
    onnxThreads: 1,
    onnxWeights: 'initializers',
  });
  // The same generations without onnxruntime's profiler first: its per-kernel timing costs time
  // of its own, so only these figures say what a step costs (the profiled ones split it).
  profiling = false;
  const plainModel = CausalLM.create(config, { seed: 1 });
  await plainModel.generate(prompts, options(2)); // opens the session
  const plain = await timeGenerations(plainModel, prompts, options(generate.newTokens), repeats);
  plainModel.dispose();
  runs = [];
  profiling = true;
  profilePrefix = name;
  await model.generate(prompts, options(2)); // opens the session (profiled from here on)
  if (model.lastGenerationEngine.engine !== 'onnx')
    throw new Error(`${name} ran on ${JSON.stringify(model.lastGenerationEngine)}`);
  const session = sessions[sessions.length - 1];
  const best = await timeGenerations(model, prompts, options(generate.newTokens), repeats);
  runs = [];
  session.endProfiling();
  const file = readdirSync(profileDir)
    .filter((f) => f.startsWith(name) && f.endsWith('.json'))
    .map((f) => join(profileDir, f))[0];
  // The profile holds the warm-up's 2 runs, then every repeat's prefill and decode runs.
  const events = JSON.parse(readFileSync(file, 'utf8'));
  const ort = summariseOrtProfile(events, 2, generate.newTokens, false);
  const ortPrefill = summariseOrtProfile(events, 2, generate.newTokens, true);
  const steps = best.decodeSteps;
  const r = (ms) => Math.round((ms / steps) * 1000) / 1000;
  model.dispose();
  return {
    shape: name,
    generate,
    bestOf: repeats,
    tokensPerSecond: Math.round((generate.batch * generate.newTokens) / (best.generateMs / 1000)),
    tokensPerCpuSecond: Math.round((generate.batch * generate.newTokens) / (best.cpuMs / 1000)),
    prefillRunMs: Math.round(best.prefillRunMs),
    prefill: ortPrefill,
    decodeStep: {
      // wall ms per decode step: inside session.run, and the JS around it (sampling, masks, cache)
      // (generate's time less every run, prefill included, per decode step)
      sessionRunMs: r(best.decodeRunMs),
      jsOutsideRunMs: r(best.generateMs - best.decodeRunMs - best.prefillRunMs),
      // inside run: onnxruntime's model_run (profiler) and the binding's share is the difference
      onnxruntime: ort,
    },
    // without the profiler (the same generations, another session): what a step costs
    unprofiled: {
      tokensPerSecond: Math.round(
        (generate.batch * generate.newTokens) / (plain.generateMs / 1000),
      ),
      tokensPerCpuSecond: Math.round((generate.batch * generate.newTokens) / (plain.cpuMs / 1000)),
      prefillRunMs: Math.round(plain.prefillRunMs),
      cpuMsPerDecodeStep: r(plain.cpuMs - plain.prefillRunMs),
      sessionRunMs: r(plain.decodeRunMs),
      jsOutsideRunMs: r(plain.generateMs - plain.decodeRunMs - plain.prefillRunMs),
      // how much longer a profiled run is: the profiler's own per-kernel cost, which its
      // "executor" figure (model_run less the kernels) includes
      profiledRunRatio: Math.round((best.decodeRunMs / plain.decodeRunMs) * 100) / 100,
    },
  };
}

/** Self time per function (and file) of a V8 .cpuprofile, top entries. */
function summariseCpuProfile(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const n = byId.get(id);
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    const us = dt[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  return {
    sampledMs: Math.round(total / 1000),
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([fn, us]) => ({
        fn,
        ms: Math.round(us / 1000),
        share: Math.round((us / total) * 1000) / 1000,
      })),
  };
}

if (args['cpu-profile'] !== undefined) {
  console.log(JSON.stringify(summariseCpuProfile(args['cpu-profile']), null, 2));
  process.exit(0);
}
const summary = {
  node: process.version,
  loadAverageAtStart: loadavg().map((x) => +x.toFixed(2)),
  shapes: [],
};
for (const name of args.shapes.split(','))
  summary.shapes.push(await profileShape(name, Number(args.repeats)));
summary.loadAverageAtEnd = loadavg().map((x) => +x.toFixed(2));
rmSync(profileDir, { recursive: true, force: true });
console.log(JSON.stringify(summary, null, 2));
