import { schemaIssues } from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';
import { ConfigValidationError } from './errors.js';

/** Llama 3's frequency-dependent RoPE scaling (`rope_scaling` with `rope_type: "llama3"`). */
export interface RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Llama/Qwen2/Qwen3 decoder hyper-parameters (Hugging Face `config.json` names in camelCase). */
export interface ModelConfig {
  /**
   * `qwen2` adds biases to the q/k/v projections; `qwen3` adds an RMSNorm over each query and key
   * head (`q_norm`, `k_norm`) before the rotary embedding; otherwise identical to `llama`.
   */
  architecture: 'llama' | 'qwen2' | 'qwen3';
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
  /** Width of one attention head; default hiddenSize / numAttentionHeads (Qwen3 sets it explicitly). */
  headDim?: number;
  ropeScaling?: RopeScaling;
}

/** The head width a config implies (explicit `headDim` or hiddenSize / numAttentionHeads). */
export function headDimOf(config: ModelConfig): number {
  return config.headDim ?? config.hiddenSize / config.numAttentionHeads;
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
  description:
    'Hyper-parameters of a Llama/Qwen2/Qwen3-style decoder (camelCase Hugging Face names).',
  type: 'object',
  properties: {
    architecture: { type: 'string', enum: ['llama', 'qwen2', 'qwen3'] },
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
    headDim: { ...positiveInteger, nullable: true },
    ropeScaling: {
      type: 'object',
      nullable: true,
      properties: {
        ropeType: { type: 'string', enum: ['llama3'] },
        factor: { type: 'number', exclusiveMinimum: 0 },
        lowFreqFactor: { type: 'number', exclusiveMinimum: 0 },
        highFreqFactor: { type: 'number', exclusiveMinimum: 0 },
        originalMaxPositionEmbeddings: positiveInteger,
      },
      required: [
        'ropeType',
        'factor',
        'lowFreqFactor',
        'highFreqFactor',
        'originalMaxPositionEmbeddings',
      ],
      additionalProperties: false,
    },
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

/** Fills defaults from `DEFAULT_MODEL_CONFIG`, validates against the schema and the cross-field rules. */
export function resolveModelConfig(input: Partial<ModelConfig> = {}): ModelConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigValidationError('model config', ['/: must be an object']);
  }
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const config = { ...DEFAULT_MODEL_CONFIG, ...defined } as ModelConfig;
  const issues: string[] = [];
  issues.push(...schemaIssues(modelConfigSchema, config));
  if (issues.length === 0) {
    if (config.headDim !== undefined) {
      if (config.headDim % 2 !== 0)
        issues.push(`/headDim: must be even for rotary embeddings, got ${config.headDim}`);
    } else if (config.hiddenSize % config.numAttentionHeads !== 0) {
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
    const scaling = config.ropeScaling;
    if (scaling !== undefined && !(scaling.highFreqFactor > scaling.lowFreqFactor))
      issues.push('/ropeScaling/highFreqFactor: must be greater than lowFreqFactor');
  }
  if (issues.length > 0) throw new ConfigValidationError('model config', issues);
  return config;
}

const HF_CLASSES = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
} as const satisfies Record<ModelConfig['architecture'], string>;

/** Hugging Face `config.json` (what `transformers` `AutoConfig` reads). */
export function toHfConfig(
  config: ModelConfig,
  extra: { eosTokenId?: number | number[]; padTokenId?: number; bosTokenId?: number } = {},
): Record<string, unknown> {
  const arch = config.architecture;
  const scaling = config.ropeScaling;
  return {
    architectures: [HF_CLASSES[arch]],
    model_type: arch,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    head_dim: headDimOf(config),
    max_position_embeddings: config.maxPositionEmbeddings,
    rope_theta: config.ropeTheta,
    rope_scaling:
      scaling === undefined
        ? null
        : {
            rope_type: scaling.ropeType,
            factor: scaling.factor,
            low_freq_factor: scaling.lowFreqFactor,
            high_freq_factor: scaling.highFreqFactor,
            original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
          },
    rms_norm_eps: config.rmsNormEps,
    tie_word_embeddings: config.tieWordEmbeddings,
    hidden_act: 'silu',
    // Qwen2 always has q/k/v biases and no such field.
    ...(arch === 'qwen2' ? { use_sliding_window: false } : { attention_bias: false }),
    ...(arch === 'llama' ? { mlp_bias: false } : {}),
    ...(arch === 'qwen3' ? { use_sliding_window: false, sliding_window: null } : {}),
    attention_dropout: 0,
    initializer_range: 0.02,
    torch_dtype: 'float32',
    use_cache: true,
    ...(extra.bosTokenId === undefined ? {} : { bos_token_id: extra.bosTokenId }),
    ...(extra.eosTokenId === undefined ? {} : { eos_token_id: extra.eosTokenId }),
    ...(extra.padTokenId === undefined ? {} : { pad_token_id: extra.padTokenId }),
  };
}

/** `eos_token_id` of a config.json or generation_config.json: one id, a list, or none. */
export function eosTokenIdsOf(json: unknown): number[] {
  if (typeof json !== 'object' || json === null) return [];
  const value = (json as Record<string, unknown>)['eos_token_id'];
  if (Number.isInteger(value)) return [value as number];
  if (Array.isArray(value)) return value.filter((v): v is number => Number.isInteger(v));
  return [];
}

/**
 * Reads a Hugging Face `config.json` of a `LlamaForCausalLM`, `Qwen2ForCausalLM` or
 * `Qwen3ForCausalLM`; throws ConfigValidationError naming every field it cannot honour (other
 * architectures, activations, sliding windows, biases, rope scalings, quantization).
 */
export function fromHfConfig(json: unknown): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigValidationError('config.json', ['/: must be an object']);
  const hf = json as Record<string, unknown>;
  const issues: string[] = [];
  const modelType = hf['model_type'];
  const arch = (['llama', 'qwen2', 'qwen3'] as const).find((a) => a === modelType);
  if (arch === undefined)
    issues.push(
      `/model_type: must be "llama", "qwen2" or "qwen3", got ${JSON.stringify(modelType)}`,
    );
  const classes = hf['architectures'];
  if (classes !== undefined && classes !== null) {
    if (
      !Array.isArray(classes) ||
      classes.length !== 1 ||
      (arch !== undefined && classes[0] !== HF_CLASSES[arch])
    )
      issues.push(
        `/architectures: must be [${JSON.stringify(arch === undefined ? Object.values(HF_CLASSES).join('|') : HF_CLASSES[arch])}], got ${JSON.stringify(classes)}`,
      );
  }
  if (hf['hidden_act'] !== undefined && hf['hidden_act'] !== 'silu')
    issues.push(`/hidden_act: only "silu" is supported, got ${JSON.stringify(hf['hidden_act'])}`);
  if (hf['attention_bias'] === true)
    issues.push(
      '/attention_bias: true is not supported (biases on every attention projection); only Qwen2 q/k/v biases are',
    );
  if (hf['mlp_bias'] === true) issues.push('/mlp_bias: true is not supported');
  if (hf['use_sliding_window'] === true)
    issues.push('/use_sliding_window: sliding-window attention is not supported');
  if (hf['quantization_config'] !== undefined && hf['quantization_config'] !== null)
    issues.push('/quantization_config: quantized checkpoints are not supported');
  for (const field of ['use_mrope', 'rope_interleaved'] as const)
    if (hf[field] === true) issues.push(`/${field}: true is not supported`);
  let ropeScaling: RopeScaling | undefined;
  const scaling = hf['rope_scaling'];
  if (scaling !== undefined && scaling !== null) {
    const s = scaling as Record<string, unknown>;
    const type = s['rope_type'] ?? s['type'];
    if (type === 'default') {
      // transformers' name for no scaling
    } else if (type !== 'llama3') {
      issues.push(
        `/rope_scaling/rope_type: only "llama3" (or no scaling) is supported, got ${JSON.stringify(type)}`,
      );
    } else {
      for (const field of [
        'factor',
        'low_freq_factor',
        'high_freq_factor',
        'original_max_position_embeddings',
      ])
        if (typeof s[field] !== 'number')
          issues.push(
            `/rope_scaling/${field}: is required for llama3 scaling and must be a number`,
          );
      ropeScaling = {
        ropeType: 'llama3',
        factor: s['factor'] as number,
        lowFreqFactor: s['low_freq_factor'] as number,
        highFreqFactor: s['high_freq_factor'] as number,
        originalMaxPositionEmbeddings: s['original_max_position_embeddings'] as number,
      };
    }
  }
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
  let headDim: number | undefined;
  if (hf['head_dim'] !== undefined && hf['head_dim'] !== null) {
    if (!Number.isInteger(hf['head_dim'])) issues.push('/head_dim: must be an integer');
    else headDim = hf['head_dim'] as number;
  } else if (arch === 'qwen3') {
    headDim = 128; // Qwen3Config's default
  }
  if (
    headDim !== undefined &&
    typeof heads === 'number' &&
    headDim === Number(hf['hidden_size']) / heads
  )
    headDim = undefined; // the implied width: keep the config minimal
  if (issues.length > 0) throw new ConfigValidationError('config.json', issues);
  return resolveModelConfig({
    architecture: arch!,
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
    ...(headDim === undefined ? {} : { headDim }),
    ...(ropeScaling === undefined ? {} : { ropeScaling }),
  });
}
