/**
 * Dropping finished rows from a generation batch: which rows move where, and the in-place move of
 * a KV cache laid out row by row. Shared by the onnx engine's cache (`OnnxGeneration`) and the
 * tfjs fused path's (`DecodeAttention`).
 */

/**
 * The rows a batch keeps given which rows go on (new row j is old row keep[j]): rows that go on
 * keep their place, and each finished row's place below the new size takes the last row that
 * goes on from past it, so only rows past the new size move (one copy each).
 */
export function compactionOrder(goesOn: readonly boolean[]): number[] {
  const size = goesOn.filter(Boolean).length;
  const keep: number[] = [];
  let tail = goesOn.length - 1;
  for (let j = 0; j < size; j++) {
    if (goesOn[j]) keep.push(j);
    else {
      while (!goesOn[tail]) tail--;
      keep.push(tail--);
    }
  }
  return keep;
}

/**
 * Moves the rows of `cache` (rows of `block` floats from `base`) so that row j holds old row
 * keep[j], in place. keep must be distinct rows below `rows` with keep[j] either j or at or past
 * keep.length, so no row is overwritten before it moves (what `compactionOrder` gives).
 */
export function moveRows(
  caches: readonly { array: Float32Array; base: number }[],
  keep: readonly number[],
  rows: number,
  block: number,
): void {
  const n = keep.length;
  if (n === 0 || n > rows)
    throw new RangeError(`a compaction keeps ${n} of ${rows} rows; keep between 1 and ${rows}`);
  const seen = new Set<number>();
  keep.forEach((from, j) => {
    if (!Number.isInteger(from) || from < 0 || from >= rows || seen.has(from))
      throw new RangeError(`compaction: row ${from} at ${j} is not a distinct row below ${rows}`);
    if (from !== j && from < n)
      throw new RangeError(
        `compaction: row ${from} moves to ${j} but stays in the batch of ${n}; move only rows at or past ${n} (see compactionOrder)`,
      );
    seen.add(from);
  });
  for (const { array, base } of caches)
    keep.forEach((from, j) => {
      if (from !== j)
        array.copyWithin(base + j * block, base + from * block, base + (from + 1) * block);
    });
}
