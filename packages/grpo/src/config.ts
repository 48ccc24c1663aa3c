import { schemaIssues } from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';
import {
  ConfigValidationError,
  ONNX_WEIGHTS_MODES,
  type OnnxWeightsMode,
} from '@codereasoner/core-tensors';
import type { ScaleRewards } from './advantages.js';
import type { ImportanceSamplingLevel, LossType } from './policy-loss.js';

/** Every option of a GRPO run, resolved (no field missing). Names follow TRL's `GRPOConfig` in camelCase. */
export interface GrpoConfig {
  /** G, completions sampled per prompt (TRL `num_generations`). At least 2: a group of one has no baseline. */
  numGenerations: number;
  /** Completions generated per step; must hold whole groups (a multiple of numGenerations). */
  generationBatchSize: number;
  /** Optimizer updates each generation batch is split into (TRL `steps_per_generation`, DAPO's mini-batches). */
  stepsPerGeneration: number;
  /** Completions per forward/backward pass; gradients of micro-batches accumulate (memory knob only, same result). */
  microBatchSize: number;
  /** μ, passes over each generation batch (TRL `num_iterations`). Above 1 the old log-probs are recorded before updating. */
  numIterations: number;
  /** Generation steps to run (each: sample, score, numIterations × stepsPerGeneration updates). */
  maxSteps: number;
  /** Generation cap in tokens; completions stopped by it are "truncated". */
  maxCompletionLength: number;
  /** Sampling temperature; the training log-probs use the same temperature (as TRL, verl, OpenRLHF). */
  temperature: number;
  /** Nucleus sampling; 1 = off. */
  topP: number;
  /** Top-k sampling; 0 = off. */
  topK: number;
  learningRate: number;
  /** `constant` or `cosine` decay to minLearningRateRatio × learningRate, both after a linear warm-up. */
  lrSchedule: 'constant' | 'cosine';
  warmupSteps: number;
  minLearningRateRatio: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  weightDecay: number;
  /** Global gradient-norm clip; 0 turns clipping off. */
  maxGradNorm: number;
  /** KL coefficient (k3 estimator, in the loss). 0 keeps no reference model at all. */
  beta: number;
  /** ε_low of the clipped surrogate. */
  epsilon: number;
  /** ε_high (DAPO clip-higher); defaults to epsilon. */
  epsilonHigh: number;
  lossType: LossType;
  scaleRewards: ScaleRewards;
  /** Added to the std before dividing the advantages (TRL 1e-4). */
  advantageEpsilon: number;
  importanceSamplingLevel: ImportanceSamplingLevel;
  /** Completions that hit maxCompletionLength are left out of the loss (DAPO "overlong filtering"). */
  maskTruncatedCompletions: boolean;
  /** Drop groups whose rewards are all equal (or unscorable) and sample more prompts to refill the batch (DAPO). */
  dynamicSampling: boolean;
  /** With dynamicSampling: generation batches one step may draw before it trains on what it has. */
  maxGenerationBatches: number;
  /** Seeds the data order and the sampling; the same seed gives the same run. */
  seed: number;
  /** Shuffle the data set each epoch (with the seed). */
  shuffleDataset: boolean;
  /** Checkpoint every saveSteps steps (and at the end); 0 = only at the end. */
  saveSteps: number;
  /** Checkpoints kept in outDir/checkpoints (the newest ones). */
  saveTotalLimit: number;
  /** Append each step's rollouts (token ids, rewards, sampling state) to outDir/rollouts.jsonl before training on them. */
  journalRollouts: boolean;
  /**
   * Worker threads for rollouts and gradients (core-tensors' ModelWorkerPool): 0 or 1 = none,
   * N = N threads, `auto` = one per core on the wasm/cpu backends for policies of at least
   * 200k parameters, else none. Runs are reproducible for a given worker count.
   */
  workers: number | 'auto';
  /**
   * What computes the rollouts' logits (core-tensors' `generate` engine): 'tfjs' (default),
   * 'onnx' (onnxruntime-node; falls back to tfjs with a warning where it does not load or the
   * policy has what its graph lacks: Qwen3 q/k norms, active LoRA adapters) or 'auto' (the same
   * fallback, silent). Tokens agree between engines to float32 rounding of the logits, so seeded
   * sampled runs can differ where two candidates tie to that precision.
   */
  engine: 'tfjs' | 'onnx' | 'auto';
  /** onnxruntime's intra-op threads per generating thread when the engine is onnx (default 1). */
  onnxThreads: number;
  /**
   * How the onnx engine's graph holds the policy's weights (core-tensors' `onnxWeights`): 'auto'
   * (default: in the graph up to 2 GiB - 64 MiB, as inputs above), 'initializers' (faster
   * decoding, a new session after every step) or 'inputs' (a step's new weights cost a copy).
   */
  onnxWeights: OnnxWeightsMode;
  /**
   * What computes the policy-gradient step: 'tfjs' (default: the worker pool), 'onnx'
   * (core-tensors' ONNX training graph; on-policy updates only: numIterations 1,
   * stepsPerGeneration 1 and beta 0, a policy without LoRA adapters or Qwen3 q/k norms, else a
   * `GrpoConfigError`) or 'auto' (onnx where it can run, else tfjs with the reason logged).
   * `GrpoResult.trainEngine` says which ran.
   */
  trainEngine: GrpoTrainEngine;
}

/** What computes GRPO's gradients (see `GrpoConfig.trainEngine`). */
export type GrpoTrainEngine = 'tfjs' | 'onnx' | 'auto';
export const GRPO_TRAIN_ENGINES: readonly GrpoTrainEngine[] = ['tfjs', 'onnx', 'auto'];

export type GrpoPresetName = 'deepseekmath' | 'dapo' | 'dr_grpo' | 'gspo';

/** What a user passes: any subset of the options, optionally on top of a named preset. */
export type GrpoConfigInput = Partial<GrpoConfig> & { preset?: GrpoPresetName };

export const GRPO_PRESET_NAMES: readonly GrpoPresetName[] = [
  'deepseekmath',
  'dapo',
  'dr_grpo',
  'gspo',
];

export interface GrpoPreset {
  name: GrpoPresetName;
  /** The paper the values come from. */
  paper: string;
  url: string;
  /** Where in the paper each value is stated, and what the preset deliberately leaves to the user. */
  notes: string;
  options: Partial<GrpoConfig>;
}

/**
 * Named presets. Each sets only the options its paper states; everything else keeps the defaults,
 * and the user's own options win over the preset's.
 */
export const GRPO_PRESETS: Readonly<Record<GrpoPresetName, GrpoPreset>> = {
  deepseekmath: {
    name: 'deepseekmath',
    paper: 'Shao et al. 2024, DeepSeekMath (arXiv 2402.03300)',
    url: 'https://arxiv.org/abs/2402.03300',
    notes:
      'Eq. 3: sample-level loss (1/G Σ 1/|o_i| Σ_t), KL in the loss with the k3 estimator of eq. 4; outcome ' +
      'supervision: rewards z-scored in the group (§4.1.2). §4.2: learning rate 1e-6, KL coefficient 0.04, 64 ' +
      'samples per question, max length 1024, batch 1024, one policy update per exploration stage. The paper ' +
      'does not state ε; 0.2 is the community convention.',
    options: {
      lossType: 'grpo',
      scaleRewards: 'group',
      beta: 0.04,
      numGenerations: 64,
      generationBatchSize: 1024,
      learningRate: 1e-6,
      maxCompletionLength: 1024,
      numIterations: 1,
      epsilon: 0.2,
      epsilonHigh: 0.2,
      importanceSamplingLevel: 'token',
    },
  },
  dapo: {
    name: 'dapo',
    paper: 'Yu et al. 2025, DAPO (arXiv 2503.14476)',
    url: 'https://arxiv.org/abs/2503.14476',
    notes:
      'Clip-higher ε_low 0.2 / ε_high 0.28 (§3.1), dynamic sampling (§3.2, eq. 11), token-level loss (§3.3, eq. 12), ' +
      'no KL term (§2.3). Setup: 16 samples per prompt, prompt batch 512 (8192 completions), mini-batch 512 ' +
      'prompts, i.e. 16 updates per rollout step, learning rate 1e-6 constant with 20 warm-up steps, generation ' +
      'cap 16384 + 4096 = 20480 tokens. The soft overlong punishment (eq. 13) is a reward: add ' +
      'softOverlongPunishment({ maxLength: 16384, cacheLength: 4096 }) to the rewards.',
    options: {
      lossType: 'dapo',
      scaleRewards: 'group',
      epsilon: 0.2,
      epsilonHigh: 0.28,
      beta: 0,
      dynamicSampling: true,
      numGenerations: 16,
      generationBatchSize: 8192,
      stepsPerGeneration: 16,
      learningRate: 1e-6,
      lrSchedule: 'constant',
      warmupSteps: 20,
      maxCompletionLength: 20480,
      maskTruncatedCompletions: false,
      importanceSamplingLevel: 'token',
    },
  },
  dr_grpo: {
    name: 'dr_grpo',
    paper:
      'Liu et al. 2025, Understanding R1-Zero-Like Training: A Critical Perspective (arXiv 2503.20783)',
    url: 'https://arxiv.org/abs/2503.20783',
    notes:
      '§3.2: remove the 1/|o_i| length normalisation (divide the token sum by a constant, the generation budget) ' +
      'and the division by the group std (advantage R_i − mean(R)); no KL term. Sizes and learning rate are left ' +
      'to the user.',
    options: {
      lossType: 'dr_grpo',
      scaleRewards: 'none',
      beta: 0,
      importanceSamplingLevel: 'token',
    },
  },
  gspo: {
    name: 'gspo',
    paper: 'Zheng et al. 2025, Group Sequence Policy Optimization (arXiv 2507.18071)',
    url: 'https://arxiv.org/abs/2507.18071',
    notes:
      'Eq. 5-7: one importance ratio per sequence, s_i = (π_θ/π_old)^(1/|y_i|), clipped and averaged over the ' +
      'group (sample-level loss, lossType grpo), group z-scored advantages (eq. 6). Clip range 3e-4 / 4e-4 ' +
      '(as cited by the TRL docs from paper v2 §5.1); no KL term.',
    options: {
      importanceSamplingLevel: 'sequence',
      lossType: 'grpo',
      scaleRewards: 'group',
      epsilon: 3e-4,
      epsilonHigh: 4e-4,
      beta: 0,
    },
  },
};

/** Defaults: current TRL where it has one (anchors §10), sized for small CPU models otherwise. */
export const DEFAULT_GRPO_CONFIG: Readonly<Omit<GrpoConfig, 'epsilonHigh'>> = Object.freeze({
  numGenerations: 8,
  generationBatchSize: 32,
  stepsPerGeneration: 1,
  microBatchSize: 8,
  numIterations: 1,
  maxSteps: 100,
  maxCompletionLength: 256,
  temperature: 1,
  topP: 1,
  topK: 0,
  learningRate: 1e-6,
  lrSchedule: 'constant',
  warmupSteps: 0,
  minLearningRateRatio: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  weightDecay: 0,
  maxGradNorm: 1,
  beta: 0,
  epsilon: 0.2,
  lossType: 'dapo',
  scaleRewards: 'group',
  advantageEpsilon: 1e-4,
  importanceSamplingLevel: 'token',
  maskTruncatedCompletions: false,
  dynamicSampling: false,
  maxGenerationBatches: 4,
  seed: 0,
  shuffleDataset: true,
  saveSteps: 10,
  saveTotalLimit: 2,
  journalRollouts: true,
  workers: 'auto',
  engine: 'tfjs',
  onnxThreads: 1,
  onnxWeights: 'auto',
  trainEngine: 'tfjs',
});

const positiveInteger = { type: 'integer', minimum: 1 } as const;
const nonNegativeNumber = { type: 'number', minimum: 0 } as const;

export const grpoConfigSchema: JSONSchemaType<GrpoConfig> = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://codereasoner.dev/schemas/grpo-config.json',
  title: 'GrpoConfig',
  description: 'A resolved @codereasoner/grpo training configuration (every option present).',
  type: 'object',
  properties: {
    numGenerations: {
      type: 'integer',
      minimum: 2,
      description: 'G, completions per prompt (>= 2).',
    },
    generationBatchSize: {
      ...positiveInteger,
      description: 'Completions per generation step; a multiple of numGenerations.',
    },
    stepsPerGeneration: {
      ...positiveInteger,
      description: 'Optimizer updates per generation batch.',
    },
    microBatchSize: { ...positiveInteger, description: 'Completions per forward/backward pass.' },
    numIterations: { ...positiveInteger, description: 'mu: passes over each generation batch.' },
    maxSteps: { ...positiveInteger, description: 'Generation steps to run.' },
    maxCompletionLength: { ...positiveInteger, description: 'Generation cap in tokens.' },
    temperature: {
      type: 'number',
      exclusiveMinimum: 0,
      description: 'Sampling temperature (> 0); also used for the log-probs.',
    },
    topP: {
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 1,
      description: 'Nucleus sampling; 1 = off.',
    },
    topK: { type: 'integer', minimum: 0, description: 'Top-k sampling; 0 = off.' },
    learningRate: { type: 'number', exclusiveMinimum: 0 },
    lrSchedule: { type: 'string', enum: ['constant', 'cosine'] },
    warmupSteps: {
      type: 'integer',
      minimum: 0,
      description: 'Linear warm-up, in optimizer updates.',
    },
    minLearningRateRatio: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description: 'Cosine floor as a fraction of learningRate.',
    },
    adamBeta1: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
    adamBeta2: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
    adamEpsilon: { type: 'number', exclusiveMinimum: 0 },
    weightDecay: nonNegativeNumber,
    maxGradNorm: { ...nonNegativeNumber, description: 'Global gradient-norm clip; 0 = off.' },
    beta: { ...nonNegativeNumber, description: 'KL coefficient; 0 = no reference model.' },
    epsilon: {
      type: 'number',
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
      description: 'Lower clip range.',
    },
    epsilonHigh: {
      type: 'number',
      exclusiveMinimum: 0,
      description: 'Upper clip range (DAPO clip-higher).',
    },
    lossType: { type: 'string', enum: ['grpo', 'bnpo', 'dr_grpo', 'dapo'] },
    scaleRewards: { type: 'string', enum: ['group', 'batch', 'none'] },
    advantageEpsilon: nonNegativeNumber,
    importanceSamplingLevel: { type: 'string', enum: ['token', 'sequence'] },
    maskTruncatedCompletions: { type: 'boolean' },
    dynamicSampling: { type: 'boolean' },
    maxGenerationBatches: {
      ...positiveInteger,
      description: 'Dynamic sampling budget: generation batches per step.',
    },
    seed: { type: 'integer' },
    shuffleDataset: { type: 'boolean' },
    saveSteps: {
      type: 'integer',
      minimum: 0,
      description: 'Checkpoint every N steps; 0 = only at the end.',
    },
    saveTotalLimit: positiveInteger,
    journalRollouts: { type: 'boolean' },
    workers: {
      anyOf: [
        { type: 'integer', minimum: 0 },
        { type: 'string', enum: ['auto'] },
      ],
      description:
        "Worker threads for rollouts and gradients: 0 or 1 = none, N threads, or 'auto' (one per core for policies of >= 200k parameters on the wasm/cpu backends).",
    },
    engine: {
      type: 'string',
      enum: ['tfjs', 'onnx', 'auto'],
      description:
        "What computes the rollouts' logits: 'tfjs' (default), 'onnx' (onnxruntime-node, falling back to tfjs with a warning where it cannot run the policy) or 'auto' (the same, silent).",
    },
    onnxThreads: {
      ...positiveInteger,
      description:
        "onnxruntime's intra-op threads per generating thread when the engine is onnx (default 1).",
    },
    onnxWeights: {
      type: 'string',
      enum: [...ONNX_WEIGHTS_MODES],
      description:
        "How the onnx engine holds the policy's weights: 'auto' (default: in the graph up to 2 GiB - 64 MiB, as inputs above), 'initializers' or 'inputs' (a new step's weights cost a copy instead of a new session).",
    },
    trainEngine: {
      type: 'string',
      enum: [...GRPO_TRAIN_ENGINES],
      description:
        "What computes the policy gradients: 'tfjs' (default), 'onnx' (the ONNX training graph; on-policy updates with beta 0 only) or 'auto' (onnx where it can run, else tfjs with the reason logged).",
    },
  },
  required: [
    'numGenerations',
    'generationBatchSize',
    'stepsPerGeneration',
    'microBatchSize',
    'numIterations',
    'maxSteps',
    'maxCompletionLength',
    'temperature',
    'topP',
    'topK',
    'learningRate',
    'lrSchedule',
    'warmupSteps',
    'minLearningRateRatio',
    'adamBeta1',
    'adamBeta2',
    'adamEpsilon',
    'weightDecay',
    'maxGradNorm',
    'beta',
    'epsilon',
    'epsilonHigh',
    'lossType',
    'scaleRewards',
    'advantageEpsilon',
    'importanceSamplingLevel',
    'maskTruncatedCompletions',
    'dynamicSampling',
    'maxGenerationBatches',
    'seed',
    'shuffleDataset',
    'saveSteps',
    'saveTotalLimit',
    'journalRollouts',
    'workers',
    'engine',
    'onnxThreads',
    'onnxWeights',
    'trainEngine',
  ],
  additionalProperties: false,
};

/**
 * The schema of a config file a user writes (`GrpoConfigInput`): every option optional, plus
 * `preset`. Shipped as `schemas/grpo-config-input.json` for editors; resolution validates the
 * merged result against `grpoConfigSchema`.
 */
export const grpoConfigInputSchema: {
  $schema: string;
  $id: string;
  title: string;
  description: string;
  type: 'object';
  properties: Record<string, object>;
  additionalProperties: false;
} = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://codereasoner.dev/schemas/grpo-config-input.json',
  title: 'GrpoConfigInput',
  description:
    'Options for @codereasoner/grpo; omitted options take the preset value, else the default.',
  type: 'object',
  properties: {
    preset: {
      type: 'string',
      enum: [...GRPO_PRESET_NAMES],
      description: 'Start from a paper: deepseekmath, dapo, dr_grpo or gspo.',
    },
    ...grpoConfigSchema.properties,
  },
  additionalProperties: false,
};

function multiplesNear(value: number, unit: number): string {
  const below = Math.floor(value / unit) * unit;
  return below === 0 ? String(unit) : `${below} or ${below + unit}`;
}

/** Rules JSON Schema cannot state: relations between options. */
function crossFieldIssues(c: GrpoConfig): string[] {
  const issues: string[] = [];
  if (c.generationBatchSize % c.numGenerations !== 0) {
    issues.push(
      `/generationBatchSize: ${c.generationBatchSize} does not hold whole groups of numGenerations = ${c.numGenerations}; ` +
        `use a multiple of ${c.numGenerations} (e.g. ${multiplesNear(c.generationBatchSize, c.numGenerations)}).`,
    );
  }
  if (c.generationBatchSize % c.stepsPerGeneration !== 0) {
    issues.push(
      `/stepsPerGeneration: ${c.stepsPerGeneration} does not divide generationBatchSize = ${c.generationBatchSize} into equal optimizer batches.`,
    );
  }
  return issues;
}

/** Problems that are legal but probably not what the user meant (the trainer logs them as warnings). */
export function grpoConfigWarnings(c: GrpoConfig): string[] {
  const warnings: string[] = [];
  if (c.importanceSamplingLevel === 'sequence' && c.lossType !== 'grpo') {
    warnings.push(
      `importanceSamplingLevel 'sequence' with lossType '${c.lossType}' weights each completion by its length; GSPO (arXiv 2507.18071) uses lossType 'grpo'.`,
    );
  }
  if (!c.dynamicSampling && c.maxGenerationBatches !== DEFAULT_GRPO_CONFIG.maxGenerationBatches) {
    warnings.push('maxGenerationBatches only matters with dynamicSampling: true.');
  }
  if (c.microBatchSize > c.generationBatchSize / c.stepsPerGeneration) {
    warnings.push(
      `microBatchSize ${c.microBatchSize} exceeds the ${c.generationBatchSize / c.stepsPerGeneration} completions of one optimizer update; it has no effect beyond that.`,
    );
  }
  const updates = c.maxSteps * c.stepsPerGeneration * c.numIterations;
  if (c.warmupSteps >= updates) {
    warnings.push(
      `warmupSteps ${c.warmupSteps} >= the ${updates} optimizer updates of the run: the learning rate never reaches its peak.`,
    );
  }
  return warnings;
}

/**
 * Resolves user options into a complete, validated config: defaults ← preset ← input (the preset
 * may also be given as `input.preset`). `epsilonHigh` defaults to the resolved `epsilon` unless
 * the preset or the input sets it. Throws `ConfigValidationError` listing every issue as `path: message`.
 */
export function resolveGrpoConfig(
  input: GrpoConfigInput = {},
  preset?: GrpoPresetName,
): GrpoConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigValidationError('GRPO config', ['/: must be an object']);
  }
  const { preset: inputPreset, ...options } = input;
  if (preset !== undefined && inputPreset !== undefined && preset !== inputPreset) {
    throw new ConfigValidationError('GRPO config', [
      `/preset: '${inputPreset}' conflicts with the preset argument '${preset}'`,
    ]);
  }
  const presetName = preset ?? inputPreset;
  if (presetName !== undefined && !GRPO_PRESET_NAMES.includes(presetName)) {
    throw new ConfigValidationError('GRPO config', [
      `/preset: must be one of ${GRPO_PRESET_NAMES.join(', ')}; got '${String(presetName)}'`,
    ]);
  }
  const presetOptions = presetName === undefined ? {} : GRPO_PRESETS[presetName].options;
  // An explicit `undefined` means "not set" (common when options are spread from CLI flags).
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const merged = { ...DEFAULT_GRPO_CONFIG, ...presetOptions, ...given } as Record<string, unknown>;
  if (merged['epsilonHigh'] === undefined) merged['epsilonHigh'] = merged['epsilon'];
  const config = merged as unknown as GrpoConfig;
  const schemaProblems = schemaIssues(grpoConfigSchema, config);
  const issues = schemaProblems.length === 0 ? crossFieldIssues(config) : schemaProblems;
  if (issues.length > 0) throw new ConfigValidationError('GRPO config', issues);
  return config;
}
