import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tokenizer } from '@codereasoner/core-tensors';
import {
  AdamW,
  CausalLM,
  CheckpointError,
  ConfigValidationError,
  Rng,
  appendJsonLine,
  clipByGlobalNorm,
  computeGradients,
  createModelWorkerPool,
  defaultWorkerCount,
  encodeChat,
  loadCheckpoint,
  padBatch,
  readJsonLines,
  saveCheckpoint,
  tf,
  warmupCosine,
  writeFileAtomic,
  writeJsonLines,
  type ChatMessage,
  type Logger,
  type ModelWorkerPool,
  type ShardData,
  type WorkerLossRef,
  type OptimizerState,
  type ProgressEvent,
  type RngState,
} from '@codereasoner/core-tensors';
import { groupAdvantages } from './advantages.js';
import {
  grpoConfigWarnings,
  resolveGrpoConfig,
  type GrpoConfig,
  type GrpoConfigInput,
} from './config.js';
import { GrpoDatasetError, GrpoResumeError, assertFinite } from './errors.js';
import { meanOf, stdOf, type GrpoStepMetrics } from './metrics.js';
import { grpoLossReference, lossNormalizer, type StepCounts } from './policy-loss.js';
import { scoreCompletions, validateRewardSpecs, type RewardSpec } from './rewards.js';
import { grpoShardLoss, type GrpoShardOptions } from './shard-loss.js';

/** A training example: the prompt plus any columns the reward functions need (ground truth, task type, ...). */
export interface GrpoDatasetRow {
  /** Chat messages (rendered as ChatML with the assistant generation prompt) or raw text used as is. */
  prompt: ChatMessage[] | string;
  [column: string]: unknown;
}

export interface GrpoTrainerOptions {
  /** Trained in place. Must have trainable variables (not a frozen clone). */
  policy: CausalLM;
  tokenizer: Tokenizer;
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
}

interface DataPosition {
  epoch: number;
  offset: number;
}

interface JournalCompletion {
  ids: number[];
  finishReason: 'stop' | 'length';
}

interface JournalGroup {
  row: number;
  kept: boolean;
  completions: JournalCompletion[];
  /** Values per reward function name. */
  rewards: Record<string, (number | null)[]>;
}

/** One line of rollouts.jsonl: everything a step's training needs, written before training on it. */
interface RolloutRecord {
  format: 'codereasoner-grpo-rollouts';
  version: 1;
  step: number;
  rngBefore: RngState;
  rngAfter: RngState;
  dataBefore: DataPosition;
  dataAfter: DataPosition;
  generationBatches: number;
  groups: JournalGroup[];
  seconds: { generation: number; reward: number };
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

interface Sample {
  promptIds: number[];
  completionIds: number[];
  advantage: number;
  /** 0 when the completion is left out of the loss (maskTruncatedCompletions). */
  active: 0 | 1;
  oldLogProbs?: Float32Array;
  refLogProbs?: Float32Array;
}

interface UpdateStats {
  loss: number;
  policyLoss: number;
  klSum: number;
  entropySum: number;
  entropyTokens: number;
  clipLow: number;
  clipHigh: number;
  activeTokens: number;
  gradNorm: number;
  learningRate: number;
  tokens: number;
}

/** Options that may change between a run and its resumption (they do not change what a step computes). */
const RESUMABLE_CHANGES = new Set<keyof GrpoConfig>([
  'maxSteps',
  'saveSteps',
  'saveTotalLimit',
  'journalRollouts',
  // Threads change float rounding only (batch composition, summation), not what a step computes.
  'workers',
]);
const CHECKPOINT_DIR = /^step-(\d{8})(\.previous)?$/;
const GENERATION_BATCH = 64;
/**
 * `workers: 'auto'` starts threads only for policies at least this large: starting them costs
 * about a second, more than a whole run of a tiny model (tests, examples) takes; the default
 * small model (1.05 M parameters) spends seconds per step.
 */
const AUTO_WORKERS_MIN_PARAMETERS = 200_000;
// Worker threads import the loss by URL: the built entry next to this file, or the source under test.
const SHARD_LOSS: WorkerLossRef = {
  module: new URL(
    /\.ts$/.test(new URL(import.meta.url).pathname) ? './shard-loss.ts' : './shard-loss.js',
    import.meta.url,
  ),
  exportName: 'grpoShardLoss',
};

function now(): number {
  return performance.now() / 1000;
}

function sameState(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * GRPO on a `CausalLM`: per step, sample G completions for each prompt, score them with the reward
 * functions, compute group-relative advantages, and run `numIterations` × `stepsPerGeneration`
 * AdamW updates of the clipped surrogate (plus beta·k3 KL to a frozen copy of the initial policy).
 */
export class GrpoTrainer {
  readonly config: GrpoConfig;
  private readonly policy: CausalLM;
  private readonly tokenizer: Tokenizer;
  private readonly rewards: RewardSpec[];
  private readonly dataset: readonly GrpoDatasetRow[];
  private readonly promptIds: number[][];
  private readonly options: GrpoTrainerOptions;
  private readonly optimizer: AdamW;
  private reference: CausalLM | undefined;
  private rng: Rng;
  private position: DataPosition = { epoch: 0, offset: 0 };
  private order: { epoch: number; indices: number[] } | undefined;
  private step = 0;
  private updates = 0;
  private numTokens = 0;
  private lastCheckpoint: string | null = null;
  private running = false;
  private pool: ModelWorkerPool | undefined;

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
    this.rewards = options.rewards;
    this.dataset = dataset;
    const context = policy.config.maxPositionEmbeddings;
    this.promptIds = dataset.map((row, i) => {
      const ids = this.encodePrompt(row, i);
      if (ids.length + this.config.maxCompletionLength > context) {
        throw new GrpoDatasetError(
          i,
          `the prompt has ${ids.length} tokens; with maxCompletionLength ${this.config.maxCompletionLength} that exceeds the model's context of ${context}. Shorten the prompt, filter the row out, or lower maxCompletionLength.`,
        );
      }
      return ids;
    });
    const c = this.config;
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
    this.rng = new Rng(c.seed);
    for (const warning of grpoConfigWarnings(c)) options.logger?.warn(warning);
  }

  private encodePrompt(row: GrpoDatasetRow, index: number): number[] {
    if (typeof row !== 'object' || row === null)
      throw new GrpoDatasetError(index, 'must be an object { prompt, ...columns }');
    const { prompt } = row;
    let ids: number[];
    if (typeof prompt === 'string') ids = this.tokenizer.encode(prompt);
    else if (Array.isArray(prompt)) {
      try {
        ids = encodeChat(this.tokenizer, prompt, { addGenerationPrompt: true }).ids;
      } catch (error) {
        throw new GrpoDatasetError(index, `prompt: ${(error as Error).message}`);
      }
    } else
      throw new GrpoDatasetError(
        index,
        'prompt must be a string or an array of chat messages { role, content }',
      );
    if (ids.length === 0)
      throw new GrpoDatasetError(index, 'the prompt encodes to no tokens; give a non-empty prompt');
    return ids;
  }

  /** Runs (or resumes) training until `maxSteps`; the policy is updated in place. */
  async train(): Promise<GrpoResult> {
    if (this.running)
      throw new GrpoResumeError(
        this.options.outDir ?? '(memory)',
        'train() is already running on this trainer',
      );
    this.running = true;
    try {
      const workers = this.workerCount();
      if (workers > 1) this.pool = await createModelWorkerPool({ model: this.policy, workers });
      return await this.run();
    } finally {
      this.running = false;
      await this.pool?.close();
      this.pool = undefined;
    }
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

  private async run(): Promise<GrpoResult> {
    const { outDir, signal } = this.options;
    const c = this.config;
    const resumedFromStep = outDir === undefined ? null : await this.restore(outDir);
    const replay =
      outDir === undefined ? new Map<number, RolloutRecord>() : await this.prepareFiles(outDir);
    await this.prepareReference(outDir, resumedFromStep);
    const metrics: GrpoStepMetrics[] = [];
    let replayedSteps = 0;
    let stopped: GrpoResult['stopped'] = 'maxSteps';
    while (this.step < c.maxSteps) {
      if (signal?.aborted === true) {
        stopped = 'aborted';
        break;
      }
      const stepNumber = this.step + 1;
      let record = replay.get(stepNumber);
      if (
        record !== undefined &&
        (!sameState(record.rngBefore, this.rng.getState()) ||
          !sameState(record.dataBefore, this.position))
      ) {
        this.options.logger?.warn(
          `rollouts.jsonl: step ${stepNumber} was recorded from another state; generating it again`,
        );
        record = undefined;
      }
      if (record !== undefined) {
        this.rng = Rng.fromState(record.rngAfter);
        this.setPosition(record.dataAfter);
        replayedSteps += 1;
      } else {
        record = await this.rollout(stepNumber);
        if (outDir !== undefined && c.journalRollouts)
          await appendJsonLine(join(outDir, 'rollouts.jsonl'), record);
      }
      const trainStart = now();
      const stats = await this.trainOn(record);
      const trainSeconds = now() - trainStart;
      this.step = stepNumber;
      const m = this.stepMetrics(record, stats, trainSeconds);
      metrics.push(m);
      if (outDir !== undefined) {
        await appendJsonLine(join(outDir, 'metrics.jsonl'), m);
        if ((c.saveSteps > 0 && this.step % c.saveSteps === 0) || this.step === c.maxSteps)
          await this.checkpoint(outDir);
      }
      this.options.onMetrics?.(m);
      this.options.onProgress?.({
        stage: 'grpo',
        completed: this.step,
        total: c.maxSteps,
        detail: { reward: m.reward, loss: m.loss },
      });
    }
    if (outDir !== undefined && stopped === 'aborted' && this.lastCheckpointStep() !== this.step)
      await this.checkpoint(outDir);
    return {
      config: c,
      steps: this.step,
      updates: this.updates,
      resumedFromStep,
      replayedSteps,
      metrics,
      checkpoint: this.lastCheckpoint,
      stopped,
      workers: this.pool?.size ?? 1,
    };
  }

  private lastCheckpointStep(): number | null {
    if (this.lastCheckpoint === null) return null;
    const match = CHECKPOINT_DIR.exec(this.lastCheckpoint.split(/[\\/]/).pop() ?? '');
    return match === null ? null : Number(match[1]);
  }

  // ---- data order -------------------------------------------------------------------------

  private epochOrder(epoch: number): number[] {
    if (this.order?.epoch === epoch) return this.order.indices;
    const indices = this.dataset.map((_, i) => i);
    // A generator per epoch, derived from the seed alone, so the order never depends on resume history.
    if (this.config.shuffleDataset)
      new Rng((this.config.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0).shuffle(indices);
    this.order = { epoch, indices };
    return indices;
  }

  private takeRows(count: number): number[] {
    const rows: number[] = [];
    while (rows.length < count) {
      const order = this.epochOrder(this.position.epoch);
      rows.push(order[this.position.offset]!);
      this.position.offset += 1;
      if (this.position.offset >= order.length)
        this.position = { epoch: this.position.epoch + 1, offset: 0 };
    }
    return rows;
  }

  private setPosition(position: DataPosition): void {
    this.position = { epoch: position.epoch, offset: position.offset };
  }

  // ---- rollout ----------------------------------------------------------------------------

  private async rollout(step: number): Promise<RolloutRecord> {
    const c = this.config;
    const G = c.numGenerations;
    const promptsPerStep = c.generationBatchSize / G;
    const rngBefore = this.rng.getState();
    const dataBefore = { ...this.position };
    const groups: JournalGroup[] = [];
    let generationSeconds = 0;
    let rewardSeconds = 0;
    let generationBatches = 0;
    let kept = 0;
    const stopTokens = [this.tokenizer.special.imEnd, this.tokenizer.special.eos];
    for (;;) {
      const rows = this.takeRows(promptsPerStep);
      generationBatches += 1;
      const seed = this.rng.int(0x7fffffff);
      const prompts = rows.flatMap((r) => new Array<number[]>(G).fill(this.promptIds[r]!));
      let t = now();
      // With threads, batches small enough that every thread gets one (each batch decodes whole on one thread).
      const batchSize =
        this.pool === undefined
          ? GENERATION_BATCH
          : Math.min(GENERATION_BATCH, Math.ceil(prompts.length / this.pool.size));
      const outputs = await (this.pool ?? this.policy).generate(prompts, {
        maxNewTokens: c.maxCompletionLength,
        temperature: c.temperature,
        ...(c.topK > 0 ? { topK: c.topK } : {}),
        ...(c.topP < 1 ? { topP: c.topP } : {}),
        stopTokens,
        seed,
        batchSize,
        // A padded model vocabulary has ids the tokenizer cannot decode: never sample them.
        vocabLimit: this.tokenizer.vocabSize,
      });
      generationSeconds += now() - t;
      const completions = outputs.map((o) => ({ ids: o.tokens, finishReason: o.finishReason }));
      t = now();
      const scores = await scoreCompletions(this.rewards, {
        prompts: rows.flatMap((r) =>
          new Array<ChatMessage[] | string>(G).fill(this.dataset[r]!.prompt),
        ),
        completions: completions.map((o) => this.decodeCompletion(o)),
        completionIds: completions.map((o) => o.ids),
        rows: rows.flatMap((r) => new Array<Record<string, unknown>>(G).fill(this.dataset[r]!)),
        finishReasons: completions.map((o) => o.finishReason),
        step,
      });
      rewardSeconds += now() - t;
      const { groups: stats } = groupAdvantages(scores.total, {
        groupSize: G,
        scaleRewards: c.scaleRewards,
        epsilon: c.advantageEpsilon,
      });
      rows.forEach((row, g) => {
        const informative = stats[g]!.status === 'informative';
        const keep = (!c.dynamicSampling || informative) && kept < promptsPerStep;
        if (keep) kept += 1;
        const rewards: Record<string, (number | null)[]> = {};
        for (const f of scores.perFunction) rewards[f.name] = f.values.slice(g * G, (g + 1) * G);
        groups.push({
          row,
          kept: keep,
          completions: completions.slice(g * G, (g + 1) * G),
          rewards,
        });
      });
      if (!c.dynamicSampling || kept >= promptsPerStep) break;
      if (generationBatches >= c.maxGenerationBatches) {
        this.options.logger?.warn(
          `step ${step}: dynamic sampling found ${kept} of ${promptsPerStep} informative groups in ${generationBatches} generation batches (maxGenerationBatches); training on those`,
        );
        break;
      }
    }
    return {
      format: 'codereasoner-grpo-rollouts',
      version: 1,
      step,
      rngBefore,
      rngAfter: this.rng.getState(),
      dataBefore,
      dataAfter: { ...this.position },
      generationBatches,
      groups,
      seconds: { generation: generationSeconds, reward: rewardSeconds },
    };
  }

  private decodeCompletion(completion: JournalCompletion): string {
    const ids = completion.finishReason === 'stop' ? completion.ids.slice(0, -1) : completion.ids;
    // A model may be wider than its tokenizer (padded vocabulary): ids the tokenizer lacks read as U+FFFD.
    const size = this.tokenizer.vocabSize;
    if (ids.every((id) => id < size)) return this.tokenizer.decode(ids);
    let text = '';
    let run: number[] = [];
    for (const id of ids) {
      if (id < size) run.push(id);
      else {
        text += `${this.tokenizer.decode(run)}\uFFFD`;
        run = [];
      }
    }
    return text + this.tokenizer.decode(run);
  }

  private totals(group: JournalGroup): (number | null)[] {
    const G = group.completions.length;
    const total = new Array<number | null>(G).fill(null);
    for (const spec of this.rewards) {
      const values = group.rewards[spec.name];
      if (values === undefined)
        throw new GrpoResumeError(
          'rollouts.jsonl',
          `a journaled group has no values for reward '${spec.name}'`,
        );
      values.forEach((v, i) => {
        if (v !== null) total[i] = (total[i] ?? 0) + (spec.weight ?? 1) * v;
      });
    }
    return total;
  }

  // ---- training ---------------------------------------------------------------------------

  private async trainOn(record: RolloutRecord): Promise<UpdateStats[]> {
    const c = this.config;
    const kept = record.groups.filter((g) => g.kept);
    if (kept.length === 0) {
      this.options.logger?.warn(
        `step ${record.step}: no group to train on; the policy is unchanged this step`,
      );
      return [];
    }
    const { advantages } = groupAdvantages(
      kept.flatMap((g) => this.totals(g)),
      {
        groupSize: c.numGenerations,
        scaleRewards: c.scaleRewards,
        epsilon: c.advantageEpsilon,
      },
    );
    const samples: Sample[] = kept.flatMap((g) =>
      g.completions.map((o) => ({
        promptIds: this.promptIds[g.row]!,
        completionIds: o.ids,
        advantage: 0,
        active: c.maskTruncatedCompletions && o.finishReason === 'length' ? 0 : 1,
      })),
    );
    samples.forEach((s, i) => (s.advantage = advantages[i]!));
    for (const s of samples) this.numTokens += s.promptIds.length + s.completionIds.length;

    const offPolicy = c.numIterations > 1 || c.stepsPerGeneration > 1;
    if (offPolicy) this.recordLogProbs(this.policy, samples, 'oldLogProbs', record.step);
    if (this.reference !== undefined)
      this.recordLogProbs(this.reference, samples, 'refLogProbs', record.step);
    const order = samples.map((_, i) => i);
    if (c.stepsPerGeneration > 1) this.rng.shuffle(order);
    const sliceSize = Math.ceil(samples.length / c.stepsPerGeneration);
    const slices = chunk(order, sliceSize).map((idx) => idx.map((i) => samples[i]!));
    const stats: UpdateStats[] = [];
    for (let iteration = 0; iteration < c.numIterations; iteration++) {
      for (const [s, slice] of slices.entries()) {
        stats.push(
          await this.update(
            slice,
            iteration === 0,
            offPolicy,
            `step ${record.step}, iteration ${iteration + 1}, update ${s + 1}`,
          ),
        );
      }
    }
    return stats;
  }

  /** Tensors of a micro-batch: prompt+completion ids, attention mask, and the [B, T−1] completion mask. */
  private batchTensors(samples: readonly Sample[]) {
    const sequences = samples.map((s) => [...s.promptIds, ...s.completionIds]);
    const time = Math.max(...sequences.map((s) => s.length));
    const { inputIds, attentionMask } = padBatch(sequences, this.tokenizer.special.pad);
    const width = time - 1;
    const mask = new Float32Array(samples.length * width);
    // Every completion position, active or not: only these rows go through the LM head.
    const completion = new Float32Array(samples.length * width);
    // logProbs[b, j] scores token j+1, so completion token k (at P + k) is scored at column P − 1 + k.
    samples.forEach((s, b) => {
      const first = b * width + s.promptIds.length - 1;
      mask.fill(s.active, first, first + s.completionIds.length);
      completion.fill(1, first, first + s.completionIds.length);
    });
    const targetMask = tf.tensor2d(completion, [samples.length, width]);
    return { inputIds, attentionMask, mask, targetMask, width };
  }

  private scatter(
    samples: readonly Sample[],
    width: number,
    key: 'oldLogProbs' | 'refLogProbs',
  ): Float32Array {
    const out = new Float32Array(samples.length * width);
    samples.forEach((s, b) => out.set(s[key]!, b * width + s.promptIds.length - 1));
    return out;
  }

  private gather(values: ArrayLike<number>, samples: readonly Sample[], width: number): number[][] {
    return samples.map((s, b) => {
      const first = b * width + s.promptIds.length - 1;
      return Array.from({ length: s.completionIds.length }, (_, k) => values[first + k]!);
    });
  }

  /** Log-probs of each completion under `model` (no gradient), stored on the samples. */
  private recordLogProbs(
    model: CausalLM,
    samples: Sample[],
    key: 'oldLogProbs' | 'refLogProbs',
    step: number,
  ): void {
    const what = key === 'oldLogProbs' ? 'old policy log-probs' : 'reference log-probs';
    for (const part of chunk(samples, this.config.microBatchSize)) {
      const { inputIds, attentionMask, targetMask, width } = this.batchTensors(part);
      try {
        const out = model.tokenLogProbs(inputIds, attentionMask, {
          temperature: this.config.temperature,
          targetMask,
          vocabLimit: this.tokenizer.vocabSize,
        });
        const values = out.logProbs.dataSync();
        out.logProbs.dispose();
        part.forEach((s, b) => {
          const first = b * width + s.promptIds.length - 1;
          const row = Float32Array.from(values.subarray(first, first + s.completionIds.length));
          for (let k = 0; k < row.length; k++) {
            assertFinite(
              row[k]!,
              `${what} (step ${step})`,
              'the model produced non-finite logits; check its weights.',
            );
          }
          s[key] = row;
        });
      } finally {
        tf.dispose([inputIds, attentionMask, targetMask]);
      }
    }
  }

  /** A micro-batch as worker-loss shard arrays (see `grpoShardLoss`), plus its loss mask and width. */
  private microBatchShard(
    samples: readonly Sample[],
    offPolicy: boolean,
  ): { data: ShardData; mask: Float32Array; width: number } {
    const sequences = samples.map((s) => [...s.promptIds, ...s.completionIds]);
    const time = Math.max(...sequences.map((s) => s.length));
    const rows = samples.length;
    const width = time - 1;
    const ids = new Int32Array(rows * time).fill(this.tokenizer.special.pad);
    const attention = new Float32Array(rows * time);
    sequences.forEach((sequence, b) => {
      ids.set(sequence, b * time);
      attention.fill(1, b * time, b * time + sequence.length);
    });
    const mask = new Float32Array(rows * width);
    // Every completion position, active or not: only these rows go through the LM head.
    const completion = new Float32Array(rows * width);
    // logProbs[b, j] scores token j+1, so completion token k (at P + k) is scored at column P − 1 + k.
    samples.forEach((s, b) => {
      const first = b * width + s.promptIds.length - 1;
      mask.fill(s.active, first, first + s.completionIds.length);
      completion.fill(1, first, first + s.completionIds.length);
    });
    const data: ShardData = {
      inputIds: { values: ids, shape: [rows, time] },
      attentionMask: { values: attention, shape: [rows, time] },
      targetMask: { values: completion, shape: [rows, width] },
      mask: { values: mask, shape: [rows, width] },
      advantages: { values: Float32Array.from(samples.map((s) => s.advantage)), shape: [rows] },
    };
    if (offPolicy)
      data['oldLogProbs'] = {
        values: this.scatter(samples, width, 'oldLogProbs'),
        shape: [rows, width],
      };
    if (this.reference !== undefined)
      data['refLogProbs'] = {
        values: this.scatter(samples, width, 'refLogProbs'),
        shape: [rows, width],
      };
    return { data, mask, width };
  }

  /**
   * Loss, summed gradients and per-micro-batch outputs of one update: on the worker threads
   * (micro-batches shared out, gradients summed in micro-batch order), or in-process one
   * micro-batch after another.
   */
  private async microBatchGradients(
    shards: { data: ShardData; normalizer: GrpoShardOptions['normalizer'] }[],
    options: Omit<GrpoShardOptions, 'normalizer'>,
  ): Promise<{
    grads: tf.NamedTensorMap;
    parts: { loss: number; logProbs: Float32Array; entropy: Float32Array | undefined }[];
  }> {
    if (this.pool !== undefined) {
      const result = await this.pool.computeGradients<GrpoShardOptions>({
        loss: SHARD_LOSS,
        options: { ...options, normalizer: shards[0]!.normalizer },
        shards: shards.map((shard) => ({
          data: shard.data,
          options: { normalizer: shard.normalizer },
        })),
      });
      return {
        grads: result.grads,
        parts: result.shards.map((part) => ({
          loss: part.loss,
          logProbs: part.outputs['logProbs']!.values as Float32Array,
          entropy: part.outputs['entropy']?.values as Float32Array | undefined,
        })),
      };
    }
    const accumulated: tf.NamedTensorMap = {};
    const parts: { loss: number; logProbs: Float32Array; entropy: Float32Array | undefined }[] = [];
    try {
      for (const shard of shards) {
        let captured: Record<string, tf.Tensor> = {};
        try {
          const { loss, grads } = computeGradients(this.policy, () => {
            const out = grpoShardLoss(this.policy, shard.data, {
              ...options,
              normalizer: shard.normalizer,
            });
            captured = Object.fromEntries(
              Object.entries(out.outputs).map(([name, t]) => [name, tf.keep(t)]),
            );
            return out.loss;
          });
          for (const [name, g] of Object.entries(grads)) {
            const previous = accumulated[name];
            accumulated[name] = previous === undefined ? g : tf.tidy(() => tf.add(previous, g));
            if (previous !== undefined) {
              previous.dispose();
              g.dispose();
            }
          }
          parts.push({
            loss,
            logProbs: captured['logProbs']!.dataSync() as Float32Array,
            entropy: captured['entropy']?.dataSync() as Float32Array | undefined,
          });
        } finally {
          tf.dispose(Object.values(captured));
        }
      }
    } catch (error) {
      tf.dispose(Object.values(accumulated));
      throw error;
    }
    return { grads: accumulated, parts };
  }

  private async update(
    slice: readonly Sample[],
    firstPass: boolean,
    offPolicy: boolean,
    where: string,
  ): Promise<UpdateStats> {
    const c = this.config;
    const micro = chunk(slice, c.microBatchSize);
    let activeTokens = 0;
    let activeSequences = 0;
    for (const s of slice) {
      activeTokens += s.active * s.completionIds.length;
      if (s.active === 1 && s.completionIds.length > 0) activeSequences += 1;
    }
    const counts: StepCounts = {
      completions: slice.length,
      activeSequences,
      activeTokens,
      maxCompletionLength: c.maxCompletionLength,
    };
    const stats: UpdateStats = {
      loss: 0,
      policyLoss: 0,
      klSum: 0,
      entropySum: 0,
      entropyTokens: 0,
      clipLow: 0,
      clipHigh: 0,
      activeTokens,
      gradNorm: 0,
      learningRate: 0,
      tokens: 0,
    };
    const shards = micro.map((part) => {
      const microTokens = part.reduce((n, s) => n + s.active * s.completionIds.length, 0);
      const normalizer = lossNormalizer(c.lossType, {
        ...counts,
        microBatch: { activeTokens: microTokens, count: micro.length },
      });
      return { part, microTokens, normalizer, ...this.microBatchShard(part, offPolicy) };
    });
    // LoRA dropout masks from (seed, update number): a resumed run draws the same ones.
    this.policy.seedAdapterDropout(c.seed * 1_000_003 + this.updates);
    const { grads: accumulated, parts } = await this.microBatchGradients(shards, {
      temperature: c.temperature,
      vocabLimit: this.tokenizer.vocabSize,
      entropy: firstPass,
      epsilon: c.epsilon,
      epsilonHigh: c.epsilonHigh,
      beta: c.beta,
      importanceSamplingLevel: c.importanceSamplingLevel,
    });
    try {
      shards.forEach(({ part, microTokens, normalizer, mask, width }, k) => {
        const result = parts[k]!;
        assertFinite(
          result.loss,
          `loss (${where}, micro-batch ${k + 1})`,
          'a log-prob ratio overflowed or the model produced non-finite logits; lower the learning rate or check the rewards and the model.',
        );
        stats.loss += result.loss;
        stats.tokens += part.reduce((n, s) => n + s.promptIds.length + s.completionIds.length, 0);
        // Figures for the metrics, from the float64 reference on the same values.
        const logProbRows = this.gather(result.logProbs, part, width);
        const maskRows = this.gather(mask, part, width);
        const reference = grpoLossReference(
          {
            logProbs: logProbRows,
            oldLogProbs: offPolicy ? part.map((s) => Array.from(s.oldLogProbs!)) : logProbRows,
            ...(this.reference === undefined
              ? {}
              : { refLogProbs: part.map((s) => Array.from(s.refLogProbs!)) }),
            advantages: part.map((s) => s.advantage),
            mask: maskRows,
          },
          {
            epsilon: c.epsilon,
            epsilonHigh: c.epsilonHigh,
            beta: c.beta,
            importanceSamplingLevel: c.importanceSamplingLevel,
            normalizer,
          },
        );
        stats.policyLoss += reference.policyLoss;
        stats.klSum += reference.kl * microTokens;
        stats.clipLow += reference.clip.low * reference.clip.activeTokens;
        stats.clipHigh += reference.clip.high * reference.clip.activeTokens;
        if (result.entropy !== undefined) {
          const entropyRows = this.gather(result.entropy, part, width);
          entropyRows.forEach((row, i) =>
            row.forEach((v, t) => {
              if (maskRows[i]![t] !== 0) {
                stats.entropySum += v;
                stats.entropyTokens += 1;
              }
            }),
          );
        }
      });
      const { grads, norm } = clipByGlobalNorm(
        accumulated,
        c.maxGradNorm > 0 ? c.maxGradNorm : Number.POSITIVE_INFINITY,
      );
      try {
        assertFinite(
          norm,
          `gradient norm (${where})`,
          'the loss gradient overflowed; lower the learning rate or check the model.',
        );
        stats.gradNorm = norm;
        stats.learningRate = this.optimizer.learningRate;
        this.optimizer.applyGradients(grads);
        this.updates += 1;
      } finally {
        tf.dispose(Object.values(grads));
      }
    } finally {
      tf.dispose(Object.values(accumulated));
    }
    return stats;
  }

  // ---- metrics ----------------------------------------------------------------------------

  private stepMetrics(
    record: RolloutRecord,
    updates: UpdateStats[],
    trainSeconds: number,
  ): GrpoStepMetrics {
    const c = this.config;
    const all = record.groups;
    const totals = all.flatMap((g) => this.totals(g));
    const scorable = totals.filter((v): v is number => v !== null);
    const { groups: status } = groupAdvantages(totals, {
      groupSize: c.numGenerations,
      scaleRewards: c.scaleRewards,
      epsilon: c.advantageEpsilon,
    });
    const lengths = all.flatMap((g) => g.completions.map((o) => o.ids.length));
    const truncated = all.flatMap((g) =>
      g.completions.filter((o) => o.finishReason === 'length'),
    ).length;
    const activeTokens = updates.reduce((n, u) => n + u.activeTokens, 0);
    const entropyTokens = updates.reduce((n, u) => n + u.entropyTokens, 0);
    const trainedTokens = updates.reduce((n, u) => n + u.tokens, 0);
    const completionTokens = lengths.reduce((a, b) => a + b, 0);
    const keptGroups = all.filter((g) => g.kept).length;
    const m: GrpoStepMetrics = {
      step: record.step,
      epoch: this.position.epoch + this.position.offset / this.dataset.length,
      num_updates: this.updates,
      // The rate the step's last update used (the optimizer reports the next one).
      learning_rate: updates.at(-1)?.learningRate ?? this.optimizer.learningRate,
      loss: meanOf(updates.map((u) => u.loss)),
      policy_loss: meanOf(updates.map((u) => u.policyLoss)),
      entropy:
        entropyTokens === 0 ? 0 : updates.reduce((s, u) => s + u.entropySum, 0) / entropyTokens,
      grad_norm: meanOf(updates.map((u) => u.gradNorm)),
      reward: meanOf(scorable),
      reward_std: stdOf(scorable),
      frac_reward_zero_std: status.filter((g) => g.status === 'allSame').length / status.length,
      frac_reward_unscorable:
        status.filter((g) => g.status === 'unscorable').length / status.length,
      'clip_ratio/low_mean':
        activeTokens === 0 ? 0 : updates.reduce((s, u) => s + u.clipLow, 0) / activeTokens,
      'clip_ratio/high_mean':
        activeTokens === 0 ? 0 : updates.reduce((s, u) => s + u.clipHigh, 0) / activeTokens,
      'clip_ratio/region_mean':
        activeTokens === 0
          ? 0
          : updates.reduce((s, u) => s + u.clipLow + u.clipHigh, 0) / activeTokens,
      'completions/mean_length': meanOf(lengths),
      'completions/min_length': lengths.length === 0 ? 0 : Math.min(...lengths),
      'completions/max_length': lengths.length === 0 ? 0 : Math.max(...lengths),
      'completions/clipped_ratio': lengths.length === 0 ? 0 : truncated / lengths.length,
      'completions/count': lengths.length,
      'dynamic_sampling/generation_batches': record.generationBatches,
      'dynamic_sampling/kept_groups': keptGroups,
      'dynamic_sampling/dropped_groups': all.length - keptGroups,
      num_tokens: this.numTokens,
      'time/generation_s': record.seconds.generation,
      'time/reward_s': record.seconds.reward,
      'time/training_s': trainSeconds,
      'time/step_s': record.seconds.generation + record.seconds.reward + trainSeconds,
      'tokens_per_second/rollout':
        record.seconds.generation > 0 ? completionTokens / record.seconds.generation : 0,
      'tokens_per_second/training': trainSeconds > 0 ? trainedTokens / trainSeconds : 0,
    };
    if (this.reference !== undefined)
      m.kl = activeTokens === 0 ? 0 : updates.reduce((s, u) => s + u.klSum, 0) / activeTokens;
    for (const spec of this.rewards) {
      const values = all.flatMap((g) => g.rewards[spec.name] ?? []);
      const present = values.filter((v): v is number => v !== null);
      m[`rewards/${spec.name}/mean`] = meanOf(present);
      m[`rewards/${spec.name}/std`] = stdOf(present);
      m[`rewards/${spec.name}/null_frac`] =
        values.length === 0 ? 0 : (values.length - present.length) / values.length;
    }
    for (const [name, value] of Object.entries(m)) {
      if (typeof value === 'number')
        assertFinite(
          value,
          `metric ${name} (step ${record.step})`,
          'a reward, the loss or a log-prob went non-finite.',
        );
    }
    return m;
  }

  // ---- persistence ------------------------------------------------------------------------

  private trainerState(): TrainerStateFile {
    return {
      format: 'codereasoner-grpo-trainer-state',
      version: 1,
      step: this.step,
      updates: this.updates,
      numTokens: this.numTokens,
      dataPosition: { ...this.position },
      rng: this.rng.getState(),
      datasetSize: this.dataset.length,
      rewardNames: this.rewards.map((r) => r.name),
      config: this.config,
    };
  }

  private async checkpoint(outDir: string): Promise<void> {
    const dir = join(outDir, 'checkpoints', `step-${String(this.step).padStart(8, '0')}`);
    await saveCheckpoint(dir, {
      model: this.policy,
      tokenizer: this.tokenizer,
      optimizer: this.optimizer,
      trainerState: this.trainerState() as unknown as Record<string, unknown>,
    });
    this.lastCheckpoint = dir;
    const steps = await this.checkpointSteps(outDir);
    for (const old of steps.slice(this.config.saveTotalLimit)) {
      await rm(join(outDir, 'checkpoints', `step-${String(old).padStart(8, '0')}`), {
        recursive: true,
        force: true,
      });
    }
  }

  /** Checkpoint steps present in outDir, newest first. */
  private async checkpointSteps(outDir: string): Promise<number[]> {
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

  private checkResumable(
    path: string,
    state: Record<string, unknown> | undefined,
  ): TrainerStateFile {
    const s = state as Partial<TrainerStateFile> | undefined;
    if (
      s?.format !== 'codereasoner-grpo-trainer-state' ||
      s.version !== 1 ||
      s.config === undefined ||
      s.dataPosition === undefined ||
      s.rng === undefined
    ) {
      throw new CheckpointError(
        path,
        'trainer_state.json is not a @codereasoner/grpo trainer state',
      );
    }
    const differing = (Object.keys(this.config) as (keyof GrpoConfig)[]).filter(
      (key) => !RESUMABLE_CHANGES.has(key) && !sameState(this.config[key], s.config![key]),
    );
    const issues = differing.map(
      (key) =>
        `${key}: checkpoint ${JSON.stringify(s.config![key])}, now ${JSON.stringify(this.config[key])}`,
    );
    if (s.datasetSize !== this.dataset.length)
      issues.push(`dataset size: checkpoint ${s.datasetSize}, now ${this.dataset.length}`);
    if (
      !sameState(
        s.rewardNames,
        this.rewards.map((r) => r.name),
      )
    )
      issues.push(
        `reward functions: checkpoint ${JSON.stringify(s.rewardNames)}, now ${JSON.stringify(this.rewards.map((r) => r.name))}`,
      );
    if (issues.length > 0) {
      throw new GrpoResumeError(
        path,
        `cannot resume with different settings (${issues.join('; ')}); use the same ones, or a new outDir to start over`,
      );
    }
    return s as TrainerStateFile;
  }

  /** Loads the newest readable checkpoint into the policy, optimizer, RNG and data position. */
  private async restore(outDir: string): Promise<number | null> {
    for (const step of await this.checkpointSteps(outDir)) {
      const dir = join(outDir, 'checkpoints', `step-${String(step).padStart(8, '0')}`);
      let loaded: Awaited<ReturnType<typeof loadCheckpoint>>;
      try {
        loaded = await loadCheckpoint(dir);
      } catch (error) {
        if (!(error instanceof CheckpointError)) throw error;
        this.options.logger?.warn(`skipping unreadable checkpoint ${dir}: ${error.message}`);
        continue;
      }
      let optimizerState: OptimizerState | undefined;
      try {
        const state = this.checkResumable(dir, loaded.trainerState);
        optimizerState = loaded.optimizerState;
        if (optimizerState === undefined)
          throw new CheckpointError(dir, 'optimizer.safetensors is missing');
        this.policy.copyFrom(loaded.model);
        this.optimizer.setState(optimizerState);
        this.rng = Rng.fromState(state.rng);
        this.setPosition(state.dataPosition);
        this.step = state.step;
        this.updates = state.updates;
        this.numTokens = state.numTokens;
        this.lastCheckpoint = dir;
        this.options.logger?.info(`resumed from ${dir} (step ${state.step})`);
        return state.step;
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
   * Makes outDir consistent with the restored step: metrics after it are dropped (they will be
   * recomputed), and journaled rollouts after it are kept for replay.
   */
  private async prepareFiles(outDir: string): Promise<Map<number, RolloutRecord>> {
    await writeFileAtomic(join(outDir, 'config.json'), `${JSON.stringify(this.config, null, 2)}\n`);
    const metricsPath = join(outDir, 'metrics.jsonl');
    const metrics = await readJsonLines<GrpoStepMetrics>(metricsPath);
    const keptMetrics = metrics.values.filter((m) => m.step <= this.step);
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
      this.options.logger?.warn(
        `${journalPath}: dropped a truncated last line (a crash while writing it)`,
      );
    const replay = new Map<number, RolloutRecord>();
    const keptRecords: RolloutRecord[] = [];
    let next = this.step + 1;
    for (const record of journal.values) {
      if (record.format !== 'codereasoner-grpo-rollouts' || record.version !== 1) continue;
      if (record.step <= this.step) keptRecords.push(record);
      else if (record.step === next) {
        replay.set(record.step, record);
        keptRecords.push(record);
        next += 1;
      }
    }
    if (journal.truncatedTail || keptRecords.length !== journal.values.length)
      await writeJsonLines(journalPath, keptRecords);
    if (replay.size > 0)
      this.options.logger?.info(`replaying ${replay.size} journaled step(s) from ${journalPath}`);
    return replay;
  }

  /** beta > 0: a frozen copy of the initial policy, saved once in outDir/reference so a resumed run uses the same one. */
  private async prepareReference(
    outDir: string | undefined,
    resumedFromStep: number | null,
  ): Promise<void> {
    if (this.config.beta === 0 || this.reference !== undefined) return;
    // LoRA: the reference is the base with adapters off. clone() shares the (frozen) base weights
    // and leaves the adapters out, so there is no second copy; the base is in every checkpoint.
    if (outDir === undefined || this.policy.loraConfig !== undefined) {
      this.reference = this.policy.clone();
      return;
    }
    const dir = join(outDir, 'reference');
    const exists = await stat(join(dir, 'model.safetensors')).then(
      () => true,
      () => false,
    );
    if (exists) {
      const loaded = await loadCheckpoint(dir, { trainable: false });
      this.reference = loaded.model;
      return;
    }
    if (resumedFromStep !== null) {
      throw new GrpoResumeError(
        dir,
        'the run is resumed with beta > 0 but its reference model is missing; restore outDir/reference or start a new outDir',
      );
    }
    this.reference = this.policy.clone();
    await saveCheckpoint(dir, { model: this.reference, tokenizer: this.tokenizer });
  }

  /** Frees the reference model and the optimizer state (the policy belongs to the caller). */
  dispose(): void {
    this.reference?.dispose();
    this.reference = undefined;
    this.optimizer.dispose();
  }
}
