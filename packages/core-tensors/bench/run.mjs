// Throughput benchmark of the default small model on every available backend. Prints JSON.
//   node bench/run.mjs [--backends wasm,cpu] [--steps 5] [--profile] [--batch 16] [--seq 128] [--workers 1,2]
//     [--shapes core-default,cli-default,qwen2.5-0.5b-layer]
// --shapes: training and generation GFLOP/s of the shapes in bench/shapes.mjs on wasm, generation
// through each engine back to back ('' skips it). --engines lists them (default
// tfjs-fused,tfjs-reference,onnx-1,onnx-2): the tfjs decode paths, onnxruntime-node with 1 or 2
// intra-op threads (onnx-<threads>-inputs: the weights fed as inputs instead of initializers);
// --rounds: alternating rounds after a warm-up (default 3); --no-train skips the training step.
// Training alternates the two attention paths step by step; --weight-grads alternates the
// weight-gradient kernel with the plain product instead (reported as 'fused' / 'reference').
// The onnx engines also report their rebuild after the weights change (what a GRPO step costs).
// --workers: training and generation through createModelWorkerPool with each worker count
// (1 = in-process, as without a pool), on the wasm backend; '' skips it.
// Run after `pnpm build` (the `bench` package script does both).
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
// CR_BENCH_DIST points at another build (e.g. a copy of an older dist) to compare before/after.
const {
  AdamW,
  CausalLM,
  DEFAULT_MODEL_CONFIG,
  Tokenizer,
  availableBackends,
  computeGradients,
  createModelWorkerPool,
  initBackend,
  padBatch,
  setWeightGradientKernel,
  tf,
} = await import(process.env.CR_BENCH_DIST ?? '../dist/index.js');
const { SHAPES, FLOPS_COUNTED } = await import('./shapes.mjs');

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string' },
    steps: { type: 'string', default: '5' },
    batch: { type: 'string', default: '16' },
    seq: { type: 'string', default: '128' },
    'gen-tokens': { type: 'string', default: '64' },
    profile: { type: 'boolean', default: false },
    config: { type: 'string' },
    workers: { type: 'string', default: '1,2' },
    'gen-prompts': { type: 'string', default: '32' },
    shapes: { type: 'string', default: 'core-default,cli-default,qwen2.5-0.5b-layer' },
    engines: { type: 'string', default: 'tfjs-fused,tfjs-reference,onnx-1,onnx-2' },
    rounds: { type: 'string', default: '3' },
    'no-train': { type: 'boolean', default: false },
    // the shapes' training sequence length instead of bench/shapes.mjs's
    'shape-seq': { type: 'string' },
    // the shapes' training only
    'no-generate': { type: 'boolean', default: false },
    // training alternates the weight-gradient kernel with the plain product (attention fused)
    // instead of the two attention paths
    'weight-grads': { type: 'boolean', default: false },
  },
});

const batch = Number(args.batch);
const seq = Number(args.seq);
const genTokens = Number(args['gen-tokens']);
const config = { ...DEFAULT_MODEL_CONFIG, ...(args.config ? JSON.parse(args.config) : {}) };

function randomIds(rows, length, seed) {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: rows }, () =>
    Array.from({ length }, () => Math.floor(next() * config.vocabSize)),
  );
}

function trainStep(model, optimizer, data) {
  const { loss, grads } = computeGradients(model, () =>
    tf.tidy(() => tf.neg(tf.mean(model.tokenLogProbs(data.inputIds, data.attentionMask).logProbs))),
  );
  optimizer.applyGradients(grads);
  tf.dispose(grads);
  return loss;
}

async function profileStep(model, optimizer, data) {
  const info = await tf.profile(() => {
    trainStep(model, optimizer, data);
  });
  const byKernel = new Map();
  for (const k of info.kernels) {
    const key = k.name;
    const entry = byKernel.get(key) ?? { kernel: key, calls: 0, ms: 0 };
    entry.calls += 1;
    entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    byKernel.set(key, entry);
  }
  const byShape = new Map();
  for (const k of info.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const entry = byShape.get(key) ?? { op: key, calls: 0, ms: 0 };
    entry.calls += 1;
    entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    byShape.set(key, entry);
  }
  const round = (e) => ({ ...e, ms: Math.round(e.ms * 10) / 10 });
  const total = [...byKernel.values()].reduce((a, e) => a + e.ms, 0);
  return {
    kernelCalls: info.kernels.length,
    kernelMsTotal: Math.round(total),
    topKernels: [...byKernel.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 15)
      .map(round),
    topOps: [...byShape.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 15)
      .map(round),
  };
}

function cpuSeconds(start) {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
}

function matmulGflops() {
  const a = tf.randomNormal([1024, 256]);
  const b = tf.randomNormal([256, 1024]);
  tf.matMul(a, b).dispose();
  let seconds = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < 10; i++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const product = tf.matMul(a, b);
    product.dataSync();
    product.dispose();
    seconds = Math.min(seconds, (performance.now() - start) / 1000);
    cpu = Math.min(cpu, cpuSeconds(cpuStart));
  }
  tf.dispose([a, b]);
  const flops = 2 * 1024 * 256 * 1024;
  return {
    wall: Math.round(flops / seconds / 1e8) / 10,
    perCpuSecond: Math.round(flops / cpu / 1e8) / 10,
  };
}

async function benchBackend(backend) {
  const report = await initBackend({ backend });
  const model = CausalLM.create(config, { seed: 1 });
  const optimizer = new AdamW({ learningRate: 1e-3 });
  const slow = backend === 'cpu';
  const steps = slow ? 1 : Number(args.steps);
  // The pure-JS cpu backend is ~40× slower: a smaller batch keeps the benchmark short (figures are per token).
  const rows = slow ? Math.min(batch, 4) : batch;
  const data = padBatch(randomIds(rows, seq, 7), 0);
  trainStep(model, optimizer, data); // warm-up (kernel set-up, optimizer state)
  // Each step timed alone; the fastest is reported (other processes on a shared machine only slow steps down).
  let stepSeconds = Infinity;
  let stepCpuSeconds = Infinity;
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    trainStep(model, optimizer, data);
    stepSeconds = Math.min(stepSeconds, (performance.now() - start) / 1000);
    stepCpuSeconds = Math.min(stepCpuSeconds, cpuSeconds(cpuStart));
  }
  const trainTokensPerSecond = (rows * seq) / stepSeconds;
  const flopsPerToken = model.flopsPerToken(seq);

  const generation = {};
  for (const genBatch of [1, 16]) {
    const prompts = randomIds(genBatch, 32, 11 + genBatch);
    const tokens = slow ? Math.min(genTokens, 8) : genTokens;
    await model.generate(prompts, { maxNewTokens: 2, temperature: 1, batchSize: genBatch });
    let seconds = Infinity;
    let cpu = Infinity;
    let produced = 0;
    for (let r = 0; r < (slow ? 1 : 3); r++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const out = await model.generate(prompts, {
        maxNewTokens: tokens,
        temperature: 1,
        seed: 1,
        batchSize: genBatch,
      });
      seconds = Math.min(seconds, (performance.now() - t0) / 1000);
      cpu = Math.min(cpu, cpuSeconds(c0));
      produced = out.reduce((a, o) => a + o.tokens.length, 0);
    }
    const perSecond = produced / seconds;
    generation[`batch${genBatch}`] = {
      tokensPerSecond: Math.round(perSecond),
      tokensPerCpuSecond: Math.round(produced / cpu),
      gflops: Math.round((perSecond * model.forwardFlopsPerToken(32 + tokens / 2)) / 1e8) / 10,
    };
  }
  const result = {
    backend,
    skipped: report.skipped,
    train: {
      batch: rows,
      seq,
      stepMs: Math.round(stepSeconds * 1000),
      stepCpuMs: Math.round(stepCpuSeconds * 1000),
      tokensPerSecond: Math.round(trainTokensPerSecond),
      // Per second of this process's CPU time: what the wall-clock figure would be on an idle core.
      tokensPerCpuSecond: Math.round((rows * seq) / stepCpuSeconds),
      gflops: Math.round((trainTokensPerSecond * flopsPerToken) / 1e8) / 10,
      gflopsPerCpuSecond: Math.round((((rows * seq) / stepCpuSeconds) * flopsPerToken) / 1e8) / 10,
    },
    generation,
    flopsPerToken,
    forwardFlopsPerToken: model.forwardFlopsPerToken(seq),
    matmul1024x256x1024Gflops: matmulGflops(),
  };
  if (args.profile) result.profile = await profileStep(model, optimizer, data);
  optimizer.dispose();
  tf.dispose([data.inputIds, data.attentionMask]);
  model.dispose();
  return result;
}

/** BPE training and encoding speed on real code: TensorFlow.js's own bundled JavaScript (~1.2 MB). */
function benchTokenizer() {
  const fromTfjs = createRequire(createRequire(import.meta.url).resolve('@tensorflow/tfjs'));
  const path = fromTfjs.resolve('@tensorflow/tfjs-core/dist/tf-core.node.js');
  const text = readFileSync(path, 'utf8');
  const texts = text.split(/\n(?=function |var |class )/);
  const bytes = Buffer.byteLength(text);
  const out = [];
  for (const vocabSize of [2048, 8192]) {
    const start = performance.now();
    const tokenizer = Tokenizer.train(texts, { vocabSize });
    const trainMs = performance.now() - start;
    const t0 = performance.now();
    let tokens = 0;
    for (const t of texts) tokens += tokenizer.encode(t).length;
    const encodeSeconds = (performance.now() - t0) / 1000;
    out.push({
      corpusMB: +(bytes / 1e6).toFixed(2),
      vocabSize: tokenizer.vocabSize,
      trainMs: Math.round(trainMs),
      encodeMBps: +(bytes / 1e6 / encodeSeconds).toFixed(1),
      bytesPerToken: +(bytes / tokens).toFixed(2),
    });
  }
  return out;
}

/** Rows [from, to) of right-padded ids/mask as shard arrays. */
function shardRows(ids, mask, from, to, time) {
  return {
    ids: { values: ids.slice(from * time, to * time), shape: [to - from, time] },
    mask: { values: mask.slice(from * time, to * time), shape: [to - from, time] },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/**
 * Training steps (batch × seq, forward + backward + AdamW) and generation (genPrompts prompts of
 * 32 tokens, batches of 16, 64 new tokens) with N worker threads: the batch is split into N
 * shards (one per thread) whose gradients the pool sums; generation batches go to the threads.
 * N = 1 runs in-process exactly as without a pool.
 */
async function benchWorkers(counts) {
  await initBackend({ backend: 'wasm' });
  const prompts = randomIds(Number(args['gen-prompts']), 32, 21);
  const out = [];
  for (const workers of counts) {
    const model = CausalLM.create(config, { seed: 1 });
    const optimizer = new AdamW({ learningRate: 1e-3 });
    const started = performance.now();
    const pool = await createModelWorkerPool({ model, workers });
    const startSeconds = (performance.now() - started) / 1000;
    const data = padBatch(randomIds(batch, seq, 7), 0);
    const ids = data.inputIds.dataSync();
    const mask = data.attentionMask.dataSync();
    const shards = [];
    const per = Math.ceil(batch / Math.max(1, pool.size));
    for (let from = 0; from < batch; from += per)
      shards.push({ data: shardRows(ids, mask, from, Math.min(batch, from + per), seq) });
    const loss = { module: new URL('./worker-loss.mjs', import.meta.url), exportName: 'meanNll' };
    const step = async () => {
      if (pool.size === 0) return trainStep(model, optimizer, data);
      const result = await pool.computeGradients({
        loss,
        shards,
        options: { tokens: batch * (seq - 1) },
      });
      optimizer.applyGradients(result.grads);
      tf.dispose(Object.values(result.grads));
      return result.loss;
    };
    await step(); // warm-up
    const stepSeconds = [];
    const stepCpu = [];
    for (let i = 0; i < Number(args.steps); i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await step();
      stepSeconds.push((performance.now() - t0) / 1000);
      stepCpu.push(cpuSeconds(c0));
    }
    const generateOptions = { maxNewTokens: genTokens, temperature: 1, seed: 1, batchSize: 16 };
    await pool.generate(prompts.slice(0, 16), { ...generateOptions, maxNewTokens: 2 });
    const genSeconds = [];
    let produced = 0;
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      const outputs = await pool.generate(prompts, generateOptions);
      genSeconds.push((performance.now() - t0) / 1000);
      produced = outputs.reduce((n, o) => n + o.tokens.length, 0);
    }
    const tokens = batch * seq;
    out.push({
      workers,
      threads: pool.size,
      poolStartSeconds: Math.round(startSeconds * 100) / 100,
      train: {
        batch,
        seq,
        shards: pool.size === 0 ? 1 : shards.length,
        bestStepMs: Math.round(Math.min(...stepSeconds) * 1000),
        medianStepMs: Math.round(median(stepSeconds) * 1000),
        tokensPerSecond: Math.round(tokens / Math.min(...stepSeconds)),
        medianTokensPerSecond: Math.round(tokens / median(stepSeconds)),
        // CPU of every thread of the process per token: how much of the speed-up costs extra work.
        tokensPerCpuSecond: Math.round(tokens / median(stepCpu)),
      },
      generation: {
        prompts: prompts.length,
        batchSize: 16,
        newTokens: produced,
        tokensPerSecond: Math.round(produced / Math.min(...genSeconds)),
        medianTokensPerSecond: Math.round(produced / median(genSeconds)),
      },
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    });
    await pool.close();
    optimizer.dispose();
    tf.dispose([data.inputIds, data.attentionMask]);
    model.dispose();
  }
  const [one, ...rest] = out;
  for (const r of rest) {
    r.speedup = {
      train: Math.round((r.train.tokensPerSecond / one.train.tokensPerSecond) * 100) / 100,
      generation:
        Math.round((r.generation.tokensPerSecond / one.generation.tokensPerSecond) * 100) / 100,
    };
  }
  return out;
}

/**
 * Training (forward + backward + AdamW) and generation throughput of one shape, as tokens/s and
 * GFLOP/s (FLOPS_COUNTED below). Generation alternates the fused and the reference decode path
 * `rounds` times, so their ratio is measured back to back under the same load.
 */
/** generate() options of an engine name of --engines. */
function engineOptions(engine) {
  const [kind, variant, weights] = engine.split('-');
  if (kind === 'tfjs' && (variant === 'fused' || variant === 'reference'))
    return { engine: 'tfjs', decode: variant };
  if (kind === 'onnx' && Number(variant) >= 1 && (weights === undefined || weights === 'inputs'))
    return { engine: 'onnx', onnxThreads: Number(variant), onnxWeights: weights ?? 'initializers' };
  throw new Error(
    `unknown engine ${engine}: use tfjs-fused, tfjs-reference or onnx-<threads>[-inputs]`,
  );
}

async function benchShape(name, rounds = Number(args.rounds)) {
  const { config, generate } = SHAPES[name];
  const train =
    SHAPES[name].train === undefined || args['shape-seq'] === undefined
      ? SHAPES[name].train
      : { ...SHAPES[name].train, seq: Number(args['shape-seq']) };
  await initBackend({ backend: 'wasm' });
  const model = CausalLM.create(config, { seed: 1 });
  const out = { shape: name, parameters: model.numParameters() };
  if (train !== undefined && !args['no-train']) {
    // The two attention paths alternate step by step (after one warm-up step each), so their
    // ratio is measured back to back under the same load.
    const optimizer = new AdamW({ learningRate: 1e-3 });
    const data = padBatch(randomIdsOf(train.batch, train.seq, config.vocabSize, 7), 0);
    // --weight-grads: 'fused' is the weight-gradient kernel, 'reference' the plain product
    const attentionPaths = ['fused', 'reference'];
    const usePath = (path) => {
      if (args['weight-grads']) setWeightGradientKernel(path === 'fused');
      else model.attention = path;
    };
    const seconds = { fused: [], reference: [] };
    const cpu = { fused: [], reference: [] };
    for (let i = 0; i < Number(args.steps) + 1; i++) {
      for (const path of attentionPaths) {
        usePath(path);
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        trainStep(model, optimizer, data);
        if (i === 0) continue;
        seconds[path].push((performance.now() - t0) / 1000);
        cpu[path].push(cpuSeconds(c0));
      }
    }
    const tokens = train.batch * train.seq;
    const flops = model.flopsPerToken(train.seq);
    out.train = {
      batch: train.batch,
      seq: train.seq,
      compared: args['weight-grads']
        ? 'fused: weight-gradient kernel, reference: plain product (attention fused in both)'
        : 'attention paths',
    };
    for (const path of attentionPaths) {
      out.train[path] = {
        tokensPerSecond: Math.round(tokens / Math.min(...seconds[path])),
        medianTokensPerSecond: Math.round(tokens / median(seconds[path])),
        gflops: Math.round(((tokens / Math.min(...seconds[path])) * flops) / 1e8) / 10,
        medianGflops: Math.round(((tokens / median(seconds[path])) * flops) / 1e8) / 10,
        // per second of this process's CPU time: what an idle core would show
        gflopsPerCpuSecond: Math.round(((tokens / Math.min(...cpu[path])) * flops) / 1e8) / 10,
        medianGflopsPerCpuSecond: Math.round(((tokens / median(cpu[path])) * flops) / 1e8) / 10,
        stepCpuMs: cpu[path].map((c) => Math.round(c * 1000)),
      };
    }
    // reference ÷ fused time of each back-to-back pair (wall, then CPU)
    out.train.fusedSpeedup = seconds.reference.map(
      (s, i) => Math.round((s / seconds.fused[i]) * 100) / 100,
    );
    out.train.fusedSpeedupCpu = cpu.reference.map(
      (s, i) => Math.round((s / cpu.fused[i]) * 100) / 100,
    );
    model.attention = 'fused';
    setWeightGradientKernel(true);
    optimizer.dispose();
    tf.dispose([data.inputIds, data.attentionMask]);
  }
  if (args['no-generate']) {
    model.dispose();
    return out;
  }
  const prompts = randomIdsOf(generate.batch, generate.prompt, config.vocabSize, 11);
  const flopsPerToken = model.forwardFlopsPerToken(generate.prompt + generate.newTokens / 2);
  const engines = args.engines.split(',').filter(Boolean);
  const paths = Object.fromEntries(engines.map((e) => [e, []]));
  const cpu = Object.fromEntries(engines.map((e) => [e, []]));
  const tokens = {};
  // A model keeps one onnx session (per thread count): each onnx engine gets its own copy, so
  // alternating them does not rebuild sessions between rounds.
  const models = Object.fromEntries(
    engines.map((e) => [e, e.startsWith('onnx') ? model.clone() : model]),
  );
  for (let r = 0; r < rounds + 1; r++) {
    for (const engine of engines) {
      const model = models[engine];
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const outputs = await model.generate(prompts, {
        maxNewTokens: generate.newTokens,
        temperature: 1,
        seed: 1,
        batchSize: generate.batch,
        ...engineOptions(engine),
      });
      if (engineOptions(engine).engine !== model.lastGenerationEngine.engine)
        throw new Error(`${engine} ran on ${JSON.stringify(model.lastGenerationEngine)}`);
      // round 0 warms up (kernel set-up, XNNPACK packing, the onnx session's creation)
      if (r > 0) paths[engine].push((performance.now() - t0) / 1000);
      if (r > 0) cpu[engine].push(cpuSeconds(c0));
      // sampled: engines may stop rows at different steps where float32 rounding flips a near-tie
      tokens[engine] = outputs.reduce((n, o) => n + o.tokens.length, 0);
    }
  }
  out.generate = {
    batch: generate.batch,
    prompt: generate.prompt,
    maxNewTokens: generate.newTokens,
  };
  const round = (x) => Math.round(x);
  for (const engine of engines) {
    const produced = tokens[engine];
    out.generate[engine] = {
      newTokens: produced,
      // one figure per back-to-back round
      tokensPerSecond: paths[engine].map((s) => round(produced / s)),
      tokensPerCpuSecond: cpu[engine].map((s) => round(produced / s)),
      gflopsPerCpuSecond:
        Math.round(((produced / Math.min(...cpu[engine])) * flopsPerToken) / 1e8) / 10,
    };
  }
  // each engine's speed-up over the first one (tokens per second, per round: wall, then CPU)
  const base = engines[0];
  for (const engine of engines.slice(1)) {
    const ratio = (a, b) => a.map((x, i) => Math.round((b[i] / x) * 100) / 100);
    const perToken = (list, e) => list[e].map((s) => s / tokens[e]);
    out.generate[engine].speedupOverFirst = ratio(perToken(paths, engine), perToken(paths, base));
    out.generate[engine].speedupOverFirstCpu = ratio(perToken(cpu, engine), perToken(cpu, base));
  }
  // An onnx engine's session is rebuilt from the weights after they change (every GRPO step).
  for (const engine of engines.filter((e) => e.startsWith('onnx'))) {
    const model = models[engine];
    const rebuild = [];
    for (let r = 0; r < 3; r++) {
      for (const variable of model.parameters.values()) {
        const next = tf.tidy(() => tf.mul(variable, 1));
        variable.assign(next);
        next.dispose();
      }
      const t0 = performance.now();
      await model.generate(prompts.slice(0, 1), { maxNewTokens: 1, ...engineOptions(engine) });
      rebuild.push({
        buildMs: round(model.lastGenerationEngine.onnxBuildMs),
        callMs: round(performance.now() - t0),
      });
    }
    out.generate[engine].rebuildAfterWeightChange = rebuild;
  }
  for (const m of new Set(Object.values(models))) m.dispose();
  return out;
}

function randomIdsOf(rows, length, vocab, seed) {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: rows }, () =>
    Array.from({ length }, () => Math.floor(next() * vocab)),
  );
}

const backends =
  args.backends === undefined
    ? await availableBackends()
    : args.backends.split(',').filter(Boolean);
const model = CausalLM.create(config);
const summary = {
  node: process.version,
  cpus: cpus().length,
  loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  model: { config, parameters: model.numParameters() },
  results: [],
};
model.dispose();
for (const backend of backends) summary.results.push(await benchBackend(backend));
if (args.workers !== '') summary.workers = await benchWorkers(args.workers.split(',').map(Number));
if (args.shapes !== '') {
  summary.flopsCounted = FLOPS_COUNTED;
  summary.shapes = [];
  for (const name of args.shapes.split(',')) summary.shapes.push(await benchShape(name));
}
summary.tokenizer = benchTokenizer();
summary.loadAverageAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
console.log(JSON.stringify(summary, null, 2));
