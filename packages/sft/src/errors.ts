import { CodeReasonerError } from '@codereasoner/core-tensors';

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

/** Training cannot start or continue: no usable examples, a non-finite loss, an unusable resume state. */
export class SftTrainingError extends CodeReasonerError {
  constructor(
    code: 'SFT_NO_EXAMPLES' | 'SFT_NON_FINITE' | 'SFT_RESUME_FAILED',
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
