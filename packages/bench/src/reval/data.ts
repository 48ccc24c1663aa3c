import { BenchmarkDataError } from '../errors.js';
import { readDataJsonl } from '../jsonl.js';
import {
  revalDataRecordSchema,
  revalTasksRecordSchema,
  validate,
  type RevalDataRecord,
  type RevalTasksRecord,
} from '../schemas.js';

export interface RevalProbePoint {
  /** 1-based line of `code`. */
  line: number;
  /** The expression asked about (a name, `self.attr`, a subscript or a tuple). */
  variable: string;
}

export interface RevalGroup {
  /** `DREval/<i>#<input_idx>` */
  key: string;
  inputIdx: number;
  probes: RevalProbePoint[];
  /** The output question (`assert f(...) == ??`, or the test snippet with `??`). */
  outputPred: string;
}

export interface RevalProblem {
  /** Line index in the data file (0-based), as `DREval/<index>`. */
  index: number;
  taskId: string;
  /** HumanEval part: a function called with positional args; ClassEval part: a class run by its unittest tests. */
  kind: 'function' | 'class';
  entryPoint: string;
  code: string;
  inputs: string[];
  outputs: string[];
  test: string | null;
  groups: RevalGroup[];
}

/**
 * Reads and cross-checks REval's two files: every task record must name a data record, its
 * input indices must exist, its probe lines must be lines of the code.
 */
export async function loadReval(dataPath: string, tasksPath: string): Promise<RevalProblem[]> {
  const dataLines = await readDataJsonl(dataPath, 'REval data file (DREval_data.jsonl)');
  const tasksLines = await readDataJsonl(tasksPath, 'REval tasks file (DREval_tasks.jsonl)');
  const problems: RevalProblem[] = [];
  const byTaskId = new Map<string, RevalProblem>();
  for (const { line, value } of dataLines) {
    const id =
      typeof (value as { task_id?: unknown })?.task_id === 'string'
        ? (value as { task_id: string }).task_id
        : undefined;
    const issues = validate(revalDataRecordSchema, value);
    if (issues.length > 0) throw new BenchmarkDataError(dataPath, line, issues, { recordId: id });
    const record = value as RevalDataRecord;
    const expected = `DREval/${problems.length}`;
    if (record.task_id !== expected) {
      throw new BenchmarkDataError(
        dataPath,
        line,
        [`task_id: expected ${expected} (record i is DREval/i), got ${record.task_id}`],
        { recordId: id },
      );
    }
    const kind = record.test === null ? 'function' : 'class';
    if (kind === 'function' && record.inputs.some((input) => !/^\(.*,\)$/s.test(input.trim()))) {
      throw new BenchmarkDataError(
        dataPath,
        line,
        ['inputs: every input of a function problem must be a tuple literal ending in ",)"'],
        { recordId: id },
      );
    }
    const problem: RevalProblem = {
      index: problems.length,
      taskId: record.task_id,
      kind,
      entryPoint: record.entry_point,
      code: record.code,
      inputs: record.inputs,
      outputs: record.outputs,
      test: record.test,
      groups: [],
    };
    problems.push(problem);
    byTaskId.set(problem.taskId, problem);
  }
  if (problems.length === 0)
    throw new BenchmarkDataError(dataPath, 0, ['the file holds no records']);
  const withTasks = new Set<string>();
  for (const { line, value } of tasksLines) {
    const id =
      typeof (value as { task_id?: unknown })?.task_id === 'string'
        ? (value as { task_id: string }).task_id
        : undefined;
    const issues = validate(revalTasksRecordSchema, value);
    if (issues.length > 0) throw new BenchmarkDataError(tasksPath, line, issues, { recordId: id });
    const record = value as RevalTasksRecord;
    const problem = byTaskId.get(record.task_id);
    if (problem === undefined) {
      throw new BenchmarkDataError(
        tasksPath,
        line,
        [`task_id: ${record.task_id} is not in ${dataPath}`],
        { recordId: id },
      );
    }
    if (record.idx !== problem.index) {
      throw new BenchmarkDataError(
        tasksPath,
        line,
        [`idx: ${record.idx} does not match task_id ${record.task_id}`],
        { recordId: id },
      );
    }
    if (withTasks.has(record.task_id))
      throw new BenchmarkDataError(tasksPath, line, [`task_id: ${record.task_id} appears twice`], {
        recordId: id,
      });
    withTasks.add(record.task_id);
    const codeLines = problem.code.split('\n').length;
    const groupIssues: string[] = [];
    record.tasks.forEach((group, g) => {
      if (group.input_idx >= problem.inputs.length) {
        groupIssues.push(
          `tasks.${g}.input_idx: ${group.input_idx} but the problem has ${problem.inputs.length} inputs`,
        );
      }
      group.task.forEach((probe, p) => {
        if (probe.lineno > codeLines)
          groupIssues.push(
            `tasks.${g}.task.${p}.lineno: ${probe.lineno} but the code has ${codeLines} lines`,
          );
      });
    });
    if (groupIssues.length > 0)
      throw new BenchmarkDataError(tasksPath, line, groupIssues, { recordId: id });
    problem.groups = record.tasks.map((group) => ({
      key: `${problem.taskId}#${group.input_idx}`,
      inputIdx: group.input_idx,
      probes: group.task.map((probe) => ({ line: probe.lineno, variable: probe.var })),
      outputPred: group.output_pred,
    }));
  }
  return problems;
}
