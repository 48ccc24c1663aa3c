// The weight-gradient products of a training step, xᵀ·dy with the tokens as the inner dimension,
// at the cli-default SFT shape (16 × 512 tokens, hidden 128, intermediate 384, vocab 2048), by
// formulation: `current` (x transposed by the JS kernel, then a plain XNNPACK product; the tied
// head's dE = (xᵀ·dy)ᵀ), `swapped` (dyᵀ·x: the smaller x is XNNPACK's packed operand; dy
// transposed, and the small result once more where the layer needs xᵀ·dy), `chunked-<c>` (the
// tokens in chunks of c: one batched transpose, per-chunk XNNPACK products in one
// CrSlicedMatMul, then a sum over the chunks) and `kernel` (CrTransposedMatMul, the K-blocked
// WASM SIMD kernel of src/transposed-product.ts). Each round runs every formulation of a shape
// back to back; prints JSON with GFLOP/s per CPU second and per wall second (min-max over the
// rounds), the per-round ratio to `current`, and each formulation's largest difference from
// `current` (0: bit for bit).
//   node bench/weight-grads.mjs [--rounds 5] [--tokens 8192] [--backend wasm]
// Run after `pnpm build`.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const { initBackend, tf } = await import(process.env.CR_BENCH_DIST ?? '../dist/index.js');

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '8192' },
    backend: { type: 'string', default: 'wasm' },
    chunks: { type: 'string', default: '512,2048' },
  },
});
const tokens = Number(args.tokens);
const headRows = tokens - tokens / 512; // tokenLogProbs scores B·(T − 1) positions
const backend = await initBackend({ backend: args.backend });

const run = (kernel, inputs) => tf.engine().runKernel(kernel, inputs, {});
const transpose = (x) => run('CrTransposeLast2', { x });

/** [name, rows, in, out, head]: head cases want dE = dyᵀ·x [out, in]; the others xᵀ·dy [in, out]. */
const cases = [
  ['q/k/v/o dW', tokens, 128, 128, false],
  ['MLP gate/up dW', tokens, 128, 384, false],
  ['MLP down dW', tokens, 384, 128, false],
  ['LM head dE (tied)', headRows, 128, 2048, true],
];

function formulations(head) {
  const want = (p) => (head ? transpose(p) : p); // p is xᵀ·dy [in, out]
  const chunked = (c) => (x, dy) => {
    const [k, m] = x.shape;
    const n = dy.shape[1];
    if (k % c !== 0) return null;
    const xs = transpose(tf.reshape(x, [k / c, c, m]));
    const parts = run('CrSlicedMatMul', { a: xs, b: tf.reshape(dy, [k / c, c, n]) });
    return want(tf.sum(parts, 0));
  };
  const list = {
    current: (x, dy) => want(tf.matMul(transpose(x), dy)),
    swapped: (x, dy) => {
      const p = tf.matMul(transpose(dy), x); // dyᵀ·x [out, in]
      return head ? p : transpose(p);
    },
    kernel: (x, dy) =>
      head
        ? run('CrTransposedMatMul', { a: dy, b: x })
        : run('CrTransposedMatMul', { a: x, b: dy }),
  };
  for (const c of args.chunks.split(',').map(Number)) list[`chunked-${c}`] = chunked(c);
  return list;
}

function random(shape, seed) {
  let s = seed;
  const n = shape[0] * shape[1];
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296 - 0.5;
  }
  return tf.tensor2d(data, shape);
}

const range = (xs) => [Math.min(...xs), Math.max(...xs)].map((x) => Math.round(x * 100) / 100);
const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

const results = [];
for (const [name, rows, inDim, outDim, head] of cases) {
  const x = random([rows, inDim], 1);
  const dy = random([rows, outDim], 2);
  const gflop = (2 * rows * inDim * outDim) / 1e9;
  const forms = formulations(head);
  const reference = tf.tidy(() => forms.current(x, dy)).dataSync();
  const stats = {};
  for (const [form, f] of Object.entries(forms)) {
    const out = tf.tidy(() => f(x, dy)); // warm-up, and the difference from `current`
    if (out === null) continue;
    const values = out.dataSync();
    let diff = 0;
    for (let i = 0; i < values.length; i++)
      diff = Math.max(diff, Math.abs(values[i] - reference[i]));
    out.dispose();
    stats[form] = { cpuMs: [], wallMs: [], maxAbsDiffFromCurrent: diff };
  }
  for (let r = 0; r < Number(args.rounds); r++)
    for (const form of Object.keys(stats)) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const out = tf.tidy(() => forms[form](x, dy));
      out.dataSync();
      const c = process.cpuUsage(c0);
      stats[form].wallMs.push(performance.now() - t0);
      stats[form].cpuMs.push((c.user + c.system) / 1000);
      out.dispose();
    }
  const summary = {};
  for (const [form, s] of Object.entries(stats)) {
    const cpuGflops = s.cpuMs.map((ms) => gflop / (ms / 1000));
    summary[form] = {
      gflopsPerCpuSecond: range(cpuGflops),
      gflopsPerCpuSecondMedian: Math.round(median(cpuGflops) * 100) / 100,
      gflopsPerWallSecond: range(s.wallMs.map((ms) => gflop / (ms / 1000))),
      cpuMs: range(s.cpuMs),
      speedupCpuVsCurrent: range(s.cpuMs.map((ms, i) => stats.current.cpuMs[i] / ms)),
      maxAbsDiffFromCurrent: s.maxAbsDiffFromCurrent,
    };
  }
  results.push({
    product: name,
    a: [rows, inDim],
    dy: [rows, outDim],
    gflop,
    formulations: summary,
  });
  x.dispose();
  dy.dispose();
}

console.log(
  JSON.stringify(
    { backend, rounds: Number(args.rounds), loadAverage: loadavg()[0], results },
    null,
    1,
  ),
);
