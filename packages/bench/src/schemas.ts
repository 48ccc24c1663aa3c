import { schemaIssues } from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';

/** One CRUXEval record (`data/cruxeval.jsonl` of facebookresearch/cruxeval). */
export interface CruxEvalRecord {
  id: string;
  code: string;
  input: string;
  output: string;
}

/** One LiveCodeBench code-execution record (`livecodebench/execution-v2`, exported as JSONL). */
export interface LiveCodeBenchRecord {
  id: string;
  question_id: number | string;
  function_name: string;
  code: string;
  input: string;
  output: string;
  numsteps?: number;
  problem_id?: unknown;
  contest_id?: string;
  contest_date?: string | number;
  difficulty?: string;
}

/** One row of LiveCodeBench's `sample_index.jsonl` (the id index shipped beside the README). */
export interface LiveCodeBenchIndexRecord {
  id: string;
  question_id: number;
  contest_date?: string;
}

/** One line of REval's `DREval_data.jsonl`. */
export interface RevalDataRecord {
  task_id: string;
  entry_point: string;
  code: string;
  inputs: string[];
  outputs: string[];
  test: string | null;
}

export interface RevalProbe {
  lineno: number;
  var: string;
}

export interface RevalTaskGroup {
  input_idx: number;
  task: RevalProbe[];
  output_pred: string;
}

/** One line of REval's `DREval_tasks.jsonl`. */
export interface RevalTasksRecord {
  task_id: string;
  idx: number;
  tasks: RevalTaskGroup[];
}

export const cruxEvalRecordSchema: JSONSchemaType<CruxEvalRecord> = {
  $id: 'https://codereasoner.dev/schemas/bench/cruxeval-record.json',
  type: 'object',
  required: ['id', 'code', 'input', 'output'],
  properties: {
    id: { type: 'string', pattern: '^sample_[0-9]+$' },
    code: { type: 'string', minLength: 1 },
    input: { type: 'string' },
    output: { type: 'string', minLength: 1 },
  },
};

export const liveCodeBenchRecordSchema: JSONSchemaType<LiveCodeBenchRecord> = {
  $id: 'https://codereasoner.dev/schemas/bench/livecodebench-record.json',
  type: 'object',
  required: ['id', 'question_id', 'function_name', 'code', 'input', 'output'],
  properties: {
    id: { type: 'string', pattern: '^sample_[0-9]+$' },
    question_id: {
      type: ['integer', 'string'],
    } as unknown as JSONSchemaType<LiveCodeBenchRecord>['properties']['question_id'],
    function_name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z_0-9]*$' },
    code: { type: 'string', minLength: 1 },
    input: { type: 'string', minLength: 1 },
    output: { type: 'string', minLength: 1 },
    numsteps: { type: 'integer', nullable: true },
    problem_id: {} as unknown as JSONSchemaType<LiveCodeBenchRecord>['properties']['problem_id'],
    contest_id: { type: 'string', nullable: true },
    contest_date: {
      type: ['string', 'number'],
      nullable: true,
    } as unknown as JSONSchemaType<LiveCodeBenchRecord>['properties']['contest_date'],
    difficulty: { type: 'string', nullable: true },
  },
};

export const liveCodeBenchIndexRecordSchema: JSONSchemaType<LiveCodeBenchIndexRecord> = {
  $id: 'https://codereasoner.dev/schemas/bench/livecodebench-index-record.json',
  type: 'object',
  required: ['id', 'question_id'],
  properties: {
    id: { type: 'string', pattern: '^sample_[0-9]+$' },
    question_id: { type: 'integer' },
    contest_date: { type: 'string', nullable: true },
  },
};

export const revalDataRecordSchema: JSONSchemaType<RevalDataRecord> = {
  $id: 'https://codereasoner.dev/schemas/bench/reval-data-record.json',
  type: 'object',
  required: ['task_id', 'entry_point', 'code', 'inputs', 'outputs', 'test'],
  properties: {
    task_id: { type: 'string', pattern: '^DREval/[0-9]+$' },
    entry_point: { type: 'string', pattern: '^[A-Za-z_][A-Za-z_0-9]*$' },
    code: { type: 'string', minLength: 1 },
    inputs: { type: 'array', items: { type: 'string' }, minItems: 1 },
    outputs: { type: 'array', items: { type: 'string' } },
    test: {
      type: 'string',
      nullable: true,
    } as unknown as JSONSchemaType<RevalDataRecord>['properties']['test'],
  },
};

export const revalTasksRecordSchema: JSONSchemaType<RevalTasksRecord> = {
  $id: 'https://codereasoner.dev/schemas/bench/reval-tasks-record.json',
  type: 'object',
  required: ['task_id', 'idx', 'tasks'],
  properties: {
    task_id: { type: 'string', pattern: '^DREval/[0-9]+$' },
    idx: { type: 'integer', minimum: 0 },
    tasks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['input_idx', 'task', 'output_pred'],
        properties: {
          input_idx: { type: 'integer', minimum: 0 },
          task: {
            type: 'array',
            items: {
              type: 'object',
              required: ['lineno', 'var'],
              properties: {
                lineno: { type: 'integer', minimum: 1 },
                var: { type: 'string', minLength: 1 },
              },
            },
          },
          output_pred: { type: 'string', minLength: 1 },
        },
      },
    },
  },
};

/** The issues of `value` against a record schema as `path: message` (empty when valid). */
export function validate<T>(schema: JSONSchemaType<T>, value: unknown): string[] {
  return schemaIssues(schema, value);
}
