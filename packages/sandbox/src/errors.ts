import { CodeReasonerError, type CodeReasonerErrorOptions } from '@codereasoner/common';

// The base classes live in @codereasoner/common (one copy, so `instanceof` works across
// packages); they are re-exported here because this package's README documents them.
export { CodeReasonerError, ConfigValidationError } from '@codereasoner/common';
export type { CodeReasonerErrorOptions } from '@codereasoner/common';

/**
 * Why the sandbox itself (not the code it ran) failed:
 * - `engine_unavailable`: the engine cannot start here (no `python3` for the CPython engine, Pyodide missing);
 * - `worker_start`: a worker started but did not become ready;
 * - `closed`: the sandbox was used after `close()`.
 */
export type SandboxErrorKind = 'engine_unavailable' | 'worker_start' | 'closed';

export class SandboxError extends CodeReasonerError<`SANDBOX_${Uppercase<SandboxErrorKind>}`> {
  readonly kind: SandboxErrorKind;

  constructor(kind: SandboxErrorKind, message: string, options: CodeReasonerErrorOptions = {}) {
    super(`SANDBOX_${kind.toUpperCase() as Uppercase<SandboxErrorKind>}`, message, options);
    this.name = 'SandboxError';
    this.kind = kind;
  }
}
