import {
  chatMLFormat,
  Rng,
  Tokenizer,
  type ChatFormat,
  type ChatMessage,
} from '@codereasoner/core-tensors';

/** A tokenized conversation: ids, and 1 for every token the loss is taken on. */
export interface EncodedExample {
  ids: number[];
  /** The chat format's assistant mask: assistant turns up to their end-of-turn token (`<|im_end|>`, `<|eot_id|>`). */
  assistantMask: number[];
  /** Packed rows only (packing.ts): each token's example number, 1-based; the attention mask. */
  segments?: number[];
}

/**
 * Tokenizes conversations for training in `chat`'s layout: a pretrained model's own chat template
 * (core-tensors' `ChatTemplate`), or ChatML when given a tokenizer (the from-scratch path).
 * Examples longer than `maxSeqLen` tokens are dropped rather than cut (a cut completion loses its
 * answer), and so are examples without any assistant token.
 */
export function encodeExamples(
  conversations: readonly ChatMessage[][],
  chat: ChatFormat | Tokenizer,
  maxSeqLen: number,
): { examples: EncodedExample[]; kept: number[]; droppedTooLong: number; droppedEmpty: number } {
  const examples: EncodedExample[] = [];
  const kept: number[] = [];
  let droppedTooLong = 0;
  let droppedEmpty = 0;
  const format = chat instanceof Tokenizer ? chatMLFormat(chat) : chat;
  conversations.forEach((messages, index) => {
    const { ids, assistantMask } = format.encode(messages);
    // what follows the last end-of-turn token (ChatML's "\n") is never a target: drop it
    while (ids.length > 0 && assistantMask[assistantMask.length - 1] === 0) {
      ids.pop();
      assistantMask.pop();
    }
    if (ids.length > maxSeqLen) droppedTooLong++;
    else if (!assistantMask.includes(1)) droppedEmpty++;
    else {
      examples.push({ ids, assistantMask });
      kept.push(index);
    }
  });
  return { examples, kept, droppedTooLong, droppedEmpty };
}

/**
 * Loss weights aligned with `tokenLogProbs`' [T-1] outputs: position t predicts token t+1, so it
 * counts when token t+1 is an assistant token. Padded to `length - 1`.
 */
export function lossMask(example: EncodedExample, length: number): Float32Array {
  const out = new Float32Array(length - 1);
  for (let t = 0; t + 1 < example.assistantMask.length && t < length - 1; t++)
    out[t] = example.assistantMask[t + 1] as number;
  return out;
}

export interface BatchPlanOptions {
  batchSize: number;
  /** Micro-batches per length bucket (1 = no bucketing). */
  bucketBatches: number;
  seed: number;
}

/**
 * The micro-batches of one epoch (lists of example indices), a pure function of the lengths, the
 * seed and the epoch: examples are shuffled, sorted by length within buckets of
 * `bucketBatches * batchSize` (so each batch holds similar lengths and pads little), cut into
 * batches, and the batches shuffled. Resuming recomputes exactly the same order.
 */
export function planEpoch(
  lengths: readonly number[],
  epoch: number,
  options: BatchPlanOptions,
): number[][] {
  const rng = new Rng(options.seed * 1_000_003 + epoch * 7919 + 17);
  const order = rng.shuffle(lengths.map((_, index) => index));
  const bucket = options.batchSize * options.bucketBatches;
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += bucket) {
    const chunk = order.slice(start, start + bucket);
    if (options.bucketBatches > 1)
      chunk.sort((a, b) => (lengths[a] as number) - (lengths[b] as number) || a - b);
    for (let i = 0; i < chunk.length; i += options.batchSize)
      batches.push(chunk.slice(i, i + options.batchSize));
  }
  return rng.shuffle(batches);
}

/** Plans one epoch's micro-batches (`planEpoch` unless another plan is given, e.g. a curriculum). */
export type EpochPlanner = (epoch: number) => number[][];

/** Micro-batch number `index` (0-based, counting across epochs) of the whole run. */
export class BatchSchedule {
  private readonly plan: EpochPlanner;
  private readonly perEpoch: number;
  private cachedEpoch = -1;
  private cached: number[][] = [];

  constructor(lengths: number[], options: BatchPlanOptions, planner?: EpochPlanner) {
    this.plan = planner ?? ((epoch) => planEpoch(lengths, epoch, options));
    // a planner's batch count is the same every epoch: count it once
    this.perEpoch =
      planner === undefined ? Math.ceil(lengths.length / options.batchSize) : planner(0).length;
  }

  /** Micro-batches per epoch. */
  get batchesPerEpoch(): number {
    return this.perEpoch;
  }

  at(index: number): { epoch: number; batch: number[] } {
    const epoch = Math.floor(index / this.perEpoch);
    if (epoch !== this.cachedEpoch) {
      this.cached = this.plan(epoch);
      this.cachedEpoch = epoch;
    }
    return { epoch, batch: this.cached[index % this.perEpoch] as number[] };
  }
}

/** One shard of a micro-batch as `sftShardLoss` takes it, with its target and real token counts. */
export interface SftShard {
  data: {
    inputIds: { values: Int32Array; shape: number[] };
    attentionMask: { values: Float32Array; shape: number[] };
    weights: { values: Float32Array; shape: number[] };
  };
  /** Target (assistant) tokens: Σ weights. */
  count: number;
  /** Real (non-padding) tokens. */
  tokens: number;
}

/**
 * Splits a micro-batch by rows into at most `parts` contiguous blocks of near-equal size (one
 * per worker thread), each right-padded to its own longest row as `padBatch` pads, with its loss
 * weights (`lossMask`). One part is the whole micro-batch padded exactly as before.
 */
export function shardRows(
  batch: readonly EncodedExample[],
  padId: number,
  parts: number,
): SftShard[] {
  const count = Math.max(1, Math.min(parts, batch.length));
  const shards: SftShard[] = [];
  let start = 0;
  for (let part = 0; part < count; part++) {
    const size = Math.floor(batch.length / count) + (part < batch.length % count ? 1 : 0);
    const rows = batch.slice(start, start + size);
    start += size;
    const time = Math.max(1, ...rows.map((row) => row.ids.length));
    const ids = new Int32Array(rows.length * time).fill(padId);
    const mask = new Float32Array(rows.length * time);
    const weights = new Float32Array(rows.length * (time - 1));
    let tokens = 0;
    rows.forEach((row, r) => {
      ids.set(row.ids, r * time);
      if (row.segments === undefined) mask.fill(1, r * time, r * time + row.ids.length);
      else mask.set(row.segments, r * time);
      weights.set(lossMask(row, time), r * (time - 1));
      tokens += row.ids.length;
    });
    shards.push({
      data: {
        inputIds: { values: ids, shape: [rows.length, time] },
        attentionMask: { values: mask, shape: [rows.length, time] },
        weights: { values: weights, shape: [rows.length, time - 1] },
      },
      count: weights.reduce((sum, value) => sum + value, 0),
      tokens,
    });
  }
  return shards;
}

/** The shards of one optimizer step: every micro-batch's, in order, and the epoch they come from. */
export interface SftStepBatch {
  shards: SftShard[];
  epoch: number;
}

/**
 * Where the trainer gets each optimizer step's batches: the one seam between the data and the
 * training loop (length-bucketed batches below; a packed source can stand in). A source must be
 * a pure function of `step`, so a resumed run gets the same batches.
 */
export interface SftBatchSource {
  /**
   * The shards of optimizer step `step` (0-based): `gradientAccumulation` micro-batches, each split
   * into at most `parts` shards (one per worker thread), in micro-batch order.
   */
  step(step: number, parts: number): SftStepBatch;
}

/** Length-bucketed micro-batches of whole examples (`BatchSchedule`), right-padded per shard. */
export class BucketedBatchSource implements SftBatchSource {
  private readonly examples: readonly EncodedExample[];
  private readonly schedule: BatchSchedule;
  private readonly gradientAccumulation: number;
  private readonly padId: number;

  constructor(
    examples: readonly EncodedExample[],
    options: BatchPlanOptions & {
      gradientAccumulation: number;
      padId: number;
      /** Another epoch plan than `planEpoch`'s (e.g. a curriculum). */
      planner?: EpochPlanner | undefined;
    },
  ) {
    this.examples = examples;
    this.schedule = new BatchSchedule(
      examples.map((example) => example.ids.length),
      { batchSize: options.batchSize, bucketBatches: options.bucketBatches, seed: options.seed },
      options.planner,
    );
    this.gradientAccumulation = options.gradientAccumulation;
    this.padId = options.padId;
  }

  step(step: number, parts: number): SftStepBatch {
    const shards: SftShard[] = [];
    let epoch = 0;
    for (let micro = 0; micro < this.gradientAccumulation; micro++) {
      const planned = this.schedule.at(step * this.gradientAccumulation + micro);
      epoch = planned.epoch;
      const batch = planned.batch.map((index) => this.examples[index] as EncodedExample);
      shards.push(...shardRows(batch, this.padId, parts));
    }
    return { shards, epoch };
  }
}
