import { availableParallelism } from 'node:os';
import { schemaIssues } from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';
import { ConfigValidationError } from './errors.js';
import type { ResolvedSandboxOptions, SandboxOptions } from './types.js';

/** JSON Schema of SandboxOptions: the source of truth for what `Sandbox.create` accepts. */
export const sandboxOptionsSchema: JSONSchemaType<SandboxOptions> = {
  $id: 'https://codereasoner.dev/schemas/sandbox-options.json',
  title: 'SandboxOptions',
  type: 'object',
  additionalProperties: false,
  properties: {
    engine: { type: 'string', enum: ['pyodide', 'cpython'], nullable: true },
    workers: { type: 'integer', minimum: 1, maximum: 256, nullable: true },
    timeoutMs: { type: 'integer', minimum: 1, maximum: 3_600_000, nullable: true },
    memoryLimitMb: { type: 'integer', minimum: 64, maximum: 4096, nullable: true },
    maxOutputChars: { type: 'integer', minimum: 0, maximum: 100_000_000, nullable: true },
    maxReprChars: { type: 'integer', minimum: 16, maximum: 100_000_000, nullable: true },
    pythonPath: { type: 'string', minLength: 1, nullable: true },
  },
};

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_MEMORY_LIMIT_MB = 512;
export const DEFAULT_MAX_OUTPUT_CHARS = 10_000;
export const DEFAULT_MAX_REPR_CHARS = 10_000;

/** Validate options against the schema and fill in defaults (the one place defaults live). */
export function resolveSandboxOptions(input: SandboxOptions = {}): ResolvedSandboxOptions {
  const issues = schemaIssues(sandboxOptionsSchema, input);
  if (issues.length > 0) throw new ConfigValidationError('Sandbox options', issues);
  return {
    engine: input.engine ?? 'pyodide',
    workers: input.workers ?? Math.max(1, availableParallelism()),
    timeoutMs: input.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    memoryLimitMb: input.memoryLimitMb ?? DEFAULT_MEMORY_LIMIT_MB,
    maxOutputChars: input.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS,
    maxReprChars: input.maxReprChars ?? DEFAULT_MAX_REPR_CHARS,
    pythonPath: input.pythonPath ?? 'python3',
  };
}
