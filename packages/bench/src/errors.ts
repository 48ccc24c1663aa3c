import { CodeReasonerError, type CodeReasonerErrorCode } from '@codereasoner/common';

/**
 * Options given to `runBenchmark` (or a report reader) are invalid; every issue is listed as
 * `path: message`. The one config-validation error of `@codereasoner/common`, under the name this
 * package's README has documented.
 */
export { ConfigValidationError as BenchmarkConfigError } from '@codereasoner/common';

/** A benchmark data file is missing, unreadable, not JSON(L), or holds a record that fails its schema. */
export class BenchmarkDataError extends CodeReasonerError<'BENCH_DATA_INVALID'> {
  readonly path: string;
  /** 1-based line of the offending record; 0 when the problem concerns the whole file. */
  readonly line: number;
  /** The record's id when it could be read. */
  readonly recordId: string | undefined;
  readonly issues: string[];

  constructor(
    path: string,
    line: number,
    issues: string[],
    options: { recordId?: string; hint?: string; cause?: unknown } = {},
  ) {
    const where = `${path}${line > 0 ? `:${line}` : ''}${options.recordId === undefined ? '' : ` (record ${options.recordId})`}`;
    super(
      'BENCH_DATA_INVALID',
      `${where}: ${issues.length === 1 ? issues[0] : `invalid benchmark data:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`}\n` +
        (options.hint ??
          'Use the file exactly as the benchmark publishes it (see the README next to the data).'),
      options.cause === undefined ? {} : { cause: options.cause },
    );
    this.name = 'BenchmarkDataError';
    this.path = path;
    this.line = line;
    this.recordId = options.recordId;
    this.issues = issues;
  }
}

/**
 * A run cannot go on: the model or the sandbox failed, or the output directory holds a run made
 * with other settings. Items finished before the failure are kept; rerunning resumes after them.
 */
export class BenchmarkRunError extends CodeReasonerError<
  Extract<CodeReasonerErrorCode, `BENCH_${string}`>
> {
  constructor(
    code: Extract<CodeReasonerErrorCode, `BENCH_${string}`>,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = 'BenchmarkRunError';
  }
}
