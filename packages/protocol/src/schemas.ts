import { schemaIssues } from '@codereasoner/common';
import callSchema from '../schemas/call.schema.json' with { type: 'json' };
import manifestSchema from '../schemas/manifest.schema.json' with { type: 'json' };
import programSchema from '../schemas/program.schema.json' with { type: 'json' };
import taskSchema from '../schemas/task.schema.json' with { type: 'json' };
import type { CallRecord, CorpusManifest, ProgramRecord, TaskRecord } from './records.js';

/**
 * A record schema: its JSON Schema document plus a lazily compiled validator. Compiling on
 * first use keeps importing the package free of work (`sideEffects: false`).
 */
export interface RecordSchema<T> {
  readonly name: string;
  readonly json: object;
  /** Every issue as `path: message`; empty when the value is a valid `T`. */
  check(value: unknown): string[];
  is(value: unknown): value is T;
}

export function defineRecordSchema<T>(name: string, json: object): RecordSchema<T> {
  // schemaIssues compiles on first use and caches, so importing the package does no work
  const check = (value: unknown): string[] => schemaIssues(json, value);
  return { name, json, check, is: (value: unknown): value is T => check(value).length === 0 };
}

export const taskRecordSchema: RecordSchema<TaskRecord> = defineRecordSchema(
  'TaskRecord',
  taskSchema,
);
export const programRecordSchema: RecordSchema<ProgramRecord> = defineRecordSchema(
  'ProgramRecord',
  programSchema,
);
export const callRecordSchema: RecordSchema<CallRecord> = defineRecordSchema(
  'CallRecord',
  callSchema,
);
export const corpusManifestSchema: RecordSchema<CorpusManifest> = defineRecordSchema(
  'CorpusManifest',
  manifestSchema,
);
