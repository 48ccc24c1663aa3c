/**
 * The GRPO policy-gradient step alone, tfjs (the worker pool's `grpoShardLoss`, as `trainEngine:
 * 'tfjs'`) against the ONNX training graph (`trainEngine: 'onnx'`), on the shapes of the cli's
 * default run: its model (hidden 128, intermediate 384, 2 layers, 4 heads, vocabulary 2048) and
 * one update of its GRPO batch (generationBatchSize 32 = 4 groups of numGenerations 8,
 * microBatchSize 8, maxCompletionLength 384, temperature 0.7, lossType dapo, beta 0).
 * Prompt and completion lengths are drawn (seeded) from --prompt-tokens and --completion-tokens
 * ranges. Each repeat times one whole update's gradients per engine, interleaved (tfjs, onnx,
 * tfjs, …) so load drifts hit both; the first repeat of each is a warm-up, reported but left out
 * of the medians. CPU seconds are the process's (every thread): the figure that compares engines
 * on a machine shared with other jobs. Prints one JSON object.
 * Options: --repeats N (default 5), --workers N|auto (default auto, as the run: pool threads for
 * tfjs, single-threaded onnx sessions for onnx), --prompt-tokens a-b (default 120-240), --completion-tokens
 * a-b (default 60-384), --seed S (default 1).
 */
import { loadavg, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import {
  CausalLM,
  OnnxTrainPool,
  Rng,
  createModelWorkerPool,
  defaultWorkerCount,
  initBackend,
  tf,
  type WorkerLossRef,
} from '@codereasoner/core-tensors';
import { layoutMicroBatch, lossShard, chunk, type Sample } from '../src/micro-batch.js';
import { onnxPolicyGradients } from '../src/onnx-update.js';
import { lossNormalizer } from '../src/policy-loss.js';
import type { GrpoShardOptions } from '../src/shard-loss.js';

const { values } = parseArgs({
  options: {
    repeats: { type: 'string', default: '5' },
    workers: { type: 'string', default: 'auto' },
    'prompt-tokens': { type: 'string', default: '120-240' },
    'completion-tokens': { type: 'string', default: '60-384' },
    seed: { type: 'string', default: '1' },
  },
});
const range = (text: string, name: string): [number, number] => {
  const m = /^(\d+)-(\d+)$/.exec(text);
  if (m === null || Number(m[1]) > Number(m[2]) || Number(m[1]) < 1)
    throw new Error(`--${name} must be a range a-b of positive integers, got ${text}`);
  return [Number(m[1]), Number(m[2])];
};
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 2) throw new Error('--repeats must be an integer >= 2');
const promptRange = range(values['prompt-tokens'], 'prompt-tokens');
const completionRange = range(values['completion-tokens'], 'completion-tokens');
const seed = Number(values.seed);

const backend = await initBackend();
const loadBefore = loadavg();
const VOCAB = 2048;
const policy = CausalLM.create(
  {
    vocabSize: VOCAB,
    hiddenSize: 128,
    intermediateSize: 384,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 4,
    maxPositionEmbeddings: 1024,
  },
  { seed },
);
const workers = values.workers === 'auto' ? defaultWorkerCount() : Number(values.workers);
const GENERATION_BATCH = 32;
const MICRO_BATCH = 8;
const MAX_COMPLETION = 384;
const TEMPERATURE = 0.7;

const rng = new Rng(seed);
const draw = ([a, b]: [number, number]) => a + Math.floor(rng.next() * (b - a + 1));
const ids = (n: number) =>
  Array.from({ length: n }, () => 3 + Math.floor(rng.next() * (VOCAB - 3)));
const samples: Sample[] = Array.from({ length: GENERATION_BATCH }, (_, i) => ({
  promptIds: ids(draw(promptRange)),
  completionIds: ids(Math.min(MAX_COMPLETION, draw(completionRange))),
  // group-normalised advantages of varied rewards: mean 0 within each group of 8
  advantage: (i % 8) - 3.5,
  active: 1,
}));
let activeTokens = 0;
for (const s of samples) activeTokens += s.completionIds.length;
const micro = chunk(samples, MICRO_BATCH);
const shards = micro.map((part) => {
  const normalizer = lossNormalizer('dapo', {
    completions: samples.length,
    activeSequences: samples.length,
    activeTokens,
    maxCompletionLength: MAX_COMPLETION,
  });
  const layout = layoutMicroBatch(part, 0);
  return {
    part,
    normalizer,
    layout,
    data: lossShard(layout, part, { oldLogProbs: false, refLogProbs: false }),
  };
});

const SHARD_LOSS: WorkerLossRef = {
  module: new URL('../src/shard-loss.ts', import.meta.url),
  exportName: 'grpoShardLoss',
};
const pool = await createModelWorkerPool({ model: policy, workers });
const session = await OnnxTrainPool.create(policy.config, Math.max(1, pool.size), {
  temperature: TEMPERATURE,
  vocabLimit: VOCAB,
  logProbs: true,
  entropy: true,
});

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
async function timed(run: () => Promise<tf.NamedTensorMap>) {
  const cpu = cpuNow();
  const wall = performance.now();
  const grads = await run();
  const result = { cpuSeconds: cpuNow() - cpu, wallSeconds: (performance.now() - wall) / 1000 };
  tf.dispose(Object.values(grads));
  return result;
}
const tfjsRun = async () =>
  (
    await pool.computeGradients<GrpoShardOptions>({
      loss: SHARD_LOSS,
      options: {
        temperature: TEMPERATURE,
        vocabLimit: VOCAB,
        entropy: true,
        epsilon: 0.2,
        epsilonHigh: 0.2,
        beta: 0,
        importanceSamplingLevel: 'token',
        normalizer: shards[0]!.normalizer,
      },
      shards: shards.map((s) => ({ data: s.data, options: { normalizer: s.normalizer } })),
    })
  ).grads;
const onnxRun = async () => (await onnxPolicyGradients(session, policy, shards)).grads;

const runs: Record<'tfjs' | 'onnx', { cpuSeconds: number; wallSeconds: number }[]> = {
  tfjs: [],
  onnx: [],
};
for (let r = 0; r < repeats; r++) {
  runs.tfjs.push(await timed(tfjsRun));
  runs.onnx.push(await timed(onnxRun));
}
await session.release();
await pool.close();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1
    ? s[(s.length - 1) / 2]!
    : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
const summary = (xs: { cpuSeconds: number; wallSeconds: number }[]) => {
  const m = xs.slice(1);
  const cpu = m.map((x) => x.cpuSeconds);
  const wall = m.map((x) => x.wallSeconds);
  return {
    cpuSeconds: { median: r2(median(cpu)), min: r2(Math.min(...cpu)), max: r2(Math.max(...cpu)) },
    wallSeconds: {
      median: r2(median(wall)),
      min: r2(Math.min(...wall)),
      max: r2(Math.max(...wall)),
    },
    all: xs.map((x) => ({ cpuSeconds: r2(x.cpuSeconds), wallSeconds: r2(x.wallSeconds) })),
  };
};
const tfjs = summary(runs.tfjs);
const onnx = summary(runs.onnx);
let tokens = 0;
for (const s of samples) tokens += s.promptIds.length + s.completionIds.length;
console.log(
  JSON.stringify(
    {
      benchmark: '@codereasoner/grpo policy-gradient step, tfjs vs onnx',
      backend: backend.active,
      node: process.version,
      cpus: cpus().length,
      workers: Math.max(1, pool.size),
      seed,
      loadAverageBefore: loadBefore.map(r2),
      loadAverageAfter: loadavg().map(r2),
      model: { ...policy.config, parameters: policy.numParameters() },
      update: {
        completions: samples.length,
        microBatchSize: MICRO_BATCH,
        tokens,
        completionTokens: activeTokens,
        temperature: TEMPERATURE,
        promptTokens: promptRange,
        completionTokensRange: completionRange,
      },
      repeats,
      tfjs,
      onnx,
      speedupPerCpuSecond: r2(tfjs.cpuSeconds.median / onnx.cpuSeconds.median),
      speedupWall: r2(tfjs.wallSeconds.median / onnx.wallSeconds.median),
    },
    null,
    2,
  ),
);
policy.dispose();
