import { CodeReasonerError } from '@codereasoner/sandbox';

/** A benchmark data file is missing, unreadable, not JSON(L), or holds a record that fails its schema. */
export class BenchmarkDataError extends CodeReasonerError {
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

/** Options given to `runBenchmark` (or a report reader) are invalid; every issue is listed as `path: message`. */
export class BenchmarkConfigError extends CodeReasonerError {
  readonly issues: string[];

  constructor(what: string, issues: string[], options: { cause?: unknown } = {}) {
    super(
      'CONFIG_INVALID',
      `${what} is invalid:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`,
      options,
    );
    this.name = 'BenchmarkConfigError';
    this.issues = issues;
  }
}

/**
 * A run cannot go on: the model or the sandbox failed, or the output directory holds a run made
 * with other settings. Items finished before the failure are kept; rerunning resumes after them.
 */
export class BenchmarkRunError extends CodeReasonerError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'BenchmarkRunError';
  }
}
