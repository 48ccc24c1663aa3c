import type { Logger } from '@codereasoner/core-tensors';
import type { EncodedExample } from './batching.js';
import type { SftRecord } from './dataset.js';

// Sequence packing. Chain conversations run from ~150 to ~1,000 tokens; dropping those over
// `maxSeqLen` loses the longest (hardest) programs' chains, and raising `maxSeqLen` with one
// conversation per row pads short rows to the batch's longest. Packing puts several conversations
// into one row of at most `packLength` tokens. The row's attention mask holds each token's
// segment number (1, 2, …; 0 = padding): core-tensors' attention lets a token see only its own
// segment's keys and restarts positions at every segment, so a packed conversation is scored
// exactly as it would be alone (core-tensors model.test.ts checks this). The loss cannot cross a
// boundary either: the first token of every conversation (`<|im_start|>`) is never a target.

/** A row of packed examples: their ids and masks one after another, and each token's segment. */
export interface PackedExample extends EncodedExample {
  /** Segment number of every token, 1-based in row order (the row's attention mask). */
  segments: number[];
  /** Indices (into the packed list) of the examples in this row, in order. */
  members: number[];
}

export interface PackingResult {
  rows: PackedExample[];
  /** Real tokens over row capacity (rows × packLength). */
  fill: number;
}

/**
 * Packs examples into rows of at most `packLength` tokens by first-fit decreasing (longest first,
 * each into the first row with room): deterministic, a function of the lengths only; the
 * trainer's batch plan shuffles the rows. An example longer than `packLength` is an error (filter
 * by length first).
 */
export function packExamples(
  examples: readonly EncodedExample[],
  packLength: number,
): PackingResult {
  if (!Number.isInteger(packLength) || packLength < 2)
    throw new RangeError(`packLength must be an integer >= 2, got ${packLength}`);
  const order = examples
    .map((example, index) => ({ index, length: example.ids.length }))
    .sort((a, b) => b.length - a.length || a.index - b.index);
  const rows: { members: number[]; free: number }[] = [];
  // a linear scan for the first row with room: ~10 k examples into ~3 k rows is a few tens of
  // millions of comparisons, well under a second, once per run
  for (const { index, length } of order) {
    if (length > packLength)
      throw new RangeError(
        `example ${index} has ${length} tokens, more than packLength ${packLength}; leave it out before packing`,
      );
    let row = rows.find((candidate) => candidate.free >= length);
    if (row === undefined) {
      row = { members: [], free: packLength };
      rows.push(row);
    }
    row.members.push(index);
    row.free -= length;
  }
  let tokens = 0;
  const packed = rows.map(({ members }) => {
    const ids: number[] = [];
    const assistantMask: number[] = [];
    const segments: number[] = [];
    members.forEach((member, segment) => {
      const example = examples[member]!;
      ids.push(...example.ids);
      assistantMask.push(...example.assistantMask);
      for (let t = 0; t < example.ids.length; t++) segments.push(segment + 1);
    });
    tokens += ids.length;
    return { ids, assistantMask, segments, members };
  });
  return { rows: packed, fill: rows.length === 0 ? 0 : tokens / (rows.length * packLength) };
}

/** The trainer's call: packs, and says how full the rows are. */
export function packForTraining(
  examples: readonly EncodedExample[],
  packLength: number,
  logger?: Logger,
): PackedExample[] {
  const { rows, fill } = packExamples(examples, packLength);
  logger?.info(
    `sft: packed ${examples.length} conversations into ${rows.length} rows of ${packLength} tokens (${(100 * fill).toFixed(1)} % full)`,
  );
  return rows;
}

/**
 * The curriculum level of each training row: its record's (`kept[i]` is row i's record when
 * unpacked), or the hardest of its members' when packed.
 */
export function rowLevels(
  rows: readonly EncodedExample[],
  kept: readonly number[],
  records: readonly SftRecord[],
  levelOf: ((record: SftRecord) => number) | undefined,
): number[] {
  const level = (example: number) =>
    levelOf === undefined ? 0 : levelOf(records[kept[example]!]!);
  return rows.map((row, index) =>
    'members' in row ? Math.max(...(row as PackedExample).members.map(level)) : level(index),
  );
}
