// Public API of @codereasoner/serve: the verification service (SandboxFusion /run_code, OpenRLHF
// /get_reward, batch /verify, /health, /metrics) as a library; `cr serve` only parses argv.
export const packageName = '@codereasoner/serve';

export { createVerificationServer } from './server.js';
export type { CreateServerParams, ServeSandbox, VerificationServer } from './server.js';
export { DEFAULT_SERVE_OPTIONS, resolveServeOptions, serveOptionsSchema } from './options.js';
export type { ResolvedServeOptions, ServeOptions } from './options.js';
export { ServeError } from './errors.js';
export type { ServeErrorCode } from './errors.js';
export { TaskStore } from './task-store.js';
export { Admission } from './admission.js';
export type { Refusal } from './admission.js';
export { LATENCY_BUCKETS_SECONDS, Metrics } from './metrics.js';
export {
  SANDBOX_FUSION_DEFAULT_TIMEOUT_SECONDS,
  runCodeRequestSchema,
  sandboxErrorResponse,
  toRunCodeResponse,
} from './run-code.js';
export type {
  CommandRunResult,
  CommandRunStatus,
  RunCodeRequest,
  RunCodeResponse,
  SandboxFusionRunStatus,
} from './run-code.js';
export { getRewardRequestSchema, responseOf } from './get-reward.js';
export type { GetRewardRequest, GetRewardResponse } from './get-reward.js';
export { verifyRequestSchema } from './verify-endpoint.js';
export type {
  VerifyRequest,
  VerifyRequestItem,
  VerifyResponse,
  VerifyResponseItem,
} from './verify-endpoint.js';
