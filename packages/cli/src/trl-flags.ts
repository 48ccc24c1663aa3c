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
const sftProperties = sftConfigSchema as unknown as { properties: Record<string, object> };

type Row = readonly [trl: string, key: string, kind: TrlSetting['kind'], help: string];

/** Table rows to settings; a `choice` setting takes its values from the owning schema's enum. */
function settings(
  schema: { properties: Record<string, object> },
  rows: readonly Row[],
): readonly TrlSetting[] {
  return rows.map(([trl, key, kind, help]) =>
    kind === 'choice'
      ? { trl, key, kind, choices: choices(schema, key), help }
      : { trl, key, kind, help },
  );
}

// prettier-ignore
export const SFT_SETTINGS: readonly TrlSetting[] = settings(sftProperties, [
  // TRL's name                     our key                 kind       --help text
  ['max_steps',                   'steps',                'integer', 'optimizer steps'],
  ['learning_rate',               'learningRate',         'number',  'peak learning rate'],
  ['per_device_train_batch_size', 'batchSize',            'integer', 'sequences per micro-batch'],
  ['gradient_accumulation_steps', 'gradientAccumulation', 'integer', 'micro-batches per optimizer step'],
  ['warmup_steps',                'warmupSteps',          'integer', 'linear warm-up steps'],
  ['max_length',                  'maxSeqLen',            'integer', 'longest example in tokens (longer ones are dropped)'],
  ['packing',                     'packing',              'boolean', 'pack several conversations per row of max-length tokens, each attending only to itself'],
  ['weight_decay',                'weightDecay',          'number',  'AdamW weight decay'],
  ['max_grad_norm',               'maxGradNorm',          'number',  'gradient-norm clip'],
  ['save_steps',                  'checkpointEvery',      'integer', 'checkpoint every N steps (0: at the end)'],
  ['eval_steps',                  'evalEvery',            'integer', 'held-out evaluation every N steps (0: at the end)'],
  ['save_total_limit',            'keepCheckpoints',      'integer', 'checkpoints kept'],
]);

/** `per_device_train_batch_size` is not a key of ours: see `perDeviceTrainBatchSize` below. */
// prettier-ignore
export const GRPO_SETTINGS: readonly TrlSetting[] = settings(grpoProperties, [
  // TRL's name                    our key                     kind       --help text
  ['max_steps',                  'maxSteps',                 'integer', 'generation steps'],
  ['learning_rate',              'learningRate',             'number',  'learning rate'],
  ['num_generations',            'numGenerations',           'integer', 'completions per prompt (G)'],
  ['generation_batch_size',      'generationBatchSize',      'integer', 'completions per generation step'],
  ['steps_per_generation',       'stepsPerGeneration',       'integer', 'optimizer updates per generation step'],
  ['num_iterations',             'numIterations',            'integer', 'passes over each generation batch (mu)'],
  ['beta',                       'beta',                     'number',  'KL coefficient (0: no reference model)'],
  ['epsilon',                    'epsilon',                  'number',  'lower clip range'],
  ['epsilon_high',               'epsilonHigh',              'number',  'upper clip range'],
  ['loss_type',                  'lossType',                 'choice',  'loss aggregation'],
  ['scale_rewards',              'scaleRewards',             'choice',  'advantage scaling'],
  ['importance_sampling_level',  'importanceSamplingLevel',  'choice',  'token ratios or one per sequence (GSPO)'],
  ['temperature',                'temperature',              'number',  'sampling temperature'],
  ['top_p',                      'topP',                     'number',  'nucleus sampling (1: off)'],
  ['top_k',                      'topK',                     'integer', 'top-k sampling (0: off)'],
  ['max_completion_length',      'maxCompletionLength',      'integer', 'generation cap in tokens'],
  ['warmup_steps',               'warmupSteps',              'integer', 'linear warm-up updates'],
  ['lr_scheduler_type',          'lrSchedule',               'choice',  'learning-rate schedule'],
  ['weight_decay',               'weightDecay',              'number',  'AdamW weight decay'],
  ['max_grad_norm',              'maxGradNorm',              'number',  'gradient-norm clip'],
  ['save_steps',                 'saveSteps',                'integer', 'checkpoint every N steps (0: at the end)'],
  ['save_total_limit',           'saveTotalLimit',           'integer', 'checkpoints kept'],
  ['mask_truncated_completions', 'maskTruncatedCompletions', 'boolean', 'leave completions cut at the length cap out of the loss'],
]);

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
