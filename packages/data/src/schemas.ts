import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
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

let ajv: Ajv | undefined;

function compile(json: object): ValidateFunction {
  ajv ??= new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  return ajv.compile(json);
}

export function formatAjvErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? [])
    .filter((error) => error.keyword !== 'if')
    .map((error) => {
      const where =
        error.instancePath === '' ? '(root)' : error.instancePath.slice(1).replaceAll('/', '.');
      const extra =
        error.keyword === 'additionalProperties'
          ? ` '${String((error.params as { additionalProperty: string }).additionalProperty)}'`
          : error.keyword === 'enum'
            ? ` (${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})`
            : '';
      return `${where}: ${error.message ?? 'is invalid'}${extra}`;
    });
}

export function defineRecordSchema<T>(name: string, json: object): RecordSchema<T> {
  let validate: ValidateFunction | undefined;
  const check = (value: unknown): string[] => {
    validate ??= compile(json);
    return validate(value) ? [] : formatAjvErrors(validate.errors);
  };
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
