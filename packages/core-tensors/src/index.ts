export { CheckpointError, CodeReasonerError, ConfigValidationError } from './errors.js';
export type { CodeReasonerErrorOptions } from './errors.js';
export { availableBackends, backendReport, BackendError, initBackend, tf } from './backend.js';
export type { BackendName, BackendReport, InitBackendOptions } from './backend.js';
export { Rng } from '@codereasoner/common';
export type { RngState } from '@codereasoner/common';
export { SPECIAL_TOKENS, Tokenizer, TokenizerError } from './tokenizer.js';
export type { AddedToken, EncodeOptions, TokenizerTrainOptions } from './tokenizer.js';
export { encodeChat, renderChat } from './chat.js';
export type { ChatMessage, RenderChatOptions } from './chat.js';
export {
  ChatTemplate,
  ChatTemplateError,
  chatMLFormat,
  loadChatFormat,
  loadHfChat,
} from './chat-template.js';
export type {
  ChatFormat,
  ChatTemplateOptions,
  ChatTemplateSources,
  TemplateMessage,
} from './chat-template.js';
export {
  DEFAULT_MODEL_CONFIG,
  eosTokenIdsOf,
  headDimOf,
  fromHfConfig,
  modelConfigSchema,
  resolveModelConfig,
  toHfConfig,
} from './config.js';
export type { ModelConfig, RopeScaling } from './config.js';
export {
  adapterNames,
  CausalLM,
  LORA_TARGETS,
  ModelInputError,
  COMPACT_AFTER,
  parameterNameOf,
  parameterSpecs,
} from './model.js';
export type {
  GenerateOptions,
  GenerationEngineReport,
  GenerationOutput,
  LoraConfig,
  LoraTarget,
  ParameterSpec,
  TokenLogProbsOptions,
} from './model.js';
export {
  ONNX_INITIALIZER_WEIGHTS_MAX_BYTES,
  ONNX_MODEL_MAX_BYTES,
  ONNX_WEIGHTS_MODES,
  onnxRuntimeStatus,
  onnxWeightsModeFor,
  setOnnxRuntimeLoader,
} from './onnx-engine.js';
export type {
  GenerationEngine,
  OnnxRuntimeLoader,
  OnnxRuntimeModule,
  OnnxWeightsMode,
} from './onnx-engine.js';
export {
  buildTrainGraph,
  gradientOutputName,
  resolveTrainGraphOptions,
  ROW_ENTROPY,
  ROW_LOG_PROBS,
  TRAIN_ATTENTION_CHUNKS,
  TRAIN_GRAPH_OPSET,
} from './onnx-train-graph.js';
export type { TrainGraphOptions } from './onnx-train-graph.js';
export { OnnxTrainStep, onnxTrainFeeds, onnxTrainUnsupported } from './onnx-trainer.js';
export { OnnxTrainPool, sumInOrder as sumOnnxTrainResults } from './onnx-train-pool.js';
export type { OnnxTrainBatchResult } from './onnx-train-pool.js';
export type { OnnxTrainBatch, OnnxTrainFeeds } from './onnx-trainer.js';
export type { AttentionPath } from './layers.js';
export { setWeightGradientKernel } from './fast-ops.js';
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
export type { Logger, ProgressEvent } from '@codereasoner/common';
export {
  decodeSafetensors,
  encodeSafetensors,
  openSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  writeSafetensorsStreaming,
} from './safetensors.js';
export type {
  SafetensorsDtype,
  SafetensorsEntry,
  SafetensorsInput,
  SafetensorsReader,
  SafetensorsSpan,
  StreamedTensor,
} from './safetensors.js';
export {
  declaredDtype,
  HF_FILES,
  loadHfTokenizer,
  loadPretrained,
  readHfModelInfo,
  savePretrained,
  shardFileName,
  TOKENIZER_FILES,
} from './hf-model.js';
export type { HfDtype, HfModelInfo, LoadedPretrained, SavePretrainedOptions } from './hf-model.js';
export { smallPythonTokenizer, writeRandomHfCheckpoint } from './hf-random.js';
export {
  ADAPTER_FILES,
  DEFAULT_LORA_CONFIG,
  loadAdapter,
  loraConfigSchema,
  PEFT_PREFIX,
  peftAdapterConfig,
  readAdapterConfig,
  resolveLoraConfig,
  saveAdapter,
} from './lora.js';
export type { LoraConfigInput } from './lora.js';
export type { RandomHfCheckpointOptions } from './hf-random.js';
export {
  appendJsonLine,
  readJsonLines,
  writeFileAtomic,
  writeJsonLines,
} from '@codereasoner/common';
export type { JsonLines } from '@codereasoner/common';
export { CHECKPOINT_FILES, exportHfWeights, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
export type { BaseModelReference, CheckpointParts, LoadedCheckpoint } from './checkpoint.js';
