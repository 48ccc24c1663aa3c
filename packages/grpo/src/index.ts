// Public API of @codereasoner/grpo.
export { groupAdvantages } from './advantages.js';
export type {
  GroupAdvantagesOptions,
  GroupAdvantagesResult,
  GroupStats,
  GroupStatus,
  ScaleRewards,
} from './advantages.js';
export {
  aggregateLoss,
  clipStatistics,
  grpoLossReference,
  importanceRatios,
  k3Kl,
  lossNormalizer,
  perTokenPolicyLoss,
  stepCounts,
} from './policy-loss.js';
export type {
  ClipRange,
  ClipStatistics,
  GrpoLossInputs,
  GrpoLossOptions,
  GrpoLossResult,
  ImportanceSamplingLevel,
  LossNormalizer,
  LossType,
  Matrix,
  StepCounts,
} from './policy-loss.js';
export { grpoLossTensor, stopGradient } from './loss-tensor.js';
export type { GrpoLossTensorInputs, GrpoLossTensorOptions } from './loss-tensor.js';
export {
  DEFAULT_GRPO_CONFIG,
  GRPO_PRESET_NAMES,
  GRPO_TRAIN_ENGINES,
  GRPO_PRESETS,
  grpoConfigInputSchema,
  grpoConfigSchema,
  grpoConfigWarnings,
  resolveGrpoConfig,
} from './config.js';
export type {
  GrpoConfig,
  GrpoConfigInput,
  GrpoPreset,
  GrpoPresetName,
  GrpoTrainEngine,
} from './config.js';
export { onnxTrainEngineUnsupported, onPolicyTokenWeights } from './onnx-update.js';
export {
  combineRewards,
  scoreCompletions,
  softOverlongPunishment,
  validateRewardSpecs,
} from './rewards.js';
export type { RewardFunction, RewardInput, RewardScores, RewardSpec } from './rewards.js';
export {
  GrpoDatasetError,
  GrpoResumeError,
  GrpoShapeError,
  GrpoTrainEngineError,
  NonFiniteValueError,
  RewardFunctionError,
} from './errors.js';
export { GrpoTrainer } from './trainer.js';
export type { GrpoDatasetRow, GrpoResult, GrpoTrainerOptions } from './trainer.js';
export { isTimingMetric } from './metrics.js';
export type { GrpoStepMetrics } from './metrics.js';
