import { Ajv, type ErrorObject, type JSONSchemaType } from 'ajv';
import { ConfigValidationError } from './errors.js';

/** Llama/Qwen2 decoder hyper-parameters (Hugging Face `config.json` names in camelCase). */
export interface ModelConfig {
  /** `qwen2` adds biases to the q/k/v projections; otherwise identical to `llama`. */
  architecture: 'llama' | 'qwen2';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
}

/**
 * The default small model, sized so that SFT + GRPO of the whole pipeline train in minutes on a
 * 2-core CPU with the wasm backend (see the package README for its measured throughput).
 */
export const DEFAULT_MODEL_CONFIG: Readonly<ModelConfig> = Object.freeze({
  architecture: 'llama',
  vocabSize: 2048,
  hiddenSize: 128,
  intermediateSize: 384,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 1024,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  tieWordEmbeddings: true,
});

const positiveInteger = { type: 'integer', minimum: 1 } as const;

export const modelConfigSchema: JSONSchemaType<ModelConfig> = {
  $id: 'https://codereasoner.dev/schemas/model-config.json',
  title: 'ModelConfig',
  description: 'Hyper-parameters of a Llama/Qwen2-style decoder (camelCase Hugging Face names).',
  type: 'object',
  properties: {
    architecture: { type: 'string', enum: ['llama', 'qwen2'] },
    vocabSize: { ...positiveInteger, maximum: 2097151 },
    hiddenSize: positiveInteger,
    intermediateSize: positiveInteger,
    numHiddenLayers: positiveInteger,
    numAttentionHeads: positiveInteger,
    numKeyValueHeads: positiveInteger,
    maxPositionEmbeddings: positiveInteger,
    ropeTheta: { type: 'number', exclusiveMinimum: 0 },
    rmsNormEps: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    tieWordEmbeddings: { type: 'boolean' },
  },
  required: [
    'architecture',
    'vocabSize',
    'hiddenSize',
    'intermediateSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'numKeyValueHeads',
    'maxPositionEmbeddings',
    'ropeTheta',
    'rmsNormEps',
    'tieWordEmbeddings',
  ],
  additionalProperties: false,
};

const ajv = new Ajv({ allErrors: true, strict: true });
const validateModelConfig = ajv.compile(modelConfigSchema);

export function formatAjvErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    let path = e.instancePath === '' ? '/' : e.instancePath;
    if (e.keyword === 'additionalProperties')
      path = `${e.instancePath}/${String(e.params['additionalProperty'])}`;
    if (e.keyword === 'enum')
      return `${path}: ${e.message ?? 'invalid'} (${(e.params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')})`;
    return `${path}: ${e.message ?? 'invalid'}`;
  });
}

/** Fills defaults from `DEFAULT_MODEL_CONFIG`, validates against the schema and the cross-field rules. */
export function resolveModelConfig(input: Partial<ModelConfig> = {}): ModelConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigValidationError('model config', ['/: must be an object']);
  }
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const config = { ...DEFAULT_MODEL_CONFIG, ...defined } as ModelConfig;
  const issues: string[] = [];
  if (!validateModelConfig(config)) issues.push(...formatAjvErrors(validateModelConfig.errors));
  if (issues.length === 0) {
    if (config.hiddenSize % config.numAttentionHeads !== 0) {
      issues.push(
        `/hiddenSize: must be divisible by numAttentionHeads (${config.hiddenSize} % ${config.numAttentionHeads} != 0)`,
      );
    } else if ((config.hiddenSize / config.numAttentionHeads) % 2 !== 0) {
      issues.push(
        `/numAttentionHeads: head size hiddenSize/numAttentionHeads must be even for rotary embeddings, got ${config.hiddenSize / config.numAttentionHeads}`,
      );
    }
    if (config.numAttentionHeads % config.numKeyValueHeads !== 0) {
      issues.push(
        `/numKeyValueHeads: must divide numAttentionHeads (${config.numAttentionHeads} % ${config.numKeyValueHeads} != 0)`,
      );
    }
  }
  if (issues.length > 0) throw new ConfigValidationError('model config', issues);
  return config;
}

/** Hugging Face `config.json` (what `transformers` `AutoConfig` reads). */
export function toHfConfig(
  config: ModelConfig,
  extra: { eosTokenId?: number; padTokenId?: number; bosTokenId?: number } = {},
): Record<string, unknown> {
  const qwen = config.architecture === 'qwen2';
  return {
    architectures: [qwen ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: qwen ? 'qwen2' : 'llama',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    head_dim: config.hiddenSize / config.numAttentionHeads,
    max_position_embeddings: config.maxPositionEmbeddings,
    rope_theta: config.ropeTheta,
    rms_norm_eps: config.rmsNormEps,
    tie_word_embeddings: config.tieWordEmbeddings,
    hidden_act: 'silu',
    attention_bias: qwen,
    ...(qwen ? {} : { mlp_bias: false }),
    attention_dropout: 0,
    initializer_range: 0.02,
    torch_dtype: 'float32',
    use_cache: true,
    ...(extra.bosTokenId === undefined ? {} : { bos_token_id: extra.bosTokenId }),
    ...(extra.eosTokenId === undefined ? {} : { eos_token_id: extra.eosTokenId }),
    ...(extra.padTokenId === undefined ? {} : { pad_token_id: extra.padTokenId }),
  };
}

/** Reads a Hugging Face Llama/Qwen2 `config.json` object; throws ConfigValidationError listing what does not fit. */
export function fromHfConfig(json: unknown): ModelConfig {
  if (typeof json !== 'object' || json === null)
    throw new ConfigValidationError('config.json', ['/: must be an object']);
  const hf = json as Record<string, unknown>;
  const issues: string[] = [];
  const modelType = hf['model_type'];
  if (modelType !== 'llama' && modelType !== 'qwen2')
    issues.push(`/model_type: must be "llama" or "qwen2", got ${JSON.stringify(modelType)}`);
  if (hf['hidden_act'] !== undefined && hf['hidden_act'] !== 'silu')
    issues.push(`/hidden_act: only "silu" is supported, got ${JSON.stringify(hf['hidden_act'])}`);
  if (modelType === 'llama' && hf['attention_bias'] === true)
    issues.push('/attention_bias: llama with attention bias is not supported');
  if (hf['rope_scaling'] !== undefined && hf['rope_scaling'] !== null)
    issues.push('/rope_scaling: rope scaling is not supported');
  for (const field of [
    'vocab_size',
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'max_position_embeddings',
  ]) {
    if (typeof hf[field] !== 'number') issues.push(`/${field}: is required and must be a number`);
  }
  const heads = hf['num_attention_heads'];
  if (
    hf['head_dim'] !== undefined &&
    typeof heads === 'number' &&
    hf['head_dim'] !== Number(hf['hidden_size']) / heads
  ) {
    issues.push('/head_dim: must equal hidden_size / num_attention_heads');
  }
  if (issues.length > 0) throw new ConfigValidationError('config.json', issues);
  return resolveModelConfig({
    architecture: modelType as ModelConfig['architecture'],
    vocabSize: hf['vocab_size'] as number,
    hiddenSize: hf['hidden_size'] as number,
    intermediateSize: hf['intermediate_size'] as number,
    numHiddenLayers: hf['num_hidden_layers'] as number,
    numAttentionHeads: heads as number,
    numKeyValueHeads: (hf['num_key_value_heads'] ?? heads) as number,
    maxPositionEmbeddings: hf['max_position_embeddings'] as number,
    ropeTheta: (hf['rope_theta'] ?? 10000) as number,
    rmsNormEps: (hf['rms_norm_eps'] ?? 1e-6) as number,
    tieWordEmbeddings: (hf['tie_word_embeddings'] ?? false) as boolean,
  });
}
