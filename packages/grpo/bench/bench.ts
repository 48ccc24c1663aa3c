/**
 * Rollout and training throughput of GRPO on core-tensors' default small model.
 * Prints one JSON object. Options: --steps N (default 4; the first is a warm-up and is reported
 * but left out of the medians), --max-completion-length L (default: the config default, 256),
 * --generation-batch-size B (default 32), --backend tensorflow|wasm|cpu (default auto),
 * --workers N|auto (default auto: worker threads for rollouts and gradients, see GrpoConfig.workers),
 * --engine tfjs|onnx|auto (default tfjs: what computes the rollouts' logits, see GrpoConfig.engine),
 * --checkpoint <dir> (a core-tensors checkpoint, e.g. a `cr` run's SFT model, with its own tokenizer
 * and chat format, instead of a random default-config model). Each step also reports the process's
 * CPU seconds (every thread), the figure that compares engines on a machine shared with other jobs.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import {
  CausalLM,
  DEFAULT_MODEL_CONFIG,
  Tokenizer,
  initBackend,
  loadCheckpoint,
} from '@codereasoner/core-tensors';
import { GrpoTrainer, resolveGrpoConfig, type GrpoStepMetrics } from '../src/index.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '4' },
    'max-completion-length': { type: 'string' },
    'generation-batch-size': { type: 'string', default: '32' },
    backend: { type: 'string' },
    workers: { type: 'string', default: 'auto' },
    engine: { type: 'string', default: 'tfjs' },
    checkpoint: { type: 'string' },
  },
});
if (!['tfjs', 'onnx', 'auto'].includes(values.engine))
  throw new Error(`--engine must be tfjs, onnx or auto, got ${values.engine}`);

const backend = await initBackend(
  values.backend === undefined ? {} : { backend: values.backend as 'wasm' },
);
const loadBefore = loadavg();
// Byte-level tokenizer (259 ids) under the default model's 2048-wide vocabulary: the compute is
// that of the default model; only the ids in use differ.
const loaded =
  values.checkpoint === undefined ? undefined : await loadCheckpoint(values.checkpoint);
const tokenizer =
  loaded?.tokenizer ?? Tokenizer.train(['def f(x):\n    return x + 1\n'], { vocabSize: 259 });
const policy = loaded?.model ?? CausalLM.create(DEFAULT_MODEL_CONFIG, { seed: 0 });
const program =
  'def f(xs):\n    total = 0\n    for x in xs:\n        if x % 2 == 0:\n            total += x\n    return total\n';
const dataset = Array.from({ length: 16 }, (_, i) => ({
  prompt: [
    {
      role: 'user' as const,
      content: `${program}\nWhat does f([${i}, ${i + 1}, ${i + 2}]) return?`,
    },
  ],
}));
const config = resolveGrpoConfig({
  maxSteps: Number(values.steps),
  generationBatchSize: Number(values['generation-batch-size']),
  ...(values['max-completion-length'] === undefined
    ? {}
    : { maxCompletionLength: Number(values['max-completion-length']) }),
  learningRate: 1e-4,
  seed: 0,
  workers: values.workers === 'auto' ? 'auto' : Number(values.workers),
  engine: values.engine as 'tfjs',
});
const steps: GrpoStepMetrics[] = [];
const trainer = new GrpoTrainer({
  policy,
  tokenizer,
  dataset,
  config,
  ...(loaded === undefined ? {} : { chat: loaded.chat }),
  // Any varying reward: the cost of a step does not depend on what is rewarded.
  rewards: [
    {
      name: 'first_token',
      fn: ({ completionIds }) => completionIds.map((ids) => (ids[0]! % 7) / 7),
    },
  ],
  onMetrics: (m) => {
    steps.push(m);
    const now = process.cpuUsage();
    cpuSeconds.push((now.user + now.system - cpuMark) / 1e6);
    cpuMark = now.user + now.system;
  },
});
const cpuSeconds: number[] = [];
let cpuMark = process.cpuUsage().user + process.cpuUsage().system;
const started = performance.now();
const { workers } = await trainer.train();
const wall = (performance.now() - started) / 1000;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? 0
    : s.length % 2 === 1
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const measured = steps.length > 1 ? steps.slice(1) : steps;
const round = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;
console.log(
  JSON.stringify(
    {
      benchmark: '@codereasoner/grpo step throughput',
      backend: backend.active,
      workers,
      engine: config.engine,
      lastGenerationEngine: policy.lastGenerationEngine,
      node: process.version,
      loadAverageBefore: loadBefore.map(round),
      loadAverageAfter: loadavg().map(round),
      model: { ...policy.config, parameters: policy.numParameters() },
      checkpoint: values.checkpoint ?? null,
      config: {
        numGenerations: config.numGenerations,
        generationBatchSize: config.generationBatchSize,
        microBatchSize: config.microBatchSize,
        maxCompletionLength: config.maxCompletionLength,
        lossType: config.lossType,
        beta: config.beta,
      },
      promptTokens: tokenizer.encode(dataset[0]!.prompt[0]!.content).length,
      steps: steps.map((m, i) => ({
        step: m.step,
        cpuSeconds: round2(cpuSeconds[i]!),
        completionTokens: Math.round(m['completions/mean_length'] * m['completions/count']),
        meanCompletionLength: round(m['completions/mean_length']),
        generationSeconds: round2(m['time/generation_s']),
        trainingSeconds: round2(m['time/training_s']),
        rolloutTokensPerSecond: round(m['tokens_per_second/rollout']),
        trainingTokensPerSecond: round(m['tokens_per_second/training']),
      })),
      median: {
        rolloutTokensPerSecond: round(median(measured.map((m) => m['tokens_per_second/rollout']))),
        trainingTokensPerSecond: round(
          median(measured.map((m) => m['tokens_per_second/training'])),
        ),
        stepSeconds: round2(median(measured.map((m) => m['time/step_s']))),
        generationSeconds: round2(median(measured.map((m) => m['time/generation_s']))),
        stepCpuSeconds: round2(median(steps.length > 1 ? cpuSeconds.slice(1) : cpuSeconds)),
      },
      wallSeconds: round(wall),
    },
    null,
    2,
  ),
);
trainer.dispose();
policy.dispose();
