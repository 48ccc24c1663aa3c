// Where a training step and a generation step spend their time, per kernel kind: kernel time
// (tf.profile's per-kernel timing, which on wasm/cpu is the kernel's own synchronous run) against
// the step's wall time without the profiler (the rest is op dispatch, tape bookkeeping and JS
// around the kernels). Prints JSON.
//   node bench/profile.mjs [--shapes core-default,cli-default,qwen2.5-0.5b-layer] [--repeats 3] [--decode fused|reference]
// (shapes: bench/shapes.mjs)
// Run after `pnpm build`. CR_BENCH_DIST points at another build to compare before/after.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const { AdamW, CausalLM, computeGradients, initBackend, padBatch, tf } = await import(
  process.env.CR_BENCH_DIST ?? '../dist/index.js'
);
import { SHAPES } from './shapes.mjs';

const { values: args } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'core-default,cli-default,qwen2.5-0.5b-layer' },
    repeats: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'wasm' },
    // generate's decode path ('fused' or 'reference'; unset: the library's default)
    decode: { type: 'string' },
  },
});

/** Kernel names grouped by what they do. */
function kindOf(name) {
  if (/MatMul/.test(name)) return 'matmul';
  if (/Transpose/.test(name)) return 'transpose';
  if (/Softmax|LogSoftmax|PickColumns|Max$|Log$/.test(name)) return 'softmax/cross-entropy';
  if (/RmsNorm/.test(name)) return 'rmsnorm';
  if (/Rope/.test(name)) return 'rope';
  if (/Gather|Scatter|SegmentSum/.test(name)) return 'gather/scatter';
  if (/AdamW/.test(name)) return 'optimizer';
  if (/^(Reshape|Identity|Concat|Slice|Cast|Fill|ZerosLike|OnesLike|Pack|Unpack)/.test(name))
    return 'copy/reshape';
  if (/Sigmoid|Mul|Add|Sub|Div|Neg|Sum|Mean|Square|Sqrt|Rsqrt|Exp/.test(name))
    return 'elementwise/reduce';
  return 'other';
}

/** FLOPs of a matmul kernel from its shapes: 2·M·N·K, K from a's size (transposes need no attrs). */
function matmulFlops(kernel) {
  const out = kernel.outputShapes[0];
  const a = kernel.inputShapes[0];
  if (out === undefined || a === undefined) return 0;
  const size = (s) => s.reduce((x, y) => x * y, 1);
  const n = out[out.length - 1];
  const k = (size(a) * n) / size(out);
  return 2 * size(out) * k;
}

function kernelTime(kernels) {
  let ms = 0;
  for (const k of kernels) if (k.name !== 'unnamed scope') ms += k.kernelTimeMs;
  return ms;
}

function summarise(kernels, wallMs, steps = 1) {
  const byKind = new Map();
  const byKernel = new Map();
  let kernelMs = 0;
  let flops = 0;
  let scopes = 0;
  for (const k of kernels) {
    // tf.customGrad's forward shows up as an "unnamed scope" kernel whose time includes the
    // kernels it runs, which are recorded too: counting it would count them twice.
    if (k.name === 'unnamed scope') {
      scopes++;
      continue;
    }
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    kernelMs += ms;
    const kind = kindOf(k.name);
    const e = byKind.get(kind) ?? { kind, calls: 0, ms: 0, flops: 0 };
    e.calls++;
    e.ms += ms;
    if (kind === 'matmul') {
      const f = matmulFlops(k);
      e.flops += f;
      flops += f;
    }
    byKind.set(kind, e);
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const s = byKernel.get(key) ?? { op: key, calls: 0, ms: 0 };
    s.calls++;
    s.ms += ms;
    byKernel.set(key, s);
  }
  const r1 = (x) => Math.round((x / steps) * 10) / 10;
  return {
    wallMs: r1(wallMs),
    kernelMs: r1(kernelMs),
    // Wall time outside kernels: tfjs dispatch (engine bookkeeping, tape, tensor allocation), JS glue.
    outsideKernelsMs: r1(wallMs - kernelMs),
    outsideKernelsShare: Math.round(((wallMs - kernelMs) / wallMs) * 100) / 100,
    kernelCalls: Math.round((kernels.length - scopes) / steps),
    customGradScopes: Math.round(scopes / steps),
    byKind: [...byKind.values()]
      .sort((a, b) => b.ms - a.ms)
      .map((e) => ({
        kind: e.kind,
        calls: Math.round(e.calls / steps),
        ms: r1(e.ms),
        share: Math.round((e.ms / kernelMs) * 100) / 100,
        ...(e.kind === 'matmul' ? { gflops: Math.round(e.flops / e.ms / 1e5) / 10 } : {}),
      })),
    topOps: [...byKernel.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 12)
      .map((e) => ({ op: e.op, calls: Math.round(e.calls / steps), ms: r1(e.ms) })),
    matmulGflopPerStep: Math.round(flops / steps / 1e6) / 1e3,
  };
}

function randomIds(rows, length, vocab, seed) {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: rows }, () =>
    Array.from({ length }, () => Math.floor(next() * vocab)),
  );
}

async function profileShape(name, shape, repeats) {
  const { config, train, generate } = shape;
  const model = CausalLM.create(config, { seed: 1 });
  const trainResult = train === undefined ? undefined : await profileTrain(model, train, repeats);

  const prompts = randomIds(generate.batch, generate.prompt, config.vocabSize, 11);
  const gen = (maxNewTokens) =>
    model.generate(prompts, {
      maxNewTokens,
      temperature: 1,
      seed: 1,
      batchSize: generate.batch,
      ...(args.decode !== undefined ? { decode: args.decode } : {}),
    });
  await gen(2);
  const timeGen = async (tokens) => {
    let best = Infinity;
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      await gen(tokens);
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  const prefillWall = await timeGen(1);
  const fullWall = await timeGen(generate.newTokens);
  const prefillKernels = (await tf.profile(() => gen(1))).kernels;
  let fullKernels;
  let fullKernelMs = Infinity;
  for (let i = 0; i < repeats; i++) {
    const kernels = (await tf.profile(() => gen(generate.newTokens))).kernels;
    const ms = kernelTime(kernels);
    if (ms < fullKernelMs) [fullKernels, fullKernelMs] = [kernels, ms];
  }
  const decodeSteps = generate.newTokens - 1;
  const decodeKernels = fullKernels.slice(prefillKernels.length);
  const decodeWallPerStep = (fullWall - prefillWall) / decodeSteps;
  const result = {
    shape: name,
    parameters: model.numParameters(),
    train: trainResult,
    generate: {
      ...generate,
      prefillMs: Math.round(prefillWall),
      decodeTokensPerSecond: Math.round((generate.batch * 1000) / decodeWallPerStep),
      // forward FLOPs per token (matmuls incl. the LM head + attention) at the mean context
      decodeGflops:
        Math.round(
          (generate.batch * model.forwardFlopsPerToken(generate.prompt + generate.newTokens / 2)) /
            decodeWallPerStep /
            1e5,
        ) / 10,
      decodeStep: summarise(decodeKernels, fullWall - prefillWall, decodeSteps),
    },
  };
  model.dispose();
  return result;
}

/** Training steps (forward + backward (+ AdamW)): the best wall time of `repeats`, and the profiled step with the least kernel time. */
async function profileTrain(model, train, repeats) {
  const optimizer = train.optimizer ? new AdamW({ learningRate: 1e-3 }) : undefined;
  const data = padBatch(randomIds(train.batch, train.seq, model.config.vocabSize, 7), 0);
  const step = () => {
    const { grads } = computeGradients(model, () =>
      tf.tidy(() =>
        tf.neg(tf.mean(model.tokenLogProbs(data.inputIds, data.attentionMask).logProbs)),
      ),
    );
    if (optimizer !== undefined) optimizer.applyGradients(grads);
    tf.dispose(grads);
  };
  step(); // warm-up: kernel set-up, XNNPACK operator caches, optimizer state
  const walls = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    step();
    walls.push(performance.now() - t0);
  }
  const wall = Math.min(...walls);
  // tf.profile returns the engine's one profile object: keep each call's kernel list before the next.
  let kernels;
  let kernelMs = Infinity;
  for (let i = 0; i < repeats; i++) {
    const run = (await tf.profile(() => step())).kernels;
    const ms = kernelTime(run);
    if (ms < kernelMs) [kernels, kernelMs] = [run, ms];
  }
  const flops = model.flopsPerToken(train.seq) * train.batch * train.seq;
  optimizer?.dispose();
  tf.dispose([data.inputIds, data.attentionMask]);
  return {
    ...train,
    tokensPerSecond: Math.round((train.batch * train.seq) / (wall / 1000)),
    gflops: Math.round(flops / wall / 1e5) / 10,
    ...summarise(kernels, wall),
  };
}

const backend = await initBackend({ backend: args.backend });
const out = {
  node: process.version,
  backend: backend.active,
  decode: args.decode ?? 'default',
  loadAverageAtStart: loadavg(),
};
out.results = [];
for (const name of args.shapes.split(',').filter(Boolean)) {
  const shape = SHAPES[name];
  if (shape === undefined)
    throw new Error(`unknown shape ${name}; known: ${Object.keys(SHAPES).join(', ')}`);
  out.results.push(await profileShape(name, shape, Number(args.repeats)));
}
out.loadAverageAtEnd = loadavg();
console.log(JSON.stringify(out, null, 2));
