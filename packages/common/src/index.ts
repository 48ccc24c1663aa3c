export { CodeReasonerError, ConfigValidationError } from './errors.js';
export type { CodeReasonerErrorCode, CodeReasonerErrorOptions } from './errors.js';
export { formatSchemaIssues, parseConfig, schemaIssues, suggestKey } from './parse-config.js';
export type { ParseConfigOptions, SchemaIssueOptions } from './parse-config.js';
export type { Logger, ProgressEvent } from './logger.js';
export type { ChatMessage, ChatModel, ChatRequest, ChatResponse } from './chat.js';
export { Rng, hashText } from './rng.js';
export type { RngState } from './rng.js';
export { fsyncDirectory, tempPathFor, writeFileAtomic } from './atomic-write.js';
export {
  JsonlFormatError,
  appendJsonLine,
  appendJsonLines,
  readJsonLines,
  readJsonlJournal,
  streamJsonLines,
  toJsonLines,
  writeJsonLines,
} from './jsonl.js';
export type { JsonLine, JsonLines, ReadJsonLinesOptions } from './jsonl.js';
export {
  AUTO_WORKERS_MIN_PARAMETERS,
  BENCHMARK_NAMES,
  LINE_TASK_TYPES,
  TASK_TYPES,
  checkpointStepName,
  interleave,
  parseCheckpointStepName,
  roundRobin,
} from './vocabulary.js';
export type { BenchmarkName, TaskType } from './vocabulary.js';
