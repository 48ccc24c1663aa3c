import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { schemaIssues } from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';
import { writeFileAtomic } from '@codereasoner/common';
import { transpose2d } from './hf-layout.js';
import { CheckpointError, ConfigValidationError } from './errors.js';
import { LORA_TARGETS, type CausalLM, type LoraConfig, type LoraTarget } from './model.js';
import { openSafetensors, writeSafetensorsStreaming } from './safetensors.js';

export const ADAPTER_FILES = {
  config: 'adapter_config.json',
  weights: 'adapter_model.safetensors',
} as const;

/** PEFT's key prefix of a `PeftModelForCausalLM` state dict (`base_model.model.` + the transformers name). */
export const PEFT_PREFIX = 'base_model.model.';

/** LoRA settings as a user writes them (camelCase); unset fields take PEFT's defaults for these models. */
export type LoraConfigInput = Partial<LoraConfig>;

/** PEFT's LoraConfig defaults, with its Llama/Qwen2 default target modules (q_proj, v_proj). */
export const DEFAULT_LORA_CONFIG: Readonly<LoraConfig> = Object.freeze({
  r: 8,
  alpha: 8,
  dropout: 0,
  targetModules: ['q_proj', 'v_proj'] as LoraTarget[],
  useRslora: false,
});

export const loraConfigSchema: JSONSchemaType<LoraConfig> = {
  $id: 'https://codereasoner.dev/schemas/lora-config.json',
  title: 'LoraConfig',
  description:
    "LoRA adapters (PEFT's LoraConfig: r, lora_alpha, lora_dropout, target_modules, use_rslora).",
  type: 'object',
  properties: {
    r: { type: 'integer', minimum: 1 },
    alpha: { type: 'number', exclusiveMinimum: 0 },
    dropout: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
    targetModules: {
      type: 'array',
      items: { type: 'string', enum: [...LORA_TARGETS] },
      minItems: 1,
      uniqueItems: true,
    },
    useRslora: { type: 'boolean', nullable: true },
  },
  required: ['r', 'alpha', 'dropout', 'targetModules'],
  additionalProperties: false,
};

/** Fills PEFT's defaults and validates; ConfigValidationError lists `path: message` issues. */
export function resolveLoraConfig(input: LoraConfigInput = {}): LoraConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new ConfigValidationError('lora config', ['/: must be an object']);
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const config = { ...DEFAULT_LORA_CONFIG, ...defined } as LoraConfig;
  const issues = schemaIssues(loraConfigSchema, config);
  if (issues.length > 0) throw new ConfigValidationError('lora config', issues);
  return { ...config, targetModules: [...config.targetModules] };
}

/** `adapter_config.json` as PEFT writes it for a LoRA adapter on a causal LM. */
export function peftAdapterConfig(
  config: LoraConfig,
  baseModelNameOrPath: string | null,
): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: config.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...config.targetModules].sort(),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: config.useRslora === true,
  };
}

/**
 * Writes the model's LoRA adapters in PEFT's format into `dir` (which must exist):
 * adapter_config.json and adapter_model.safetensors with PEFT's tensor names
 * (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, A as [r, in], B as [out, r]),
 * float32.
 */
export async function saveAdapter(
  dir: string,
  model: CausalLM,
  options: { baseModelNameOrPath?: string | null } = {},
): Promise<void> {
  const config = model.loraConfig;
  if (config === undefined)
    throw new CheckpointError(dir, 'the model has no LoRA adapters to save');
  const tensors = [...model.adapterParameters].map(([name, variable]) => {
    const [rows, cols] = variable.shape as [number, number];
    return {
      name: `${PEFT_PREFIX}${name}`,
      dtype: 'F32' as const,
      // memory [in, r] / [r, out] → torch Linear weights [r, in] / [out, r]
      shape: [cols, rows],
      values: async () => transpose2d((await variable.data()) as Float32Array, rows, cols),
    };
  });
  await writeSafetensorsStreaming(join(dir, ADAPTER_FILES.weights), tensors, { format: 'pt' });
  await writeFileAtomic(
    join(dir, ADAPTER_FILES.config),
    `${JSON.stringify(peftAdapterConfig(config, options.baseModelNameOrPath ?? null), null, 2)}\n`,
  );
}

/** Reads PEFT's adapter_config.json; refuses (naming the field) what the model's LoRA cannot reproduce. */
export async function readAdapterConfig(
  dir: string,
): Promise<{ config: LoraConfig; baseModelNameOrPath: string | null }> {
  const path = join(dir, ADAPTER_FILES.config);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new CheckpointError(
      path,
      `cannot read adapter_config.json (${(cause as Error).message})`,
      { cause },
    );
  }
  const issues: string[] = [];
  if (json['peft_type'] !== 'LORA')
    issues.push(`/peft_type: must be "LORA", got ${JSON.stringify(json['peft_type'])}`);
  if (
    json['task_type'] !== undefined &&
    json['task_type'] !== null &&
    json['task_type'] !== 'CAUSAL_LM'
  )
    issues.push(`/task_type: must be "CAUSAL_LM", got ${JSON.stringify(json['task_type'])}`);
  const unsupported: [string, (v: unknown) => boolean][] = [
    ['bias', (v) => v === undefined || v === 'none'],
    ['use_dora', (v) => v === undefined || v === false],
    ['fan_in_fan_out', (v) => v === undefined || v === false],
    [
      'modules_to_save',
      (v) => v === undefined || v === null || (Array.isArray(v) && v.length === 0),
    ],
    ['layers_to_transform', (v) => v === undefined || v === null],
    ['rank_pattern', (v) => v === undefined || v === null || Object.keys(v as object).length === 0],
    [
      'alpha_pattern',
      (v) => v === undefined || v === null || Object.keys(v as object).length === 0,
    ],
  ];
  for (const [field, ok] of unsupported)
    if (!ok(json[field])) issues.push(`/${field}: ${JSON.stringify(json[field])} is not supported`);
  const targets = json['target_modules'];
  if (!Array.isArray(targets))
    issues.push(
      '/target_modules: must be a list of module names (regular expressions are not supported)',
    );
  if (issues.length > 0)
    throw new CheckpointError(path, `unsupported adapter: ${issues.join('; ')}`);
  try {
    const config = resolveLoraConfig({
      r: json['r'] as number,
      alpha: json['lora_alpha'] as number,
      dropout: (json['lora_dropout'] ?? 0) as number,
      targetModules: targets as LoraTarget[],
      useRslora: json['use_rslora'] === true,
    });
    const base = json['base_model_name_or_path'];
    return { config, baseModelNameOrPath: typeof base === 'string' ? base : null };
  } catch (error) {
    const list = (error as { issues?: string[] }).issues;
    throw new CheckpointError(
      path,
      `unsupported adapter: ${list?.join('; ') ?? (error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/** Attaches the PEFT adapter in `dir` to `model` (which must have none). */
export async function loadAdapter(model: CausalLM, dir: string): Promise<LoraConfig> {
  const { config } = await readAdapterConfig(dir);
  const path = join(dir, ADAPTER_FILES.weights);
  const reader = await openSafetensors(path);
  const values = new Map<string, tf.Tensor>();
  try {
    for (const [fileName, span] of reader.tensors) {
      if (!fileName.startsWith(PEFT_PREFIX))
        throw new CheckpointError(path, `tensor ${fileName} lacks PEFT's ${PEFT_PREFIX} prefix`);
      if (span.shape.length !== 2)
        throw new CheckpointError(path, `tensor ${fileName} is not a matrix`);
      const [rows, cols] = span.shape as [number, number];
      const data = await reader.readFloat32(fileName);
      values.set(
        fileName.slice(PEFT_PREFIX.length),
        tf.tensor(transpose2d(data, rows, cols), [cols, rows]),
      );
    }
    try {
      model.addAdapters(config, { values });
    } catch (error) {
      throw new CheckpointError(path, (error as Error).message, { cause: error });
    }
    return config;
  } finally {
    tf.dispose([...values.values()]);
    await reader.close();
  }
}
