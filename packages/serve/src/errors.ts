import { CodeReasonerError } from '@codereasoner/common';

export type ServeErrorCode =
  'SERVE_TASKS_DUPLICATE' | 'SERVE_TASKS_UNREADABLE' | 'SERVE_LISTEN_FAILED' | 'SERVE_CLOSED';

/** The service could not start or load what it serves (the HTTP errors it answers are responses, not throws). */
export class ServeError extends CodeReasonerError<ServeErrorCode> {
  constructor(code: ServeErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'ServeError';
  }
}
