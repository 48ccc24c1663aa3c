/*
 * Run state of SFT: checkpoints (`<outDir>/checkpoints/step-NNNNNNNN`), what a resumed run must
 * match, and metrics.jsonl made consistent with the step resumed from.
 */
import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
  tf,
  type AdamW,
  type CausalLM,
  type Logger,
  type Tokenizer,
} from '@codereasoner/core-tensors';
import { checkpointStepName, writeJsonLines } from '@codereasoner/common';
import type { EncodedExample } from './batching.js';
import { DEFAULT_SFT_CONFIG, type SftConfig } from './config.js';
import { readJournal } from './distill.js';
import { SftTrainingError } from './errors.js';
import type { SftEvalMetrics, SftMetrics } from './metrics.js';

// common's `checkpointStepName` (`step-%08d`), as grpo's run-state names its checkpoints.
const CHECKPOINT_PATTERN = /^step-(\d{8})$/;

/**
 * Settings that change what the weights become; a resumed run must match them. `workers` and
 * `trainEngine` are not: threads and engines change float rounding (row shards summed in another
 * order, other kernels), not what a step computes.
 */
const RESULT_KEYS: (keyof SftConfig)[] = [
  'seed',
  'reasoning',
  'steps',
  'batchSize',
  'gradientAccumulation',
  'maxSeqLen',
  'learningRate',
  'warmupSteps',
  'minLrRatio',
  'weightDecay',
  'beta1',
  'beta2',
  'epsilon',
  'maxGradNorm',
  'packing',
  'curriculum',
  'bucketBatches',
];

export const checkpointName = checkpointStepName;

/** The newest complete checkpoint under `<outDir>/checkpoints`, or undefined. */
export async function latestCheckpoint(
  outDir: string,
): Promise<{ dir: string; step: number } | undefined> {
  const root = join(outDir, 'checkpoints');
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return undefined;
  }
  const steps = names
    .map((name) => CHECKPOINT_PATTERN.exec(name)?.[1])
    .filter((step): step is string => step !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
  const step = steps[0];
  return step === undefined ? undefined : { dir: join(root, checkpointName(step)), step };
}

/** Identifies the training data of a run (a resumed run must train on the same). */
export function dataFingerprint(examples: readonly EncodedExample[]): string {
  const hash = createHash('sha256');
  for (const example of examples)
    hash.update(`${example.ids.join(',')}|${example.assistantMask.join('')};`);
  return hash.digest('hex').slice(0, 16);
}

/** What the checkpoints of a run are checked against and written with. */
export interface SftRunContext {
  outDir: string;
  config: SftConfig;
  model: CausalLM;
  tokenizer: Tokenizer;
  optimizer: AdamW;
  dataFingerprint: string;
  examples: number;
  logger?: Logger | undefined;
}

function checkpointsDir(outDir: string): string {
  return join(outDir, 'checkpoints');
}

/**
 * Loads the newest checkpoint of the run into the model and optimizer; its step, or undefined for
 * a fresh run. A checkpoint of another run (settings, data) is refused.
 */
export async function restoreSftRun(context: SftRunContext): Promise<number | undefined> {
  const { config, model, optimizer } = context;
  const latest = await latestCheckpoint(context.outDir);
  if (latest === undefined) return undefined;
  let loaded;
  try {
    loaded = await loadCheckpoint(latest.dir);
  } catch (error) {
    throw new SftTrainingError(
      'SFT_RESUME_FAILED',
      `cannot resume from ${latest.dir}: ${CheckpointError.isInstance(error) ? error.message : String(error)}; delete it to fall back to an older checkpoint`,
      { cause: error },
    );
  }
  try {
    const state = (loaded.trainerState ?? {}) as {
      step?: number;
      config?: Partial<SftConfig>;
      dataFingerprint?: string;
    };
    // a setting added after the checkpoint was written counts as its default there
    const mismatched = RESULT_KEYS.filter(
      (key) => (state.config?.[key] ?? DEFAULT_SFT_CONFIG[key]) !== config[key],
    );
    if (
      mismatched.length > 0 ||
      state.dataFingerprint !== context.dataFingerprint ||
      state.step !== latest.step
    ) {
      throw new SftTrainingError(
        'SFT_RESUME_FAILED',
        `${latest.dir} belongs to another run (${mismatched.length > 0 ? `settings differ: ${mismatched.join(', ')}` : 'the training data differ'}); use a new outDir or delete ${checkpointsDir(context.outDir)}`,
      );
    }
    if (loaded.optimizerState === undefined) {
      throw new SftTrainingError(
        'SFT_RESUME_FAILED',
        `${latest.dir} has no optimizer state; it cannot be resumed exactly`,
      );
    }
    model.copyFrom(loaded.model);
    optimizer.setState(loaded.optimizerState);
  } finally {
    loaded.model.dispose();
    if (loaded.optimizerState)
      tf.dispose([
        ...Object.values(loaded.optimizerState.firstMoment),
        ...Object.values(loaded.optimizerState.secondMoment),
      ]);
  }
  context.logger?.info(`sft: resuming from ${latest.dir} (step ${latest.step})`);
  return latest.step;
}

/** Saves the run at `step` and keeps the newest `keepCheckpoints`; the directory written. */
export async function saveSftCheckpoint(
  context: SftRunContext,
  step: number,
  loss: number,
): Promise<string> {
  const root = checkpointsDir(context.outDir);
  const dir = join(root, checkpointName(step));
  await saveCheckpoint(dir, {
    model: context.model,
    tokenizer: context.tokenizer,
    optimizer: context.optimizer,
    trainerState: {
      step,
      config: context.config,
      dataFingerprint: context.dataFingerprint,
      examples: context.examples,
      loss,
    },
  });
  // keep the newest `keepCheckpoints` (the final one is the newest, so it always stays)
  const names = (await readdir(root)).filter((name) => CHECKPOINT_PATTERN.test(name)).sort();
  for (const name of names.slice(0, Math.max(0, names.length - context.config.keepCheckpoints)))
    await rm(join(root, name), { recursive: true, force: true });
  return dir;
}

/**
 * Drops the metrics written after `startStep` (they are redone; all of them for a fresh run) and
 * returns what the run keeps: its evaluations and the loss of its last step.
 */
export async function reconcileMetrics(
  metricsPath: string,
  startStep: number,
  logger: Logger | undefined,
): Promise<{ evaluations: SftEvalMetrics[]; finalLoss: number }> {
  const previous = (
    await readJournal(metricsPath, (line) =>
      logger?.warn(`${metricsPath}:${line}: dropped a cut line`),
    )
  ).values as unknown as SftMetrics[];
  const kept = previous.filter((metric) => metric.step <= startStep);
  if (kept.length !== previous.length || (startStep === 0 && previous.length > 0)) {
    const rows = startStep === 0 ? [] : kept;
    await writeJsonLines(metricsPath, rows);
  }
  const evaluations =
    startStep === 0
      ? []
      : kept.filter((metric): metric is SftEvalMetrics => metric.kind === 'eval');
  let finalLoss = NaN;
  for (const metric of kept) if (metric.kind === 'step') finalLoss = metric.loss;
  return { evaluations, finalLoss };
}
