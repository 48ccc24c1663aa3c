import { grpoConfigInputSchema } from '@codereasoner/grpo';
import { sftConfigSchema } from '@codereasoner/sft';

/**
 * The training settings people change most, as command-line flags named after TRL's
 * `SFTConfig` / `GRPOConfig` fields in kebab-case (`num_generations` → `--num-generations`), and the
 * config key each one sets. The same table gives the did-you-mean hints for TRL's snake_case
 * names in a config file, so a flag and a key never disagree about what a TRL name means.
 */
export interface TrlSetting {
  /** TRL's field name. */
  trl: string;
  /** Our key in the config section. */
  key: string;
  /** Values of an enumeration; they come from the owning package's schema. */
  choices?: readonly string[];
  kind: 'integer' | 'number' | 'choice' | 'boolean';
  help: string;
}

function choices(schema: { properties: Record<string, object> }, key: string): readonly string[] {
  return ((schema.properties[key] as { enum?: string[] }).enum ?? []) as readonly string[];
}

const grpoProperties = grpoConfigInputSchema as unknown as { properties: Record<string, object> };

export const SFT_SETTINGS: readonly TrlSetting[] = [
  { trl: 'max_steps', key: 'steps', kind: 'integer', help: 'optimizer steps' },
  { trl: 'learning_rate', key: 'learningRate', kind: 'number', help: 'peak learning rate' },
  {
    trl: 'per_device_train_batch_size',
    key: 'batchSize',
    kind: 'integer',
    help: 'sequences per micro-batch',
  },
  {
    trl: 'gradient_accumulation_steps',
    key: 'gradientAccumulation',
    kind: 'integer',
    help: 'micro-batches per optimizer step',
  },
  { trl: 'warmup_steps', key: 'warmupSteps', kind: 'integer', help: 'linear warm-up steps' },
  {
    trl: 'max_length',
    key: 'maxSeqLen',
    kind: 'integer',
    help: 'longest example in tokens (longer ones are dropped)',
  },
  { trl: 'weight_decay', key: 'weightDecay', kind: 'number', help: 'AdamW weight decay' },
  { trl: 'max_grad_norm', key: 'maxGradNorm', kind: 'number', help: 'gradient-norm clip' },
  {
    trl: 'save_steps',
    key: 'checkpointEvery',
    kind: 'integer',
    help: 'checkpoint every N steps (0: at the end)',
  },
  {
    trl: 'eval_steps',
    key: 'evalEvery',
    kind: 'integer',
    help: 'held-out evaluation every N steps (0: at the end)',
  },
  { trl: 'save_total_limit', key: 'keepCheckpoints', kind: 'integer', help: 'checkpoints kept' },
];

/** `per_device_train_batch_size` is not a key of ours: see `perDeviceTrainBatchSize` below. */
export const GRPO_SETTINGS: readonly TrlSetting[] = [
  { trl: 'max_steps', key: 'maxSteps', kind: 'integer', help: 'generation steps' },
  { trl: 'learning_rate', key: 'learningRate', kind: 'number', help: 'learning rate' },
  {
    trl: 'num_generations',
    key: 'numGenerations',
    kind: 'integer',
    help: 'completions per prompt (G)',
  },
  {
    trl: 'generation_batch_size',
    key: 'generationBatchSize',
    kind: 'integer',
    help: 'completions per generation step',
  },
  {
    trl: 'steps_per_generation',
    key: 'stepsPerGeneration',
    kind: 'integer',
    help: 'optimizer updates per generation step',
  },
  {
    trl: 'num_iterations',
    key: 'numIterations',
    kind: 'integer',
    help: 'passes over each generation batch (mu)',
  },
  { trl: 'beta', key: 'beta', kind: 'number', help: 'KL coefficient (0: no reference model)' },
  { trl: 'epsilon', key: 'epsilon', kind: 'number', help: 'lower clip range' },
  { trl: 'epsilon_high', key: 'epsilonHigh', kind: 'number', help: 'upper clip range' },
  {
    trl: 'loss_type',
    key: 'lossType',
    kind: 'choice',
    choices: choices(grpoProperties, 'lossType'),
    help: 'loss aggregation',
  },
  {
    trl: 'scale_rewards',
    key: 'scaleRewards',
    kind: 'choice',
    choices: choices(grpoProperties, 'scaleRewards'),
    help: 'advantage scaling',
  },
  {
    trl: 'importance_sampling_level',
    key: 'importanceSamplingLevel',
    kind: 'choice',
    choices: choices(grpoProperties, 'importanceSamplingLevel'),
    help: 'token ratios or one per sequence (GSPO)',
  },
  { trl: 'temperature', key: 'temperature', kind: 'number', help: 'sampling temperature' },
  { trl: 'top_p', key: 'topP', kind: 'number', help: 'nucleus sampling (1: off)' },
  { trl: 'top_k', key: 'topK', kind: 'integer', help: 'top-k sampling (0: off)' },
  {
    trl: 'max_completion_length',
    key: 'maxCompletionLength',
    kind: 'integer',
    help: 'generation cap in tokens',
  },
  { trl: 'warmup_steps', key: 'warmupSteps', kind: 'integer', help: 'linear warm-up updates' },
  {
    trl: 'lr_scheduler_type',
    key: 'lrSchedule',
    kind: 'choice',
    choices: choices(grpoProperties, 'lrSchedule'),
    help: 'learning-rate schedule',
  },
  { trl: 'weight_decay', key: 'weightDecay', kind: 'number', help: 'AdamW weight decay' },
  { trl: 'max_grad_norm', key: 'maxGradNorm', kind: 'number', help: 'gradient-norm clip' },
  {
    trl: 'save_steps',
    key: 'saveSteps',
    kind: 'integer',
    help: 'checkpoint every N steps (0: at the end)',
  },
  { trl: 'save_total_limit', key: 'saveTotalLimit', kind: 'integer', help: 'checkpoints kept' },
  {
    trl: 'mask_truncated_completions',
    key: 'maskTruncatedCompletions',
    kind: 'boolean',
    help: 'leave completions cut at the length cap out of the loss',
  },
];

/**
 * TRL's `per_device_train_batch_size` in GRPO counts completions per optimizer update, and TRL's
 * generation batch defaults to it times `steps_per_generation`; our config states the generation
 * batch, so the flag sets `generationBatchSize = value × stepsPerGeneration`.
 */
export const GRPO_BATCH_FLAG = {
  trl: 'per_device_train_batch_size',
  help: 'completions per optimizer update (sets generationBatchSize = this × stepsPerGeneration)',
} as const;

/** The GRPO presets' names, for `--grpo-preset` and for the hint when they are given to `--preset`. */
export const GRPO_PRESET_CHOICES = choices(grpoProperties, 'preset');

export function flagOf(trl: string): string {
  return `--${trl.replace(/_/g, '-')}`;
}

/** Commander's option attribute of a flag (`--num-generations` → `numGenerations`). */
export function attributeOf(trl: string): string {
  return trl.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** TRL names → our keys, per section, for did-you-mean hints on config files. */
export const TRL_ALIASES: Readonly<Record<'sft' | 'grpo', Readonly<Record<string, string>>>> = {
  sft: {
    ...Object.fromEntries(SFT_SETTINGS.map((s) => [s.trl, s.key])),
    max_seq_length: 'maxSeqLen',
    adam_beta1: 'beta1',
    adam_beta2: 'beta2',
    adam_epsilon: 'epsilon',
  },
  grpo: {
    ...Object.fromEntries(GRPO_SETTINGS.map((s) => [s.trl, s.key])),
    per_device_train_batch_size: 'generationBatchSize',
    adam_beta1: 'adamBeta1',
    adam_beta2: 'adamBeta2',
    adam_epsilon: 'adamEpsilon',
  },
};

/** The keys each table sets exist in the owning schema (checked by the tests). */
export const SCHEMA_KEYS = {
  sft: Object.keys(sftConfigSchema.properties ?? {}),
  grpo: Object.keys(grpoProperties.properties),
};
