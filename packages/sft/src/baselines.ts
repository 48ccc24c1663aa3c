import { Rng } from '@codereasoner/common';
import {
  TASK_TYPES,
  extractAnswer,
  formatCompletion,
  verifyBatch,
  type TaskRecord,
  type TaskType,
  type VerifySandbox,
} from '@codereasoner/protocol';
import type { ProgressEvent } from '@codereasoner/core-tensors';
import { SftAbortedError } from './errors.js';

/**
 * The trivial answer policies every held-out accuracy is read against. Each one answers from the
 * task type alone (never from the code), and is scored by the same `verifyBatch` as a model:
 * - `majority`: the most frequent gold answer of that type in the training split;
 * - `bestConstant`: the one answer that scores best on the held-out items themselves (an
 *   oracle: an upper bound for every constant policy, see `evaluateBaselines`);
 * - `random`: for each item, a training answer of that type drawn at random (seeded), i.e. a
 *   policy that learned the training answers' distribution and nothing about the item.
 */
export type BaselineName = 'majority' | 'bestConstant' | 'random';

export const BASELINE_NAMES: readonly BaselineName[] = ['majority', 'bestConstant', 'random'];

export interface BaselineScore {
  correct: number;
  total: number;
  /** `correct / total` (0 when `total` is 0). */
  accuracy: number;
}

export interface TypeBaselines {
  /** Held-out items of this type. */
  total: number;
  /** Absent when the training split has no task of this type. */
  majority?: BaselineScore & {
    answer: string;
    /** Training tasks of this type with this answer, and of this type in all. */
    trainCount: number;
    trainTotal: number;
  };
  bestConstant: BaselineScore & {
    answer: string;
    /** Constants scored. */
    candidates: number;
    /**
     * True when the candidates provably include the best constant of all (output, state,
     * coverage, path: every held-out gold answer was tried). Input answers run through each
     * item's own function, so no finite list covers them: false for input, and when
     * `maxCandidates` cut the list.
     */
    exhaustive: boolean;
  };
  /** Absent when the training split has no task of this type. */
  random?: BaselineScore;
  /** The best of the three (ties go to majority, then random: the non-oracle policies). */
  best: BaselineScore & { baseline: BaselineName };
}

export interface BaselineItem {
  taskId: string;
  type: TaskType;
  majority?: boolean;
  bestConstant: boolean;
  random?: { answer: string; correct: boolean };
}

export interface BaselineResult {
  seed: number;
  byType: Partial<Record<TaskType, TypeBaselines>>;
  /**
   * Over all held-out items, each baseline answering every type with its own answer for that
   * type; `best` takes each type's best baseline (the strongest type-aware trivial policy).
   */
  overall: Record<BaselineName | 'best', BaselineScore>;
  items: BaselineItem[];
}

export interface BaselineOptions {
  /** Seed of the random baseline (default 0). */
  seed?: number;
  /** Input questions: the most frequent training answers added to the candidates (default 10). */
  inputTrainCandidates?: number;
  /** Most constants scored per type (default 200; candidates × items verifications each). */
  maxCandidates?: number;
  /** Per-check sandbox time limit (verifyBatch's default when absent). */
  timeoutMs?: number;
  onProgress?: (event: ProgressEvent) => void;
  /** Checked between candidates: when it has fired, throws `SftAbortedError`. */
  signal?: AbortSignal;
}

function score(correct: number, total: number): BaselineScore {
  return { correct, total, accuracy: total === 0 ? 0 : correct / total };
}

/** Answers by frequency, most frequent first; ties in code-point order, so the result is deterministic. */
function byFrequency(answers: readonly string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const answer of answers) counts.set(answer, (counts.get(answer) ?? 0) + 1);
  return [...counts].sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0));
}

/** The gold answer and any `meta.acceptableAnswers` a task lists (what the verifier accepts). */
function goldAnswers(task: TaskRecord): string[] {
  const extra = task.meta['acceptableAnswers'];
  return [
    task.answer,
    ...(Array.isArray(extra)
      ? extra.filter((value): value is string => typeof value === 'string')
      : []),
  ];
}

/**
 * Scores the trivial baselines (`BaselineName`) on held-out `tasks`, with answers taken from the
 * `train` split, through the same extraction and verification by execution as `evaluateModel`
 * (each answer is wrapped with `formatCompletion`).
 *
 * The best constant is searched among every distinct gold (and acceptable) answer of the held-out
 * items of the type, plus the training majority (so it is never below it) and, for input, the
 * `inputTrainCandidates` most frequent training answers. For output, state, coverage and path
 * this is the best constant of all answers: an answer is correct on an item only if it equals
 * that item's gold (`==` for output; same type and `==` for state; the same text for coverage
 * and path), and equality between literal values is transitive, so a constant correct on a set
 * of items is matched by the gold of any of them. It is therefore an upper bound on what any
 * policy that ignores the question can score on these items. For input it is a lower bound of
 * that maximum (an argument list runs through each item's own function). Ties go to the first
 * candidate in that order (the training majority, then held-out golds by frequency).
 */
export async function evaluateBaselines(
  train: readonly TaskRecord[],
  tasks: readonly TaskRecord[],
  sandbox: VerifySandbox,
  options: BaselineOptions = {},
): Promise<BaselineResult> {
  const seed = options.seed ?? 0;
  const maxCandidates = options.maxCandidates ?? 200;
  const inputTrainCandidates = options.inputTrainCandidates ?? 10;
  const verifyOptions = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  const types = TASK_TYPES.filter((type) => tasks.some((task) => task.type === type));

  interface Plan {
    type: TaskType;
    items: TaskRecord[];
    trainAnswers: string[];
    majority?: [string, number];
    candidates: string[];
    exhaustive: boolean;
  }
  const plans: Plan[] = types.map((type) => {
    const items = tasks.filter((task) => task.type === type);
    const trainAnswers = train.filter((task) => task.type === type).map((task) => task.answer);
    const trainRanked = byFrequency(trainAnswers);
    const majority = trainRanked[0];
    const pool = [
      ...(majority === undefined ? [] : [majority[0]]),
      ...byFrequency(items.flatMap(goldAnswers)).map(([answer]) => answer),
      ...(type === 'input'
        ? trainRanked.slice(0, inputTrainCandidates).map(([answer]) => answer)
        : []),
    ];
    const distinct = [...new Set(pool)];
    const candidates = distinct.slice(0, Math.max(1, maxCandidates));
    return {
      type,
      items,
      trainAnswers,
      ...(majority === undefined ? {} : { majority }),
      candidates,
      exhaustive: type !== 'input' && candidates.length === distinct.length,
    };
  });

  const total = plans.reduce((sum, plan) => sum + plan.candidates.length * plan.items.length, 0);
  let completed = 0;
  options.onProgress?.({ stage: 'baselines', completed, total });
  const checkAbort = () => {
    if (options.signal?.aborted === true)
      throw new SftAbortedError('baselines', completed, total, { cause: options.signal.reason });
  };

  // verdicts[type][candidate] = per-item correctness, in item order
  const verdicts = new Map<TaskType, Map<string, boolean[]>>();
  for (const plan of plans) {
    const table = new Map<string, boolean[]>();
    verdicts.set(plan.type, table);
    for (const candidate of plan.candidates) {
      checkAbort();
      const completion = formatCompletion(candidate);
      const results = await verifyBatch(
        sandbox,
        plan.items.map((task) => ({ task, completion })),
        verifyOptions,
      );
      table.set(
        candidate,
        results.map((result) => result.correct),
      );
      completed += plan.items.length;
      options.onProgress?.({ stage: 'baselines', completed, total });
    }
  }

  // random: one seeded stream per type, one draw per held-out item
  checkAbort();
  const randomDraws = new Map<TaskType, string[]>();
  for (const plan of plans) {
    if (plan.trainAnswers.length === 0) continue;
    const rng = Rng.derive(seed, 'baseline-random', plan.type);
    randomDraws.set(
      plan.type,
      plan.items.map(() => rng.pick(plan.trainAnswers)),
    );
  }
  const randomChecks = plans.flatMap((plan) =>
    (randomDraws.get(plan.type) ?? []).map((answer, index) => ({
      task: plan.items[index]!,
      completion: formatCompletion(answer),
    })),
  );
  const randomResults = await verifyBatch(sandbox, randomChecks, verifyOptions);
  const randomVerdicts = new Map<TaskType, boolean[]>();
  let next = 0;
  for (const plan of plans) {
    const draws = randomDraws.get(plan.type);
    if (draws === undefined) continue;
    randomVerdicts.set(
      plan.type,
      draws.map(() => randomResults[next++]?.correct === true),
    );
  }

  const byType: Partial<Record<TaskType, TypeBaselines>> = {};
  const items: BaselineItem[] = [];
  const sums = { majority: 0, bestConstant: 0, random: 0, best: 0 };
  let allItems = 0;
  for (const plan of plans) {
    const table = verdicts.get(plan.type)!;
    const count = (flags: readonly boolean[]) => flags.filter(Boolean).length;
    let bestAnswer = plan.candidates[0]!;
    for (const candidate of plan.candidates) {
      if (count(table.get(candidate)!) > count(table.get(bestAnswer)!)) bestAnswer = candidate;
    }
    const n = plan.items.length;
    const bestConstant = {
      ...score(count(table.get(bestAnswer)!), n),
      answer: bestAnswer,
      candidates: plan.candidates.length,
      exhaustive: plan.exhaustive,
    };
    const majority =
      plan.majority === undefined
        ? undefined
        : {
            ...score(count(table.get(plan.majority[0])!), n),
            answer: plan.majority[0],
            trainCount: plan.majority[1],
            trainTotal: plan.trainAnswers.length,
          };
    const randomFlags = randomVerdicts.get(plan.type);
    const random = randomFlags === undefined ? undefined : score(count(randomFlags), n);
    let best: TypeBaselines['best'] = { ...bestConstant, baseline: 'bestConstant' };
    // ties go to the non-oracle policies: random first, then majority (checked last, wins ties)
    for (const [name, value] of [
      ['random', random],
      ['majority', majority],
    ] as const) {
      if (value !== undefined && value.correct >= best.correct)
        best = { ...score(value.correct, n), baseline: name };
    }
    byType[plan.type] = {
      total: n,
      ...(majority === undefined ? {} : { majority }),
      bestConstant,
      ...(random === undefined ? {} : { random }),
      best,
    };
    plan.items.forEach((task, index) => {
      const draw = randomDraws.get(plan.type)?.[index];
      items.push({
        taskId: task.id,
        type: plan.type,
        ...(majority === undefined
          ? {}
          : { majority: table.get(plan.majority![0])![index] === true }),
        bestConstant: table.get(bestAnswer)![index] === true,
        ...(draw === undefined
          ? {}
          : { random: { answer: draw, correct: randomFlags![index] === true } }),
      });
    });
    sums.majority += majority?.correct ?? 0;
    sums.bestConstant += bestConstant.correct;
    sums.random += random?.correct ?? 0;
    sums.best += best.correct;
    allItems += n;
  }
  return {
    seed,
    byType,
    overall: {
      majority: score(sums.majority, allItems),
      bestConstant: score(sums.bestConstant, allItems),
      random: score(sums.random, allItems),
      best: score(sums.best, allItems),
    },
    items,
  };
}

export interface AnswerDiversity {
  items: number;
  /** Distinct extracted answers; completions without an answer count as one more value. */
  distinct: number;
  /**
   * The most frequent answer (`null`: no answer could be extracted), its count and share of the
   * items (the first reached wins a tie); over all types it also names its type.
   */
  top: { answer: string | null; type?: TaskType; count: number; share: number };
}

function diversityOf<K>(keys: readonly K[]): {
  distinct: number;
  top: K | undefined;
  count: number;
} {
  const counts = new Map<K, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  let top: K | undefined;
  let count = 0;
  for (const [key, n] of counts)
    if (n > count) {
      top = key;
      count = n;
    }
  return { distinct: counts.size, top, count };
}

/**
 * How varied a model's answers are, per task type and over all items (where an answer is its
 * type and text): a model that answers `yes` to every coverage question has 1 distinct coverage
 * answer and a top share of 1, however accurate that looks.
 */
export function answerDiversity(items: readonly { type: TaskType; answer: string | null }[]): {
  byType: Partial<Record<TaskType, AnswerDiversity>>;
  overall: AnswerDiversity;
} {
  const byType: Partial<Record<TaskType, AnswerDiversity>> = {};
  for (const type of TASK_TYPES) {
    const answers = items.filter((item) => item.type === type).map((item) => item.answer);
    if (answers.length === 0) continue;
    const { distinct, top, count } = diversityOf(answers);
    byType[type] = {
      items: answers.length,
      distinct,
      top: { answer: top ?? null, count, share: count / answers.length },
    };
  }
  // one key per (type, answer); the same text answering two types is two answers
  const { distinct, top, count } = diversityOf(
    items.map((item) => (item.answer === null ? null : JSON.stringify([item.type, item.answer]))),
  );
  const topItem =
    top === undefined || top === null ? undefined : (JSON.parse(top) as [TaskType, string]);
  const overall: AnswerDiversity = {
    items: items.length,
    distinct,
    top: {
      answer: topItem?.[1] ?? null,
      ...(topItem === undefined ? {} : { type: topItem[0] }),
      count,
      share: items.length === 0 ? 0 : count / items.length,
    },
  };
  return { byType, overall };
}

/** The answer a model gave, as the verifier reads it (`null` when none could be extracted). */
export function extractedAnswer(completion: string, type: TaskType): string | null {
  const extracted = extractAnswer(completion, type);
  return extracted.ok ? extracted.answer : null;
}
