/*
 * Rollout: prompts → sampled completions → rewards, for one generation step, as a journal record
 * (everything training on the step needs, so a resumed run can replay it instead of sampling again).
 */
import {
  type ChatFormat,
  type ChatMessage,
  type GenerationEngineReport,
  type Logger,
  type ModelWorkerPool,
  type Rng,
  type RngState,
  type Tokenizer,
} from '@codereasoner/core-tensors';
import { groupAdvantages } from './advantages.js';
import type { GrpoConfig } from './config.js';
import type { DataOrder, DataPosition } from './data-order.js';
import { GrpoDatasetError, GrpoResumeError } from './errors.js';
import { scoreCompletions, type RewardSpec } from './rewards.js';

/** A training example: the prompt plus any columns the reward functions need (ground truth, task type, ...). */
export interface GrpoDatasetRow {
  /** Chat messages (rendered as ChatML with the assistant generation prompt) or raw text used as is. */
  prompt: ChatMessage[] | string;
  [column: string]: unknown;
}

export interface JournalCompletion {
  ids: number[];
  finishReason: 'stop' | 'length';
}

export interface JournalGroup {
  row: number;
  kept: boolean;
  completions: JournalCompletion[];
  /** Values per reward function name. */
  rewards: Record<string, (number | null)[]>;
}

/** One line of rollouts.jsonl: everything a step's training needs, written before training on it. */
export interface RolloutRecord {
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
  /**
   * The engine that computed the logits of the step's last generation batch, and why it is tfjs
   * when another was asked for (absent in journals written before the engine option).
   */
  engine?: GenerationEngineReport | undefined;
}

/** What a rollout reads; `rng` and `data` advance. */
export interface RolloutContext {
  config: GrpoConfig;
  tokenizer: Tokenizer;
  /** The chat layout: its eos ids end a completion. */
  chat: ChatFormat;
  rewards: readonly RewardSpec[];
  dataset: readonly GrpoDatasetRow[];
  /** The encoded prompt of every row. */
  promptIds: readonly number[][];
  /** Generates on its threads, or in-process on the policy when it has none. */
  pool: ModelWorkerPool;
  rng: Rng;
  data: DataOrder;
  logger?: Logger | undefined;
}

/** Sequences per generation batch in-process (and at most per thread). */
const GENERATION_BATCH = 64;

export function now(): number {
  return performance.now() / 1000;
}

function encodePrompt(
  tokenizer: Tokenizer,
  chat: ChatFormat,
  row: GrpoDatasetRow,
  index: number,
): number[] {
  if (typeof row !== 'object' || row === null)
    throw new GrpoDatasetError(index, 'must be an object { prompt, ...columns }');
  const { prompt } = row;
  let ids: number[];
  if (typeof prompt === 'string') ids = tokenizer.encode(prompt);
  else if (Array.isArray(prompt)) {
    try {
      ids = chat.encode(prompt, { addGenerationPrompt: true }).ids;
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

/**
 * Every row's prompt ids (chat prompts in `chat`'s layout: ChatML, or a pretrained model's own
 * template), checked to leave room for `maxCompletionLength` in the model's context.
 */
export function encodePrompts(
  dataset: readonly GrpoDatasetRow[],
  tokenizer: Tokenizer,
  chat: ChatFormat,
  maxCompletionLength: number,
  context: number,
): number[][] {
  return dataset.map((row, i) => {
    const ids = encodePrompt(tokenizer, chat, row, i);
    if (ids.length + maxCompletionLength > context) {
      throw new GrpoDatasetError(
        i,
        `the prompt has ${ids.length} tokens; with maxCompletionLength ${maxCompletionLength} that exceeds the model's context of ${context}. Shorten the prompt, filter the row out, or lower maxCompletionLength.`,
      );
    }
    return ids;
  });
}

/** A completion's text for the reward functions (without its stop token). */
export function decodeCompletion(tokenizer: Tokenizer, completion: JournalCompletion): string {
  const ids = completion.finishReason === 'stop' ? completion.ids.slice(0, -1) : completion.ids;
  // A model may be wider than its tokenizer (padded vocabulary): ids the tokenizer lacks read as U+FFFD.
  const size = tokenizer.vocabSize;
  if (ids.every((id) => id < size)) return tokenizer.decode(ids);
  let text = '';
  let run: number[] = [];
  for (const id of ids) {
    if (id < size) run.push(id);
    else {
      text += `${tokenizer.decode(run)}\uFFFD`;
      run = [];
    }
  }
  return text + tokenizer.decode(run);
}

/** The weighted total reward of each completion of a group (null: no function scored it). */
export function groupTotals(
  rewards: readonly RewardSpec[],
  group: JournalGroup,
): (number | null)[] {
  const G = group.completions.length;
  const total = new Array<number | null>(G).fill(null);
  for (const spec of rewards) {
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

/**
 * Samples `numGenerations` completions for each of the step's prompts and scores them; with
 * dynamic sampling, draws more prompts until enough groups are informative (or the budget ends).
 */
export async function rollout(context: RolloutContext, step: number): Promise<RolloutRecord> {
  const { config: c, tokenizer, chat, rewards, dataset, promptIds, pool, rng, data } = context;
  const G = c.numGenerations;
  const promptsPerStep = c.generationBatchSize / G;
  const rngBefore = rng.getState();
  const dataBefore = data.position;
  const groups: JournalGroup[] = [];
  let generationSeconds = 0;
  let rewardSeconds = 0;
  let generationBatches = 0;
  let kept = 0;
  let engine: GenerationEngineReport | undefined;
  const stopTokens = [...chat.stopTokenIds];
  for (;;) {
    const rows = data.take(promptsPerStep);
    generationBatches += 1;
    const seed = rng.int(0x7fffffff);
    const prompts = rows.flatMap((r) => new Array<number[]>(G).fill(promptIds[r]!));
    let t = now();
    // With threads, batches small enough that every thread gets one (each batch decodes whole on one thread).
    const batchSize =
      pool.size === 0
        ? GENERATION_BATCH
        : Math.min(GENERATION_BATCH, Math.ceil(prompts.length / pool.size));
    const outputs = await pool.generate(prompts, {
      maxNewTokens: c.maxCompletionLength,
      temperature: c.temperature,
      ...(c.topK > 0 ? { topK: c.topK } : {}),
      ...(c.topP < 1 ? { topP: c.topP } : {}),
      stopTokens,
      seed,
      batchSize,
      // A padded model vocabulary has ids the tokenizer cannot decode: never sample them.
      vocabLimit: tokenizer.vocabSize,
      engine: c.engine,
      onnxThreads: c.onnxThreads,
      onnxWeights: c.onnxWeights,
      ...(context.logger === undefined ? {} : { logger: context.logger }),
    });
    engine = pool.model.lastGenerationEngine;
    generationSeconds += now() - t;
    const completions = outputs.map((o) => ({ ids: o.tokens, finishReason: o.finishReason }));
    t = now();
    const scores = await scoreCompletions(rewards, {
      prompts: rows.flatMap((r) => new Array<ChatMessage[] | string>(G).fill(dataset[r]!.prompt)),
      completions: completions.map((o) => decodeCompletion(tokenizer, o)),
      completionIds: completions.map((o) => o.ids),
      rows: rows.flatMap((r) => new Array<Record<string, unknown>>(G).fill(dataset[r]!)),
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
      const values: Record<string, (number | null)[]> = {};
      for (const f of scores.perFunction) values[f.name] = f.values.slice(g * G, (g + 1) * G);
      groups.push({
        row,
        kept: keep,
        completions: completions.slice(g * G, (g + 1) * G),
        rewards: values,
      });
    });
    if (!c.dynamicSampling || kept >= promptsPerStep) break;
    if (generationBatches >= c.maxGenerationBatches) {
      context.logger?.warn(
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
    rngAfter: rng.getState(),
    dataBefore,
    dataAfter: data.position,
    generationBatches,
    groups,
    seconds: { generation: generationSeconds, reward: rewardSeconds },
    ...(engine === undefined ? {} : { engine }),
  };
}
