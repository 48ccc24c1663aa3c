import { CodeReasonerError } from '@codereasoner/common';

/** A line of an SFT data set file is not valid JSON or does not match the record schema. */
export class SftDatasetError extends CodeReasonerError {
  readonly path: string;
  readonly line: number;

  constructor(path: string, line: number, message: string, options: { cause?: unknown } = {}) {
    super('SFT_DATASET_INVALID', `${path}:${line}: ${message}`, options);
    this.name = 'SftDatasetError';
    this.path = path;
    this.line = line;
  }
}

/** Training cannot start or continue: no usable examples, a non-finite loss, an unusable resume state, a train engine that cannot run the model. */
export class SftTrainingError extends CodeReasonerError {
  constructor(
    code: 'SFT_NO_EXAMPLES' | 'SFT_NON_FINITE' | 'SFT_RESUME_FAILED' | 'SFT_ENGINE_UNSUPPORTED',
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = 'SftTrainingError';
  }
}

/** A teacher could not run (bad options, a sandbox failure, the endpoint failing for good). */
export class TeacherError extends CodeReasonerError {
  readonly teacher: string;

  constructor(teacher: string, message: string, options: { cause?: unknown } = {}) {
    super('SFT_TEACHER_FAILED', `Teacher ${teacher}: ${message}`, options);
    this.name = 'TeacherError';
    this.teacher = teacher;
  }
}

/**
 * `distill`, `evaluateModel` or `evaluateBaselines` stopped because its `signal` fired (between batches: everything
 * finished before is kept, and distill resumes from it). `name` is `AbortError`, as for
 * `AbortSignal.throwIfAborted()`, so generic abort checks recognise it.
 */
export class SftAbortedError extends CodeReasonerError {
  /** Which function stopped. */
  readonly operation: 'distill' | 'evaluate' | 'baselines';
  /** Items finished before it stopped, of `total`. */
  readonly completed: number;
  readonly total: number;

  constructor(
    operation: 'distill' | 'evaluate' | 'baselines',
    completed: number,
    total: number,
    options: { cause?: unknown } = {},
  ) {
    super(
      'SFT_ABORTED',
      `${operation} aborted after ${completed} of ${total} ${operation === 'baselines' ? 'verifications' : 'tasks'}${operation === 'distill' ? '; run it again with the same outDir to continue' : ''}`,
      options,
    );
    this.name = 'AbortError';
    this.operation = operation;
    this.completed = completed;
    this.total = total;
  }
}
