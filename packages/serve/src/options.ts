import { ConfigValidationError, schemaIssues } from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';

export interface ServeOptions {
  /** Interface to bind. Default `127.0.0.1`: nothing outside the machine reaches the service unless asked. */
  host?: string;
  /** TCP port (0 = any free port). Default 8080, SandboxFusion's port, so its clients' default URLs work. */
  port?: number;
  /** When set, every route except `GET /health` needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Largest request body in bytes; larger ones get 413. Default 8 MiB. */
  bodyLimitBytes?: number;
  /** Requests executing at once (each may hold many sandbox checks). Default 32. */
  maxConcurrent?: number;
  /** Requests waiting for a slot; past it new requests get 429 with Retry-After. Default 256. */
  maxQueue?: number;
  /** Wall-clock limit of one request, queue wait included; past it the answer is 504. Default 60000 ms. */
  requestTimeoutMs?: number;
  /** Largest `run_timeout` (seconds) a `/run_code` request may ask for. Default 30. */
  maxRunTimeoutSeconds?: number;
  /** Items in one `/verify` or `/get_reward` request at most. Default 4096. */
  maxBatch?: number;
  /** Per-check sandbox limit for verification (ms). Default 3000, CRUXEval's limit. */
  verifyTimeoutMs?: number;
  /** How long `close()` waits for in-flight requests before closing their connections. Default 30000 ms. */
  drainTimeoutMs?: number;
}

export type ResolvedServeOptions = Required<Omit<ServeOptions, 'token'>> & { token?: string };

export const DEFAULT_SERVE_OPTIONS: Readonly<Required<Omit<ServeOptions, 'token'>>> = Object.freeze(
  {
    host: '127.0.0.1',
    port: 8080,
    bodyLimitBytes: 8 * 1024 * 1024,
    maxConcurrent: 32,
    maxQueue: 256,
    requestTimeoutMs: 60_000,
    maxRunTimeoutSeconds: 30,
    maxBatch: 4096,
    verifyTimeoutMs: 3000,
    drainTimeoutMs: 30_000,
  },
);

const positiveInteger = { type: 'integer', minimum: 1, nullable: true } as const;

export const serveOptionsSchema: JSONSchemaType<ServeOptions> = {
  $id: 'https://codereasoner.dev/schemas/serve-options.json',
  title: 'ServeOptions',
  description: 'Options of @codereasoner/serve (cr serve); omitted options take their defaults.',
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, nullable: true },
    port: { type: 'integer', minimum: 0, maximum: 65535, nullable: true },
    token: { type: 'string', minLength: 16, nullable: true },
    bodyLimitBytes: positiveInteger,
    maxConcurrent: positiveInteger,
    maxQueue: { type: 'integer', minimum: 0, nullable: true },
    requestTimeoutMs: positiveInteger,
    maxRunTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, nullable: true },
    maxBatch: positiveInteger,
    verifyTimeoutMs: positiveInteger,
    drainTimeoutMs: { type: 'integer', minimum: 0, nullable: true },
  },
};

/** Validates the options (every issue as `path: message`) and fills in the defaults: the one place they are. */
export function resolveServeOptions(options: ServeOptions = {}): ResolvedServeOptions {
  const issues = schemaIssues(serveOptionsSchema, options);
  if (issues.length > 0) throw new ConfigValidationError('Serve options', issues);
  const defined = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as ServeOptions;
  return { ...DEFAULT_SERVE_OPTIONS, ...defined };
}
