// The RMSNorm kernels (CrRmsNorm, CrRmsNormGradX, CrRmsNormGradWeight) at the SFT step's shape
// (one worker's shard of the `cr` default run: ~2,080 rows of hidden 128), milliseconds of CPU
// per call, printed as JSON. CR_BENCH_DIST=<another build's index.js> times another build.
// Usage: node bench/rms-norm.mjs [--rows 2080] [--width 128] [--calls 50] [--rounds 3]
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const { initBackend, tf } = await import(process.env.CR_BENCH_DIST ?? '../dist/index.js');

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '2080' },
    width: { type: 'string', default: '128' },
    calls: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
const [rows, width, calls, rounds] = [values.rows, values.width, values.calls, values.rounds].map(
  Number,
);
const backend = await initBackend({ backend: 'wasm' });
const x = tf.randomNormal([rows, width], 0, 1, 'float32', 1);
const dy = tf.randomNormal([rows, width], 0, 1, 'float32', 2);
const weight = tf.randomNormal([width], 1, 0.1, 'float32', 3);
const kernels = {
  CrRmsNorm: () => tf.engine().runKernel('CrRmsNorm', { x, weight }, { eps: 1e-6 }),
  CrRmsNormGradX: () => tf.engine().runKernel('CrRmsNormGradX', { dy, x, weight }, { eps: 1e-6 }),
  CrRmsNormGradWeight: () => tf.engine().runKernel('CrRmsNormGradWeight', { dy, x }, { eps: 1e-6 }),
};
const results = {};
for (let round = 0; round < rounds + 1; round++)
  for (const [name, run] of Object.entries(kernels)) {
    const before = process.cpuUsage();
    for (let i = 0; i < calls; i++) run().dispose();
    const used = process.cpuUsage(before);
    // round 0 warms up (compilation, heap growth)
    if (round > 0)
      (results[name] ??= []).push(Number(((used.user + used.system) / 1000 / calls).toFixed(3)));
  }
console.log(
  JSON.stringify({
    backend: backend.active,
    build: process.env.CR_BENCH_DIST ?? 'dist',
    rows,
    width,
    calls,
    loadAverage: loadavg().map((v) => Number(v.toFixed(2))),
    cpuMsPerCall: results,
  }),
);
