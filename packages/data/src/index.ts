// Public API of @codereasoner/data: the task protocol (records, schemas, prompts, answer
// extraction, verification, TRL export) and the corpus builder.
export const packageName = '@codereasoner/data';

export { ConfigValidationError, CorpusError, DatasetFormatError } from './errors.js';

export { TASK_TYPES } from './records.js';
export type {
  CallRecord,
  ChatMessage,
  CorpusManifest,
  ProgramRecord,
  Split,
  SplitCount,
  TaskCount,
  TaskRecord,
  TaskType,
} from './records.js';

export {
  callRecordSchema,
  corpusManifestSchema,
  programRecordSchema,
  taskRecordSchema,
} from './schemas.js';
export type { RecordSchema } from './schemas.js';

export { appendJsonl, readJsonl, readJsonlAll, writeFileAtomic, writeJsonl } from './jsonl.js';
export type { ReadJsonlOptions } from './jsonl.js';

export {
  ANSWER_CLOSE,
  ANSWER_OPEN,
  THINK_CLOSE,
  THINK_OPEN,
  extractAnswer,
  formatCompletion,
} from './answer.js';
export type { ExtractResult } from './answer.js';

export { lineText, numberLines, renderPrompt, renderQuestion, systemPrompt } from './prompt.js';
export type { RenderPromptOptions } from './prompt.js';

export { isArgumentList, isSingleExpression, verify, verifyBatch } from './verify.js';
export type { VerifyOptions, VerifyResult, VerifySandbox } from './verify.js';

export { exportTrl, toTrlPromptRow, toTrlSftRow } from './export-trl.js';
export type { ExportTrlOptions, TrlPromptRow, TrlSftRow } from './export-trl.js';

export { ChatClientError, createChatClient } from './chat-client.js';
export type {
  ChatClient,
  ChatClientLogger,
  ChatClientMessage,
  ChatClientOptions,
  ChatClientStats,
  ChatModel,
  ChatRequest,
  ChatResponse,
  ChatRetryEvent,
} from './chat-client.js';
