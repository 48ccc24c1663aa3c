import { CodeReasonerError } from '@codereasoner/common';

/** A JSONL or JSON data file holds a line that is not valid JSON or fails its record schema. */
export class DatasetFormatError extends CodeReasonerError<'DATASET_FORMAT'> {
  readonly path: string;
  /** 1-based line of the offending record (0 for a whole-file JSON document). */
  readonly line: number;
  readonly issues: string[];

  constructor(path: string, line: number, issues: string[], options: { cause?: unknown } = {}) {
    super(
      'DATASET_FORMAT',
      `${path}${line > 0 ? `:${line}` : ''}: malformed record:\n${issues.map((issue) => `  - ${issue}`).join('\n')}\n` +
        'Fix or remove this record (or rebuild the data set) and read the file again.',
      options,
    );
    this.name = 'DatasetFormatError';
    this.path = path;
    this.line = line;
    this.issues = issues;
  }
}
