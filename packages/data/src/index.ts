// Public API of @codereasoner/data: the corpus builder (generator, sources, tree-sitter parsing,
// extraction, slicing, renaming, dedup and decontamination, inputs, tasks, label balance) and the
// exporters to TRL, verl and OpenRLHF. The task protocol it writes (records, schemas, prompts,
// answers, verification) is @codereasoner/protocol.
export const packageName = '@codereasoner/data';

export { ConfigValidationError, CorpusError } from './errors.js';

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

export { DEFAULT_LABEL_SHARES, balanceLabels, labelCap, topLabelShare } from './balance-labels.js';
export type { LabelShares } from './balance-labels.js';
