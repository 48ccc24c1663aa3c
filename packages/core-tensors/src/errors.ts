import { CodeReasonerError, type CodeReasonerErrorOptions } from '@codereasoner/common';

// The base classes live in @codereasoner/common (one copy, so `instanceof` works across
// packages); they are re-exported here because this package's README documents them.
export { CodeReasonerError, ConfigValidationError } from '@codereasoner/common';
export type { CodeReasonerErrorCode, CodeReasonerErrorOptions } from '@codereasoner/common';

/** A checkpoint is missing, truncated, corrupted or does not match the model it is loaded into. */
export class CheckpointError extends CodeReasonerError<'CHECKPOINT_INVALID'> {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options: CodeReasonerErrorOptions = {}) {
    super('CHECKPOINT_INVALID', `Checkpoint ${path}: ${reason}`, options);
    this.name = 'CheckpointError';
    this.path = path;
    this.reason = reason;
  }
}
