// Public API of @codereasoner/protocol: the task protocol every stage shares (record types and
// their JSON Schemas, JSONL reading and writing, prompts, the answer format and its extraction,
// execution-based verification and the paper's reward). No parser, no corpus builder: it loads
// without tree-sitter. The OpenAI-compatible chat client is the subpath
// `@codereasoner/protocol/chat-client` (it needs the optional peer `openai`).
export const packageName = '@codereasoner/protocol';

export { DatasetFormatError } from './errors.js';

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
  defineRecordSchema,
  programRecordSchema,
  taskRecordSchema,
} from './schemas.js';
export type { RecordSchema } from './schemas.js';

export { appendJsonl, readJsonl, readJsonlAll, writeJsonl } from './jsonl.js';
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
export { stripComments } from './py-scan.js';

export { lineText, numberLines, renderPrompt, renderQuestion, systemPrompt } from './prompt.js';
export type { RenderPromptOptions } from './prompt.js';

export { verifiedReward, verify, verifyBatch } from './verify.js';
export type { VerifiedRewardInput, VerifyOptions, VerifyResult, VerifySandbox } from './verify.js';
