/*
 * Run state: what a checkpoint keeps besides the weights and the optimizer (step, counters, RNG,
 * data position), how it is saved and restored, and the files of outDir that must agree with it
 * (metrics.jsonl, the rollout journal, the reference model).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkpointStepName } from '@codereasoner/common';
import {
  CheckpointError,
  Rng,
  loadCheckpoint,
  readJsonLines,
  saveCheckpoint,
  tf,
  writeFileAtomic,
  writeJsonLines,
  type AdamW,
  type CausalLM,
  type Logger,
  type OptimizerState,
  type RngState,
  type Tokenizer,
} from '@codereasoner/core-tensors';
import type { GrpoConfig } from './config.js';
import type { DataOrder, DataPosition } from './data-order.js';
import { GrpoResumeError } from './errors.js';
import type { GrpoStepMetrics } from './metrics.js';
import type { RewardSpec } from './rewards.js';
import type { RolloutRecord } from './rollout.js';

/** The mutable state of a run; `rng` is replaced (not advanced) when a step is replayed or restored. */
export interface GrpoRunState {
  step: number;
  updates: number;
  numTokens: number;
  rng: Rng;
  data: DataOrder;
  /** The last checkpoint directory written or resumed from. */
  lastCheckpoint: string | null;
}

/** What the run's files are checked against and written with. */
export interface RunFilesContext {
  outDir: string;
  config: GrpoConfig;
  policy: CausalLM;
  tokenizer: Tokenizer;
  optimizer: AdamW;
  rewards: readonly RewardSpec[];
  datasetSize: number;
  logger?: Logger | undefined;
}

interface TrainerStateFile {
  format: 'codereasoner-grpo-trainer-state';
  version: 1;
  step: number;
  updates: number;
  numTokens: number;
  dataPosition: DataPosition;
  rng: RngState;
  datasetSize: number;
  rewardNames: string[];
  config: GrpoConfig;
}

/** Options that may change between a run and its resumption (they do not change what a step computes). */
const RESUMABLE_CHANGES = new Set<keyof GrpoConfig>([
  'maxSteps',
  'saveSteps',
  'saveTotalLimit',
  'journalRollouts',
  // Threads change float rounding only (batch composition, summation), not what a step computes.
  'workers',
  // So does the generation engine (logits agree to float32 rounding); a state written before the option had none.
  'engine',
  'onnxThreads',
  'onnxWeights',
  // The gradient engine changes float rounding only (tested equal within float32 tolerance).
  'trainEngine',
]);
// `step-%08d` (common's `checkpointStepName`), with `.previous` for the one being replaced.
const CHECKPOINT_DIR = /^step-(\d{8})(\.previous)?$/;

function checkpointDir(outDir: string, step: number): string {
  return join(outDir, 'checkpoints', checkpointStepName(step));
}

export function sameState(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The step of a checkpoint directory (null: none, or not a checkpoint). */
export function checkpointStep(dir: string | null): number | null {
  if (dir === null) return null;
  const match = CHECKPOINT_DIR.exec(dir.split(/[\\/]/).pop() ?? '');
  return match === null ? null : Number(match[1]);
}

/** Checkpoint steps present in outDir, newest first. */
async function checkpointSteps(outDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(join(outDir, 'checkpoints'));
  } catch {
    return [];
  }
  const steps = new Set<number>();
  for (const name of names) {
    const match = CHECKPOINT_DIR.exec(name);
    if (match !== null) steps.add(Number(match[1]));
  }
  return [...steps].sort((a, b) => b - a);
}

/** Saves the policy, optimizer and run state at `state.step`, then keeps the newest `saveTotalLimit`. */
export async function saveRunCheckpoint(
  context: RunFilesContext,
  state: GrpoRunState,
): Promise<void> {
  const { outDir } = context;
  const dir = checkpointDir(outDir, state.step);
  const trainerState: TrainerStateFile = {
    format: 'codereasoner-grpo-trainer-state',
    version: 1,
    step: state.step,
    updates: state.updates,
    numTokens: state.numTokens,
    dataPosition: state.data.position,
    rng: state.rng.getState(),
    datasetSize: context.datasetSize,
    rewardNames: context.rewards.map((r) => r.name),
    config: context.config,
  };
  await saveCheckpoint(dir, {
    model: context.policy,
    tokenizer: context.tokenizer,
    optimizer: context.optimizer,
    trainerState: trainerState as unknown as Record<string, unknown>,
  });
  state.lastCheckpoint = dir;
  const steps = await checkpointSteps(outDir);
  for (const old of steps.slice(context.config.saveTotalLimit))
    await rm(checkpointDir(outDir, old), { recursive: true, force: true });
}

function checkResumable(
  context: RunFilesContext,
  path: string,
  state: Record<string, unknown> | undefined,
): TrainerStateFile {
  const { config } = context;
  const s = state as Partial<TrainerStateFile> | undefined;
  if (
    s?.format !== 'codereasoner-grpo-trainer-state' ||
    s.version !== 1 ||
    s.config === undefined ||
    s.dataPosition === undefined ||
    s.rng === undefined
  ) {
    throw new CheckpointError(path, 'trainer_state.json is not a @codereasoner/grpo trainer state');
  }
  const differing = (Object.keys(config) as (keyof GrpoConfig)[]).filter(
    (key) => !RESUMABLE_CHANGES.has(key) && !sameState(config[key], s.config![key]),
  );
  const issues = differing.map(
    (key) =>
      `${key}: checkpoint ${JSON.stringify(s.config![key])}, now ${JSON.stringify(config[key])}`,
  );
  if (s.datasetSize !== context.datasetSize)
    issues.push(`dataset size: checkpoint ${s.datasetSize}, now ${context.datasetSize}`);
  const rewardNames = context.rewards.map((r) => r.name);
  if (!sameState(s.rewardNames, rewardNames))
    issues.push(
      `reward functions: checkpoint ${JSON.stringify(s.rewardNames)}, now ${JSON.stringify(rewardNames)}`,
    );
  if (issues.length > 0) {
    throw new GrpoResumeError(
      path,
      `cannot resume with different settings (${issues.join('; ')}); use the same ones, or a new outDir to start over`,
    );
  }
  return s as TrainerStateFile;
}

/** Loads the newest readable checkpoint into the policy, optimizer and `state`; its step, or null. */
export async function restoreRun(
  context: RunFilesContext,
  state: GrpoRunState,
): Promise<number | null> {
  for (const step of await checkpointSteps(context.outDir)) {
    const dir = checkpointDir(context.outDir, step);
    let loaded: Awaited<ReturnType<typeof loadCheckpoint>>;
    try {
      loaded = await loadCheckpoint(dir);
    } catch (error) {
      if (!(error instanceof CheckpointError)) throw error;
      context.logger?.warn(`skipping unreadable checkpoint ${dir}: ${error.message}`);
      continue;
    }
    let optimizerState: OptimizerState | undefined;
    try {
      const saved = checkResumable(context, dir, loaded.trainerState);
      optimizerState = loaded.optimizerState;
      if (optimizerState === undefined)
        throw new CheckpointError(dir, 'optimizer.safetensors is missing');
      context.policy.copyFrom(loaded.model);
      context.optimizer.setState(optimizerState);
      state.rng = Rng.fromState(saved.rng);
      state.data.position = saved.dataPosition;
      state.step = saved.step;
      state.updates = saved.updates;
      state.numTokens = saved.numTokens;
      state.lastCheckpoint = dir;
      context.logger?.info(`resumed from ${dir} (step ${saved.step})`);
      return saved.step;
    } finally {
      loaded.model.dispose();
      if (optimizerState !== undefined)
        tf.dispose([
          ...Object.values(optimizerState.firstMoment),
          ...Object.values(optimizerState.secondMoment),
        ]);
    }
  }
  return null;
}

/**
 * Makes outDir consistent with the restored `step`: metrics after it are dropped (they will be
 * recomputed), and journaled rollouts after it are kept and returned for replay.
 */
export async function prepareRunFiles(
  context: RunFilesContext,
  step: number,
): Promise<Map<number, RolloutRecord>> {
  const { outDir, logger } = context;
  await writeFileAtomic(
    join(outDir, 'config.json'),
    `${JSON.stringify(context.config, null, 2)}\n`,
  );
  const metricsPath = join(outDir, 'metrics.jsonl');
  const metrics = await readJsonLines<GrpoStepMetrics>(metricsPath);
  const keptMetrics = metrics.values.filter((m) => m.step <= step);
  if (metrics.truncatedTail || keptMetrics.length !== metrics.values.length)
    await writeJsonLines(metricsPath, keptMetrics);

  const journalPath = join(outDir, 'rollouts.jsonl');
  const journal = await readJsonLines<RolloutRecord>(journalPath).catch((error: unknown) => {
    throw new GrpoResumeError(
      journalPath,
      `cannot read the rollout journal: ${(error as Error).message}; move it away to resume without it`,
      { cause: error },
    );
  });
  if (journal.truncatedTail)
    logger?.warn(`${journalPath}: dropped a truncated last line (a crash while writing it)`);
  const replay = new Map<number, RolloutRecord>();
  const keptRecords: RolloutRecord[] = [];
  let next = step + 1;
  for (const record of journal.values) {
    if (record.format !== 'codereasoner-grpo-rollouts' || record.version !== 1) continue;
    if (record.step <= step) keptRecords.push(record);
    else if (record.step === next) {
      replay.set(record.step, record);
      keptRecords.push(record);
      next += 1;
    }
  }
  if (journal.truncatedTail || keptRecords.length !== journal.values.length)
    await writeJsonLines(journalPath, keptRecords);
  if (replay.size > 0)
    logger?.info(`replaying ${replay.size} journaled step(s) from ${journalPath}`);
  return replay;
}

/**
 * beta > 0: a frozen copy of the initial policy, saved once in outDir/reference so a resumed run
 * uses the same one. undefined when beta is 0.
 */
export async function loadOrCreateReference(options: {
  config: GrpoConfig;
  policy: CausalLM;
  tokenizer: Tokenizer;
  outDir: string | undefined;
  resumedFromStep: number | null;
}): Promise<CausalLM | undefined> {
  const { config, policy, tokenizer, outDir } = options;
  if (config.beta === 0) return undefined;
  // LoRA: the reference is the base with adapters off. clone() shares the (frozen) base weights
  // and leaves the adapters out, so there is no second copy; the base is in every
  // checkpoint (or, for an unchanged pretrained base, named by its base_model.json).
  if (outDir === undefined || policy.loraConfig !== undefined) return policy.clone();
  const dir = join(outDir, 'reference');
  const exists = await stat(join(dir, 'model.safetensors')).then(
    () => true,
    () => false,
  );
  if (exists) return (await loadCheckpoint(dir, { trainable: false })).model;
  if (options.resumedFromStep !== null) {
    throw new GrpoResumeError(
      dir,
      'the run is resumed with beta > 0 but its reference model is missing; restore outDir/reference or start a new outDir',
    );
  }
  const reference = policy.clone();
  await saveCheckpoint(dir, { model: reference, tokenizer });
  return reference;
}
