import { Rng } from '@codereasoner/core-tensors';

/** Where the next prompt comes from: the epoch and the index into that epoch's order. */
export interface DataPosition {
  epoch: number;
  offset: number;
}

/**
 * The order prompts are drawn in: each epoch a permutation of the data set (or the data set as is
 * without `shuffle`), from a generator derived from the seed and the epoch alone, so the order
 * never depends on resume history. The position is part of the run state a checkpoint keeps.
 */
export class DataOrder {
  private readonly size: number;
  private readonly seed: number;
  private readonly shuffle: boolean;
  private cached: { epoch: number; indices: number[] } | undefined;
  private current: DataPosition = { epoch: 0, offset: 0 };

  constructor(size: number, options: { seed: number; shuffle: boolean }) {
    this.size = size;
    this.seed = options.seed;
    this.shuffle = options.shuffle;
  }

  /** A copy of the position (safe to journal). */
  get position(): DataPosition {
    return { ...this.current };
  }

  set position(position: DataPosition) {
    this.current = { epoch: position.epoch, offset: position.offset };
  }

  /** Data set passes so far, fractional. */
  get epochs(): number {
    return this.current.epoch + this.current.offset / this.size;
  }

  private epochOrder(epoch: number): number[] {
    if (this.cached?.epoch === epoch) return this.cached.indices;
    const indices = Array.from({ length: this.size }, (_, i) => i);
    if (this.shuffle)
      new Rng((this.seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0).shuffle(indices);
    this.cached = { epoch, indices };
    return indices;
  }

  /** The next `count` row indices, crossing into the next epoch as needed. */
  take(count: number): number[] {
    const rows: number[] = [];
    while (rows.length < count) {
      const order = this.epochOrder(this.current.epoch);
      rows.push(order[this.current.offset]!);
      this.current.offset += 1;
      if (this.current.offset >= order.length)
        this.current = { epoch: this.current.epoch + 1, offset: 0 };
    }
    return rows;
  }
}
