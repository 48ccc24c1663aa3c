import { CodeReasonerError, ConfigValidationError } from '@codereasoner/core-tensors';

/** A command-line usage problem (unknown stage, missing argument); exits with code 2 like bad config. */
export class UsageError extends CodeReasonerError {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

/** Exit codes: 0 success, 1 a stage failed, 2 bad usage or config, 130 interrupted. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError) return 2;
  if (
    CodeReasonerError.isInstance(error) &&
    (error.code === 'CONFIG_INVALID' || error.name === 'ConfigValidationError')
  ) {
    return 2;
  }
  return 1;
}

export function describeError(error: unknown): string {
  if (
    error instanceof ConfigValidationError ||
    (CodeReasonerError.isInstance(error) && 'issues' in error)
  ) {
    return (error as Error).message;
  }
  if (CodeReasonerError.isInstance(error)) {
    return `${error.message}${error.cause instanceof Error ? `\n  caused by: ${error.cause.message}` : ''}`;
  }
  if (error instanceof Error) return error.stack ?? error.message;
  return String(error);
}
