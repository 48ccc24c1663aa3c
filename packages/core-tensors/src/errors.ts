const brand = Symbol.for('codereasoner.error');

export interface CodeReasonerErrorOptions {
  cause?: unknown;
}

/**
 * Base of every error thrown by `@codereasoner/*` packages. `isInstance` checks a
 * `Symbol.for` brand rather than the prototype chain, so it recognises errors from any copy
 * of any package (two installed versions, or the mirror of this class in `sandbox`, which
 * cannot depend on this package without pulling in TensorFlow.js).
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

/** A checkpoint is missing, truncated, corrupted or does not match the model it is loaded into. */
export class CheckpointError extends CodeReasonerError {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options: CodeReasonerErrorOptions = {}) {
    super('CHECKPOINT_INVALID', `Checkpoint ${path}: ${reason}`, options);
    this.name = 'CheckpointError';
    this.path = path;
    this.reason = reason;
  }
}
