import {
  CodeReasonerError,
  ConfigValidationError,
  type CodeReasonerErrorCode,
} from '@codereasoner/common';

/** A command-line usage problem (unknown stage, missing argument); exits with code 2 like bad config. */
export class UsageError extends CodeReasonerError<'USAGE'> {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

/**
 * The run directory is not in a state the command can work from: a stage it needs has not
 * finished, a `.done` marker is unreadable, or an output a marker vouches for has changed since.
 * The message says which file and which command puts it right; exits with code 2.
 */
export class RunStateError extends CodeReasonerError<'RUN_STATE'> {
  readonly path: string;

  constructor(path: string, message: string, options: { cause?: unknown } = {}) {
    super('RUN_STATE', message, options);
    this.name = 'RunStateError';
    this.path = path;
  }
}

/** Error codes that mean the user's input (flags, config, run directory) must change: exit 2. */
const USER_ERROR_CODES: ReadonlySet<CodeReasonerErrorCode> = new Set<CodeReasonerErrorCode>([
  'USAGE',
  'CONFIG_INVALID',
  'CONFIG_UNREADABLE',
  'RUN_STATE',
]);

/** Exit codes: 0 success, 1 a stage failed, 2 bad usage, config or run directory, 130 interrupted. */
export function exitCodeFor(error: unknown): number {
  // one copy of each class (in @codereasoner/common), so instanceof holds across packages
  if (error instanceof UsageError || error instanceof ConfigValidationError) return 2;
  if (CodeReasonerError.isInstance(error) && USER_ERROR_CODES.has(error.code)) return 2;
  return 1;
}

/**
 * What the user reads: the message of our own errors (with their cause), and only the message of
 * anything else; the stack of an unexpected error is for bug reports, shown with CR_DEBUG=1.
 */
export function describeError(error: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const debug = env.CR_DEBUG !== undefined && env.CR_DEBUG !== '' && env.CR_DEBUG !== '0';
  if (
    error instanceof ConfigValidationError ||
    (CodeReasonerError.isInstance(error) && 'issues' in error)
  ) {
    return (error as Error).message;
  }
  if (CodeReasonerError.isInstance(error)) {
    const cause = error.cause instanceof Error ? `\n  caused by: ${error.cause.message}` : '';
    return `${error.message}${cause}${debug && error.stack ? `\n${error.stack}` : ''}`;
  }
  if (error instanceof Error) {
    if (debug) return error.stack ?? error.message;
    return `${error.message}\n  (an unexpected error; run with CR_DEBUG=1 for the stack trace)`;
  }
  return String(error);
}

/** The `--json` error event: what failed, its code and the exit code, on stdout like every other event. */
export function errorEvent(error: unknown, exitCode: number): Record<string, unknown> {
  const code = CodeReasonerError.isInstance(error)
    ? error.code
    : ((error as NodeJS.ErrnoException | undefined)?.code ?? 'UNEXPECTED');
  const issues =
    CodeReasonerError.isInstance(error) && Array.isArray((error as { issues?: unknown }).issues)
      ? (error as unknown as { issues: string[] }).issues
      : undefined;
  return {
    type: 'error',
    code,
    exitCode,
    message: error instanceof Error ? error.message : String(error),
    ...(issues === undefined ? {} : { issues }),
  };
}
