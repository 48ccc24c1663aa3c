import { join } from 'node:path';
import { AUTO_WORKERS_MIN_PARAMETERS } from '@codereasoner/common';
import type { Tokenizer } from '@codereasoner/core-tensors';
import {
  AdamW,
  CausalLM,
  ConfigValidationError,
  Rng,
  appendJsonLine,
  createModelWorkerPool,
  chatMLFormat,
  defaultWorkerCount,
  warmupCosine,
  type ChatFormat,
  type Logger,
  type ModelWorkerPool,
  type OnnxTrainPool,
  type ProgressEvent,
} from '@codereasoner/core-tensors';
import {
  grpoConfigWarnings,
  resolveGrpoConfig,
  type GrpoConfig,
  type GrpoConfigInput,
} from './config.js';
import { DataOrder } from './data-order.js';
import { GrpoResumeError, GrpoTrainEngineError } from './errors.js';
import { stepMetrics, type GrpoStepMetrics } from './metrics.js';
import { onnxTrainEngineUnsupported, openOnnxPolicyStep } from './onnx-update.js';
import { trainOnRollouts } from './policy-update.js';
import { validateRewardSpecs, type RewardSpec } from './rewards.js';
import { encodePrompts, now, rollout, type GrpoDatasetRow, type RolloutRecord } from './rollout.js';
import {
  checkpointStep,
  loadOrCreateReference,
  prepareRunFiles,
  restoreRun,
  sameState,
  saveRunCheckpoint,
  type GrpoRunState,
  type RunFilesContext,
} from './run-state.js';

export type { GrpoDatasetRow } from './rollout.js';

export interface GrpoTrainerOptions {
  /** Trained in place. Must have trainable variables (not a frozen clone). */
  policy: CausalLM;
  tokenizer: Tokenizer;
  /**
   * How chat prompts become ids, where rollouts stop and what pads: a pretrained model's `chat`
   * from `loadPretrained`/`loadCheckpoint` (its template, its eos ids). Default ChatML, stopping
   * at `<|im_end|>` or `<|endoftext|>`.
   */
  chat?: ChatFormat;
  config?: GrpoConfigInput;
  rewards: RewardSpec[];
  dataset: readonly GrpoDatasetRow[];
  /**
   * Where metrics.jsonl, rollouts.jsonl, checkpoints/ and reference/ go. With it, `train()`
   * resumes from the newest readable checkpoint and replays journaled rollouts after it.
   */
  outDir?: string;
  onMetrics?: (metrics: GrpoStepMetrics) => void;
  onProgress?: (event: ProgressEvent) => void;
  logger?: Logger;
  /** Checked between steps: when aborted, the trainer checkpoints and returns `stopped: 'aborted'`. */
  signal?: AbortSignal;
}

export interface GrpoResult {
  config: GrpoConfig;
  /** Steps completed in total, including those before a resume. */
  steps: number;
  /** Optimizer updates in total. */
  updates: number;
  /** The checkpoint step this call resumed from (null: started fresh). */
  resumedFromStep: number | null;
  /** Steps whose rollouts came from the journal instead of being generated and scored again. */
  replayedSteps: number;
  /** Metrics of the steps this call ran. */
  metrics: GrpoStepMetrics[];
  /** The last checkpoint written (null without outDir). */
  checkpoint: string | null;
  stopped: 'maxSteps' | 'aborted';
  /** Worker threads this call ran rollouts and gradients on (1: in-process). */
  workers: number;
  /** What computed this call's policy gradients (`trainEngine: 'auto'` resolved). */
  trainEngine: 'tfjs' | 'onnx';
}

/**
 * GRPO on a `CausalLM`: per step, sample G completions for each prompt, score them with the reward
 * functions, compute group-relative advantages, and run `numIterations` × `stepsPerGeneration`
 * AdamW updates of the clipped surrogate (plus beta·k3 KL to a frozen copy of the initial policy).
 *
 * The pieces: `rollout.ts` (generation and rewards, journaled), `micro-batch.ts` (the padded
 * arrays and masks), `policy-update.ts` (advantages, log-probs, updates), `metrics.ts` (step
 * metrics), `run-state.ts` (checkpoints, resume, outDir files). This class sequences them.
 */
export class GrpoTrainer {
  readonly config: GrpoConfig;
  private readonly options: GrpoTrainerOptions;
  private readonly policy: CausalLM;
  private readonly tokenizer: Tokenizer;
  private readonly chat: ChatFormat;
  private readonly rewards: RewardSpec[];
  private readonly dataset: readonly GrpoDatasetRow[];
  private readonly promptIds: number[][];
  private readonly optimizer: AdamW;
  private readonly state: GrpoRunState;
  private reference: CausalLM | undefined;
  private running = false;

  constructor(options: GrpoTrainerOptions) {
    this.options = options;
    this.config = resolveGrpoConfig(options.config ?? {});
    validateRewardSpecs(options.rewards);
    const { policy, tokenizer, dataset } = options;
    if (!(policy instanceof CausalLM))
      throw new ConfigValidationError('GrpoTrainer options', ['/policy: must be a CausalLM']);
    if (policy.trainableVariables.length === 0) {
      throw new ConfigValidationError('GrpoTrainer options', [
        '/policy: has no trainable variables (a frozen clone?); pass the model to train',
      ]);
    }
    if (tokenizer.vocabSize > policy.config.vocabSize) {
      throw new ConfigValidationError('GrpoTrainer options', [
        `/tokenizer: has ${tokenizer.vocabSize} tokens but the policy only ${policy.config.vocabSize}; use the tokenizer the model was trained with`,
      ]);
    }
    if (!Array.isArray(dataset) || dataset.length === 0) {
      throw new ConfigValidationError('GrpoTrainer options', [
        '/dataset: must be a non-empty array of { prompt, ...columns }',
      ]);
    }
    this.policy = policy;
    this.tokenizer = tokenizer;
    this.chat = options.chat ?? chatMLFormat(tokenizer);
    this.rewards = options.rewards;
    this.dataset = dataset;
    const c = this.config;
    this.promptIds = encodePrompts(
      dataset,
      tokenizer,
      this.chat,
      c.maxCompletionLength,
      policy.config.maxPositionEmbeddings,
    );
    const totalUpdates = c.maxSteps * c.stepsPerGeneration * c.numIterations;
    const schedule =
      c.lrSchedule === 'cosine'
        ? warmupCosine({
            peak: c.learningRate,
            warmupSteps: c.warmupSteps,
            totalSteps: totalUpdates,
            minRatio: c.minLearningRateRatio,
          })
        : (update: number) =>
            update < c.warmupSteps
              ? (c.learningRate * (update + 1)) / c.warmupSteps
              : c.learningRate;
    this.optimizer = new AdamW({
      learningRate: schedule,
      beta1: c.adamBeta1,
      beta2: c.adamBeta2,
      epsilon: c.adamEpsilon,
      weightDecay: c.weightDecay,
    });
    this.state = {
      step: 0,
      updates: 0,
      numTokens: 0,
      rng: new Rng(c.seed),
      data: new DataOrder(dataset.length, { seed: c.seed, shuffle: c.shuffleDataset }),
      lastCheckpoint: null,
    };
    for (const warning of grpoConfigWarnings(c)) options.logger?.warn(warning);
    if (c.trainEngine === 'onnx') {
      const unsupported = onnxTrainEngineUnsupported(c, policy);
      if (unsupported !== undefined) throw onnxRefusal(unsupported);
    }
  }

  /** Runs (or resumes) training until `maxSteps`; the policy is updated in place. */
  async train(): Promise<GrpoResult> {
    if (this.running)
      throw new GrpoResumeError(
        this.options.outDir ?? '(memory)',
        'train() is already running on this trainer',
      );
    this.running = true;
    let pool: ModelWorkerPool | undefined;
    try {
      // No threads (workers 1): the pool runs every call in-process on the policy.
      pool = await createModelWorkerPool({ model: this.policy, workers: this.workerCount() });
      const onnx = await this.openTrainEngine(pool);
      try {
        return await this.run(pool, onnx);
      } finally {
        await onnx?.release();
      }
    } finally {
      this.running = false;
      await pool?.close();
    }
  }

  /** The ONNX training step for `trainEngine` onnx/auto (one single-threaded session per worker of the pool), or undefined: tfjs. */
  private async openTrainEngine(pool: ModelWorkerPool): Promise<OnnxTrainPool | undefined> {
    const c = this.config;
    if (c.trainEngine === 'tfjs') return undefined;
    const opened = await openOnnxPolicyStep(
      c,
      this.policy,
      this.tokenizer.vocabSize,
      Math.max(1, pool.size),
    );
    if (!('unsupported' in opened)) {
      this.options.logger?.info(
        `grpo: policy gradients computed with onnx (trainEngine ${c.trainEngine})`,
      );
      return opened;
    }
    if (c.trainEngine === 'onnx') throw onnxRefusal(opened.unsupported);
    this.options.logger?.info(`grpo: trainEngine 'auto' trains on tfjs: ${opened.unsupported}`);
    return undefined;
  }

  /** Threads for this run: `workers`, or for 'auto' every core on the wasm/cpu backends when the policy is big enough to gain. */
  private workerCount(): number {
    const { workers } = this.config;
    if (workers !== 'auto') return workers;
    // Worker replicas copy base weights only; LoRA adapters train in-process.
    if (this.policy.loraConfig !== undefined) return 1;
    if (this.policy.numParameters() < AUTO_WORKERS_MIN_PARAMETERS) return 1;
    return defaultWorkerCount();
  }

  private filesContext(outDir: string): RunFilesContext {
    return {
      outDir,
      config: this.config,
      policy: this.policy,
      tokenizer: this.tokenizer,
      optimizer: this.optimizer,
      rewards: this.rewards,
      datasetSize: this.dataset.length,
      logger: this.options.logger,
    };
  }

  private async run(pool: ModelWorkerPool, onnx: OnnxTrainPool | undefined): Promise<GrpoResult> {
    const { outDir, signal, logger } = this.options;
    const c = this.config;
    const state = this.state;
    const files = outDir === undefined ? undefined : this.filesContext(outDir);
    const resumedFromStep = files === undefined ? null : await restoreRun(files, state);
    const replay =
      files === undefined
        ? new Map<number, RolloutRecord>()
        : await prepareRunFiles(files, state.step);
    this.reference ??= await loadOrCreateReference({
      config: c,
      policy: this.policy,
      tokenizer: this.tokenizer,
      outDir,
      resumedFromStep,
    });
    const metrics: GrpoStepMetrics[] = [];
    let replayedSteps = 0;
    let engineNoted = false;
    let stopped: GrpoResult['stopped'] = 'maxSteps';
    while (state.step < c.maxSteps) {
      if (signal?.aborted === true) {
        stopped = 'aborted';
        break;
      }
      const stepNumber = state.step + 1;
      let record = replay.get(stepNumber);
      if (
        record !== undefined &&
        (!sameState(record.rngBefore, state.rng.getState()) ||
          !sameState(record.dataBefore, state.data.position))
      ) {
        logger?.warn(
          `rollouts.jsonl: step ${stepNumber} was recorded from another state; generating it again`,
        );
        record = undefined;
      }
      if (record !== undefined) {
        state.rng = Rng.fromState(record.rngAfter);
        state.data.position = record.dataAfter;
        replayedSteps += 1;
      } else {
        record = await rollout(
          {
            config: c,
            tokenizer: this.tokenizer,
            chat: this.chat,
            rewards: this.rewards,
            dataset: this.dataset,
            promptIds: this.promptIds,
            pool,
            rng: state.rng,
            data: state.data,
            logger,
          },
          stepNumber,
        );
        if (!engineNoted && record.engine !== undefined) {
          // once per run: which code generated the rollouts (a fallback from 'onnx' is also warned by core-tensors)
          engineNoted = true;
          const { engine, fallbackReason } = record.engine;
          logger?.info(
            `grpo: rollouts generated with ${engine} (engine ${c.engine}${fallbackReason === undefined ? '' : `; fell back: ${fallbackReason}`})`,
          );
        }
        if (outDir !== undefined && c.journalRollouts)
          await appendJsonLine(join(outDir, 'rollouts.jsonl'), record);
      }
      const trainStart = now();
      const updates = await trainOnRollouts(
        {
          config: c,
          policy: this.policy,
          reference: this.reference,
          optimizer: this.optimizer,
          pool,
          onnx,
          rewards: this.rewards,
          promptIds: this.promptIds,
          padId: this.chat.padTokenId,
          vocabLimit: this.tokenizer.vocabSize,
          rng: state.rng,
          counters: state,
          logger,
        },
        record,
      );
      const trainSeconds = now() - trainStart;
      state.step = stepNumber;
      const m = stepMetrics({
        config: c,
        rewards: this.rewards,
        record,
        updates,
        trainSeconds,
        epoch: state.data.epochs,
        numUpdates: state.updates,
        numTokens: state.numTokens,
        nextLearningRate: this.optimizer.learningRate,
        withKl: this.reference !== undefined,
      });
      metrics.push(m);
      if (files !== undefined) {
        await appendJsonLine(join(files.outDir, 'metrics.jsonl'), m);
        if ((c.saveSteps > 0 && state.step % c.saveSteps === 0) || state.step === c.maxSteps)
          await saveRunCheckpoint(files, state);
      }
      this.options.onMetrics?.(m);
      this.options.onProgress?.({
        stage: 'grpo',
        completed: state.step,
        total: c.maxSteps,
        detail: { reward: m.reward, loss: m.loss },
      });
    }
    if (
      files !== undefined &&
      stopped === 'aborted' &&
      checkpointStep(state.lastCheckpoint) !== state.step
    )
      await saveRunCheckpoint(files, state);
    return {
      config: c,
      steps: state.step,
      updates: state.updates,
      resumedFromStep,
      replayedSteps,
      metrics,
      checkpoint: state.lastCheckpoint,
      stopped,
      workers: Math.max(1, pool.size),
      trainEngine: onnx === undefined ? 'tfjs' : 'onnx',
    };
  }

  /** Frees the reference model and the optimizer state (the policy belongs to the caller). */
  dispose(): void {
    this.reference?.dispose();
    this.reference = undefined;
    this.optimizer.dispose();
    // Rollouts left the fused decode path's copy of the projections on the policy.
    this.policy.releaseDecodeCache();
  }
}

function onnxRefusal(reason: string): GrpoTrainEngineError {
  return new GrpoTrainEngineError(
    `trainEngine 'onnx' cannot compute this run's policy gradients: ${reason}; use trainEngine 'tfjs' (or 'auto', which falls back to it)`,
  );
}
