export {
  BatchSchedule,
  BucketedBatchSource,
  encodeExamples,
  lossMask,
  planEpoch,
  shardRows,
} from './batching.js';
export type {
  BatchPlanOptions,
  EncodedExample,
  EpochPlanner,
  SftBatchSource,
  SftShard,
  SftStepBatch,
} from './batching.js';
export { packExamples, packForTraining, rowLevels } from './packing.js';
export { curriculumPlanner } from './curriculum.js';
export type { PackedExample, PackingResult } from './packing.js';
export {
  DEFAULT_SFT_CONFIG,
  resolveSftConfig,
  sftConfigSchema,
  traceTeacherConfigSchema,
} from './config.js';
export type { SftConfig, SftConfigInput, TraceTeacherConfig } from './config.js';
export { checkSftRecord, readSftDataset, sftRecordSchema, trainingMessages } from './dataset.js';
export type { SftRecord } from './dataset.js';
export { distill, toSftRecord } from './distill.js';
export type { DistillOptions, DistillStats, TypeStats } from './distill.js';
export { SftAbortedError, SftDatasetError, SftTrainingError, TeacherError } from './errors.js';
export { evaluateModel } from './evaluate.js';
export {
  BASELINE_NAMES,
  answerDiversity,
  evaluateBaselines,
  extractedAnswer,
} from './baselines.js';
export type {
  AnswerDiversity,
  BaselineItem,
  BaselineName,
  BaselineOptions,
  BaselineResult,
  BaselineScore,
  TypeBaselines,
} from './baselines.js';
export type { EvaluateOptions, EvaluationItem, EvaluationResult } from './evaluate.js';

export {
  answerOnlyCompletion,
  chainDisagreement,
  createChatTeacher,
  createTraceTeacher,
  taskCall,
  traceTeacherChain,
  deciderStep,
} from './teachers.js';
export type {
  ChatTeacherOptions,
  Teacher,
  TeacherResult,
  TraceTeacherOptions,
} from './teachers.js';
export { sftShardLoss } from './sft-loss.js';
export type { SftShardOptions } from './sft-loss.js';
export { CHAIN_FORMATS, CHAIN_STOPS, traceChain } from './trace-chain.js';
export type { ChainFormat, ChainStop, ChainTrace, TraceChainOptions } from './trace-chain.js';
export { checkpointName, latestCheckpoint } from './run-state.js';
export { pickEvalTasks } from './held-out-eval.js';
export { SftTrainer, trainSft } from './trainer.js';
export type { SftResult, SftTrainerOptions, TrainSftOptions } from './trainer.js';
export type { SftEvalMetrics, SftMetrics, SftStepMetrics } from './metrics.js';
