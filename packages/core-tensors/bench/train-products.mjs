// Where the matrix-product time of a training step goes, by product: the q/k/v/o and MLP
// projections, the LM head, attention's scores and probabilities·values (forward) and their
// backward products, each with calls, kernel ms and GFLOP/s (tf.profile's per-kernel times),
// plus attention's other kernels (mask, softmax and its gradient, transposes of [T, S]-sized
// operands) and the step's wall and CPU time. Prints JSON.
//   node bench/train-products.mjs [--shape cli-default] [--batch 16] [--seq 512] [--repeats 3]
//                                 [--attention fused|reference]
// Run after `pnpm build`. CR_BENCH_DIST points at another build to compare before/after.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const { AdamW, CausalLM, computeGradients, initBackend, padBatch, tf } = await import(
  process.env.CR_BENCH_DIST ?? '../dist/index.js'
);
const { SHAPES } = await import('./shapes.mjs');

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'cli-default' },
    batch: { type: 'string' },
    seq: { type: 'string' },
    repeats: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'wasm' },
    // the training attention path ('fused' or 'reference'; unset: the library's default)
    attention: { type: 'string' },
  },
});

const shape = SHAPES[args.shape];
if (shape?.train === undefined)
  throw new Error(`unknown or generation-only shape ${args.shape}; known: ${Object.keys(SHAPES)}`);
const batch = Number(args.batch ?? shape.train.batch);
const seq = Number(args.seq ?? shape.train.seq);
const config = shape.config;
const hd = config.hiddenSize / config.numAttentionHeads;
const tokens = batch * seq;
// tokenLogProbs scores positions 1..T-1: the LM head's products have B·(T−1) rows
const headRows = batch * (seq - 1);

const size = (s) => s.reduce((x, y) => x * y, 1);

/** The product a matmul kernel computes, named from its shapes and whether it ran in the backward pass. */
function productOf(kernel, backward) {
  const [a, b] = kernel.inputShapes;
  const out = kernel.outputShapes[0];
  const n = out[out.length - 1];
  const k = a[a.length - 1];
  const m = size(a) / k;
  const batched = a.length === 3 && a[0] > 1;
  const flops = 2 * size(out) * k;
  if (batched) {
    const [, rows, inner] = a;
    if (!backward) return { name: inner === hd ? 'attn scores Q·Kᵀ' : 'attn P·V', flops };
    if (inner === hd) return { name: 'attn bwd dP = dO·Vᵀ', flops };
    if (rows === hd) return { name: 'attn bwd dKᵀ = Qᵀ·dS, dVᵀ = dOᵀ·P', flops };
    return { name: 'attn bwd dQ = dS·K', flops };
  }
  const weightOf = (x, y) => {
    const dims = [x, y].sort((p, q) => p - q).join('×');
    const d = config.hiddenSize;
    const names = {
      [[d, config.numAttentionHeads * hd].sort((p, q) => p - q).join('×')]: 'q/k/v/o proj',
      [[d, config.numKeyValueHeads * hd].sort((p, q) => p - q).join('×')]: 'q/k/v/o proj',
      [[d, config.intermediateSize].sort((p, q) => p - q).join('×')]: 'MLP gate/up/down',
      [[d, config.vocabSize].sort((p, q) => p - q).join('×')]: 'LM head',
    };
    return names[dims] ?? `other ${dims}`;
  };
  // the weight-gradient kernel: aᵀ·b for a [K, M], b [K, N] (K the tokens)
  if (kernel.name === 'CrTransposedMatMul') {
    const [rows, cols] = a;
    return { name: `${weightOf(cols, b[1])} bwd dW`, flops: 2 * rows * cols * b[1] };
  }
  if (!backward) return { name: `${weightOf(k, n)} fwd`, flops };
  // dW = xᵀ·dy sums over the tokens (the tied head's dE is (xᵀ·dy)ᵀ, also one of these)
  if (k === tokens || k === headRows) return { name: `${weightOf(m, n)} bwd dW`, flops };
  return { name: `${weightOf(k, n)} bwd dX`, flops };
}

/** Whether a non-matmul kernel works on attention's [.., T, S] scores (mask, softmax, its gradient) or is the fused kernel. */
function attentionOther(kernel) {
  if (/Attention/.test(kernel.name)) return true;
  return kernel.inputShapes.some(
    (s) => s.length >= 3 && s[s.length - 1] === seq && s[s.length - 2] >= seq,
  );
}

function summarise(kernels) {
  const boundary = kernels.findIndex((k) => /PickedLogSoftmaxGrad|LogSoftmaxGrad/.test(k.name));
  const products = new Map();
  let matmulMs = 0;
  let kernelMs = 0;
  const other = { attention: { calls: 0, ms: 0 }, rest: { calls: 0, ms: 0 } };
  kernels.forEach((k, i) => {
    if (k.name === 'unnamed scope') return;
    kernelMs += k.kernelTimeMs;
    if (/MatMul/.test(k.name)) {
      const { name, flops } = productOf(k, boundary >= 0 && i > boundary);
      const e = products.get(name) ?? { product: name, calls: 0, ms: 0, flops: 0 };
      e.calls++;
      e.ms += k.kernelTimeMs;
      e.flops += flops;
      products.set(name, e);
      matmulMs += k.kernelTimeMs;
      return;
    }
    const bucket = attentionOther(k) ? other.attention : other.rest;
    bucket.calls++;
    bucket.ms += k.kernelTimeMs;
  });
  const r1 = (x) => Math.round(x * 10) / 10;
  return {
    kernelMs: r1(kernelMs),
    matmulMs: r1(matmulMs),
    products: [...products.values()]
      .sort((p, q) => q.ms - p.ms)
      .map((e) => ({
        product: e.product,
        calls: e.calls,
        ms: r1(e.ms),
        shareOfMatmul: Math.round((e.ms / matmulMs) * 1000) / 1000,
        gflop: Math.round(e.flops / 1e6) / 1e3,
        gflops: Math.round(e.flops / e.ms / 1e5) / 10,
      })),
    attentionOtherKernels: { calls: other.attention.calls, ms: r1(other.attention.ms) },
    otherKernels: { calls: other.rest.calls, ms: r1(other.rest.ms) },
  };
}

function randomIds(rows, length, vocab, seed) {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: rows }, () =>
    Array.from({ length }, () => Math.floor(next() * vocab)),
  );
}

const backend = await initBackend({ backend: args.backend });
const model = CausalLM.create(config, { seed: 1 });
if (args.attention !== undefined) model.attention = args.attention;
const optimizer = new AdamW({ learningRate: 1e-3 });
const data = padBatch(randomIds(batch, seq, config.vocabSize, 7), 0);
const step = () => {
  const { grads } = computeGradients(model, () =>
    tf.tidy(() => tf.neg(tf.mean(model.tokenLogProbs(data.inputIds, data.attentionMask).logProbs))),
  );
  optimizer.applyGradients(grads);
  tf.dispose(grads);
};
step();
const walls = [];
const cpus = [];
for (let i = 0; i < Number(args.repeats); i++) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  step();
  walls.push(performance.now() - t0);
  const { user, system } = process.cpuUsage(c0);
  cpus.push((user + system) / 1000);
}
let best;
for (let i = 0; i < Number(args.repeats); i++) {
  // tf.profile returns one shared object: summarise each call's kernels before the next
  const s = summarise((await tf.profile(() => step())).kernels);
  if (best === undefined || s.kernelMs < best.kernelMs) best = s;
}
console.log(
  JSON.stringify(
    {
      node: process.version,
      backend: backend.active,
      shape: args.shape,
      attention: model.attention ?? 'reference',
      batch,
      seq,
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
      stepWallMs: walls.map(Math.round),
      stepCpuMs: cpus.map(Math.round),
      ...best,
    },
    null,
    2,
  ),
);
model.dispose();
