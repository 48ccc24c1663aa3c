import { ConfigValidationError, type ChatMessage } from '@codereasoner/core-tensors';
import { RewardFunctionError } from './errors.js';

/** What every reward function receives: one entry per completion (a prompt's values repeat G times). */
export interface RewardInput {
  /** The prompt of each completion, as given in the data set (chat messages or plain text). */
  prompts: (ChatMessage[] | string)[];
  /** Decoded completion texts, without the closing `<|im_end|>`. */
  completions: string[];
  /** Completion token ids, including the stop token when the completion stopped on one. */
  completionIds: number[][];
  /** The data set row of each completion, every column included (ground truth, task ids, ...). */
  rows: Record<string, unknown>[];
  /** `stop` (ended on `<|im_end|>`) or `length` (cut by maxCompletionLength). */
  finishReasons: ('stop' | 'length')[];
  /** The 1-based training step (for curricula). */
  step: number;
  /**
   * Aborted when this function's `timeoutMs` runs out: pass it to `fetch` or a sandbox so that
   * abandoned work stops (the step has already failed by then).
   */
  signal?: AbortSignal;
}

/**
 * A reward: one number per completion, or `null` where it does not apply (multi-task data); sync
 * or async. A completion is unscorable only when every function returned null for it.
 */
export type RewardFunction = (input: RewardInput) => (number | null)[] | Promise<(number | null)[]>;

export interface RewardSpec {
  /** Names the function in metrics (`rewards/<name>/mean`) and in errors. */
  name: string;
  fn: RewardFunction;
  /** Multiplies the function's values in the total reward. Default 1. */
  weight?: number;
  /**
   * Milliseconds an async function may take per batch; past it the step stops with a
   * RewardFunctionError naming the function, and `input.signal` is aborted. Default: no limit. A
   * synchronous function that blocks the thread cannot be timed out (run such work in a worker).
   */
  timeoutMs?: number;
}

export interface RewardScores {
  perFunction: { name: string; weight: number; values: (number | null)[] }[];
  /** Σ_k weight_k · value_k over the functions that apply; null where none applies. */
  total: (number | null)[];
}

const NAME = /^[A-Za-z0-9_.-]+$/;

/** Checks names (unique, metric-safe) and weights; throws ConfigValidationError listing every issue. */
export function validateRewardSpecs(rewards: readonly RewardSpec[]): void {
  const issues: string[] = [];
  if (!Array.isArray(rewards) || rewards.length === 0) {
    throw new ConfigValidationError('GRPO rewards', [
      '/rewards: give at least one { name, fn, weight? }',
    ]);
  }
  const seen = new Set<string>();
  rewards.forEach((r, i) => {
    if (typeof r?.name !== 'string' || !NAME.test(r.name)) {
      issues.push(
        `/rewards/${i}/name: must be a non-empty string of letters, digits, '_', '.', '-' (it becomes a metric name); got ${JSON.stringify(r?.name)}`,
      );
    } else if (seen.has(r.name)) {
      issues.push(`/rewards/${i}/name: '${r.name}' is used twice; names must be unique`);
    } else seen.add(r.name);
    if (typeof r?.fn !== 'function') issues.push(`/rewards/${i}/fn: must be a function`);
    if (r?.weight !== undefined && (typeof r.weight !== 'number' || !Number.isFinite(r.weight))) {
      issues.push(`/rewards/${i}/weight: must be a finite number; got ${String(r.weight)}`);
    }
    if (
      r?.timeoutMs !== undefined &&
      (typeof r.timeoutMs !== 'number' || !Number.isFinite(r.timeoutMs) || r.timeoutMs <= 0)
    ) {
      issues.push(`/rewards/${i}/timeoutMs: must be a positive number; got ${String(r.timeoutMs)}`);
    }
  });
  if (issues.length > 0) throw new ConfigValidationError('GRPO rewards', issues);
}

function checkValues(
  name: string,
  values: unknown,
  completions: readonly string[],
): (number | null)[] {
  const count = completions.length;
  if (!Array.isArray(values)) {
    throw new RewardFunctionError(
      name,
      `returned ${values === null ? 'null' : typeof values}, expected an array of ${count} numbers or nulls.`,
    );
  }
  if (values.length !== count) {
    throw new RewardFunctionError(
      name,
      `returned ${values.length} values for ${count} completions; return one per completion (null where it does not apply).`,
    );
  }
  values.forEach((v, i) => {
    if (v === null) return;
    if (typeof v !== 'number') {
      throw new RewardFunctionError(
        name,
        `value [${i}] is ${v === undefined ? 'undefined' : JSON.stringify(v)}; return a finite number, or null where the reward does not apply.`,
      );
    }
    if (!Number.isFinite(v)) {
      throw new RewardFunctionError(
        name,
        `value [${i}] is ${String(v)} for completion ${JSON.stringify(truncate(completions[i] ?? ''))}; return a finite number, or null where the reward does not apply.`,
      );
    }
  });
  return values as (number | null)[];
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Runs every reward function on the batch (async ones concurrently) and combines them. A function
 * that throws, rejects or returns a bad value raises RewardFunctionError naming it; NaN and
 * ±Infinity are bad values (return null for "does not apply").
 */
export async function scoreCompletions(
  rewards: readonly RewardSpec[],
  input: RewardInput,
): Promise<RewardScores> {
  const count = input.completions.length;
  const settled = await Promise.allSettled(
    rewards.map(async (r) => {
      let values: unknown;
      try {
        values = await callWithTimeout(r, input);
      } catch (error) {
        if (error instanceof RewardFunctionError) throw error;
        const message = error instanceof Error ? error.message : String(error);
        throw new RewardFunctionError(r.name, `threw: ${message}`, { cause: error });
      }
      return checkValues(r.name, values, input.completions);
    }),
  );
  const perFunction = settled.map((s, k) => {
    if (s.status === 'rejected') throw s.reason;
    return { name: rewards[k]!.name, weight: rewards[k]!.weight ?? 1, values: s.value };
  });
  return { perFunction, total: combineRewards(perFunction, count) };
}

async function callWithTimeout(spec: RewardSpec, input: RewardInput): Promise<unknown> {
  if (spec.timeoutMs === undefined) return spec.fn(input);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(
        new RewardFunctionError(
          spec.name,
          `did not finish within ${spec.timeoutMs} ms for ${input.completions.length} completions; raise its timeoutMs or make it faster.`,
        ),
      );
    }, spec.timeoutMs);
  });
  try {
    return await Promise.race([spec.fn({ ...input, signal: controller.signal }), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Σ_k weight_k · value_k over non-null values; null when every function returned null. */
export function combineRewards(
  perFunction: readonly { weight: number; values: readonly (number | null)[] }[],
  count: number,
): (number | null)[] {
  const total: (number | null)[] = new Array<number | null>(count).fill(null);
  for (const { weight, values } of perFunction) {
    values.forEach((v, i) => {
      if (v !== null) total[i] = (total[i] ?? 0) + weight * v;
    });
  }
  return total;
}

/**
 * DAPO's soft overlong punishment (arXiv 2503.14476, eq. 13) as a reward to add to the others:
 * 0 up to maxLength − cacheLength tokens, then falling linearly to −1 at maxLength, and −1 beyond.
 * Length is the completion's token count (the stop token included). Set the generation cap to
 * maxLength (DAPO: maxLength 20480 with cacheLength 4096, i.e. the penalty starts at 16384).
 */
export function softOverlongPunishment(options: {
  maxLength: number;
  cacheLength: number;
}): RewardFunction {
  const { maxLength, cacheLength } = options;
  if (
    !Number.isInteger(maxLength) ||
    !Number.isInteger(cacheLength) ||
    cacheLength <= 0 ||
    cacheLength >= maxLength
  ) {
    throw new ConfigValidationError('softOverlongPunishment options', [
      `/: need integers 0 < cacheLength < maxLength; got maxLength ${maxLength}, cacheLength ${cacheLength}`,
    ]);
  }
  const free = maxLength - cacheLength;
  return ({ completionIds }) =>
    completionIds.map((ids) => {
      const length = ids.length;
      if (length <= free) return 0;
      if (length <= maxLength) return (free - length) / cacheLength;
      return -1;
    });
}
