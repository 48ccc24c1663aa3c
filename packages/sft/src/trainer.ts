import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AUTO_WORKERS_MIN_PARAMETERS, appendJsonLines } from '@codereasoner/common';
import {
  AdamW,
  chatMLFormat,
  createModelWorkerPool,
  defaultWorkerCount,
  ModelWorkerError,
  OnnxTrainPool,
  onnxTrainUnsupported,
  warmupCosine,
  type CausalLM,
  type ChatFormat,
  type ChatModel,
  type GenerationEngine,
  type OnnxWeightsMode,
  type Logger,
  type ModelWorkerPool,
  type ProgressEvent,
  type Tokenizer,
} from '@codereasoner/core-tensors';
import type { TaskRecord } from '@codereasoner/protocol';
import type { Sandbox } from '@codereasoner/sandbox';
import {
  BucketedBatchSource,
  encodeExamples,
  type EncodedExample,
  type SftBatchSource,
} from './batching.js';
import { curriculumPlanner } from './curriculum.js';
import { packForTraining, rowLevels } from './packing.js';
import { resolveSftConfig, type SftConfig, type SftConfigInput } from './config.js';
import { readSftDataset, trainingMessages, type SftRecord } from './dataset.js';
import { SftTrainingError } from './errors.js';
import { HeldOutEval } from './held-out-eval.js';
import type { SftEvalMetrics, SftMetrics } from './metrics.js';
import {
  checkpointName,
  dataFingerprint,
  reconcileMetrics,
  restoreSftRun,
  saveSftCheckpoint,
  type SftRunContext,
} from './run-state.js';
import { sftUpdate } from './update.js';

export interface SftTrainerOptions {
  /** Trained in place; on resume its weights are replaced by the checkpoint's. */
  model: CausalLM;
  tokenizer: Tokenizer;
  /**
   * The chat layout examples are encoded in (assistant masks), evaluations prompt with and stop at,
   * and padding uses: a pretrained model's `chat` from `loadPretrained`/`loadCheckpoint`. Default ChatML.
   */
  chat?: ChatFormat;
  /** Path of an SFT JSONL data set (see `distill`) or its records. */
  train: string | SftRecord[];
  /** Difficulty rank of a record (0 = easiest) for `curriculum`; absent: every record is 0. */
  levels?: (record: SftRecord) => number;
  /** Held-out tasks evaluated every `evalEvery` steps and at the end (needs `sandbox`). */
  eval?: TaskRecord[];
  sandbox?: Sandbox;
  config?: SftConfigInput;
  /** Receives `metrics.jsonl` and `checkpoints/step-NNNNNNNN/`; a run found here is resumed. */
  outDir: string;
  /** The chat model evaluations generate with (default: core-tensors' LocalChatModel). */
  chatModel?: (model: CausalLM, tokenizer: Tokenizer) => ChatModel;
  /**
   * What computes the default chat model's logits in held-out evaluations (core-tensors'
   * `generate` engine): 'tfjs' (default), 'onnx' (falls back to tfjs with a warning on `logger`
   * where onnxruntime-node cannot run the model, e.g. with active LoRA adapters) or 'auto'.
   */
  engine?: GenerationEngine;
  /** onnxruntime's intra-op threads for the onnx engine (core-tensors' default: 1). */
  onnxThreads?: number;
  /** How the onnx engine's graph holds the weights (core-tensors' default 'auto': see `GenerateOptions.onnxWeights`). */
  onnxWeights?: OnnxWeightsMode;
  onMetrics?: (metrics: SftMetrics) => void;
  onProgress?: (event: ProgressEvent) => void;
  logger?: Logger;
  /**
   * Checked after every step (and between evaluation batches): when it fires, the step in flight
   * finishes, a checkpoint is written and `train()` returns with `stopped: 'aborted'`; the same
   * call again resumes exactly there.
   */
  signal?: AbortSignal;
}

/** The options of `trainSft` (the same as `SftTrainer`'s). */
export type TrainSftOptions = SftTrainerOptions;

export interface SftResult {
  /** Optimizer steps done in total (equals `config.steps` unless the run stopped early). */
  steps: number;
  /** `stopped === 'steps'`: every step ran and the final checkpoint and evaluation are written. */
  completed: boolean;
  /** Why the call returned: all `steps` done, `maxSeconds` reached, or `signal` aborted (re-run the same call to resume). */
  stopped: 'steps' | 'maxSeconds' | 'aborted';
  /** Worker threads used for gradients and evaluation (1 = in-process). */
  workers: number;
  /** What computed the steps' gradients (`trainEngine: 'auto'` resolved). */
  trainEngine: 'tfjs' | 'onnx';
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

/**
 * The ONNX training sessions of `trainEngine: 'onnx'` (one single-threaded session per worker
 * thread, see `OnnxTrainPool`), or why the model cannot use them. Where the threads do not start,
 * one session in-process, with a warning: threads only change speed.
 */
async function openOnnxTrainPool(
  model: CausalLM,
  workers: number,
  logger: Logger | undefined,
): Promise<OnnxTrainPool | { unsupported: string }> {
  const unsupported = onnxTrainUnsupported(model);
  if (unsupported !== undefined) return { unsupported };
  // Reading them also marks the base weights as changed (the model no longer matches its source).
  if (model.trainableVariables.length === 0)
    return { unsupported: 'the model has no trainable variables (a frozen clone?)' };
  try {
    try {
      return await OnnxTrainPool.create(model.config, workers);
    } catch (error) {
      if (!(error instanceof ModelWorkerError) || error.code !== 'MODEL_WORKER_START_FAILED')
        throw error;
      logger?.warn(
        `sft: onnx training threads did not start (${error.message}); training on one session in-process`,
      );
      return await OnnxTrainPool.create(model.config, 1);
    }
  } catch (error) {
    return {
      unsupported: `onnxruntime refused the training graph (${error instanceof Error ? error.message : String(error)})`,
    };
  }
}

/**
 * Supervised fine-tuning on assistant tokens only: length-bucketed micro-batches, gradient
 * accumulation weighted by token count (so the update equals that of one big batch), global-norm
 * clipping, AdamW with linear warmup + cosine decay. Checkpoints every `checkpointEvery` steps and
 * at the end; a run found in `outDir` resumes from its latest checkpoint with the same data order
 * and reaches the same weights as an uninterrupted run. Metrics go to `<outDir>/metrics.jsonl`.
 *
 * The same shape as grpo's `GrpoTrainer`: options (model, tokenizer, config, outDir, onMetrics,
 * onProgress, logger, signal) at construction, `train()` runs or resumes, `dispose()` frees the
 * optimizer. The pieces: `batching.ts` (the step's batches, `SftBatchSource`), `update.ts` (one
 * optimizer step), `metrics.ts`, `run-state.ts` (checkpoints, resume, metrics.jsonl).
 */
export class SftTrainer {
  readonly config: SftConfig;
  private readonly options: SftTrainerOptions;
  private readonly optimizer: AdamW;
  private running = false;

  constructor(options: SftTrainerOptions) {
    this.options = options;
    this.config = resolveSftConfig(options.config);
    const config = this.config;
    this.optimizer = new AdamW({
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
  }

  /** Runs (or resumes, from the newest checkpoint in `outDir`) training; the model is updated in place. */
  async train(): Promise<SftResult> {
    if (this.running)
      throw new SftTrainingError(
        'SFT_RESUME_FAILED',
        `train() is already running on this trainer (outDir ${this.options.outDir})`,
      );
    this.running = true;
    try {
      return await this.run();
    } finally {
      this.running = false;
    }
  }

  /** Frees the optimizer state and the copy held-out generation left on the model (the model belongs to the caller). */
  dispose(): void {
    this.optimizer.dispose();
    this.options.model.releaseDecodeCache();
  }

  /** The run's examples (too long or empty ones dropped, with a warning) and its batches. */
  private async prepareData(): Promise<{
    examples: EncodedExample[];
    /** What the batches are made of: `examples`, or packed rows of them. */
    rows: EncodedExample[];
    droppedTooLong: number;
    batches: SftBatchSource;
  }> {
    const { options, config } = this;
    const { model, tokenizer, logger } = options;
    const records =
      typeof options.train === 'string' ? await readSftDataset(options.train) : options.train;
    const conversations = records.map((record) => trainingMessages(record, config.reasoning));
    const maxLen = Math.min(config.maxSeqLen, model.config.maxPositionEmbeddings);
    const chat = options.chat ?? chatMLFormat(tokenizer);
    const { examples, kept, droppedTooLong, droppedEmpty } = encodeExamples(
      conversations,
      chat,
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
    // packed rows (several conversations each) or one conversation per row
    const rows = config.packing ? packForTraining(examples, maxLen, logger) : examples;
    const planOptions = {
      batchSize: config.batchSize,
      bucketBatches: config.bucketBatches,
      seed: config.seed,
    };
    const rowLengths = rows.map((row) => row.ids.length);
    const batches = new BucketedBatchSource(rows, {
      // easy rows first in every epoch (curriculum.ts), else the shuffled length-bucketed plan
      planner: config.curriculum
        ? curriculumPlanner(rowLengths, rowLevels(rows, kept, records, options.levels), planOptions)
        : undefined,
      batchSize: config.batchSize,
      bucketBatches: config.bucketBatches,
      seed: config.seed,
      gradientAccumulation: config.gradientAccumulation,
      padId: chat.padTokenId,
    });
    return { examples, rows, droppedTooLong, batches };
  }

  private async run(): Promise<SftResult> {
    const { options, config, optimizer } = this;
    const { model, tokenizer, logger, signal } = options;
    const { examples, rows, droppedTooLong, batches } = await this.prepareData();
    const runContext: SftRunContext = {
      outDir: options.outDir,
      config,
      model,
      tokenizer,
      optimizer,
      dataFingerprint: dataFingerprint(rows),
      examples: examples.length,
      logger,
    };
    const metricsPath = join(options.outDir, 'metrics.jsonl');
    const checkpointsDir = join(options.outDir, 'checkpoints');
    await mkdir(checkpointsDir, { recursive: true });

    const resumedFrom = await restoreSftRun(runContext);
    const startStep = resumedFrom ?? 0;
    let lastCheckpoint =
      resumedFrom === undefined ? '' : join(checkpointsDir, checkpointName(startStep));
    const reconciled = await reconcileMetrics(metricsPath, startStep, logger);
    const evaluations = reconciled.evaluations;
    let finalLoss = reconciled.finalLoss;

    const emit = async (metric: SftMetrics): Promise<void> => {
      await appendJsonLines(metricsPath, [metric]);
      options.onMetrics?.(metric);
    };
    // a function, not a narrowed property: the signal fires while steps run
    const isAborted = (): boolean => signal?.aborted === true;
    const heldOut = new HeldOutEval({
      model,
      tokenizer,
      tasks: options.eval,
      sandbox: options.sandbox,
      config,
      chat: options.chat,
      chatModel: options.chatModel,
      engine: options.engine,
      onnxThreads: options.onnxThreads,
      onnxWeights: options.onnxWeights,
      onProgress: options.onProgress,
      logger,
      signal,
    });
    let pool: ModelWorkerPool | undefined;
    let onnx: OnnxTrainPool | undefined;
    /** Evaluates at `step`; false when `signal` stopped it (nothing is recorded then). */
    const runEval = async (step: number): Promise<boolean> => {
      const metric = await heldOut.run(step, pool);
      if (metric === 'aborted') return false;
      if (metric !== undefined) {
        evaluations.push(metric);
        await emit(metric);
      }
      return true;
    };
    const checkpoint = async (step: number): Promise<void> => {
      lastCheckpoint = await saveSftCheckpoint(runContext, step, finalLoss);
    };

    const started = performance.now();
    let step = startStep;
    let stopped: SftResult['stopped'] = 'steps';
    try {
      pool = await startPool(model, config.workers, logger);
      // as many single-threaded ONNX sessions as the pool has workers, each on its own shards
      if (config.trainEngine !== 'tfjs') {
        const opened = await openOnnxTrainPool(model, Math.max(1, pool.size), logger);
        if (!('unsupported' in opened)) onnx = opened;
        else if (config.trainEngine === 'onnx')
          throw new SftTrainingError(
            'SFT_ENGINE_UNSUPPORTED',
            `trainEngine 'onnx' cannot train this model: ${opened.unsupported}; use trainEngine 'tfjs' (or 'auto', which falls back to it)`,
          );
        else logger?.info(`sft: trainEngine 'auto' trains on tfjs: ${opened.unsupported}`);
      }
      const parts = onnx === undefined ? Math.max(1, pool.size) : onnx.size;
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
        // LoRA dropout masks from (seed, step): a resumed run draws the same ones.
        model.seedAdapterDropout(config.seed * 1_000_003 + step);
        // every micro-batch split by rows into one shard per thread; one gradient call per step
        const { shards, epoch } = batches.step(step, parts);
        const update = await sftUpdate({
          pool,
          optimizer,
          shards,
          maxGradNorm: config.maxGradNorm,
          step,
          peakLearningRate: config.learningRate,
          ...(onnx === undefined ? {} : { onnx: { sessions: onnx, model } }),
        });
        step++;
        finalLoss = update.loss;
        const seconds = (performance.now() - t0) / 1000;
        await emit({
          kind: 'step',
          step,
          epoch,
          loss: update.loss,
          learningRate: update.learningRate,
          gradNorm: update.gradNorm,
          targetTokens: update.targetTokens,
          tokensPerSecond: update.realTokens / Math.max(seconds, 1e-9),
          elapsedSeconds: (performance.now() - started) / 1000,
        });
        options.onProgress?.({
          stage: 'sft',
          completed: step,
          total: config.steps,
          detail: {
            loss: Number(update.loss.toFixed(4)),
            lr: Number(update.learningRate.toExponential(2)),
          },
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
      await pool?.close();
      await onnx?.release();
    }
    return {
      steps: step,
      completed: stopped === 'steps',
      stopped,
      workers: Math.max(1, pool?.size ?? 0),
      trainEngine: onnx === undefined ? 'tfjs' : 'onnx',
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
}

/**
 * Trains (or resumes) one SFT run: `new SftTrainer(options).train()`, then frees the trainer.
 * See `SftTrainer`.
 */
export async function trainSft(options: TrainSftOptions): Promise<SftResult> {
  const trainer = new SftTrainer(options);
  try {
    return await trainer.train();
  } finally {
    trainer.dispose();
  }
}
