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

export { verifiedReward, verify, verifyBatch } from './verify.js';
export type { VerifiedRewardInput, VerifyOptions, VerifyResult, VerifySandbox } from './verify.js';

export { exportTrl, toTrlPromptRow, toTrlSftRow } from './export-trl.js';
export type { ExportTrlOptions, TrlPromptRow, TrlSftRow } from './export-trl.js';
export {
  VERL_ABILITY,
  VERL_DATA_SOURCE_PREFIX,
  exportVerl,
  toVerlRow,
  verlParquet,
} from './export-verl.js';
export type { ExportVerlOptions, VerlRow } from './export-verl.js';
export { exportOpenRlhf, toOpenRlhfRow } from './export-openrlhf.js';
export type { ExportOpenRlhfOptions, OpenRlhfRow } from './export-openrlhf.js';

export {
  CALL_REJECTIONS,
  PROGRAM_REJECTIONS,
  STAGES,
  buildCorpus,
  corpusOptionsSchema,
  resolveCorpusOptions,
} from './build-corpus.js';
export type {
  CallRejection,
  CorpusHooks,
  CorpusOptions,
  CorpusSource,
  Logger,
  ProgramRejection,
  ProgressEvent,
  ResolvedCorpusOptions,
} from './build-corpus.js';

export { DIFFICULTY_LEVELS, DIFFICULTY_PRESETS, generateProgram } from './generator.js';
export type {
  Difficulty,
  DifficultyKnobs,
  DifficultyMix,
  DifficultyName,
  GeneratedProgram,
} from './generator.js';

export { extractFunctions } from './extract.js';
export type {
  ExtractResult as ExtractFunctionsResult,
  FunctionUnit,
  ParamInfo,
  UnitOutcome,
} from './extract.js';
export { sliceUnit } from './slice.js';
export type { SliceOptions, SliceResult, SliceStats } from './slice.js';
export { renameIdentifiers } from './rename.js';
export { analyzeLines, planTasks } from './tasks.js';
export type { LineInfo } from './tasks.js';
export { buildContaminationIndex, codeTokens, contaminationScore } from './similarity.js';
export type { ContaminationIndex } from './similarity.js';
export { Rng } from '@codereasoner/common';
export { pyRepr, randomValue } from './values.js';
export type { PyValue, ValueType } from './values.js';

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

export { DEFAULT_LABEL_SHARES, balanceLabels, labelCap, topLabelShare } from './balance-labels.js';
export type { LabelShares } from './balance-labels.js';
