/*
 * Micro-batches: a list of (prompt, completion) samples laid out as the padded arrays the model
 * and the loss read. The one place the completion masks are built; the log-prob pass, the loss
 * (in-process or on worker threads) and the metrics all read these arrays.
 */
import type { ShardData } from '@codereasoner/core-tensors';

export interface Sample {
  promptIds: number[];
  completionIds: number[];
  advantage: number;
  /** 0 when the completion is left out of the loss (maskTruncatedCompletions). */
  active: 0 | 1;
  oldLogProbs?: Float32Array;
  refLogProbs?: Float32Array;
}

/** The padded arrays of a micro-batch of `rows` sequences of at most `time` tokens. */
export interface MicroBatchLayout {
  rows: number;
  time: number;
  /** `time − 1`: the columns of per-token log-probs (column j scores token j + 1). */
  width: number;
  /** [rows, time] token ids, padded with the tokenizer's pad id. */
  inputIds: Int32Array;
  /** [rows, time] 1 on real tokens. */
  attentionMask: Float32Array;
  /** [rows, width] 1 on every completion position, active or not: only these go through the LM head. */
  targetMask: Float32Array;
  /** [rows, width] 1 on the completion positions the loss counts (`Sample.active`). */
  lossMask: Float32Array;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Column of completion token 0 of row `b`: logProbs[b, j] scores token j + 1, and completion token k sits at P + k. */
function firstColumn(sample: Sample, b: number, width: number): number {
  return b * width + sample.promptIds.length - 1;
}

export function layoutMicroBatch(samples: readonly Sample[], padId: number): MicroBatchLayout {
  const sequences = samples.map((s) => [...s.promptIds, ...s.completionIds]);
  const time = Math.max(...sequences.map((s) => s.length));
  const rows = samples.length;
  const width = time - 1;
  const inputIds = new Int32Array(rows * time).fill(padId);
  const attentionMask = new Float32Array(rows * time);
  sequences.forEach((sequence, b) => {
    inputIds.set(sequence, b * time);
    attentionMask.fill(1, b * time, b * time + sequence.length);
  });
  const lossMask = new Float32Array(rows * width);
  const targetMask = new Float32Array(rows * width);
  samples.forEach((s, b) => {
    const first = firstColumn(s, b, width);
    lossMask.fill(s.active, first, first + s.completionIds.length);
    targetMask.fill(1, first, first + s.completionIds.length);
  });
  return { rows, time, width, inputIds, attentionMask, targetMask, lossMask };
}

/** Per-sample completion rows out of a [rows, width] array. */
export function gatherCompletions(
  values: ArrayLike<number>,
  samples: readonly Sample[],
  width: number,
): number[][] {
  return samples.map((s, b) => {
    const first = firstColumn(s, b, width);
    return Array.from({ length: s.completionIds.length }, (_, k) => values[first + k]!);
  });
}

/** A per-sample log-prob (completion positions) as a [rows, width] array. */
function scatterCompletions(
  samples: readonly Sample[],
  width: number,
  key: 'oldLogProbs' | 'refLogProbs',
): Float32Array {
  const out = new Float32Array(samples.length * width);
  samples.forEach((s, b) => out.set(s[key]!, firstColumn(s, b, width)));
  return out;
}

/** The model's inputs of a layout as shard arrays (see `CausalLM.tokenLogProbs`). */
export function modelInputs(layout: MicroBatchLayout): ShardData {
  const { rows, time, width } = layout;
  return {
    inputIds: { values: layout.inputIds, shape: [rows, time] },
    attentionMask: { values: layout.attentionMask, shape: [rows, time] },
    targetMask: { values: layout.targetMask, shape: [rows, width] },
  };
}

/** A micro-batch as the arrays `grpoShardLoss` reads (old/ref log-probs when given). */
export function lossShard(
  layout: MicroBatchLayout,
  samples: readonly Sample[],
  include: { oldLogProbs: boolean; refLogProbs: boolean },
): ShardData {
  const { rows, width } = layout;
  const data: ShardData = {
    ...modelInputs(layout),
    mask: { values: layout.lossMask, shape: [rows, width] },
    advantages: { values: Float32Array.from(samples.map((s) => s.advantage)), shape: [rows] },
  };
  if (include.oldLogProbs)
    data['oldLogProbs'] = {
      values: scatterCompletions(samples, width, 'oldLogProbs'),
      shape: [rows, width],
    };
  if (include.refLogProbs)
    data['refLogProbs'] = {
      values: scatterCompletions(samples, width, 'refLogProbs'),
      shape: [rows, width],
    };
  return data;
}
