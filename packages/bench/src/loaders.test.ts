import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCruxEval } from './cruxeval.js';
import { BenchmarkDataError } from './errors.js';
import { resolveBenchmarkFiles } from './files.js';
import {
  checkLiveCodeBenchExport,
  loadLiveCodeBench,
  loadLiveCodeBenchIndex,
} from './livecodebench.js';
import { loadReval } from './reval/data.js';
import { BUNDLED, FIXTURES, NEEDS_SHARED, SHARED_BENCHMARKS } from './test-paths.js';

async function dataError(promise: Promise<unknown>): Promise<BenchmarkDataError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BenchmarkDataError);
  return error as BenchmarkDataError;
}

describe('CRUXEval loader', () => {
  it('reads the fixture (no final newline) with every field', async () => {
    const records = await loadCruxEval(join(FIXTURES, 'cruxeval/cruxeval.jsonl'));
    expect(records).toHaveLength(6);
    expect(records[0]).toEqual({
      id: 'sample_0',
      code: expect.stringContaining('def f(nums)'),
      input: '[1, 2, 3, 4]',
      output: '[4, 16]',
    });
    expect(records[2]!.input).toBe('');
  });

  it('reads all 800 published records (the copy the package ships)', async () => {
    const records = await loadCruxEval(join(BUNDLED, 'cruxeval/cruxeval.jsonl'));
    expect(records).toHaveLength(800);
    expect(records[799]!.id).toBe('sample_799');
    expect(records[135]!.input).toBe('');
  });

  it('names the file and line of invalid JSON', async () => {
    const path = join(FIXTURES, 'bad/cruxeval-bad-json.jsonl');
    const error = await dataError(loadCruxEval(path));
    expect(error.path).toBe(path);
    expect(error.line).toBe(2);
    expect(error.code).toBe('BENCH_DATA_INVALID');
    expect(error.message).toContain(`${path}:2`);
  });

  it('names the record and the missing field', async () => {
    const error = await dataError(
      loadCruxEval(join(FIXTURES, 'bad/cruxeval-missing-output.jsonl')),
    );
    expect(error.line).toBe(2);
    expect(error.recordId).toBe('sample_1');
    expect(error.issues).toEqual(["/: must have required property 'output'"]);
  });

  it('rejects duplicate ids and code without f', async () => {
    expect(
      (await dataError(loadCruxEval(join(FIXTURES, 'bad/cruxeval-duplicate-id.jsonl')))).issues[0],
    ).toBe('id: sample_0 already used on line 1');
    expect(
      (await dataError(loadCruxEval(join(FIXTURES, 'bad/cruxeval-no-f.jsonl')))).issues[0],
    ).toContain('does not define the function f');
  });

  it('says a missing file is missing', async () => {
    const error = await dataError(loadCruxEval(join(FIXTURES, 'nope.jsonl')));
    expect(error.message).toContain('CRUXEval data file not found');
    expect(error.line).toBe(0);
  });
});

describe('LiveCodeBench loader and id index', () => {
  it('reads the JSONL export layout, sorted by sample number', async () => {
    const records = await loadLiveCodeBench(join(FIXTURES, 'livecodebench/execution-v2.jsonl'));
    expect(records).toHaveLength(12);
    expect(records[0]).toMatchObject({
      id: 'sample_0',
      question_id: 2777,
      function_name: 'distinctDifferenceArray',
      input: 'distinctDifferenceArray(nums = [1, 2, 3, 4, 5])',
      output: '[-3, -1, 1, 3, 5]',
    });
  });

  it('confirms a complete export against its index and reports an incomplete one', async () => {
    const records = await loadLiveCodeBench(join(FIXTURES, 'livecodebench/execution-v2.jsonl'));
    const own = checkLiveCodeBenchExport(
      records,
      await loadLiveCodeBenchIndex(join(FIXTURES, 'livecodebench/sample_index.jsonl')),
    );
    expect(own).toMatchObject({
      complete: true,
      expected: 12,
      found: 12,
      missing: [],
      unexpected: [],
      mismatched: [],
    });
    const wrong = checkLiveCodeBenchExport(
      records.map((r) => (r.id === 'sample_3' ? { ...r, question_id: 1 } : r)),
      await loadLiveCodeBenchIndex(join(FIXTURES, 'livecodebench/sample_index.jsonl')),
    );
    expect(wrong.complete).toBe(false);
    expect(wrong.mismatched).toEqual([
      { id: 'sample_3', indexQuestionId: 2777, recordQuestionId: 1 },
    ]);
  });

  it.runIf(SHARED_BENCHMARKS)(
    `checks the fixture against the published 479-sample index${NEEDS_SHARED}`,
    async () => {
      const records = await loadLiveCodeBench(join(FIXTURES, 'livecodebench/execution-v2.jsonl'));
      const index = await loadLiveCodeBenchIndex(
        join(SHARED_BENCHMARKS!, 'livecodebench-execution/sample_index.jsonl'),
      );
      const check = checkLiveCodeBenchExport(records, index);
      expect(check.expected).toBe(479);
      expect(check.missing).toHaveLength(467);
      expect(check.mismatched).toEqual([]);
      expect(check.complete).toBe(false);
    },
  );

  it('names the record with a missing column', async () => {
    const error = await dataError(
      loadLiveCodeBench(join(FIXTURES, 'bad/livecodebench-missing-input.jsonl')),
    );
    expect(error.line).toBe(2);
    expect(error.recordId).toBe('sample_1');
    expect(error.issues).toEqual(["/: must have required property 'input'"]);
    expect(error.message).toContain('load_dataset("livecodebench/execution-v2"');
  });
});

describe('REval loader', () => {
  it('joins data and tasks into problems and groups', async () => {
    const problems = await loadReval(
      join(FIXTURES, 'reval/DREval_data.jsonl'),
      join(FIXTURES, 'reval/DREval_tasks.jsonl'),
    );
    expect(problems.map((p) => [p.taskId, p.kind, p.groups.length])).toEqual([
      ['DREval/0', 'function', 2],
      ['DREval/1', 'function', 2],
      ['DREval/2', 'class', 2],
    ]);
    expect(problems[2]!.groups[1]).toMatchObject({
      key: 'DREval/2#1',
      inputIdx: 1,
      outputPred: expect.stringContaining('assertTrue(??)'),
    });
  });

  it.runIf(SHARED_BENCHMARKS)(
    `reads the published files: 154 problems, 690 groups, 3152 probe points${NEEDS_SHARED}`,
    async () => {
      const dir = join(SHARED_BENCHMARKS!, 'reval');
      const problems = await loadReval(
        join(dir, 'DREval_data.jsonl'),
        join(dir, 'DREval_tasks.jsonl'),
      );
      expect(problems).toHaveLength(154);
      expect(problems.filter((p) => p.kind === 'function')).toHaveLength(85);
      const groups = problems.flatMap((p) => p.groups);
      expect(groups).toHaveLength(690);
      expect(groups.reduce((sum, g) => sum + g.probes.length, 0)).toBe(3152);
    },
  );

  it('rejects a task that points at a missing input', async () => {
    const dir = join(FIXTURES, 'reval-bad');
    const error = await dataError(
      loadReval(join(dir, 'DREval_data.jsonl'), join(dir, 'DREval_tasks.jsonl')),
    );
    expect(error.path).toBe(join(dir, 'DREval_tasks.jsonl'));
    expect(error.line).toBe(2);
    expect(error.recordId).toBe('DREval/1');
    expect(error.issues[0]).toMatch(/^tasks\.0\.input_idx: 9 but the problem has \d+ inputs$/);
  });
});

describe('resolveBenchmarkFiles', () => {
  it('finds files from a root of benchmark directories, a benchmark directory or the file', async () => {
    expect(await resolveBenchmarkFiles('cruxeval', FIXTURES)).toEqual({
      data: join(FIXTURES, 'cruxeval/cruxeval.jsonl'),
    });
    expect(await resolveBenchmarkFiles('reval', join(FIXTURES, 'reval'))).toEqual({
      data: join(FIXTURES, 'reval/DREval_data.jsonl'),
      tasks: join(FIXTURES, 'reval/DREval_tasks.jsonl'),
    });
    expect(
      await resolveBenchmarkFiles(
        'livecodebench',
        join(FIXTURES, 'livecodebench/execution-v2.jsonl'),
      ),
    ).toEqual({
      data: join(FIXTURES, 'livecodebench/execution-v2.jsonl'),
      index: join(FIXTURES, 'livecodebench/sample_index.jsonl'),
    });
  });

  it('lists where it looked when a file is missing', async () => {
    const error = await dataError(resolveBenchmarkFiles('livecodebench', join(FIXTURES, 'bad')));
    expect(error.message).toContain(
      join(FIXTURES, 'bad/livecodebench-execution/execution-v2.jsonl'),
    );
    expect(error.message).toContain('Hugging Face Hub');
    const missing = await dataError(resolveBenchmarkFiles('reval', join(FIXTURES, 'nowhere')));
    expect(missing.message).toContain('reval data path does not exist');
  });
});
