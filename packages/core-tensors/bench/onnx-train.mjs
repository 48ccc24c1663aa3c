// A whole training step (forward + backward + AdamW) through the ONNX training graph run by
// onnxruntime-node, against today's tfjs-wasm step, per shape of bench/shapes.mjs. Prints JSON.
//   node bench/onnx-train.mjs [--shapes cli-default,core-default,qwen2.5-0.5b-layer]
//     [--rounds 3] [--warmup 2] [--threads 1,2] [--pool 2] [--onnx-pool 2] [--chunks 4]
//     [--skip-tfjs] [--cli-seq 512]
// Every round runs each path once, back to back (tfjs in-process; for cli-default the
// createModelWorkerPool of --pool workers as SFT uses it; onnx-N: one session with each --threads
// count of intra-op threads; onnx-pool-N: OnnxTrainPool's N single-threaded sessions on worker
// threads, each on a 1/N slice of the batch's rows, as SFT runs them; each onnx path once per
// --chunks count of attention query chunks, keyed `-cK`), after
// --warmup uncounted rounds (onnxruntime's second run of a shape was still 2-3× slower than the
// later ones: it plans its memory on the first), so their ratios are measured under the same load. An onnx step includes
// reading the weights out of the tfjs variables, building the batch's inputs (rotary tables,
// attention bias, target rows), the session run, the gradients back into tfjs tensors and the
// same AdamW update as the tfjs step. GFLOP/s count FLOPS_COUNTED (bench/shapes.mjs) through
// CausalLM.flopsPerToken, as bench/run.mjs does.
// Run after `pnpm build`.
import { loadavg, cpus } from 'node:os';
import { parseArgs } from 'node:util';

const {
  AdamW,
  CausalLM,
  OnnxTrainPool,
  OnnxTrainStep,
  computeGradients,
  createModelWorkerPool,
  initBackend,
  onnxTrainFeeds,
  padBatch,
  tf,
} = await import(process.env.CR_BENCH_DIST ?? '../dist/index.js');
const { SHAPES, FLOPS_COUNTED } = await import('./shapes.mjs');

const { values: args } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'cli-default,core-default,qwen2.5-0.5b-layer' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string', default: '1,2' },
    pool: { type: 'string', default: '2' },
    'onnx-pool': { type: 'string', default: '2' },
    // attention query chunks of the training graph (TRAIN_ATTENTION_CHUNKS; 1 = the whole square)
    chunks: { type: 'string', default: '4' },
    // leave the tfjs paths out (their rounds are the slow part); speedupOverTfjs is then empty
    'skip-tfjs': { type: 'boolean', default: false },
    // the `cr` default preset's SFT batch: 16 rows packed to maxSeqLen 512
    'cli-seq': { type: 'string', default: '512' },
  },
});

const round1 = (x) => Math.round(x * 10) / 10;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

function cpuSeconds(start) {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
}

function randomIdsOf(rows, length, vocab, seed) {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: rows }, () =>
    Array.from({ length }, () => Math.floor(next() * vocab)),
  );
}

/** bench/run.mjs's training loss: mean next-token NLL over the batch. */
function tfjsStep(model, optimizer, data) {
  const { loss, grads } = computeGradients(model, () =>
    tf.tidy(() => tf.neg(tf.mean(model.tokenLogProbs(data.inputIds, data.attentionMask).logProbs))),
  );
  optimizer.applyGradients(grads);
  tf.dispose(Object.values(grads));
  return loss;
}

/** The same step through the ONNX graph; `phases` collects its parts' milliseconds. */
async function onnxStep(session, model, optimizer, batch, phases) {
  const t0 = performance.now();
  const weights = new Map([...model.parameters].map(([name, v]) => [name, v.dataSync()]));
  const feeds = onnxTrainFeeds(model.config, batch);
  const t1 = performance.now();
  const { loss, gradients } = await session.run(weights, feeds);
  const t2 = performance.now();
  const grads = {};
  for (const [name, v] of model.parameters) grads[v.name] = tf.tensor(gradients.get(name), v.shape);
  optimizer.applyGradients(grads);
  tf.dispose(Object.values(grads));
  const t3 = performance.now();
  phases.inputsMs.push(t1 - t0);
  phases.runMs.push(t2 - t1);
  phases.applyMs.push(t3 - t2);
  return loss;
}

/** The same step through OnnxTrainPool: the slices' feeds are built in the workers. */
async function onnxPoolStep(onnxPool, model, optimizer, slices, phases) {
  const t0 = performance.now();
  const weights = new Map([...model.parameters].map(([name, v]) => [name, v.dataSync()]));
  const t1 = performance.now();
  const { loss, gradients } = await onnxPool.run(weights, slices);
  const t2 = performance.now();
  const grads = {};
  for (const [name, v] of model.parameters) grads[v.name] = tf.tensor(gradients.get(name), v.shape);
  optimizer.applyGradients(grads);
  tf.dispose(Object.values(grads));
  const t3 = performance.now();
  phases.inputsMs.push(t1 - t0);
  phases.runMs.push(t2 - t1);
  phases.applyMs.push(t3 - t2);
  return loss;
}

async function benchShape(name) {
  const shape = SHAPES[name];
  const seq = name === 'cli-default' ? Number(args['cli-seq']) : shape.train.seq;
  const rows = shape.train.batch;
  await initBackend({ backend: 'wasm' });
  const model = CausalLM.create(shape.config, { seed: 1 });
  const optimizer = new AdamW({ learningRate: 1e-4 });
  const ids = randomIdsOf(rows, seq, model.config.vocabSize, 7);
  const data = padBatch(ids, 0);
  const batch = {
    inputIds: Int32Array.from(ids.flat()),
    attentionMask: new Float32Array(rows * seq).fill(1),
    batch: rows,
    time: seq,
    // tokenLogProbs' mean over every [B, T − 1] entry
    divisor: rows * (seq - 1),
  };
  const steps = new Map();
  if (!args['skip-tfjs']) steps.set('tfjs', async () => tfjsStep(model, optimizer, data));
  let pool;
  if (!args['skip-tfjs'] && name === 'cli-default' && Number(args.pool) > 1) {
    pool = await createModelWorkerPool({ model, workers: Number(args.pool) });
    const shards = [];
    const per = Math.ceil(rows / pool.size);
    const idsData = batch.inputIds;
    const maskData = batch.attentionMask;
    for (let from = 0; from < rows; from += per) {
      const to = Math.min(rows, from + per);
      shards.push({
        data: {
          ids: { values: idsData.slice(from * seq, to * seq), shape: [to - from, seq] },
          mask: { values: maskData.slice(from * seq, to * seq), shape: [to - from, seq] },
        },
      });
    }
    const loss = { module: new URL('./worker-loss.mjs', import.meta.url), exportName: 'meanNll' };
    steps.set(`tfjs-pool-${pool.size}`, async () => {
      const result = await pool.computeGradients({
        loss,
        shards,
        options: { tokens: rows * (seq - 1) },
      });
      optimizer.applyGradients(result.grads);
      tf.dispose(Object.values(result.grads));
      return result.loss;
    });
  }
  const sessions = [];
  const phases = {};
  const chunkCounts = args.chunks.split(',').filter(Boolean).map(Number);
  for (const attentionChunks of chunkCounts)
    for (const threads of args.threads.split(',').filter(Boolean).map(Number)) {
      const started = performance.now();
      const session = await OnnxTrainStep.create(model.config, threads, { attentionChunks });
      sessions.push(session);
      const key = `onnx-${threads}-c${attentionChunks}`;
      phases[key] = {
        sessionMs: Math.round(performance.now() - started),
        inputsMs: [],
        runMs: [],
        applyMs: [],
      };
      steps.set(key, () => onnxStep(session, model, optimizer, batch, phases[key]));
    }
  const onnxPools = [];
  for (const attentionChunks of chunkCounts)
    for (const workers of args['onnx-pool'].split(',').filter(Boolean).map(Number)) {
      const started = performance.now();
      const onnxPool = await OnnxTrainPool.create(model.config, workers, { attentionChunks });
      onnxPools.push(onnxPool);
      const key = `onnx-pool-${workers}-c${attentionChunks}`;
      phases[key] = {
        sessionMs: Math.round(performance.now() - started),
        inputsMs: [],
        runMs: [],
        applyMs: [],
      };
      // the rows cut into `workers` slices, each with the step's divisor (as sft's shards)
      const per = Math.ceil(rows / workers);
      const slices = [];
      for (let from = 0; from < rows; from += per) {
        const to = Math.min(rows, from + per);
        slices.push({
          ...batch,
          inputIds: batch.inputIds.slice(from * seq, to * seq),
          attentionMask: batch.attentionMask.slice(from * seq, to * seq),
          batch: to - from,
        });
      }
      steps.set(key, () => onnxPoolStep(onnxPool, model, optimizer, slices, phases[key]));
    }
  const loadAtStart = load();
  const seconds = {};
  const cpu = {};
  const losses = {};
  for (const key of steps.keys()) {
    seconds[key] = [];
    cpu[key] = [];
    losses[key] = [];
  }
  const warmup = Number(args.warmup);
  for (let round = 0; round < warmup + Number(args.rounds); round++) {
    for (const [key, step] of steps) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const loss = await step();
      if (round < warmup) {
        // warm-up: not counted (nor its phases)
        for (const p of Object.values(phases[key] ?? {})) if (Array.isArray(p)) p.pop();
        continue;
      }
      seconds[key].push((performance.now() - t0) / 1000);
      cpu[key].push(cpuSeconds(c0));
      losses[key].push(Math.round(loss * 1e4) / 1e4);
    }
  }
  const tokens = rows * seq;
  const flops = model.flopsPerToken(seq) * tokens;
  const out = {
    shape: name,
    parameters: model.numParameters(),
    batch: rows,
    seq,
    stepGflop: round1(flops / 1e9),
    loadAverageAtStart: loadAtStart,
    paths: {},
  };
  for (const key of steps.keys()) {
    const s = seconds[key];
    const c = cpu[key];
    out.paths[key] = {
      stepMs: s.map((x) => Math.round(x * 1000)),
      stepCpuMs: c.map((x) => Math.round(x * 1000)),
      tokensPerSecond: {
        best: Math.round(tokens / Math.min(...s)),
        median: Math.round(tokens / median(s)),
      },
      gflops: {
        best: round1(flops / Math.min(...s) / 1e9),
        median: round1(flops / median(s) / 1e9),
        worst: round1(flops / Math.max(...s) / 1e9),
      },
      // per second of this process's CPU time (every thread): what idle cores would show
      gflopsPerCpuSecond: {
        best: round1(flops / Math.min(...c) / 1e9),
        median: round1(flops / median(c) / 1e9),
      },
      losses: losses[key],
    };
    if (phases[key] !== undefined) {
      const p = phases[key];
      out.paths[key].sessionCreateMs = p.sessionMs;
      out.paths[key].phasesMedianMs = {
        weightsAndInputs: Math.round(median(p.inputsMs)),
        sessionRun: Math.round(median(p.runMs)),
        gradientsAndAdamW: Math.round(median(p.applyMs)),
      };
    }
  }
  // tfjs ÷ path time of each back-to-back round (wall, then CPU)
  out.speedupOverTfjs = {};
  for (const key of steps.keys()) {
    if (key === 'tfjs' || seconds.tfjs === undefined) continue;
    out.speedupOverTfjs[key] = {
      wall: seconds[key].map((s, i) => Math.round((seconds.tfjs[i] / s) * 100) / 100),
      cpu: cpu[key].map((c, i) => Math.round((cpu.tfjs[i] / c) * 100) / 100),
    };
  }
  out.loadAverageAtEnd = load();
  for (const session of sessions) await session.release();
  for (const onnxPool of onnxPools) await onnxPool.release();
  if (pool !== undefined) await pool.close();
  optimizer.dispose();
  tf.dispose([data.inputIds, data.attentionMask]);
  model.dispose();
  return out;
}

const summary = {
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  flopsCounted: FLOPS_COUNTED,
  shapes: [],
};
for (const name of args.shapes.split(',').filter(Boolean))
  summary.shapes.push(await benchShape(name));
console.log(JSON.stringify(summary, null, 2));
