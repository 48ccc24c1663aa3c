import { createHash } from 'node:crypto';
import { CodeReasonerError } from './errors.js';

/**
 * Serialisable state of an `Rng` (plain JSON, written into trainer state for resume). The
 * algorithm is part of the state: see `Rng` for which streams use which.
 */
export type RngState =
  | { algorithm: 'xoshiro128**'; state: [number, number, number, number] }
  | { algorithm: 'splitmix32'; state: [number] };

function splitmix32Step(state: number): { state: number; value: number } {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return { state: next, value: (z ^ (z >>> 16)) >>> 0 };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * The project's one seeded random generator; every seeded result draws from it, so a seed
 * reproduces a run and `getState`/`fromState` let a resumed run continue the same stream.
 *
 * Two streams exist because seeded results published before this class was shared depend on
 * both, bit for bit: `new Rng(seed)` is xoshiro128** (model initialisation, sampling, shuffles,
 * trainers), and `Rng.derive(seed, ...labels)` is a splitmix32 stream keyed by a hash of the
 * labels (the corpus generator and builder, the random baselines), so a program's randomness
 * depends only on the seed and its index, whatever the batch size or however often a build
 * resumed. Every method below works on either stream.
 */
export class Rng {
  private algorithm: RngState['algorithm'] = 'xoshiro128**';
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    if (!Number.isFinite(seed))
      throw new CodeReasonerError(
        'RNG_SEED_INVALID',
        `Rng seed must be a finite number, got ${seed}`,
      );
    // Mix both halves of a seed beyond 2^32 so nearby large seeds still differ.
    let mix = (seed >>> 0) ^ Math.imul(Math.floor(seed / 4294967296) >>> 0, 0x27d4eb2d);
    const words: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const step = splitmix32Step(mix);
      mix = step.state;
      words.push(step.value);
    }
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A splitmix32 stream for one purpose: `Rng.derive(seed, 'program', 17)`. */
  static derive(seed: number, ...labels: (string | number)[]): Rng {
    const digest = createHash('sha256')
      .update(`${seed}:${labels.join(':')}`)
      .digest();
    return Rng.fromState({ algorithm: 'splitmix32', state: [digest.readUInt32LE(0)] });
  }

  /**
   * The splitmix32 stream started at `seed` itself (what data's generator class gave for
   * `new Rng(seed)` before the two classes were merged; label balancing depends on it).
   */
  static splitmix32(seed: number): Rng {
    return Rng.fromState({ algorithm: 'splitmix32', state: [seed >>> 0] });
  }

  /** A uint32. */
  nextUint32(): number {
    if (this.algorithm === 'splitmix32') {
      const step = splitmix32Step(this.s0);
      this.s0 = step.state;
      return step.value;
    }
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0)
      throw new CodeReasonerError(
        'RNG_RANGE_INVALID',
        `Rng.int needs a positive integer bound, got ${n}`,
      );
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi], both included. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One item, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0)
      throw new CodeReasonerError('RNG_RANGE_INVALID', 'Rng.pick needs a non-empty list');
    return items[this.int(items.length)]!;
  }

  /** One item by weight: `weighted([['a', 2], ['b', 1]])`. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    if (items.length === 0)
      throw new CodeReasonerError('RNG_RANGE_INVALID', 'Rng.weighted needs a non-empty list');
    const total = items.reduce((sum, [, weight]) => sum + weight, 0);
    let at = this.next() * total;
    for (const [item, weight] of items) {
      at -= weight;
      if (at < 0) return item;
    }
    return items[items.length - 1]![0];
  }

  /** A standard normal sample (Box-Muller). */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Shuffles `xs` in place (Fisher-Yates) and returns it. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = xs[i]!;
      xs[i] = xs[j]!;
      xs[j] = tmp;
    }
    return xs;
  }

  /** An independent xoshiro128** generator seeded from this one's stream (four draws). */
  fork(): Rng {
    const words: [number, number, number, number] = [
      this.nextUint32(),
      this.nextUint32(),
      this.nextUint32(),
      this.nextUint32(),
    ];
    if (words.every((w) => w === 0)) words[0] = 1;
    return Rng.fromState({ algorithm: 'xoshiro128**', state: words });
  }

  getState(): RngState {
    return this.algorithm === 'splitmix32'
      ? { algorithm: 'splitmix32', state: [this.s0] }
      : { algorithm: 'xoshiro128**', state: [this.s0, this.s1, this.s2, this.s3] };
  }

  static fromState(state: RngState): Rng {
    const words = (state as { state?: unknown } | undefined)?.state as number[] | undefined;
    const length = state?.algorithm === 'xoshiro128**' ? 4 : 1;
    if (
      (state?.algorithm !== 'xoshiro128**' && state?.algorithm !== 'splitmix32') ||
      !Array.isArray(words) ||
      words.length !== length ||
      !words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) ||
      (length === 4 && words.every((w) => w === 0))
    ) {
      throw new CodeReasonerError(
        'RNG_STATE_INVALID',
        `Not a valid Rng state: ${JSON.stringify(state)}; pass the object returned by Rng.getState().`,
      );
    }
    const rng = Object.create(Rng.prototype) as Rng;
    rng.algorithm = state.algorithm;
    [rng.s0, rng.s1, rng.s2, rng.s3] = (length === 4 ? words : [words[0]!, 0, 0, 0]) as [
      number,
      number,
      number,
      number,
    ];
    return rng;
  }
}

/** A stable hex digest of a string (sha256, first `length` hex digits). */
export function hashText(text: string, length = 16): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
