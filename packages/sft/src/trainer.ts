import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdamW,
  CheckpointError,
  clipByGlobalNorm,
  createModelWorkerPool,
  defaultWorkerCount,
  loadCheckpoint,
  LocalChatModel,
  ModelWorkerError,
  saveCheckpoint,
  tf,
  warmupCosine,
  type CausalLM,
  type ChatModel,
  type ModelWorkerPool,
  type Tokenizer,
  type WorkerLossRef,
} from '@codereasoner/core-tensors';
import type { TaskRecord } from '@codereasoner/data';
import type { Sandbox } from '@codereasoner/sandbox';
import {
  BatchSchedule,
  encodeExamples,
  shardRows,
  type EncodedExample,
  type SftShard,
} from './batching.js';
import { resolveSftConfig, type SftConfig, type SftConfigInput } from './config.js';
import { readSftDataset, trainingMessages, type SftRecord } from './dataset.js';
import { SftAbortedError, SftTrainingError } from './errors.js';
import { evaluateModel, type EvaluationResult } from './evaluate.js';
import { appendLines, readJsonlForResume, writeFileAtomic } from './fs-utils.js';
import type { Logger, ProgressEvent } from '@codereasoner/core-tensors';
import type { SftShardOptions } from './sft-loss.js';

type TaskType = TaskRecord['type'];

export interface SftStepMetrics {
  kind: 'step';
  step: number;
  epoch: number;
  /** Mean loss per assistant token over the step's micro-batches. */
  loss: number;
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Assistant (loss) tokens in the step. */
  targetTokens: number;
  /** Real (non-padding) tokens processed per second in the step. */
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export interface SftEvalMetrics {
  kind: 'eval';
  step: number;
  accuracy: Partial<Record<TaskType, number>>;
  overall: number;
  tasks: number;
}

export type SftMetrics = SftStepMetrics | SftEvalMetrics;

export interface TrainSftOptions {
  /** Trained in place; on resume its weights are replaced by the checkpoint's. */
  model: CausalLM;
  tokenizer: Tokenizer;
  /** Path of an SFT JSONL data set (see `distill`) or its records. */
  train: string | SftRecord[];
  /** Held-out tasks evaluated every `evalEvery` steps and at the end (needs `sandbox`). */
  eval?: TaskRecord[];
  sandbox?: Sandbox;
  config?: SftConfigInput;
  /** Receives `metrics.jsonl` and `checkpoints/step-NNNNNNNN/`; a run found here is resumed. */
  outDir: string;
  /** The chat model evaluations generate with (default: core-tensors' LocalChatModel). */
  chatModel?: (model: CausalLM, tokenizer: Tokenizer) => ChatModel;
  onMetrics?: (metrics: SftMetrics) => void;
  onProgress?: (event: ProgressEvent) => void;
  logger?: Logger;
  /**
   * Checked after every step (and between evaluation batches): when it fires, the step in flight
   * finishes, a checkpoint is written and `trainSft` returns with `stopped: 'aborted'`; the same
   * call again resumes exactly there.
   */
  signal?: AbortSignal;
}

export interface SftResult {
  /** Optimizer steps done in total (equals `config.steps` unless the run stopped early). */
  steps: number;
  /** `stopped === 'steps'`: every step ran and the final checkpoint and evaluation are written. */
  completed: boolean;
  /** Why the call returned: all `steps` done, `maxSeconds` reached, or `signal` aborted (re-run the same call to resume). */
  stopped: 'steps' | 'maxSeconds' | 'aborted';
  /** Worker threads used for gradients and evaluation (1 = in-process). */
  workers: number;
  /** Loss of the last step (NaN when no step ran in this call and none was recorded). */
  finalLoss: number;
  /** The last checkpoint written (`<outDir>/checkpoints/step-NNNNNNNN`). */
  checkpointDir: string;
  evaluations: SftEvalMetrics[];
  /** Step the run resumed from (undefined for a fresh run). */
  resumedFrom: number | undefined;
  examples: number;
  droppedTooLong: number;
  metricsPath: string;
  config: SftConfig;
}

const CHECKPOINT_PATTERN = /^step-(\d{8})$/;

/**
 * Settings that change what the weights become; a resumed run must match them. `workers` is not
 * one: threads change float rounding (row shards summed in another order), not what a step computes.
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
  'bucketBatches',
];

/**
 * `workers: 'auto'` starts threads only for models at least this large (grpo's rule): starting
 * them costs about a second, more than a whole run of a tiny model takes.
 */
const AUTO_WORKERS_MIN_PARAMETERS = 200_000;
// Worker threads import the loss by URL: the built entry next to this file, or the source under test.
const SFT_LOSS: WorkerLossRef = {
  module: new URL(
    /\.ts$/.test(new URL(import.meta.url).pathname) ? './sft-loss.ts' : './sft-loss.js',
    import.meta.url,
  ),
  exportName: 'sftShardLoss',
};

/**
 * The pool gradients and evaluation run on. With `auto`, a pool that cannot start its threads
 * (e.g. sources run without tsx) falls back to in-process with a warning: threads only change speed.
 */
async function startPool(
  model: CausalLM,
  workers: SftConfig['workers'],
  logger: Logger | undefined,
): Promise<ModelWorkerPool> {
  if (workers !== 'auto') return createModelWorkerPool({ model, workers });
  // Replicas copy base weights only: LoRA adapters train in-process.
  const count =
    model.numParameters() < AUTO_WORKERS_MIN_PARAMETERS || model.loraConfig !== undefined
      ? 1
      : defaultWorkerCount();
  try {
    return await createModelWorkerPool({ model, workers: count });
  } catch (error) {
    if (!(error instanceof ModelWorkerError) || error.code !== 'MODEL_WORKER_START_FAILED')
      throw error;
    logger?.warn(`sft: worker threads did not start (${error.message}); training in-process`);
    return createModelWorkerPool({ model, workers: 1 });
  }
}

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

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

/** At most `limit` tasks (0 = all), taken round-robin over task types so every type is represented. */
export function pickEvalTasks(tasks: readonly TaskRecord[], limit: number): TaskRecord[] {
  if (limit <= 0 || tasks.length <= limit) return [...tasks];
  const byType = new Map<string, TaskRecord[]>();
  for (const task of tasks) {
    const list = byType.get(task.type) ?? [];
    list.push(task);
    byType.set(task.type, list);
  }
  const queues = [...byType.values()];
  const picked: TaskRecord[] = [];
  for (let round = 0; picked.length < limit; round++) {
    for (const queue of queues) {
      const task = queue[round];
      if (task !== undefined && picked.length < limit) picked.push(task);
    }
  }
  return picked;
}

function fingerprint(examples: EncodedExample[]): string {
  const hash = createHash('sha256');
  for (const example of examples)
    hash.update(`${example.ids.join(',')}|${example.assistantMask.join('')};`);
  return hash.digest('hex').slice(0, 16);
}

/**
 * Supervised fine-tuning on assistant tokens only: length-bucketed micro-batches, gradient
 * accumulation weighted by token count (so the update equals that of one big batch), global-norm
 * clipping, AdamW with linear warmup + cosine decay. Checkpoints every `checkpointEvery` steps and
 * at the end; a run found in `outDir` resumes from its latest checkpoint with the same data order
 * and reaches the same weights as an uninterrupted run. Metrics go to `<outDir>/metrics.jsonl`.
 */
export async function trainSft(options: TrainSftOptions): Promise<SftResult> {
  const config = resolveSftConfig(options.config);
  const { model, tokenizer, logger } = options;
  const records =
    typeof options.train === 'string' ? await readSftDataset(options.train) : options.train;
  const conversations = records.map((record) => trainingMessages(record, config.reasoning));
  const maxLen = Math.min(config.maxSeqLen, model.config.maxPositionEmbeddings);
  const { examples, droppedTooLong, droppedEmpty } = encodeExamples(
    conversations,
    tokenizer,
    maxLen,
  );
  if (droppedTooLong > 0)
    logger?.warn(
      `sft: dropped ${droppedTooLong} of ${records.length} examples longer than ${maxLen} tokens`,
    );
  if (droppedEmpty > 0)
    logger?.warn(`sft: dropped ${droppedEmpty} examples without assistant tokens`);
  if (examples.length === 0) {
    throw new SftTrainingError(
      'SFT_NO_EXAMPLES',
      `no trainable examples among ${records.length} records (${droppedTooLong} longer than ${maxLen} tokens); raise maxSeqLen or check the data set`,
    );
  }
  const dataFingerprint = fingerprint(examples);
  const schedule = new BatchSchedule(
    examples.map((example) => example.ids.length),
    { batchSize: config.batchSize, bucketBatches: config.bucketBatches, seed: config.seed },
  );
  const optimizer = new AdamW({
    learningRate: warmupCosine({
      peak: config.learningRate,
      warmupSteps: config.warmupSteps,
      totalSteps: config.steps,
      minRatio: config.minLrRatio,
    }),
    beta1: config.beta1,
    beta2: config.beta2,
    epsilon: config.epsilon,
    weightDecay: config.weightDecay,
  });
  const metricsPath = join(options.outDir, 'metrics.jsonl');
  const checkpointsDir = join(options.outDir, 'checkpoints');
  await mkdir(checkpointsDir, { recursive: true });

  // ---- resume
  let startStep = 0;
  let resumedFrom: number | undefined;
  let lastCheckpoint = '';
  const latest = await latestCheckpoint(options.outDir);
  if (latest !== undefined) {
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
      const mismatched = RESULT_KEYS.filter((key) => state.config?.[key] !== config[key]);
      if (
        mismatched.length > 0 ||
        state.dataFingerprint !== dataFingerprint ||
        state.step !== latest.step
      ) {
        throw new SftTrainingError(
          'SFT_RESUME_FAILED',
          `${latest.dir} belongs to another run (${mismatched.length > 0 ? `settings differ: ${mismatched.join(', ')}` : 'the training data differ'}); use a new outDir or delete ${checkpointsDir}`,
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
      startStep = latest.step;
      resumedFrom = latest.step;
      lastCheckpoint = latest.dir;
    } finally {
      loaded.model.dispose();
      if (loaded.optimizerState)
        tf.dispose([
          ...Object.values(loaded.optimizerState.firstMoment),
          ...Object.values(loaded.optimizerState.secondMoment),
        ]);
    }
    logger?.info(`sft: resuming from ${latest.dir} (step ${startStep})`);
  }
  // metrics written after the checkpoint we resume from are redone: drop them
  const previous = (await readJsonlForResume(metricsPath, (line) =>
    logger?.warn(`${metricsPath}:${line}: dropped a cut line`),
  )) as unknown as SftMetrics[];
  const keptMetrics = previous.filter((metric) => metric.step <= startStep);
  if (keptMetrics.length !== previous.length || (startStep === 0 && previous.length > 0)) {
    const rows = startStep === 0 ? [] : keptMetrics;
    await writeFileAtomic(metricsPath, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
  }
  const evaluations =
    startStep === 0
      ? []
      : keptMetrics.filter((metric): metric is SftEvalMetrics => metric.kind === 'eval');
  let finalLoss = NaN;
  for (const metric of keptMetrics) if (metric.kind === 'step') finalLoss = metric.loss;

  const emit = async (metric: SftMetrics): Promise<void> => {
    await appendLines(metricsPath, [JSON.stringify(metric)]);
    options.onMetrics?.(metric);
  };
  const evalTasks = pickEvalTasks(options.eval ?? [], config.evalLimit);
  const { signal } = options;
  // a function, not a narrowed property: the signal fires while steps run
  const isAborted = (): boolean => signal?.aborted === true;
  let pool: ModelWorkerPool | undefined;
  /** Evaluates at `step`; false when `signal` stopped it (nothing is recorded then). */
  const runEval = async (step: number): Promise<boolean> => {
    if (evalTasks.length === 0) return true;
    if (options.sandbox === undefined) {
      logger?.warn('sft: eval tasks given without a sandbox; skipping evaluation');
      return true;
    }
    const threads = Math.max(1, pool?.size ?? 0);
    const chat =
      options.chatModel?.(model, tokenizer) ??
      // one generation batch per thread in every evaluation batch; tokens do not depend on batchSize
      new LocalChatModel(model, tokenizer, {
        batchSize: Math.ceil(config.evalBatchSize / threads),
        ...(pool === undefined ? {} : { workers: pool }),
      });
    let result: EvaluationResult;
    try {
      result = await evaluateModel(chat, evalTasks, options.sandbox, {
        reasoning: config.reasoning,
        maxTokens: config.evalMaxTokens,
        batchSize: config.evalBatchSize,
        ...(signal === undefined ? {} : { signal }),
        ...(options.onProgress === undefined
          ? {}
          : {
              onProgress: (event: ProgressEvent) =>
                options.onProgress?.({ ...event, stage: 'sft-eval' }),
            }),
      });
    } catch (error) {
      if (error instanceof SftAbortedError) return false;
      throw error;
    }
    const metric: SftEvalMetrics = {
      kind: 'eval',
      step,
      accuracy: result.accuracy,
      overall: result.overall,
      tasks: evalTasks.length,
    };
    evaluations.push(metric);
    await emit(metric);
    return true;
  };
  const checkpoint = async (step: number): Promise<void> => {
    const dir = join(checkpointsDir, checkpointName(step));
    await saveCheckpoint(dir, {
      model,
      tokenizer,
      optimizer,
      trainerState: { step, config, dataFingerprint, examples: examples.length, loss: finalLoss },
    });
    lastCheckpoint = dir;
    // keep the newest `keepCheckpoints` (the final one is the newest, so it always stays)
    const names = (await readdir(checkpointsDir))
      .filter((name) => CHECKPOINT_PATTERN.test(name))
      .sort();
    for (const name of names.slice(0, Math.max(0, names.length - config.keepCheckpoints))) {
      await rm(join(checkpointsDir, name), { recursive: true, force: true });
    }
  };

  const started = performance.now();
  let step = startStep;
  let stopped: SftResult['stopped'] = 'steps';
  try {
    pool = await startPool(model, config.workers, logger);
    const parts = Math.max(1, pool.size);
    // an evaluation owed at the step resumed from (the run was stopped during it)
    if (
      startStep > 0 &&
      startStep < config.steps &&
      config.evalEvery > 0 &&
      startStep % config.evalEvery === 0 &&
      !evaluations.some((evaluation) => evaluation.step === startStep) &&
      !(await runEval(startStep))
    )
      stopped = 'aborted';
    while (stopped === 'steps' && step < config.steps) {
      if (isAborted()) {
        stopped = 'aborted';
        break;
      }
      const t0 = performance.now();
      let epoch = 0;
      // LoRA dropout masks from (seed, step): a resumed run draws the same ones.
      model.seedAdapterDropout(config.seed * 1_000_003 + step);
      // every micro-batch split by rows into one shard per thread; one gradient call per step
      const shards: SftShard[] = [];
      for (let micro = 0; micro < config.gradientAccumulation; micro++) {
        const planned = schedule.at(step * config.gradientAccumulation + micro);
        epoch = planned.epoch;
        const batch = planned.batch.map((index) => examples[index] as EncodedExample);
        shards.push(...shardRows(batch, tokenizer.special.pad, parts));
      }
      const result = await pool.computeGradients<SftShardOptions>({
        loss: SFT_LOSS,
        shards: shards.map((shard) => ({
          data: shard.data,
          weight: shard.count,
          options: { count: shard.count },
        })),
        reduce: 'mean',
      });
      // Σ count·loss / Σ count in shard order: the mean loss per target token of the step
      let lossSum = 0;
      let targetTokens = 0;
      let realTokens = 0;
      shards.forEach((shard, index) => {
        lossSum += (result.shards[index]?.loss ?? NaN) * shard.count;
        targetTokens += shard.count;
        realTokens += shard.tokens;
      });
      const grads = result.grads;
      const loss = lossSum / targetTokens;
      const clipped = clipByGlobalNorm(grads, config.maxGradNorm);
      tf.dispose(Object.values(grads));
      if (!Number.isFinite(loss) || !Number.isFinite(clipped.norm)) {
        tf.dispose(Object.values(clipped.grads));
        throw new SftTrainingError(
          'SFT_NON_FINITE',
          `step ${step}: loss ${loss}, gradient norm ${clipped.norm}; lower learningRate (now ${config.learningRate}) or maxGradNorm`,
        );
      }
      const learningRate = optimizer.learningRate;
      optimizer.applyGradients(clipped.grads);
      tf.dispose(Object.values(clipped.grads));
      step++;
      finalLoss = loss;
      const seconds = (performance.now() - t0) / 1000;
      await emit({
        kind: 'step',
        step,
        epoch,
        loss,
        learningRate,
        gradNorm: clipped.norm,
        targetTokens,
        tokensPerSecond: realTokens / Math.max(seconds, 1e-9),
        elapsedSeconds: (performance.now() - started) / 1000,
      });
      options.onProgress?.({
        stage: 'sft',
        completed: step,
        total: config.steps,
        detail: { loss: Number(loss.toFixed(4)), lr: Number(learningRate.toExponential(2)) },
      });
      if (step >= config.steps) break;
      let aborted = isAborted();
      const timeUp =
        !aborted &&
        config.maxSeconds > 0 &&
        (performance.now() - started) / 1000 >= config.maxSeconds;
      if (!aborted && config.evalEvery > 0 && step % config.evalEvery === 0)
        aborted = !(await runEval(step));
      if (timeUp || (config.checkpointEvery > 0 && step % config.checkpointEvery === 0))
        await checkpoint(step);
      if (aborted) stopped = 'aborted';
      else if (timeUp) {
        stopped = 'maxSeconds';
        logger?.info(
          `sft: maxSeconds (${config.maxSeconds}) reached at step ${step}; resume with the same outDir to continue`,
        );
      }
    }
    if (stopped === 'aborted' && step > startStep) {
      if (lastCheckpoint !== join(checkpointsDir, checkpointName(step))) await checkpoint(step);
      logger?.info(`sft: aborted after step ${step}; run again with the same outDir to resume`);
    }
    if (stopped === 'steps') {
      if (lastCheckpoint !== join(checkpointsDir, checkpointName(config.steps)))
        await checkpoint(config.steps);
      if (
        !evaluations.some((evaluation) => evaluation.step === config.steps) &&
        !(await runEval(config.steps))
      )
        stopped = 'aborted';
    }
  } finally {
    optimizer.dispose();
    await pool?.close();
  }
  return {
    steps: step,
    completed: stopped === 'steps',
    stopped,
    workers: Math.max(1, pool?.size ?? 0),
    finalLoss,
    checkpointDir: lastCheckpoint,
    evaluations,
    resumedFrom,
    examples: examples.length,
    droppedTooLong,
    metricsPath,
    config,
  };
}
