import { CodeReasonerError, type CodeReasonerErrorCode } from '@codereasoner/common';

export { ConfigValidationError } from '@codereasoner/common';

/** The corpus build could not go on: unreadable source, an output directory built with other options, etc. */
export class CorpusError extends CodeReasonerError {
  readonly path: string | undefined;

  constructor(
    code: CodeReasonerErrorCode,
    message: string,
    options: { path?: string; cause?: unknown } = {},
  ) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'CorpusError';
    this.path = options.path;
  }
}
