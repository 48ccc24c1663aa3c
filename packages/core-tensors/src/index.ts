export { CheckpointError, CodeReasonerError, ConfigValidationError } from './errors.js';
export type { CodeReasonerErrorOptions } from './errors.js';
export { availableBackends, backendReport, BackendError, initBackend, tf } from './backend.js';
export type { BackendName, BackendReport, InitBackendOptions } from './backend.js';
export { Rng } from './rng.js';
export type { RngState } from './rng.js';
export { SPECIAL_TOKENS, Tokenizer, TokenizerError } from './tokenizer.js';
export type { AddedToken, EncodeOptions, TokenizerTrainOptions } from './tokenizer.js';
export { encodeChat, renderChat } from './chat.js';
export type { ChatMessage, RenderChatOptions } from './chat.js';
export { ChatTemplate, ChatTemplateError, chatMLFormat, loadHfChat } from './chat-template.js';
export type {
  ChatFormat,
  ChatTemplateOptions,
  ChatTemplateSources,
  TemplateMessage,
} from './chat-template.js';
export {
  DEFAULT_MODEL_CONFIG,
  fromHfConfig,
  modelConfigSchema,
  resolveModelConfig,
  toHfConfig,
} from './config.js';
export type { ModelConfig } from './config.js';
export { CausalLM, ModelInputError, parameterNameOf, parameterSpecs } from './model.js';
export type {
  GenerateOptions,
  GenerationOutput,
  ParameterSpec,
  TokenLogProbsOptions,
} from './model.js';
export { padBatch } from './batch.js';
export { sampleToken } from './sampling.js';
export type { SamplingOptions } from './sampling.js';
export {
  AdamW,
  clipByGlobalNorm,
  computeGradients,
  GradientAccumulator,
  OptimizerError,
  warmupCosine,
} from './optimizer.js';
export type { AdamWOptions, OptimizerState } from './optimizer.js';
export { LocalChatModel } from './local-chat-model.js';
export { createModelWorkerPool, defaultWorkerCount, ModelWorkerPool } from './model-worker-pool.js';
export type {
  GradientShard,
  ModelWorkerPoolOptions,
  ParallelGradientRequest,
  ParallelGradients,
} from './model-worker-pool.js';
export { ModelWorkerError, shardTensor } from './worker-protocol.js';
export type {
  ShardArray,
  ShardData,
  WorkerLoss,
  WorkerLossRef,
  WorkerLossResult,
} from './worker-protocol.js';
export type {
  ChatModel,
  ChatRequest,
  ChatResponse,
  LocalChatModelOptions,
} from './local-chat-model.js';
export type { Logger, ProgressEvent } from './progress.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from './safetensors.js';
export type { SafetensorsDtype, SafetensorsEntry, SafetensorsInput } from './safetensors.js';
export { appendJsonLine, readJsonLines, writeFileAtomic, writeJsonLines } from './atomic-write.js';
export type { JsonLines } from './atomic-write.js';
export { CHECKPOINT_FILES, exportHfWeights, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
export type { CheckpointParts, LoadedCheckpoint } from './checkpoint.js';
