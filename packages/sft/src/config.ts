import { ConfigValidationError, schemaIssues } from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';
import { CHAIN_FORMATS, CHAIN_STOPS, type ChainFormat, type ChainStop } from './trace-chain.js';

/** Every setting of `trainSft`; `resolveSftConfig` fills the defaults below. */
export interface SftConfig {
  /** Seeds the data order (and nothing else: the model is initialised by its creator). */
  seed: number;
  /** `false` trains on answers only (the "without reasoning chains" ablation) and evaluates with the answer-only prompt. */
  reasoning: boolean;
  /** Optimizer steps in total (each `gradientAccumulation` micro-batches). */
  steps: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  gradientAccumulation: number;
  /** Examples whose prompt + completion exceed this many tokens are dropped (a cut completion would lose its answer). */
  maxSeqLen: number;
  /** Peak learning rate of the warmup + cosine schedule. */
  learningRate: number;
  warmupSteps: number;
  /** Final learning rate as a fraction of the peak. */
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Global gradient norm above which gradients are scaled down. */
  maxGradNorm: number;
  /**
   * Pack several conversations into each row of `maxSeqLen` tokens (packing.ts), each attending
   * only to itself; `batchSize` then counts rows. Off: one conversation per row, padded.
   */
  packing: boolean;
  /**
   * Easy examples first in every epoch (curriculum.ts): needs the trainer's `levels` (e.g. the
   * corpus generator's difficulty); examples without one count as the easiest level.
   */
  curriculum: boolean;
  /** Micro-batches per length bucket: examples are sorted by length within chunks of `bucketBatches * batchSize` shuffled examples, so padding stays small while order stays random. 1 = no bucketing. */
  bucketBatches: number;
  /** Evaluate on the held-out tasks every N steps (0 = only at the end; the end is skipped when no eval tasks are given). */
  evalEvery: number;
  /** At most this many held-out tasks per evaluation (0 = all). */
  evalLimit: number;
  /** Tokens generated per held-out answer. */
  evalMaxTokens: number;
  /** Prompts generated together. */
  evalBatchSize: number;
  /** Save a checkpoint every N steps (0 = only at the end). */
  checkpointEvery: number;
  /** Step checkpoints kept on disk (older ones are deleted; the final one always stays). */
  keepCheckpoints: number;
  /** Stop at the first step boundary after this many seconds, with a checkpoint (0 = no limit). A time limit makes the step count, hence the result, machine-dependent. */
  maxSeconds: number;
  /**
   * Worker threads for gradients and evaluation (core-tensors' ModelWorkerPool): 0 or 1 = none,
   * N threads, or `auto` (one per core on the wasm/cpu backends for models of at least 200 k
   * parameters, else none). Threads change float rounding only, so a run may resume with another
   * count.
   */
  workers: number | 'auto';
  /**
   * What computes each step's loss and gradients: `tfjs` (the model's tfjs ops, on the worker
   * pool) or `onnx` (core-tensors' ONNX training graph on onnxruntime-node's native kernels, one
   * session with as many intra-op threads as the pool has workers; Llama/Qwen2 models without
   * LoRA). Clipping and AdamW are the same code either way; the losses agree within float32
   * rounding. `auto`: onnx where onnxruntime-node loads and can train the model, else tfjs (the
   * reason on the logger); `SftResult.trainEngine` says which ran. Measured in core-tensors'
   * README, "Training on onnxruntime-node".
   */
  trainEngine: SftTrainEngine;
}

/** What computes an SFT step's gradients (see `SftConfig.trainEngine`). */
export type SftTrainEngine = 'tfjs' | 'onnx' | 'auto';
export const SFT_TRAIN_ENGINES: readonly SftTrainEngine[] = ['tfjs', 'onnx', 'auto'];

export type SftConfigInput = Partial<SftConfig>;

/**
 * Defaults = the measured recommendation for `cr run-all` on a 2-core CPU (README "Figures"): with a
 * 688 k-parameter model (hidden 128, 2 layers) 230 steps of 16 chain conversations take about
 * 4.5 minutes at ~5 000 tokens/s.
 */
export const DEFAULT_SFT_CONFIG: Readonly<SftConfig> = Object.freeze({
  seed: 0,
  reasoning: true,
  steps: 230,
  batchSize: 16,
  gradientAccumulation: 1,
  maxSeqLen: 512,
  learningRate: 3e-3,
  warmupSteps: 12,
  minLrRatio: 0.1,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.95,
  epsilon: 1e-8,
  maxGradNorm: 1,
  packing: false,
  curriculum: false,
  bucketBatches: 16,
  evalEvery: 0,
  evalLimit: 64,
  evalMaxTokens: 448,
  evalBatchSize: 32,
  checkpointEvery: 100,
  keepCheckpoints: 2,
  maxSeconds: 0,
  workers: 'auto',
  trainEngine: 'tfjs',
});

const integer = (minimum: number) => ({ type: 'integer', minimum }) as const;
const number = (minimum: number) => ({ type: 'number', minimum }) as const;
const fraction = () => ({ type: 'number', minimum: 0, maximum: 1 }) as const;

/** JSON Schema of a resolved SFT config (all fields required; `resolveSftConfig` fills defaults first). */
export const sftConfigSchema: JSONSchemaType<SftConfig> = {
  $id: 'https://codereasoner.dev/schemas/sft-config.json',
  title: 'SFT trainer config',
  type: 'object',
  additionalProperties: false,
  required: Object.keys(DEFAULT_SFT_CONFIG) as (keyof SftConfig)[],
  properties: {
    seed: { type: 'integer' },
    reasoning: { type: 'boolean' },
    steps: integer(1),
    batchSize: integer(1),
    gradientAccumulation: integer(1),
    maxSeqLen: integer(8),
    learningRate: { type: 'number', exclusiveMinimum: 0 },
    warmupSteps: integer(0),
    minLrRatio: fraction(),
    weightDecay: number(0),
    beta1: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
    beta2: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
    epsilon: { type: 'number', exclusiveMinimum: 0 },
    maxGradNorm: { type: 'number', exclusiveMinimum: 0 },
    packing: { type: 'boolean' },
    curriculum: { type: 'boolean' },
    bucketBatches: integer(1),
    evalEvery: integer(0),
    evalLimit: integer(0),
    evalMaxTokens: integer(1),
    evalBatchSize: integer(1),
    checkpointEvery: integer(0),
    keepCheckpoints: integer(1),
    maxSeconds: number(0),
    workers: {
      anyOf: [
        { type: 'integer', minimum: 0 },
        { type: 'string', enum: ['auto'] },
      ],
    },
    trainEngine: { type: 'string', enum: [...SFT_TRAIN_ENGINES] },
  },
};

/** Fills defaults and validates; throws `ConfigValidationError` listing every issue as `path: message`. */
export function resolveSftConfig(input: SftConfigInput = {}): SftConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigValidationError('SFT config', [
      `/: must be an object, got ${JSON.stringify(input)}`,
    ]);
  }
  const defined = Object.fromEntries(
    Object.entries(input).filter(([, value]) => value !== undefined),
  );
  const config = { ...DEFAULT_SFT_CONFIG, ...defined } as SftConfig;
  // the default warm-up shrinks with a short run (a tenth of it) instead of refusing it
  if (defined['warmupSteps'] === undefined && Number.isInteger(config.steps) && config.steps > 0) {
    config.warmupSteps = Math.min(DEFAULT_SFT_CONFIG.warmupSteps, Math.floor(config.steps / 10));
  }
  const issues = schemaIssues(sftConfigSchema, config);
  if (issues.length === 0 && config.warmupSteps >= config.steps) {
    issues.push(`/warmupSteps: must be below steps (${config.steps}), got ${config.warmupSteps}`);
  }
  if (issues.length > 0) throw new ConfigValidationError('SFT config', issues);
  return config;
}

/** A run config's `teacher` section for the trace teacher (`createTraceTeacher`'s options). */
export interface TraceTeacherConfig {
  kind: 'trace';
  /** `full` (default): each executed line's source and what changed; `compact`: `L<n>` and what changed. */
  format?: ChainFormat;
  /** `end` (default): line-task chains trace the whole call; `answer`: they stop at the step that decides the answer. */
  stopAt?: ChainStop;
  /** Tasks traced and verified per sandbox batch. */
  batchSize?: number;
  /** Trace step limit passed to the sandbox. */
  maxTraceSteps?: number;
}

/** JSON Schema of the trace teacher's config section. */
export const traceTeacherConfigSchema: JSONSchemaType<TraceTeacherConfig> = {
  $id: 'https://codereasoner.dev/schemas/trace-teacher-config.json',
  title: 'Trace teacher config',
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    kind: { type: 'string', const: 'trace' },
    format: { type: 'string', enum: [...CHAIN_FORMATS], nullable: true },
    stopAt: { type: 'string', enum: [...CHAIN_STOPS], nullable: true },
    batchSize: { type: 'integer', minimum: 1, nullable: true },
    maxTraceSteps: { type: 'integer', minimum: 1, nullable: true },
  },
};
