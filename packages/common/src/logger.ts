/** Where libraries write what a person may want to read; only the cli decides how it is shown. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

/** Progress of long work, given to every library's `onProgress` callback and rendered only by the cli. */
export interface ProgressEvent {
  stage: string;
  completed: number;
  total?: number;
  detail?: Record<string, number | string>;
}
