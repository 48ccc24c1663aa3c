// Public API of @codereasoner/sandbox.
export { Sandbox } from './sandbox.js';
export { CodeReasonerError, ConfigValidationError, SandboxError } from './errors.js';
export type { CodeReasonerErrorOptions, SandboxErrorKind } from './errors.js';
export { resolveSandboxOptions, sandboxOptionsSchema } from './options.js';
export type {
  CheckRequest,
  CheckResult,
  CheckStatus,
  Engine,
  JudgeRequest,
  ResolvedSandboxOptions,
  RunRequest,
  RunResult,
  RunStatus,
  SandboxInfo,
  SandboxOptions,
  TraceRequest,
  TraceResult,
  TraceState,
} from './types.js';
