import { describe, expect, it } from 'vitest';
import { ConfigValidationError } from '@codereasoner/core-tensors';
import { RewardFunctionError } from './errors.js';
import {
  combineRewards,
  scoreCompletions,
  softOverlongPunishment,
  validateRewardSpecs,
  type RewardFunction,
  type RewardInput,
} from './rewards.js';

function input(
  completions: string[],
  rows: Record<string, unknown>[] = completions.map(() => ({})),
): RewardInput {
  return {
    prompts: completions.map(() => 'p'),
    completions,
    completionIds: completions.map((c) => [...c].map((ch) => ch.charCodeAt(0))),
    rows,
    finishReasons: completions.map(() => 'stop'),
    step: 1,
  };
}

describe('scoreCompletions', () => {
  it('stops a reward function past its timeoutMs, naming it, and aborts its signal', async () => {
    let seen: AbortSignal | undefined;
    const hangs: RewardFunction = ({ signal }) => {
      seen = signal;
      return new Promise(() => {});
    };
    const started = performance.now();
    const error = await scoreCompletions(
      [
        { name: 'quick', fn: ({ completions }) => completions.map(() => 1), timeoutMs: 50 },
        { name: 'remote', fn: hangs, timeoutMs: 50 },
      ],
      input(['a', 'b']),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RewardFunctionError);
    expect((error as RewardFunctionError).rewardName).toBe('remote');
    expect((error as Error).message).toContain('did not finish within 50 ms for 2 completions');
    expect(seen?.aborted).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('keeps the values of a function that finishes within its timeoutMs', async () => {
    const slowButFine: RewardFunction = async ({ completions, signal }) => {
      await new Promise((r) => setTimeout(r, 5));
      expect(signal?.aborted).toBe(false);
      return completions.map(() => 0.5);
    };
    const scores = await scoreCompletions(
      [{ name: 'ok', fn: slowButFine, timeoutMs: 2_000 }],
      input(['a']),
    );
    expect(scores.total).toEqual([0.5]);
  });

  it('weights, sums, and passes the rows extra columns', async () => {
    const scores = await scoreCompletions(
      [
        {
          name: 'exact',
          fn: ({ completions, rows }) =>
            completions.map((c, i) => (c === rows[i]!['answer'] ? 1 : 0)),
        },
        {
          name: 'short',
          weight: 0.5,
          fn: async ({ completions }) => completions.map((c) => (c.length <= 2 ? 1 : -1)),
        },
      ],
      input(['42', 'abc', '7'], [{ answer: '42' }, { answer: 'abc' }, { answer: '8' }]),
    );
    expect(scores.perFunction.map((f) => f.values)).toEqual([
      [1, 1, 0],
      [1, -1, 1],
    ]);
    expect(scores.total).toEqual([1.5, 0.5, 0.5]);
  });

  it('runs async functions concurrently', async () => {
    const order: string[] = [];
    const slow =
      (name: string, ms: number) =>
      async ({ completions }: RewardInput) => {
        order.push(`${name}:start`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name}:end`);
        return completions.map(() => 1);
      };
    await scoreCompletions(
      [
        { name: 'a', fn: slow('a', 30) },
        { name: 'b', fn: slow('b', 1) },
      ],
      input(['x']),
    );
    expect(order).toEqual(['a:start', 'b:start', 'b:end', 'a:end']);
  });

  it('lets a function return null where it does not apply; all-null rows are unscorable', async () => {
    const scores = await scoreCompletions(
      [
        { name: 'math', fn: ({ rows }) => rows.map((r) => (r['task'] === 'math' ? 1 : null)) },
        {
          name: 'code',
          weight: 2,
          fn: ({ rows }) => rows.map((r) => (r['task'] === 'code' ? 0.25 : null)),
        },
      ],
      input(['a', 'b', 'c'], [{ task: 'math' }, { task: 'code' }, { task: 'poetry' }]),
    );
    expect(scores.total).toEqual([1, 0.5, null]);
  });

  it('names the function that throws, rejects, or returns bad values', async () => {
    const run = (fn: RewardFunction) =>
      scoreCompletions(
        [
          { name: 'ok', fn: ({ completions }) => completions.map(() => 1) },
          { name: 'judge', fn },
        ],
        input(['x', 'yy']),
      );
    await expect(
      run(() => {
        throw new Error('sandbox down');
      }),
    ).rejects.toThrow("Reward function 'judge': threw: sandbox down");
    await expect(run(async () => Promise.reject(new Error('timeout')))).rejects.toMatchObject({
      rewardName: 'judge',
      code: 'GRPO_REWARD_FAILED',
    });
    await expect(run(() => [1])).rejects.toThrow('returned 1 values for 2 completions');
    await expect(run(() => [1, Number.NaN])).rejects.toThrow(
      `value [1] is NaN for completion "yy"`,
    );
    await expect(run(() => [1, undefined as never])).rejects.toThrow('value [1] is undefined');
    await expect(run(() => 'x' as never)).rejects.toBeInstanceOf(RewardFunctionError);
  });
});

describe('validateRewardSpecs', () => {
  it('lists every problem', () => {
    try {
      validateRewardSpecs([
        { name: 'a', fn: () => [] },
        { name: 'a', fn: () => [] },
        { name: 'bad name', fn: 3 as never, weight: Number.NaN, timeoutMs: 0 },
      ]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigValidationError);
      expect((error as ConfigValidationError).issues).toEqual([
        "/rewards/1/name: 'a' is used twice; names must be unique",
        `/rewards/2/name: must be a non-empty string of letters, digits, '_', '.', '-' (it becomes a metric name); got "bad name"`,
        '/rewards/2/fn: must be a function',
        '/rewards/2/weight: must be a finite number; got NaN',
        '/rewards/2/timeoutMs: must be a positive number; got 0',
      ]);
    }
    expect(() => validateRewardSpecs([])).toThrow(/at least one/);
  });
});

describe('combineRewards', () => {
  it('treats a 0 weight as applicable (0, not null)', () => {
    expect(combineRewards([{ weight: 0, values: [5, null] }], 2)).toEqual([0, null]);
  });
});

describe('softOverlongPunishment (DAPO eq. 13)', () => {
  it('matches anchors §6 for L_max 20, L_cache 4', () => {
    const fn = softOverlongPunishment({ maxLength: 20, cacheLength: 4 });
    const lengths = [15, 16, 17, 18, 20, 21];
    const values = fn({
      ...input([]),
      completionIds: lengths.map((n) => new Array<number>(n).fill(0)),
    });
    // free zone ≤ 16 → 0; (16 − L)/4 for 16 < L ≤ 20; −1 beyond.
    expect(values).toEqual([0, 0, -0.25, -0.5, -1, -1]);
    expect(() => softOverlongPunishment({ maxLength: 4, cacheLength: 4 })).toThrow(
      ConfigValidationError,
    );
  });
});
