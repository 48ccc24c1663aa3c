/** Progress of long work, rendered only by the cli. */
export interface ProgressEvent {
  stage: string;
  completed: number;
  total?: number;
  detail?: Record<string, number | string>;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}
