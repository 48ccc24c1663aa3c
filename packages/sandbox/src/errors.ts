const brand = Symbol.for('codereasoner.error');

export interface CodeReasonerErrorOptions {
  cause?: unknown;
}

/**
 * Base of every error thrown by `@codereasoner/*` packages. A mirror of the class in
 * `@codereasoner/core-tensors` (same `Symbol.for` brand, same `code`/`cause`): sandbox must not
 * depend on TensorFlow.js, and `isInstance` recognises errors from either copy.
 */
export class CodeReasonerError extends Error {
  readonly code: string;
  readonly [brand] = true;

  constructor(code: string, message: string, options: CodeReasonerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CodeReasonerError';
    this.code = code;
  }

  static isInstance(value: unknown): value is CodeReasonerError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[brand] === true
    );
  }
}

/** A config or record failed its JSON Schema or a cross-field rule; `issues` lists each as `path: message`. */
export class ConfigValidationError extends CodeReasonerError {
  readonly issues: string[];

  constructor(what: string, issues: string[], options: CodeReasonerErrorOptions = {}) {
    super(
      'CONFIG_INVALID',
      `${what} is invalid:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`,
      options,
    );
    this.name = 'ConfigValidationError';
    this.issues = issues;
  }
}

/**
 * Why the sandbox itself (not the code it ran) failed:
 * - `engine_unavailable`: the engine cannot start here (no `python3` for the CPython engine, Pyodide missing);
 * - `worker_start`: a worker started but did not become ready;
 * - `closed`: the sandbox was used after `close()`.
 */
export type SandboxErrorKind = 'engine_unavailable' | 'worker_start' | 'closed';

export class SandboxError extends CodeReasonerError {
  readonly kind: SandboxErrorKind;

  constructor(kind: SandboxErrorKind, message: string, options: CodeReasonerErrorOptions = {}) {
    super(`SANDBOX_${kind.toUpperCase()}`, message, options);
    this.name = 'SandboxError';
    this.kind = kind;
  }
}
