// SFT throughput on this machine: training tokens/s of `trainSft` for a few small model sizes and
// sequence lengths (synthetic conversations of a fixed length), printed as JSON.
// Usage: pnpm --filter @codereasoner/sft bench [-- --steps 4] [--workers 1,2] [--cases default,d128-l2]
// --workers: one run per worker count (config.workers; 1 = in-process); figures per count.
// --engines: one run per train engine (config.trainEngine: tfjs, onnx), in the order given (repeat
// them, e.g. tfjs,onnx,tfjs,onnx, to alternate under the machine's changing load).
// --lengths fixed (default: every conversation ~0.8·seqLen tokens) or mixed (lengths spread over
// 0.25-1 × 0.8·seqLen, as a real corpus: length-bucketed batches of varying padded length).
// --dist PATH: the sft build to run (default ../dist), with the core-tensors it resolves, e.g.
// another checkout's packages/sft/dist for before/after figures: alternate processes between the
// two under the same load (two builds cannot share one process: their schemas share ids).
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '4' },
    workers: { type: 'string', default: '1' },
    engines: { type: 'string', default: 'tfjs' },
    cases: { type: 'string' },
    lengths: { type: 'string', default: 'fixed' },
    dist: { type: 'string', default: '../dist' },
  },
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
});
const dist = values.dist;
const distIndex = dist.startsWith('/')
  ? join(dist, 'index.js')
  : new URL(`${dist}/index.js`, import.meta.url).pathname;
const { encodeExamples, trainSft } = await import(pathToFileURL(distIndex).href);
// core-tensors as that build resolves it (another checkout's dist brings its own)
const { CausalLM, DEFAULT_MODEL_CONFIG, initBackend, Tokenizer } = await import(
  pathToFileURL(createRequire(distIndex).resolve('@codereasoner/core-tensors')).href
);
const steps = Number(values.steps);
const workerCounts = values.workers.split(',').map(Number);
const engines = values.engines.split(',');
const backend = await initBackend();
const loadAtStart = loadavg().map((x) => Number(x.toFixed(2)));

const words =
  'for x in xs if s += 1 return result total count append range len def while else'.split(' ');
function conversation(tokens, seed) {
  // roughly `tokens` tokens: one third prompt, two thirds completion
  const text = (n, offset) =>
    Array.from({ length: n }, (_, i) => words[(i * 7 + offset + seed) % words.length]).join(' ');
  const prompt = [
    { role: 'system', content: 'Reason.' },
    { role: 'user', content: text(Math.round(tokens / 3), 1) },
  ];
  return {
    id: `b${seed}`,
    type: 'output',
    teacher: 'bench',
    messages: [...prompt, { role: 'assistant', content: text(Math.round((2 * tokens) / 3), 2) }],
    answer_messages: [...prompt, { role: 'assistant', content: '<answer>1</answer>' }],
  };
}

// repeated so that every word (with its leading space) becomes one token
const tokenizer = Tokenizer.train(
  Array.from({ length: 50 }, () => words.join(' ')),
  { vocabSize: 400 },
);
const allCases = [
  // the `cr` default preset's model (vocab 2048, hidden 128, 2 layers, 4/4 heads) at its batch of
  // 16 and conversations of ~400 tokens (maxSeqLen 512)
  {
    name: 'cli-default',
    vocabSize: 2048,
    hiddenSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    seqLen: 500,
    batchSize: 16,
  },
  // core-tensors' DEFAULT_MODEL_CONFIG (1.05 M parameters) at the length of a default chain conversation
  { name: 'default', ...DEFAULT_MODEL_CONFIG, seqLen: 340, batchSize: 16 },
  {
    name: 'd64-l2',
    hiddenSize: 64,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    seqLen: 256,
    batchSize: 16,
  },
  {
    name: 'd128-l2',
    hiddenSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    seqLen: 256,
    batchSize: 16,
  },
  {
    name: 'd128-l4',
    hiddenSize: 128,
    numHiddenLayers: 4,
    numAttentionHeads: 4,
    seqLen: 256,
    batchSize: 16,
  },
  {
    name: 'd128-l4-seq512',
    hiddenSize: 128,
    numHiddenLayers: 4,
    numAttentionHeads: 4,
    seqLen: 512,
    batchSize: 8,
  },
  {
    name: 'd192-l4',
    hiddenSize: 192,
    numHiddenLayers: 4,
    numAttentionHeads: 6,
    seqLen: 256,
    batchSize: 16,
  },
];
const cases =
  values.cases === undefined
    ? allCases
    : allCases.filter((c) => values.cases.split(',').includes(c.name));
const results = [];
for (const c of cases)
  for (const workers of workerCounts)
    for (const trainEngine of engines) {
      const outDir = await mkdtemp(join(tmpdir(), 'cr-sft-bench-'));
      const model = CausalLM.create(
        {
          vocabSize: c.vocabSize ?? 512,
          hiddenSize: c.hiddenSize,
          intermediateSize: c.intermediateSize ?? c.hiddenSize * 3,
          numHiddenLayers: c.numHiddenLayers,
          numAttentionHeads: c.numAttentionHeads,
          numKeyValueHeads: c.numKeyValueHeads ?? c.numAttentionHeads,
          maxPositionEmbeddings: 1024,
        },
        { seed: 1 },
      );
      const records = Array.from({ length: c.batchSize * (steps + 1) }, (_, i) =>
        conversation(
          values.lengths === 'mixed'
            ? c.seqLen * 0.8 * (0.25 + 0.75 * (((i * 37) % 101) / 100))
            : c.seqLen * 0.8,
          i,
        ),
      );
      const { examples } = encodeExamples(
        records.map((r) => r.messages),
        tokenizer,
        1024,
      );
      const meanLength = examples.reduce((s, e) => s + e.ids.length, 0) / examples.length;
      console.error(c.name, 'mean tokens', meanLength, 'examples', examples.length);
      const metrics = [];
      const began = performance.now();
      const cpuBefore = process.cpuUsage();
      const run = await trainSft({
        model,
        tokenizer,
        train: records,
        outDir,
        config: {
          steps: steps + 1,
          batchSize: c.batchSize,
          maxSeqLen: 1024,
          warmupSteps: 1,
          checkpointEvery: 0,
          workers,
          trainEngine,
        },
        onMetrics: (m) => {
          if (m.kind === 'step') metrics.push(m);
        },
      });
      const cpu = process.cpuUsage(cpuBefore);
      // the first step warms up kernels: leave it out
      const timed = metrics.slice(1);
      const tokensPerSecond = timed.reduce((s, m) => s + m.tokensPerSecond, 0) / timed.length;
      const cfg = model.config;
      const hd = cfg.hiddenSize / cfg.numAttentionHeads;
      const layerWeights =
        cfg.numHiddenLayers *
        (cfg.hiddenSize * hd * (2 * cfg.numAttentionHeads + 2 * cfg.numKeyValueHeads) +
          3 * cfg.hiddenSize * cfg.intermediateSize);
      const targetsPerStep = timed.reduce((s, m) => s + m.targetTokens, 0) / timed.length;
      const meanSquare = examples.reduce((s, e) => s + e.ids.length ** 2, 0) / examples.length;
      const stepFlops =
        3 *
        (2 * layerWeights * c.batchSize * meanLength +
          2 * cfg.hiddenSize * cfg.vocabSize * targetsPerStep +
          4 * cfg.numHiddenLayers * cfg.hiddenSize * c.batchSize * meanSquare);
      // wall time per step between the first and the last timed step (metrics and all)
      const wallPerStep =
        timed.length > 1
          ? (timed.at(-1).elapsedSeconds - metrics[0].elapsedSeconds) / timed.length
          : NaN;
      results.push({
        name: c.name,
        hiddenSize: c.hiddenSize,
        numHiddenLayers: c.numHiddenLayers,
        seqLen: c.seqLen,
        batchSize: c.batchSize,
        workers: run.workers,
        trainEngine,
        dist,
        lengths: values.lengths,
        parameters: model.numParameters(),
        tokensPerSecond: Math.round(tokensPerSecond),
        // matmul FLOPs as core-tensors' FLOPS_COUNTED (training = 3 × forward), of this run's
        // data: the layers' weights on every real token, the LM head on the target tokens only
        // (the onnx graph skips the others), attention 4·layers·hidden·n² per example of n tokens
        gflopsPerSecond: Number(
          ((stepFlops * tokensPerSecond) / (c.batchSize * meanLength) / 1e9).toFixed(1),
        ),
        // over the whole run's CPU (warm-up step, threads' and sessions' start included)
        gflopsPerCpuSecond: Number(
          ((stepFlops * (steps + 1)) / ((cpu.user + cpu.system) / 1e6) / 1e9).toFixed(1),
        ),
        meanSequenceTokens: Math.round(meanLength),
        secondsPerStep: Number(((c.batchSize * meanLength) / tokensPerSecond).toFixed(3)),
        stepsPerSecond: Number((1 / wallPerStep).toFixed(3)),
        totalSeconds: Number(((performance.now() - began) / 1000).toFixed(2)),
        // this process's CPU (every thread) over the whole run, warm-up step included
        cpuSecondsPerStep: Number(((cpu.user + cpu.system) / 1e6 / (steps + 1)).toFixed(3)),
      });
      model.dispose();
      await rm(outDir, { recursive: true, force: true });
    }
console.log(
  JSON.stringify(
    {
      backend: backend.active,
      cpus: cpus().length,
      loadAverageAtStart: loadAtStart,
      loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
      steps,
      results,
    },
    null,
    2,
  ),
);
