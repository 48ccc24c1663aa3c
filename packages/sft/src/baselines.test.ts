import type { TaskRecord, TaskType } from '@codereasoner/protocol';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerDiversity, evaluateBaselines } from './baselines.js';
import { SftAbortedError } from './errors.js';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
}, 60_000);

afterAll(async () => {
  await sandbox?.close();
});

function task(
  id: string,
  type: TaskType,
  answer: string,
  fields: Partial<TaskRecord> = {},
): TaskRecord {
  return {
    id,
    programId: id,
    callId: id,
    type,
    split: 'eval',
    code: 'def f(x):\n    return x\n',
    entryPoint: 'f',
    input: '0',
    output: '0',
    answer,
    meta: {},
    ...fields,
  };
}

const program = (body: string, input: string, output: string) => ({
  code: `def f(x):\n    return ${body}\n`,
  input,
  output,
});

// Training answers per type (only the answers matter to the baselines).
const TRAIN: TaskRecord[] = [
  ...['0', '0', '1', "'a'"].map((a, i) => task(`to${i}`, 'output', a, { split: 'train' })),
  ...['0', '0', '[1]'].map((a, i) => task(`ti${i}`, 'input', a, { split: 'train' })),
  ...['yes', 'yes', 'yes', 'no'].map((a, i) => task(`tc${i}`, 'coverage', a, { split: 'train' })),
  ...['0', '[]', '[]'].map((a, i) => task(`ts${i}`, 'state', a, { split: 'train' })),
  ...['-1', '-1', '3'].map((a, i) => task(`tp${i}`, 'path', a, { split: 'train' })),
];

// Held-out items, each a real program the verifier runs.
const HELD: TaskRecord[] = [
  task('o1', 'output', '0', program('x * 0', '5', '0')),
  task('o2', 'output', '0', program('x - 1', '1', '0')),
  task('o3', 'output', '2.0', program('x + 1.0', '1', '2.0')),
  task('o4', 'output', '2', program('x', '2', '2')),
  task('o5', 'output', '2', program('x', '2', '2')),
  task('i1', 'input', '3', program('x * 2', '3', '6')),
  task('i2', 'input', '[5]', program('len(x)', '[5]', '1')),
  task('i3', 'input', '0', program('x + 1', '0', '1')),
  task('i4', 'input', "'a'", program('x.upper()', "'a'", "'A'")),
  task('c1', 'coverage', 'yes', { line: 2 }),
  task('c2', 'coverage', 'no', { line: 2 }),
  task('c3', 'coverage', 'no', { line: 2 }),
  task('s1', 'state', 'True', { line: 2, variable: 'x' }),
  task('s2', 'state', '1', { line: 2, variable: 'x' }),
  task('s3', 'state', '1', { line: 2, variable: 'x' }),
  task('s4', 'state', '[]', { line: 2, variable: 'x' }),
  task('p1', 'path', '-1', { line: 2 }),
  task('p2', 'path', '4', { line: 2, meta: { acceptableAnswers: ['-1'] } }),
  task('p3', 'path', '4', { line: 2 }),
];

/**
 * By hand: for every training answer, the held-out items it is verified correct on.
 * output: `0` equals o1, o2; `1` and `'a'` equal none.
 * input: f(0) is 0*2=0≠6 (i1), len(0) raises (i2), 0+1=1 (i3 ✓), (0).upper raises (i4);
 *   f([1]): [1,1]≠6, len([1])=1 (i2 ✓), [1]+1 raises, no upper.
 * coverage: yes → c1; no → c2, c3. state: `0` matches none (s2, s3 hold int 1), `[]` → s4.
 * path: -1 → p1 and p2 (an acceptable answer there); 3 → none.
 */
const CORRECT_ON: Record<TaskType, Record<string, string[]>> = {
  output: { '0': ['o1', 'o2'], '1': [], "'a'": [] },
  input: { '0': ['i3'], '[1]': ['i2'] },
  coverage: { yes: ['c1'], no: ['c2', 'c3'] },
  state: { '0': [], '[]': ['s4'] },
  path: { '-1': ['p1', 'p2'], '3': [] },
};

describe('evaluateBaselines', () => {
  it('scores the training majority and the best constant by execution, per type and overall', async () => {
    const result = await evaluateBaselines(TRAIN, HELD, sandbox, { seed: 7 });
    const { byType } = result;

    // output: majority 0 (2 of 4 training answers) is right on o1, o2. The best constant is 2:
    // right on o3 too because 2 == 2.0 (string equality would give it 2 of 5).
    expect(byType.output?.majority).toMatchObject({
      answer: '0',
      trainCount: 2,
      trainTotal: 4,
      correct: 2,
      total: 5,
    });
    expect(byType.output?.bestConstant).toMatchObject({
      answer: '2',
      correct: 3,
      total: 5,
      accuracy: 0.6,
      candidates: 3, // 0, 2, 2.0
      exhaustive: true,
    });

    // input: majority 0 is right on i3 only. Candidates 0, 'a', 3, [5], [1]: f('a') is 'aa'
    // for i1, len('a') = 1 for i2 ✓, 'a' + 1 raises, 'a'.upper() = 'A' for i4 ✓ → 2 of 4.
    expect(byType.input?.majority).toMatchObject({ answer: '0', correct: 1, total: 4 });
    expect(byType.input?.bestConstant).toMatchObject({
      answer: "'a'",
      correct: 2,
      candidates: 5,
      exhaustive: false, // no finite list covers every argument list
    });

    // coverage: majority yes 1 of 3; no is right on 2 of 3.
    expect(byType.coverage?.majority).toMatchObject({ answer: 'yes', correct: 1, total: 3 });
    expect(byType.coverage?.bestConstant).toMatchObject({ answer: 'no', correct: 2 });

    // state: [] is right on s4 only; 1 on s2 and s3 but not on s1 (True: same type required).
    expect(byType.state?.majority).toMatchObject({ answer: '[]', correct: 1, total: 4 });
    expect(byType.state?.bestConstant).toMatchObject({ answer: '1', correct: 2 });

    // path: -1 is p1's gold and one of p2's acceptable answers; 4 also scores 2: the tie goes to
    // the first candidate, the majority, and so does the best baseline.
    expect(byType.path?.majority).toMatchObject({ answer: '-1', correct: 2, total: 3 });
    expect(byType.path?.bestConstant).toMatchObject({ answer: '-1', correct: 2 });
    expect(byType.path?.best).toMatchObject({ baseline: 'majority', correct: 2 });
    expect(byType.output?.best).toMatchObject({ baseline: 'bestConstant', correct: 3 });

    // 19 items; majority 2+1+1+1+2 = 7, best constant 3+2+2+2+2 = 11.
    expect(result.overall.majority).toEqual({ correct: 7, total: 19, accuracy: 7 / 19 });
    expect(result.overall.bestConstant).toEqual({ correct: 11, total: 19, accuracy: 11 / 19 });
    expect(result.items.map((item) => item.taskId)).toEqual(HELD.map((t) => t.id));
    expect(result.items.find((item) => item.taskId === 'o3')).toMatchObject({
      majority: false,
      bestConstant: true,
    });
  });

  it('draws the random baseline from the training answers of each type, seeded, and verifies each draw', async () => {
    const result = await evaluateBaselines(TRAIN, HELD, sandbox, { seed: 7 });
    let expected = 0;
    for (const item of result.items) {
      const draw = item.random!;
      const table = CORRECT_ON[item.type];
      expect(Object.keys(table), `${item.taskId} drew ${draw.answer}`).toContain(draw.answer);
      const right = table[draw.answer]!.includes(item.taskId);
      expect(draw.correct, `${item.taskId} with ${draw.answer}`).toBe(right);
      if (right) expected += 1;
    }
    expect(result.overall.random.correct).toBe(expected);
    const perType = Object.values(result.byType).reduce((sum, t) => sum + t.random!.correct, 0);
    expect(perType).toBe(expected);
    // random is not constant, so it may beat the best constant (coverage: yes, no, no is 3 of 3)
    let best = 0;
    for (const type of Object.keys(result.byType) as TaskType[]) {
      const t = result.byType[type]!;
      const top = Math.max(t.majority!.correct, t.random!.correct, t.bestConstant.correct);
      expect(t.best.correct).toBe(top);
      best += top;
    }
    expect(result.overall.best).toEqual({ correct: best, total: 19, accuracy: best / 19 });

    const again = await evaluateBaselines(TRAIN, HELD, sandbox, { seed: 7 });
    expect(again.items.map((item) => item.random?.answer)).toEqual(
      result.items.map((item) => item.random?.answer),
    );
    const draws = new Set<string>();
    for (const seed of [1, 2, 3, 4])
      draws.add(
        (await evaluateBaselines(TRAIN, HELD, sandbox, { seed })).items
          .map((item) => item.random?.answer)
          .join('|'),
      );
    expect(draws.size).toBeGreaterThan(1);
  });

  it('has no majority or random answer for a type the training split lacks, and stops on its signal', async () => {
    const noCoverage = TRAIN.filter((t) => t.type !== 'coverage');
    const result = await evaluateBaselines(
      noCoverage,
      HELD.filter((t) => t.type === 'coverage'),
      sandbox,
    );
    expect(result.byType.coverage?.majority).toBeUndefined();
    expect(result.byType.coverage?.random).toBeUndefined();
    expect(result.byType.coverage?.bestConstant).toMatchObject({ answer: 'no', correct: 2 });
    expect(result.overall.majority).toEqual({ correct: 0, total: 3, accuracy: 0 });

    const controller = new AbortController();
    controller.abort();
    const error = await evaluateBaselines(TRAIN, HELD, sandbox, {
      signal: controller.signal,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SftAbortedError);
    expect(error).toMatchObject({ operation: 'baselines', completed: 0 });
  });

  it('caps the candidates with maxCandidates and then says the search was not exhaustive', async () => {
    const result = await evaluateBaselines(
      TRAIN,
      HELD.filter((t) => t.type === 'output'),
      sandbox,
      { maxCandidates: 1 },
    );
    expect(result.byType.output?.bestConstant).toMatchObject({
      answer: '0',
      correct: 2,
      candidates: 1,
      exhaustive: false,
    });
  });
});

describe('answerDiversity', () => {
  it('counts distinct answers per type and overall, with no answer as one value', () => {
    const diversity = answerDiversity([
      { type: 'coverage', answer: 'yes' },
      { type: 'coverage', answer: 'yes' },
      { type: 'coverage', answer: 'yes' },
      { type: 'coverage', answer: null },
      { type: 'path', answer: '-1' },
      { type: 'path', answer: '3' },
      { type: 'output', answer: 'yes' },
    ]);
    expect(diversity.byType.coverage).toEqual({
      items: 4,
      distinct: 2,
      top: { answer: 'yes', count: 3, share: 0.75 },
    });
    expect(diversity.byType.path).toEqual({
      items: 2,
      distinct: 2,
      top: { answer: '-1', count: 1, share: 0.5 },
    });
    expect(diversity.byType.state).toBeUndefined();
    // overall: yes (coverage), null, -1, 3, yes (output) are 5 values among 7 items
    expect(diversity.overall).toEqual({
      items: 7,
      distinct: 5,
      top: { answer: 'yes', type: 'coverage', count: 3, share: 3 / 7 },
    });
    expect(answerDiversity([{ type: 'input', answer: null }]).overall.top).toEqual({
      answer: null,
      count: 1,
      share: 1,
    });
  });
});
