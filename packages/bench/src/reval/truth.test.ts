import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NEEDS_SHARED, SHARED_BENCHMARKS } from '../test-paths.js';
import { loadReval } from './data.js';
import { revalGroupItems, scoreReval } from './items.js';
import { useTracedRevalFixture } from './test-fixture.js';
import { computeRevalTruth } from './truth.js';

const reval = useTracedRevalFixture();

describe('REval ground truth (the official tracer rules, run in the sandbox)', () => {
  it('records coverage, next lines and the values after each execution of a line', () => {
    const [group0] = reval.truths; // running_max([3, 1, 4, 1, 5])
    expect(group0!.ok).toBe(true);
    const [best, out, squares, out0] = group0!.probes;
    // Line 7 `best = v` runs for 3, 4 and 5; the value "after" it is read in the next state.
    expect(best).toMatchObject({
      covered: true,
      next: [8],
      nil: false,
      values: ['3', '4', '5'],
      types: ['int', 'int', 'int'],
    });
    expect(out!.values).toEqual(['[3]', '[3, 3]', '[3, 3, 4]', '[3, 3, 4, 4]', '[3, 3, 4, 4, 5]']);
    expect(out!.next).toEqual([5]);
    // Line 9 holds a comprehension: under CPython 3.12+ its locals are the function's.
    expect(squares).toMatchObject({ covered: true, next: [10], values: ['[9, 9, 16, 16, 25]'] });
    expect(out0!.values).toEqual(['3', '3', '3', '3', '3']);
    expect(group0!.outputGold).toBe(
      'assert running_max([3, 1, 4, 1, 5]) == ([3, 3, 4, 4, 5], [9, 9, 16, 16, 25])',
    );
    expect(group0!.outputGoldPasses).toBe(true);
  });

  it('gives Nil and next line -1 for a line that never runs', () => {
    const empty = reval.truths[1]!; // running_max([])
    expect(empty.probes[0]).toMatchObject({
      covered: false,
      next: [-1],
      nil: true,
      values: [],
      gold: 'Nil',
    });
  });

  it('resolves tuples, and reads the last state itself after a return', () => {
    const negative = reval.truths[2]!; // classify(-20)
    expect(negative.probes[0]).toMatchObject({
      covered: true,
      values: ['(-1, 20)'],
      types: ['tuple'],
      gold: '(-1, 20); tuple',
    });
    expect(negative.probes[1]).toMatchObject({ covered: false, nil: true });
    expect(negative.probes[3]).toMatchObject({ covered: true, next: [-1], values: ['-1'] });
  });

  it('runs the first test method of the matching TestCase class, setUp untraced, with the setUp shown', () => {
    const add = reval.truths[4]!; // CounterTestAdd.test_add with setUp
    expect(add.setup).toBe(
      '\n# setup code executed previously\n#         self.counter = Counter(5)\n# ',
    );
    expect(add.probes[0]).toMatchObject({ covered: true, values: ['8'] });
    expect(add.probes[1]).toMatchObject({ covered: true, values: ['[3]'] });
    expect(add.probes[2]).toMatchObject({ covered: false, nil: true });
    expect(add.outputGold).toBe(reval.problems[2]!.inputs[0]);
    const reset = reval.truths[5]!; // CounterTestReset: no setUp of its own
    expect(reset.setup).toBe('');
    expect(reset.probes[2]).toMatchObject({ covered: true, values: ['0'] });
  });
});

describe('REval scoring of model answers', () => {
  const answer = (text: string) => `[ANSWER]\n${text}\n[/ANSWER]`;

  async function score(
    problemIndex: number,
    groupIndex: number,
    task: 'coverage' | 'state' | 'path' | 'output',
    probe: number,
    texts: string[],
  ) {
    const problem = reval.problems[problemIndex]!;
    const group = problem.groups[groupIndex]!;
    const g =
      reval.problems.slice(0, problemIndex).reduce((sum, p) => sum + p.groups.length, 0) +
      groupIndex;
    const all = revalGroupItems(problem, group, reval.truths[g]!, [task], {
      cot: false,
      style: 'official',
    });
    const chosen = task === 'output' ? all[0]! : all[probe]!;
    const verdicts = await scoreReval(
      reval.sandbox,
      [chosen.item],
      [chosen.context],
      [texts.map(answer)],
      { cot: false, style: 'official' },
    );
    return verdicts[0]!.map((v) => v.verdict);
  }

  it('state: official value; type parsing, type normalisation and equality', async () => {
    expect(
      await score(2, 0, 'state', 0, [
        '8; int',
        '8; integer',
        "8; <class 'int'>",
        '8.0; float',
        '8; str',
        '8',
        'Nil',
        '9; int',
      ]),
    ).toEqual(['pass', 'pass', 'pass', 'fail', 'fail', 'fail', 'fail', 'fail']);
    expect(await score(2, 0, 'state', 1, ['[3]; list', '[3]; list[int]', '(3,); tuple'])).toEqual([
      'pass',
      'pass',
      'fail',
    ]);
    expect(await score(2, 0, 'state', 2, ['Nil', '[Nil]', '0; int'])).toEqual([
      'pass',
      'pass',
      'fail',
    ]);
    expect(
      await score(1, 0, 'state', 0, [
        '(-1, 20); tuple',
        '(-1, 20); tuple[int, int]',
        '[-1, 20]; list',
      ]),
    ).toEqual(['pass', 'pass', 'fail']);
  });

  it('coverage and path: YES/NO and line text', async () => {
    expect(await score(0, 0, 'coverage', 0, ['YES', 'NO', 'yes', ''])).toEqual([
      'pass',
      'fail',
      'pass',
      'fail',
    ]);
    expect(
      await score(0, 0, 'path', 0, [
        'out.append(best)',
        '    out.append(best)  ',
        'return out, squares',
        '-1',
      ]),
    ).toEqual(['pass', 'pass', 'fail', 'fail']);
  });

  it('output: executed in the sandbox, padded, screened', async () => {
    expect(
      await score(0, 0, 'output', 0, [
        'assert running_max([3, 1, 4, 1, 5]) == ([3, 3, 4, 4, 5], [9, 9, 16, 16, 25])',
        'assert running_max([3, 1, 4, 1, 5]) == ([3], [9])',
        'assert True',
        '__import__("os").system("echo hi")',
      ]),
    ).toEqual(['pass', 'fail', 'fail', 'fail']);
    // ClassEval: the answer becomes a test method (assert -> self.assert); missing leading lines come from the question.
    expect(
      await score(2, 0, 'output', 0, [
        'result = self.counter.add(3)\nassertEqual(result, 8)\nassertEqual(self.counter.history, [3])',
        'assertEqual(result, 8)\nassertEqual(self.counter.history, [3])',
        'result = self.counter.add(3)\nassertEqual(result, 9)\nassertEqual(self.counter.history, [3])',
      ]),
    ).toEqual(['pass', 'pass', 'fail']);
  });
});

describe.runIf(SHARED_BENCHMARKS)(`published REval data under CPython 3.14${NEEDS_SHARED}`, () => {
  it('differs from CPython 3.11 where a comprehension follows the probe line (PEP 709)', async () => {
    const dir = join(SHARED_BENCHMARKS!, 'reval');
    const all = await loadReval(join(dir, 'DREval_data.jsonl'), join(dir, 'DREval_tasks.jsonl'));
    const problem = all[49]!; // count_nums: line 14 `if n < 0: n, neg = -1 * n, -1`, line 15 a list comprehension
    const [truth] = await computeRevalTruth(reval.sandbox, [
      { problem, group: problem.groups[1]! },
    ]);
    // CPython 3.11 records the comprehension frame's locals on line 15, so (n, neg) is Nil there;
    // 3.14 inlines the comprehension and sees the function's n and neg.
    expect(truth!.probes[0]).toMatchObject({ covered: true, nil: false });
    expect(truth!.probes[0]!.values[0]).toBe('(1, -1)');
  });
});
