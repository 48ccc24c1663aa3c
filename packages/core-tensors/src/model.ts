import * as tf from '@tensorflow/tfjs';
import { headDimOf, resolveModelConfig, type ModelConfig } from './config.js';
import { CodeReasonerError } from './errors.js';
import {
  embeddingLookup,
  linear,
  linearTransposed,
  logSumExpRows,
  pickedLogSoftmax,
  scatterRows,
  transposeLast2,
} from './fast-ops.js';
import { DecodeAttention } from './decode-attention.js';
import { jsKernelsActive } from './kernels.js';
import {
  applyRopeAt,
  type AttentionPath,
  attentionBias,
  groupedQueryAttention,
  rmsNorm,
  ropeTables,
  rotateHalfMatrix,
  swiglu,
} from './layers.js';
import { Rng, type Logger } from '@codereasoner/common';
import { compactionOrder } from './row-compaction.js';
import { sampleToken } from './sampling.js';
import {
  OnnxDecoder,
  onnxRuntimeStatus,
  onnxUnsupportedReason,
  onnxWeightsModeFor,
  ONNX_WEIGHTS_MODES,
  type OnnxWeightsMode,
  type GenerationEngine,
} from './onnx-engine.js';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy (default 1). */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Generation of a sequence stops after it emits one of these (the stop token is included in `tokens`). */
  stopTokens?: number[];
  /** Seeds the sampling stream; prompt i always draws from the i-th fork of `new Rng(seed)`. Default 0. */
  seed?: number;
  /** One seed per prompt (prompt i draws from `new Rng(seeds[i]).fork()`), overriding `seed`: lets callers batch unrelated requests without changing any request's samples. */
  seeds?: number[];
  /**
   * Prompt i draws from fork number `streamOffset + i` of `new Rng(seed)` (default 0; ignored with
   * `seeds`). Lets a caller split one call's prompts into several calls (e.g. across worker threads)
   * without changing any prompt's samples.
   */
  streamOffset?: number;
  /** Sample only ids below this (e.g. the tokenizer's vocabulary when the model's is padded larger); log-probs are then over those ids. */
  vocabLimit?: number;
  /** Prompts decoded together (default 16). */
  batchSize?: number;
  /**
   * 'fused' (default where supported: wasm/cpu backends, no Qwen3 q/k norms, no active LoRA
   * adapters): each new token goes through fused q/k/v and gate/up projections and one attention
   * kernel over a preallocated KV cache. 'reference': the same ops as training (`logits`), the
   * cache grown by concatenation. Both give the same distribution within float32 rounding
   * (tested); sampled tokens can differ only where two candidates tie to that precision.
   */
  decode?: 'fused' | 'reference';
  /**
   * Which code computes the logits (the sampling, stop tokens and padding are the same JS either
   * way): 'tfjs' (default) the TensorFlow.js ops above; 'onnx' onnxruntime-node's CPU kernels over
   * a graph built from the model's current weights (rebuilt after they change), falling back to
   * 'tfjs' with a warning on `logger` where onnxruntime-node does not load or the model has
   * something the graph lacks (Qwen3 q/k norms, active LoRA adapters); 'auto' the same fallback
   * without the warning. Logits agree with the tfjs path within float32 rounding (tested to 1e-4).
   */
  engine?: GenerationEngine;
  /** onnxruntime's intra-op threads for `engine` 'onnx'/'auto' (default 1). */
  onnxThreads?: number;
  /**
   * How the ONNX graph holds the weights: 'initializers' inside the graph, which onnxruntime
   * optimises and pre-packs (decoding 15-50% faster, measured), at the price of a new session
   * (50-600 ms; 34 s for Qwen2.5-0.5B) after every weight change; 'inputs' fed with every run, so a
   * weight change costs only a copy and the graph has no size limit; 'auto' (default)
   * initializers while the graph fits a protobuf message with room to spare (up to
   * `ONNX_INITIALIZER_WEIGHTS_MAX_BYTES` of weights: 2 GiB - 64 MiB), inputs above.
   */
  onnxWeights?: OnnxWeightsMode;
  /**
   * Generation drops finished rows (a stop token) from its batch, so that the following decode
   * steps compute and read the KV cache of the unfinished rows only, once this many rows have
   * finished since it last did (default `COMPACT_AFTER`: at every step where a row finishes); 0
   * never drops them (every row decodes until the batch's last one stops, as before; for
   * measurements). The onnx engine and the fused tfjs path do it; the 'reference' decode path
   * keeps every row. Outputs are the same either way (tested).
   */
  compactAfter?: number;
  /** Where an 'onnx' engine that falls back says why (once per reason per process). */
  logger?: Logger;
  /** Called after each decoding step of each batch with tokens produced so far in total. */
  onProgress?: (event: { stage: string; completed: number; total?: number }) => void;
}

export interface GenerationOutput {
  /** New tokens (the stop token included when finishReason is 'stop'). */
  tokens: number[];
  /** log p(token) under the temperature-scaled distribution (temperature 1 for greedy), one per token. */
  logProbs: number[];
  finishReason: 'stop' | 'length';
}

export interface TokenLogProbsOptions {
  /** Logits are divided by this before the softmax (default 1). */
  temperature?: number;
  /** Also return per-token entropy of the (temperature-scaled) distribution. */
  entropy?: boolean;
  /**
   * [B, T-1]: 1 where the log-prob (and entropy) is wanted, e.g. completion or assistant tokens.
   * Other positions come back as 0 and skip the LM head and vocabulary softmax entirely, which
   * is most of the per-token cost of this call. Padding targets are always skipped.
   */
  targetMask?: tf.Tensor2D;
  /**
   * Normalise over ids below this only (the tokenizer's vocabulary when the model's is padded
   * larger), matching `generate`'s `vocabLimit`: a policy that never samples padded ids scores its
   * tokens under that same distribution.
   */
  vocabLimit?: number;
}

/** Bad arguments to the model (shapes, lengths beyond the context window, ids outside the vocabulary). */
export class ModelInputError extends CodeReasonerError {
  constructor(message: string) {
    super('MODEL_INPUT_INVALID', message);
    this.name = 'ModelInputError';
  }
}

/** How one parameter is shaped, initialised and regularised. Shapes are the in-memory [in, out] layout. */
export interface ParameterSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'residual' | 'ones' | 'zeros';
  /** AdamW applies weight decay to it (matrices yes; norms, biases no). */
  decay: boolean;
}

/** The parameter list of a config, in a fixed order. Names are Hugging Face Llama names; matrices are stored [in, out]. */
export function parameterSpecs(config: ModelConfig): ParameterSpec[] {
  const d = config.hiddenSize;
  const headDim = headDimOf(config);
  const qDim = config.numAttentionHeads * headDim;
  const kvDim = config.numKeyValueHeads * headDim;
  const specs: ParameterSpec[] = [
    {
      name: 'model.embed_tokens.weight',
      shape: [config.vocabSize, d],
      init: 'normal',
      decay: true,
    },
  ];
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [d], init: 'ones', decay: false });
    specs.push({
      name: `${p}.self_attn.q_proj.weight`,
      shape: [d, qDim],
      init: 'normal',
      decay: true,
    });
    specs.push({
      name: `${p}.self_attn.k_proj.weight`,
      shape: [d, kvDim],
      init: 'normal',
      decay: true,
    });
    specs.push({
      name: `${p}.self_attn.v_proj.weight`,
      shape: [d, kvDim],
      init: 'normal',
      decay: true,
    });
    if (config.architecture === 'qwen2') {
      specs.push({
        name: `${p}.self_attn.q_proj.bias`,
        shape: [qDim],
        init: 'zeros',
        decay: false,
      });
      specs.push({
        name: `${p}.self_attn.k_proj.bias`,
        shape: [kvDim],
        init: 'zeros',
        decay: false,
      });
      specs.push({
        name: `${p}.self_attn.v_proj.bias`,
        shape: [kvDim],
        init: 'zeros',
        decay: false,
      });
    }
    if (config.architecture === 'qwen3') {
      for (const norm of ['q_norm', 'k_norm'])
        specs.push({
          name: `${p}.self_attn.${norm}.weight`,
          shape: [headDim],
          init: 'ones',
          decay: false,
        });
    }
    specs.push({
      name: `${p}.self_attn.o_proj.weight`,
      shape: [qDim, d],
      init: 'residual',
      decay: true,
    });
    specs.push({
      name: `${p}.post_attention_layernorm.weight`,
      shape: [d],
      init: 'ones',
      decay: false,
    });
    specs.push({
      name: `${p}.mlp.gate_proj.weight`,
      shape: [d, config.intermediateSize],
      init: 'normal',
      decay: true,
    });
    specs.push({
      name: `${p}.mlp.up_proj.weight`,
      shape: [d, config.intermediateSize],
      init: 'normal',
      decay: true,
    });
    specs.push({
      name: `${p}.mlp.down_proj.weight`,
      shape: [config.intermediateSize, d],
      init: 'residual',
      decay: true,
    });
  }
  specs.push({ name: 'model.norm.weight', shape: [d], init: 'ones', decay: false });
  if (!config.tieWordEmbeddings)
    specs.push({
      name: 'lm_head.weight',
      shape: [d, config.vocabSize],
      init: 'normal',
      decay: true,
    });
  return specs;
}

/** The projections LoRA can adapt, by their PEFT `target_modules` names. */
export const LORA_TARGETS = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** LoRA hyper-parameters as PEFT's `LoraConfig` names them (r, lora_alpha, lora_dropout, target_modules). */
export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: LoraTarget[];
  /** PEFT's `use_rslora`: scale alpha/√r instead of alpha/r. */
  useRslora?: boolean;
}

/** Where a projection lives in Hugging Face names (`self_attn` or `mlp`). */
export function projectionPrefix(layer: number, target: LoraTarget): string {
  const block =
    target.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(target)
      ? 'mlp'
      : 'self_attn';
  return `model.layers.${layer}.${block}.${target}`;
}

interface Adapter {
  a: tf.Variable;
  b: tf.Variable;
}

interface Layer {
  adapters: Partial<Record<LoraTarget, Adapter>>;
  qNorm: tf.Variable | undefined;
  kNorm: tf.Variable | undefined;
  inputNorm: tf.Variable;
  q: tf.Variable;
  k: tf.Variable;
  v: tf.Variable;
  qBias: tf.Variable | undefined;
  kBias: tf.Variable | undefined;
  vBias: tf.Variable | undefined;
  o: tf.Variable;
  postNorm: tf.Variable;
  gate: tf.Variable;
  up: tf.Variable;
  down: tf.Variable;
}

interface KvCache {
  k: tf.Tensor4D | undefined;
  v: tf.Tensor4D | undefined;
}

/** One layer's projections concatenated for the fused decode path (built once per `generate` call). */
interface DecodeWeights {
  /** [d, (H + 2K)·hd], or undefined for models too large to hold a second copy (then three products whose outputs are concatenated). */
  qkv: tf.Tensor2D | undefined;
  qkvBias: tf.Tensor1D | undefined;
  /** [d, 2I], or undefined as qkv. */
  gateUp: tf.Tensor2D | undefined;
}

/**
 * Finished rows a generation batch collects before it drops them (`GenerateOptions.compactAfter`).
 * 1: dropping costs at most one copy of a row's KV cache per finished row (`compactionOrder`);
 * collecting 2 or 4 first measured the same (core-tensors README, "Dropping finished rows").
 */
export const COMPACT_AFTER = 1;

/** Reasons an 'onnx' engine fell back that were already logged (each is logged once per process). */
const loggedFallbacks = new Set<string>();

/** Which engine the last `generate` call of a model used, and why it fell back to tfjs if it did. */
export interface GenerationEngineReport {
  engine: 'onnx' | 'tfjs';
  /** Set when 'onnx' or 'auto' was asked for and tfjs ran instead. */
  fallbackReason?: string;
  /** Milliseconds that call spent building the ONNX graph and session (0 when the weights were unchanged). */
  onnxBuildMs?: number;
  /** How the ONNX graph held the weights ('auto' resolved; see `GenerateOptions.onnxWeights`). */
  onnxWeights?: 'initializers' | 'inputs';
  /** onnxruntime's intra-op threads (per generating thread of a worker pool). */
  onnxThreads?: number;
}

/** Concatenated projection weights are kept only up to this many floats (64 MB): larger models multiply per projection instead. */
const FUSED_WEIGHTS_MAX_FLOATS = 16 * 1024 * 1024;

let instanceCounter = 0;

/** PEFT's names of one projection's adapter weights, without PEFT's `base_model.model.` prefix. */
export function adapterNames(layer: number, target: LoraTarget): { a: string; b: string } {
  const p = projectionPrefix(layer, target);
  return { a: `${p}.lora_A.weight`, b: `${p}.lora_B.weight` };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Stable parameter name of a variable (its name without the per-instance prefix). */
export function parameterNameOf(variableName: string): string {
  const slash = variableName.indexOf('/');
  return slash < 0 ? variableName : variableName.slice(slash + 1);
}

/**
 * A decoder-only transformer of the Llama / Qwen2 family: token embedding, RMSNorm, rotary
 * embeddings, grouped-query causal attention, SwiGLU MLP, optionally tied input/output embeddings.
 * Variables are named `<instance>/<Hugging Face name>`; use `parameterNameOf` for the stable part.
 */
export class CausalLM {
  readonly config: ModelConfig;
  readonly trainable: boolean;
  readonly specs: readonly ParameterSpec[];
  private readonly variables = new Map<string, tf.Variable>();
  private readonly layers: Layer[] = [];
  private readonly embed: tf.Variable;
  private readonly finalNorm: tf.Variable;
  private readonly lmHead: tf.Variable | undefined;
  private ropeCos: tf.Tensor2D;
  private ropeSin: tf.Tensor2D;
  /** The same tables as arrays, for the fused decode path's attention (which runs outside tfjs). */
  private ropeValues: { cos: Float32Array; sin: Float32Array } = {
    cos: new Float32Array(0),
    sin: new Float32Array(0),
  };
  private ropeLength: number;
  private readonly rotate: tf.Tensor2D;
  private readonly headDim: number;
  private disposed = false;
  private lora:
    { config: LoraConfig; scale: number; variables: Map<string, tf.Variable> } | undefined;
  private readonly prefix: string;
  /** Whether LoRA adapters (if any) take part in the forward pass; false gives the base model. */
  adaptersEnabled = true;
  /** Whether LoRA dropout is applied (`computeGradients` turns it on for its duration). */
  adapterDropout = false;
  /**
   * How attention runs in every forward pass (training, scoring, prefill): 'fused' (the default)
   * is one kernel per (batch, key/value head) forward and backward on the wasm and cpu backends
   * (fused-attention.ts; the tensorflow backend keeps the reference ops); 'reference' is the tfjs
   * ops (scores, additive mask, softmax, ·V), bit for bit the results of earlier versions. Both
   * agree within float32 rounding (tested). Copied by `clone` and to worker-pool replicas.
   */
  attention: AttentionPath = 'fused';
  private dropoutSeed = 0;
  private dropoutDraws = 0;
  /** The fused decode path's concatenated weights, with the buffers they were made from. */
  private fusedWeights:
    { sources: (tf.DataId | undefined)[]; weights: DecodeWeights[] } | undefined;
  /** The ONNX engine's session over the weights whose buffers are `sources`. */
  private onnxDecoder:
    | {
        sources: tf.DataId[];
        threads: number;
        asInputs: boolean;
        decoder: Promise<OnnxDecoder>;
        users: number;
      }
    | undefined;
  /** The engine of the last `generate` call (see `GenerateOptions.engine`). */
  lastGenerationEngine: GenerationEngineReport | undefined = undefined;
  /**
   * The Hugging Face directory this model was loaded from (set by `loadPretrained`): its
   * config.json, generation_config.json, tokenizer and chat-template files are what checkpoints
   * and exports of the model copy, so a fine-tuned Llama-3 keeps its own chat format. Undefined
   * for a model created from scratch (ChatML).
   */
  hfSource: string | undefined = undefined;
  /**
   * Whether the base weights still equal the weight files of `hfSource`: false once they were
   * handed out for training (`trainableVariables` without adapters), merged into or copied over.
   * LoRA checkpoints then refer to those files instead of copying the base.
   */
  private baseMatchesSource = false;

  private constructor(config: ModelConfig, values: Map<string, tf.Tensor>, trainable: boolean) {
    this.config = config;
    this.trainable = trainable;
    this.specs = parameterSpecs(config);
    const prefix = `cr${instanceCounter++}`;
    this.prefix = prefix;
    for (const spec of this.specs) {
      const value = values.get(spec.name);
      if (value === undefined) throw new ModelInputError(`missing parameter ${spec.name}`);
      if (value.shape.join(',') !== spec.shape.join(',')) {
        throw new ModelInputError(
          `parameter ${spec.name} has shape [${value.shape.join(', ')}], expected [${spec.shape.join(', ')}]`,
        );
      }
      this.variables.set(spec.name, tf.variable(value, trainable, `${prefix}/${spec.name}`));
    }
    const get = (name: string): tf.Variable => this.variables.get(name)!;
    this.embed = get('model.embed_tokens.weight');
    for (let i = 0; i < config.numHiddenLayers; i++) {
      const p = `model.layers.${i}`;
      this.layers.push({
        adapters: {},
        qNorm: this.variables.get(`${p}.self_attn.q_norm.weight`),
        kNorm: this.variables.get(`${p}.self_attn.k_norm.weight`),
        inputNorm: get(`${p}.input_layernorm.weight`),
        q: get(`${p}.self_attn.q_proj.weight`),
        k: get(`${p}.self_attn.k_proj.weight`),
        v: get(`${p}.self_attn.v_proj.weight`),
        qBias: this.variables.get(`${p}.self_attn.q_proj.bias`),
        kBias: this.variables.get(`${p}.self_attn.k_proj.bias`),
        vBias: this.variables.get(`${p}.self_attn.v_proj.bias`),
        o: get(`${p}.self_attn.o_proj.weight`),
        postNorm: get(`${p}.post_attention_layernorm.weight`),
        gate: get(`${p}.mlp.gate_proj.weight`),
        up: get(`${p}.mlp.up_proj.weight`),
        down: get(`${p}.mlp.down_proj.weight`),
      });
    }
    this.finalNorm = get('model.norm.weight');
    this.lmHead = this.variables.get('lm_head.weight');
    this.headDim = headDimOf(config);
    // Pretrained configs declare 32k-128k positions; tables grow on demand instead (see ensureRope).
    this.ropeLength = Math.min(config.maxPositionEmbeddings, 2048);
    [this.ropeCos, this.ropeSin] = this.makeRope(this.ropeLength);
    this.rotate = rotateHalfMatrix(this.headDim);
  }

  private makeRope(length: number): [tf.Tensor2D, tf.Tensor2D] {
    const c = this.config;
    const tables = ropeTables(length, this.headDim, c.ropeTheta, c.ropeScaling);
    this.ropeValues = tables;
    return [
      tf.tensor2d(tables.cos, [length, this.headDim]),
      tf.tensor2d(tables.sin, [length, this.headDim]),
    ];
  }

  /** Rotary tables cover positions below `length` (doubling, up to maxPositionEmbeddings). */
  private ensureRope(length: number): void {
    if (length <= this.ropeLength) return;
    let next = this.ropeLength;
    while (next < length) next *= 2;
    next = Math.min(next, this.config.maxPositionEmbeddings);
    const [cos, sin] = this.makeRope(next);
    this.ropeCos.dispose();
    this.ropeSin.dispose();
    this.ropeCos = cos;
    this.ropeSin = sin;
    this.ropeLength = next;
  }

  /** A freshly initialised model (normal(0, 0.02); residual output projections scaled by 1/√(2·layers)). */
  static create(
    config: Partial<ModelConfig> = {},
    options: { seed?: number; trainable?: boolean } = {},
  ): CausalLM {
    const resolved = resolveModelConfig(config);
    const rng = new Rng(options.seed ?? 0);
    const values = new Map<string, tf.Tensor>();
    const std = 0.02;
    const residualStd = std / Math.sqrt(2 * resolved.numHiddenLayers);
    for (const spec of parameterSpecs(resolved)) {
      const data = new Float32Array(sizeOf(spec.shape));
      if (spec.init === 'ones') data.fill(1);
      else if (spec.init === 'normal' || spec.init === 'residual') {
        const s = spec.init === 'normal' ? std : residualStd;
        for (let i = 0; i < data.length; i++) data[i] = rng.normal() * s;
      }
      values.set(spec.name, tf.tensor(data, spec.shape, 'float32'));
    }
    try {
      return new CausalLM(resolved, values, options.trainable ?? true);
    } finally {
      for (const t of values.values()) t.dispose();
    }
  }

  /** A model from named tensors in the in-memory layout (see `parameterSpecs`); the tensors are copied, not taken. */
  static fromParameters(
    config: Partial<ModelConfig>,
    values: Map<string, tf.Tensor>,
    options: { trainable?: boolean } = {},
  ): CausalLM {
    return new CausalLM(resolveModelConfig(config), values, options.trainable ?? true);
  }

  /** Variables an optimizer updates: the LoRA adapters when there are any, else every weight (none for a frozen copy). */
  get trainableVariables(): tf.Variable[] {
    if (this.lora !== undefined) return [...this.lora.variables.values()];
    if (!this.trainable) return [];
    // Whoever takes the base weights to train may change them.
    this.baseMatchesSource = false;
    return [...this.variables.values()];
  }

  /** `hfSource` when the base weights are still those of its weight files (see `hfSource`). */
  get unchangedBaseSource(): string | undefined {
    return this.baseMatchesSource ? this.hfSource : undefined;
  }

  /** Records that the weights were just read from `dir`'s weight files (`loadPretrained`). */
  markLoadedFrom(dir: string): void {
    this.hfSource = dir;
    this.baseMatchesSource = true;
  }

  /** The attached LoRA configuration, if any. */
  get loraConfig(): LoraConfig | undefined {
    return this.lora?.config;
  }

  /** LoRA weights by PEFT-style stable name (`model.layers.N.self_attn.q_proj.lora_A.weight`), in memory layout: A [in, r], B [r, out]. */
  get adapterParameters(): ReadonlyMap<string, tf.Variable> {
    return this.lora?.variables ?? new Map();
  }

  /**
   * Attaches LoRA adapters: A ~ PEFT's kaiming-uniform(a=√5), i.e. U(±1/√in), B = 0 (so the model is
   * unchanged until trained), unless `values` gives them (same names as `adapterParameters`,
   * memory layout). The base weights then stay frozen: only the adapters are trainable.
   */
  addAdapters(
    config: LoraConfig,
    options: { seed?: number; values?: ReadonlyMap<string, tf.Tensor> } = {},
  ): void {
    if (this.disposed) throw new ModelInputError('the model was disposed');
    if (this.lora !== undefined)
      throw new ModelInputError('the model already has LoRA adapters; merge or remove them first');
    if (!Number.isInteger(config.r) || config.r < 1)
      throw new ModelInputError(`lora r must be a positive integer, got ${config.r}`);
    if (!(config.alpha > 0))
      throw new ModelInputError(`lora alpha must be > 0, got ${config.alpha}`);
    if (!(config.dropout >= 0 && config.dropout < 1))
      throw new ModelInputError(`lora dropout must be in [0, 1), got ${config.dropout}`);
    if (config.targetModules.length === 0) throw new ModelInputError('lora targetModules is empty');
    for (const t of config.targetModules)
      if (!(LORA_TARGETS as readonly string[]).includes(t))
        throw new ModelInputError(
          `lora target module ${JSON.stringify(t)} is not one of ${LORA_TARGETS.join(', ')}`,
        );
    const rng = new Rng(options.seed ?? 0);
    const variables = new Map<string, tf.Variable>();
    try {
      this.layers.forEach((layer, index) => {
        for (const target of config.targetModules) {
          const weight = this.variables.get(`${projectionPrefix(index, target)}.weight`)!;
          const [inDim, outDim] = weight.shape as [number, number];
          const names = adapterNames(index, target);
          const given = [options.values?.get(names.a), options.values?.get(names.b)];
          const shapes = [
            [inDim, config.r],
            [config.r, outDim],
          ];
          const init = given.map((value, k) => {
            if (value !== undefined) {
              if (value.shape.join(',') !== shapes[k]!.join(','))
                throw new ModelInputError(
                  `${k === 0 ? names.a : names.b} has shape [${value.shape.join(', ')}], expected [${shapes[k]!.join(', ')}]`,
                );
              return tf.clone(value);
            }
            if (options.values !== undefined)
              throw new ModelInputError(`adapter weight ${k === 0 ? names.a : names.b} is missing`);
            if (k === 1) return tf.zeros(shapes[1]!);
            const bound = 1 / Math.sqrt(inDim);
            const data = new Float32Array(inDim * config.r);
            for (let i = 0; i < data.length; i++) data[i] = (rng.next() * 2 - 1) * bound;
            return tf.tensor(data, shapes[0]!);
          });
          const a = tf.variable(init[0]!, true, `${this.prefix}/${names.a}`);
          const b = tf.variable(init[1]!, true, `${this.prefix}/${names.b}`);
          tf.dispose(init);
          variables.set(names.a, a);
          variables.set(names.b, b);
          layer.adapters[target] = { a, b };
        }
      });
    } catch (error) {
      for (const layer of this.layers) layer.adapters = {};
      tf.dispose([...variables.values()]);
      throw error;
    }
    const unused = [...(options.values?.keys() ?? [])].filter((name) => !variables.has(name));
    if (unused.length > 0) {
      for (const layer of this.layers) layer.adapters = {};
      tf.dispose([...variables.values()]);
      throw new ModelInputError(
        `adapter weights ${unused.slice(0, 3).join(', ')} match no target module of the config`,
      );
    }
    for (const v of this.variables.values()) (v as { trainable: boolean }).trainable = false;
    const scale =
      config.useRslora === true ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
    this.lora = {
      config: { ...config, targetModules: [...config.targetModules] },
      scale,
      variables,
    };
  }

  /** Folds the adapters into the base weights (W += scale·A·B) and removes them; the model is then a plain, fully trainable one. */
  mergeAdapters(): void {
    const lora = this.lora;
    if (lora === undefined) return;
    this.baseMatchesSource = false;
    this.layers.forEach((layer, index) => {
      for (const [target, adapter] of Object.entries(layer.adapters) as [LoraTarget, Adapter][]) {
        const weight = this.variables.get(`${projectionPrefix(index, target)}.weight`)!;
        weight.assign(
          tf.tidy(() => tf.add(weight, tf.mul(tf.matMul(adapter.a, adapter.b), lora.scale))),
        );
      }
    });
    this.removeAdapters();
  }

  /** A parameter with its adapter folded in (W + scale·A·B, a new tensor the caller disposes), or the variable itself when it has none. */
  mergedParameter(name: string): tf.Tensor {
    const weight = this.variables.get(name);
    if (weight === undefined) throw new ModelInputError(`no parameter ${name}`);
    const match = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+_proj)\.weight$/.exec(name);
    const adapter =
      match === null ? undefined : this.layers[Number(match[1])]?.adapters[match[2] as LoraTarget];
    if (adapter === undefined || this.lora === undefined) return weight;
    const scale = this.lora.scale;
    return tf.tidy(() => tf.add(weight, tf.mul(tf.matMul(adapter.a, adapter.b), scale)));
  }

  /** Drops the adapters (the base weights are unchanged) and makes the base trainable again (if the model is). */
  removeAdapters(): void {
    if (this.lora === undefined) return;
    for (const layer of this.layers) layer.adapters = {};
    tf.dispose([...this.lora.variables.values()]);
    this.lora = undefined;
    for (const v of this.variables.values())
      (v as { trainable: boolean }).trainable = this.trainable;
  }

  /** `fn` on the base model: adapters switched off for its duration (GRPO's reference policy without a copy of the weights). */
  withoutAdapters<T>(fn: () => T): T {
    const before = this.adaptersEnabled;
    this.adaptersEnabled = false;
    try {
      return fn();
    } finally {
      this.adaptersEnabled = before;
    }
  }

  /**
   * Restarts LoRA dropout's masks from `seed`: each dropout draws its mask from (seed, draw number),
   * so a trainer that seeds every step (e.g. from its seed and the step) gets the same masks after a
   * resume as in an uninterrupted run.
   */
  seedAdapterDropout(seed: number): void {
    this.dropoutSeed = seed;
    this.dropoutDraws = 0;
  }

  /** x·W (+ scale·dropout(x)·A·B when the projection has an enabled adapter). */
  private project(x: tf.Tensor2D, weight: tf.Variable, adapter: Adapter | undefined): tf.Tensor2D {
    const base = linear(x, weight as tf.Tensor2D);
    if (adapter === undefined || !this.adaptersEnabled || this.lora === undefined) return base;
    const p = this.lora.config.dropout;
    const input =
      this.adapterDropout && p > 0
        ? tf.dropout(x, p, undefined, `${this.dropoutSeed}:${this.dropoutDraws++}`)
        : x;
    const low = linear(
      linear(input as tf.Tensor2D, adapter.a as tf.Tensor2D),
      adapter.b as tf.Tensor2D,
    );
    return tf.add(base, tf.mul(low, this.lora.scale));
  }

  /** Every parameter by its stable name, in `specs` order. */
  get parameters(): ReadonlyMap<string, tf.Variable> {
    return this.variables;
  }

  numParameters(): number {
    let n = 0;
    for (const spec of this.specs) n += sizeOf(spec.shape);
    return n;
  }

  /** FLOPs of one forward pass per token: 2 per matmul weight (the LM head included) + 4·layers·context·hidden for attention scores and values. */
  forwardFlopsPerToken(contextLength = this.config.maxPositionEmbeddings): number {
    let matmulParams = 0;
    for (const spec of this.specs)
      if (spec.shape.length === 2 && spec.name !== 'model.embed_tokens.weight')
        matmulParams += sizeOf(spec.shape);
    if (this.config.tieWordEmbeddings)
      matmulParams += this.config.vocabSize * this.config.hiddenSize;
    return (
      2 * matmulParams + 4 * this.config.numHiddenLayers * contextLength * this.config.hiddenSize
    );
  }

  /** Training FLOPs per token (forward + backward ≈ 3 × forward), at the given context length. */
  flopsPerToken(contextLength = this.config.maxPositionEmbeddings): number {
    return 3 * this.forwardFlopsPerToken(contextLength);
  }

  private checkIds(inputIds: tf.Tensor2D): void {
    if (this.disposed) throw new ModelInputError('the model was disposed');
    if (inputIds.rank !== 2)
      throw new ModelInputError(
        `inputIds must be [batch, time], got shape [${inputIds.shape.join(', ')}]`,
      );
    if (inputIds.shape[1] > this.config.maxPositionEmbeddings) {
      throw new ModelInputError(
        `sequence length ${inputIds.shape[1]} exceeds maxPositionEmbeddings ${this.config.maxPositionEmbeddings}; truncate the batch or raise the config`,
      );
    }
  }

  /**
   * Positions from a key mask: count of real tokens of the same segment before each one (so left
   * padding does not shift positions, and each packed example starts at 0; see `attentionBias`).
   */
  static positionsFromMask(mask: ArrayLike<number>, batch: number, time: number): Int32Array {
    const positions = new Int32Array(batch * time);
    for (let b = 0; b < batch; b++) {
      let count = 0;
      let segment = 0;
      for (let t = 0; t < time; t++) {
        // Padding keeps position 0; it is masked as a key and its own outputs are never used.
        const value = mask[b * time + t]!;
        if (value <= 0) continue;
        if (value !== segment) {
          if (segment > 0) count = 0;
          segment = value;
        }
        positions[b * time + t] = count++;
      }
    }
    return positions;
  }

  /**
   * Final hidden states [B·T, hidden] for ids [B, T]. Keys are visible when causal and unmasked.
   * With `cache`, k/v of earlier steps are prepended and the cache is updated with kept tensors.
   */
  private hidden(
    ids: tf.Tensor2D,
    positions: Int32Array,
    bias: tf.Tensor4D,
    cache?: KvCache[],
  ): tf.Tensor2D {
    const [b, t] = ids.shape;
    const c = this.config;
    const hd = this.headDim;
    const n = b * t;
    let maxPosition = 0;
    for (const p of positions) if (p > maxPosition) maxPosition = p;
    this.ensureRope(maxPosition + 1);
    const posTensor = tf.tensor1d(positions, 'int32');
    const rope = (x4: tf.Tensor4D): tf.Tensor4D =>
      applyRopeAt(x4, posTensor, this.ropeCos, this.ropeSin, this.rotate);
    let x = embeddingLookup(this.embed as tf.Tensor2D, tf.reshape(ids, [n]) as tf.Tensor1D);
    this.layers.forEach((layer, index) => {
      const h = rmsNorm(x, layer.inputNorm as tf.Tensor1D, c.rmsNormEps) as tf.Tensor2D;
      const ad = layer.adapters;
      let q = this.project(h, layer.q, ad.q_proj);
      let k = this.project(h, layer.k, ad.k_proj);
      let v = this.project(h, layer.v, ad.v_proj);
      if (layer.qBias !== undefined) q = tf.add(q, layer.qBias);
      if (layer.kBias !== undefined) k = tf.add(k, layer.kBias);
      if (layer.vBias !== undefined) v = tf.add(v, layer.vBias);
      // Qwen3: RMSNorm over each head's vector, before the rotary embedding.
      if (layer.qNorm !== undefined)
        q = rmsNorm(
          tf.reshape(q, [n * c.numAttentionHeads, hd]),
          layer.qNorm as tf.Tensor1D,
          c.rmsNormEps,
        ) as tf.Tensor2D;
      if (layer.kNorm !== undefined)
        k = rmsNorm(
          tf.reshape(k, [n * c.numKeyValueHeads, hd]),
          layer.kNorm as tf.Tensor1D,
          c.rmsNormEps,
        ) as tf.Tensor2D;
      const q4 = tf.transpose(
        rope(tf.reshape(q, [b, t, c.numAttentionHeads, hd])),
        [0, 2, 1, 3],
      ) as tf.Tensor4D;
      let k4 = tf.transpose(
        rope(tf.reshape(k, [b, t, c.numKeyValueHeads, hd])),
        [0, 2, 1, 3],
      ) as tf.Tensor4D;
      let v4 = tf.transpose(
        tf.reshape(v, [b, t, c.numKeyValueHeads, hd]),
        [0, 2, 1, 3],
      ) as tf.Tensor4D;
      if (cache !== undefined) {
        const entry = cache[index]!;
        if (entry.k !== undefined && entry.v !== undefined) {
          k4 = tf.concat([entry.k, k4], 2);
          v4 = tf.concat([entry.v, v4], 2);
        }
        entry.k = tf.keep(k4);
        entry.v = tf.keep(v4);
      }
      const attn = groupedQueryAttention(q4, k4, v4, bias, this.attention);
      const merged = tf.reshape(tf.transpose(attn, [0, 2, 1, 3]), [
        n,
        c.numAttentionHeads * hd,
      ]) as tf.Tensor2D;
      x = tf.add(x, this.project(merged, layer.o, ad.o_proj));
      const h2 = rmsNorm(x, layer.postNorm as tf.Tensor1D, c.rmsNormEps) as tf.Tensor2D;
      if (ad.gate_proj === undefined && ad.up_proj === undefined && ad.down_proj === undefined) {
        x = tf.add(
          x,
          swiglu(h2, layer.gate as tf.Tensor2D, layer.up as tf.Tensor2D, layer.down as tf.Tensor2D),
        );
      } else {
        const gate = this.project(h2, layer.gate, ad.gate_proj);
        const up = this.project(h2, layer.up, ad.up_proj);
        x = tf.add(
          x,
          this.project(
            tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D,
            layer.down,
            ad.down_proj,
          ),
        );
      }
    });
    return rmsNorm(x, this.finalNorm as tf.Tensor1D, c.rmsNormEps) as tf.Tensor2D;
  }

  private head(hidden: tf.Tensor2D, inferenceWeight?: tf.Tensor2D): tf.Tensor2D {
    if (inferenceWeight !== undefined) return tf.matMul(hidden, inferenceWeight);
    return this.lmHead !== undefined
      ? linear(hidden, this.lmHead as tf.Tensor2D)
      : linearTransposed(hidden, this.embed as tf.Tensor2D);
  }

  private maskValues(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D): Float32Array {
    const [b, t] = inputIds.shape;
    if (attentionMask === undefined) return new Float32Array(b * t).fill(1);
    if (attentionMask.shape[0] !== b || attentionMask.shape[1] !== t) {
      throw new ModelInputError(
        `attentionMask shape [${attentionMask.shape.join(', ')}] differs from inputIds [${b}, ${t}]`,
      );
    }
    return Float32Array.from(attentionMask.dataSync());
  }

  /** Logits [B, T, vocab] of a (right- or left-padded) batch; differentiable. */
  logits(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Tensor3D {
    this.checkIds(inputIds);
    const [b, t] = inputIds.shape;
    const mask = this.maskValues(inputIds, attentionMask);
    return tf.tidy(() => {
      const bias = attentionBias(mask, b, t, t);
      const hidden = this.hidden(inputIds, CausalLM.positionsFromMask(mask, b, t), bias);
      return tf.reshape(this.head(hidden), [b, t, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  /**
   * logProbs[b, t] = log p(ids[b, t+1] | ids[b, ≤t]) with logits / temperature, shape [B, T-1];
   * 0 where the target token is padding (mask 0). Differentiable. `entropy` (same shape) is the
   * entropy of each next-token distribution.
   */
  tokenLogProbs(
    inputIds: tf.Tensor2D,
    attentionMask: tf.Tensor2D,
    options: TokenLogProbsOptions = {},
  ): { logProbs: tf.Tensor2D; entropy?: tf.Tensor2D } {
    this.checkIds(inputIds);
    const temperature = options.temperature ?? 1;
    if (!(temperature > 0))
      throw new ModelInputError(`temperature must be > 0, got ${temperature}`);
    const [b, t] = inputIds.shape;
    if (t < 2) throw new ModelInputError('tokenLogProbs needs sequences of at least 2 tokens');
    const mask = this.maskValues(inputIds, attentionMask);
    const limit = options.vocabLimit ?? this.config.vocabSize;
    if (!Number.isInteger(limit) || limit < 1 || limit > this.config.vocabSize)
      throw new ModelInputError(
        `vocabLimit must be an integer in [1, ${this.config.vocabSize}], got ${options.vocabLimit}`,
      );
    const restrict = (z: tf.Tensor2D): tf.Tensor2D =>
      limit === this.config.vocabSize ? z : tf.slice(z, [0, 0], [z.shape[0], limit]);
    let wanted: ArrayLike<number> | undefined;
    if (options.targetMask !== undefined) {
      const tm = options.targetMask;
      if (tm.shape[0] !== b || tm.shape[1] !== t - 1) {
        throw new ModelInputError(
          `targetMask shape [${tm.shape.join(', ')}] must be [${b}, ${t - 1}] (one entry per predicted token)`,
        );
      }
      wanted = tm.dataSync();
    }
    const ids = inputIds.dataSync();
    const n = b * (t - 1);
    const vocab = this.config.vocabSize;
    const targets = new Int32Array(n);
    const targetMask = new Float32Array(n);
    // Rows of the final hidden state [B·T, d] that predict a wanted, real (non-padding) token.
    const hiddenRows: number[] = [];
    const outputRows: number[] = [];
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < t - 1; j++) {
        const target = ids[i * t + j + 1]!;
        if (target < 0 || target >= vocab)
          throw new ModelInputError(
            `token id ${target} at [${i}, ${j + 1}] is outside the vocabulary [0, ${vocab})`,
          );
        if (
          target >= limit &&
          mask[i * t + j + 1]! > 0 &&
          (wanted === undefined || wanted[i * (t - 1) + j]! > 0)
        )
          throw new ModelInputError(
            `token id ${target} at [${i}, ${j + 1}] is outside vocabLimit ${limit}`,
          );
        const o = i * (t - 1) + j;
        targets[o] = target;
        const keep = mask[i * t + j + 1]! > 0 && (wanted === undefined || wanted[o]! > 0);
        targetMask[o] = keep ? 1 : 0;
        if (keep) {
          hiddenRows.push(i * t + j);
          outputRows.push(o);
        }
      }
    }
    return tf.tidy(() => {
      const bias = attentionBias(mask, b, t, t);
      const hidden = this.hidden(inputIds, CausalLM.positionsFromMask(mask, b, t), bias);
      if (jsKernelsActive() && hiddenRows.length > 0) {
        // Only rows whose target counts go through the LM head and the softmax over the
        // vocabulary, the most expensive part per token (padding, prompts under a target mask).
        const selected = embeddingLookup(hidden, tf.tensor1d(hiddenRows, 'int32'));
        let z = restrict(this.head(selected));
        if (temperature !== 1) z = tf.div(z, temperature);
        const outIds = tf.tensor1d(outputRows, 'int32');
        const m = hiddenRows.length;
        const picked = pickedLogSoftmax(
          z,
          tf.tensor1d(
            outputRows.map((o) => targets[o]!),
            'int32',
          ),
        );
        const logProbs = tf.reshape(
          scatterRows(tf.reshape(picked, [m, 1]) as tf.Tensor2D, outIds, n),
          [b, t - 1],
        ) as tf.Tensor2D;
        if (options.entropy !== true) return { logProbs };
        const entropyRows = CausalLM.entropyOf(z);
        return {
          logProbs,
          entropy: tf.reshape(
            scatterRows(tf.reshape(entropyRows, [m, 1]) as tf.Tensor2D, outIds, n),
            [b, t - 1],
          ) as tf.Tensor2D,
        };
      }
      // Only positions 0..T-2 predict a token: drop the last one before the (large) LM head.
      const used = tf.reshape(tf.slice(tf.reshape(hidden, [b, t, -1]), [0, 0, 0], [b, t - 1, -1]), [
        n,
        -1,
      ]) as tf.Tensor2D;
      let z = restrict(this.head(used));
      if (temperature !== 1) z = tf.div(z, temperature);
      const maskTensor = tf.tensor1d(targetMask);
      const logProbs = tf.reshape(
        tf.mul(pickedLogSoftmax(z, tf.tensor1d(targets, 'int32')), maskTensor),
        [b, t - 1],
      ) as tf.Tensor2D;
      if (options.entropy !== true) return { logProbs };
      const entropy = tf.reshape(tf.mul(CausalLM.entropyOf(z), maskTensor), [
        b,
        t - 1,
      ]) as tf.Tensor2D;
      return { logProbs, entropy };
    });
  }

  /** Entropy of softmax(z) per row: lse(z) − Σ p·z (differentiable). */
  private static entropyOf(z: tf.Tensor2D): tf.Tensor1D {
    return tf.sub(logSumExpRows(z), tf.sum(tf.mul(tf.softmax(z), z), 1)) as tf.Tensor1D;
  }

  /** Throws ModelInputError for arguments `generate` rejects (also used by the worker pool before it splits a call). */
  checkGenerateArguments(prompts: readonly (readonly number[])[], options: GenerateOptions): void {
    if (this.disposed) throw new ModelInputError('the model was disposed');
    if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
      throw new ModelInputError(
        `maxNewTokens must be a non-negative integer, got ${options.maxNewTokens}`,
      );
    }
    const batchSize = options.batchSize ?? 16;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new ModelInputError(`batchSize must be a positive integer, got ${batchSize}`);
    prompts.forEach((p, i) => {
      if (p.length === 0)
        throw new ModelInputError(`prompt ${i} is empty; generation needs at least one token`);
      if (p.length >= this.config.maxPositionEmbeddings) {
        throw new ModelInputError(
          `prompt ${i} has ${p.length} tokens, the context window is ${this.config.maxPositionEmbeddings}`,
        );
      }
      for (const id of p) {
        if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize)
          throw new ModelInputError(`prompt ${i} holds token id ${id} outside the vocabulary`);
      }
    });
    if (options.seeds !== undefined && options.seeds.length !== prompts.length) {
      throw new ModelInputError(
        `seeds has ${options.seeds.length} entries for ${prompts.length} prompts`,
      );
    }
    const streamOffset = options.streamOffset ?? 0;
    if (!Number.isInteger(streamOffset) || streamOffset < 0)
      throw new ModelInputError(`streamOffset must be a non-negative integer, got ${streamOffset}`);
    if (options.engine !== undefined && !['onnx', 'tfjs', 'auto'].includes(options.engine))
      throw new ModelInputError(
        `engine must be 'onnx', 'tfjs' or 'auto', got ${JSON.stringify(options.engine)}`,
      );
    const threads = options.onnxThreads ?? 1;
    if (!Number.isInteger(threads) || threads < 1)
      throw new ModelInputError(`onnxThreads must be a positive integer, got ${threads}`);
    const compactAfter = options.compactAfter ?? COMPACT_AFTER;
    if (!Number.isInteger(compactAfter) || compactAfter < 0)
      throw new ModelInputError(
        `compactAfter must be a non-negative integer (0: never drop finished rows), got ${compactAfter}`,
      );
    if (options.onnxWeights !== undefined && !ONNX_WEIGHTS_MODES.includes(options.onnxWeights))
      throw new ModelInputError(
        `onnxWeights must be 'auto', 'initializers' or 'inputs', got ${JSON.stringify(options.onnxWeights)}`,
      );
  }

  /** Batched sampling with a KV cache. Prompts are left-padded per batch; every prompt draws from its own seeded stream. */
  async generate(prompts: number[][], options: GenerateOptions): Promise<GenerationOutput[]> {
    this.checkGenerateArguments(prompts, options);
    const batchSize = options.batchSize ?? 16;
    const streamOffset = options.streamOffset ?? 0;
    const root = new Rng(options.seed ?? 0);
    if (options.seeds === undefined) for (let i = 0; i < streamOffset; i++) root.fork();
    const rngs =
      options.seeds !== undefined
        ? options.seeds.map((s) => new Rng(s).fork())
        : prompts.map(() => root.fork());
    const outputs: GenerationOutput[] = [];
    let produced = 0;
    const opened = await this.openOnnxEngine(options);
    const onnx = opened?.decoder;
    try {
      for (let start = 0; start < prompts.length; start += batchSize) {
        const chunk = prompts.slice(start, start + batchSize);
        const results = await this.generateBatch(
          chunk,
          rngs.slice(start, start + batchSize),
          options,
          (n) => {
            options.onProgress?.({ stage: 'generate', completed: produced + n });
          },
          onnx,
        );
        for (const r of results) produced += r.tokens.length;
        outputs.push(...results);
      }
    } finally {
      if (opened !== undefined) {
        opened.held.users--;
        // replaced meanwhile (the weights changed under another call): the last user frees it
        if (opened.held.users === 0 && this.onnxDecoder !== opened.held)
          void opened.decoder.release();
      }
    }
    return outputs;
  }

  /** Why this model cannot generate on the ONNX engine now (undefined when it can). */
  private onnxUnsupported(weightsAsInputs: boolean): string | undefined {
    if (this.lora !== undefined && this.adaptersEnabled)
      return 'active LoRA adapters are not in the ONNX decoder graph';
    const reason = onnxUnsupportedReason(this.config, weightsAsInputs ? 0 : this.numParameters());
    if (reason !== undefined) return reason;
    const status = onnxRuntimeStatus();
    return status.available ? undefined : status.reason;
  }

  /**
   * The ONNX engine's session for `options.engine` 'onnx'/'auto' (its user count raised), or
   * undefined for tfjs (asked for, or the fallback, reported in `lastGenerationEngine`). The
   * session is kept while the weights' buffers are unchanged, like the fused path's weights.
   */
  private async openOnnxEngine(
    options: GenerateOptions,
  ): Promise<{ decoder: OnnxDecoder; held: NonNullable<CausalLM['onnxDecoder']> } | undefined> {
    const requested = options.engine ?? 'tfjs';
    if (requested === 'tfjs') {
      this.lastGenerationEngine = { engine: 'tfjs' };
      return undefined;
    }
    const threads = options.onnxThreads ?? 1;
    const asInputs = onnxWeightsModeFor(this.numParameters() * 4, options.onnxWeights) === 'inputs';
    const reason = this.onnxUnsupported(asInputs);
    if (reason !== undefined) return this.fallBack(options, reason);
    const sources = [...this.variables.values()].map((v) => v.dataId);
    const readWeights = (): Map<string, Float32Array> => {
      const weights = new Map<string, Float32Array>();
      for (const [name, variable] of this.variables)
        weights.set(name, variable.dataSync() as Float32Array);
      return weights;
    };
    let held = this.onnxDecoder;
    let created = false;
    if (held === undefined || held.threads !== threads || held.asInputs !== asInputs) {
      this.releaseOnnxDecoder();
      held = {
        sources,
        threads,
        asInputs,
        decoder: OnnxDecoder.create(this.config, readWeights(), threads, asInputs),
        users: 0,
      };
      this.onnxDecoder = held;
      created = true;
    }
    held.users++;
    let decoder: OnnxDecoder;
    try {
      decoder = await held.decoder;
    } catch (error) {
      held.users--;
      if (this.onnxDecoder === held) this.onnxDecoder = undefined;
      // e.g. an onnxruntime build without a kernel the graph uses: the tfjs path still works
      const message = error instanceof Error ? error.message : String(error);
      return this.fallBack(
        options,
        `onnxruntime could not open the decoder graph: ${message.split('\n')[0]!.trim()}`,
      );
    }
    let buildMs = created ? decoder.buildMs : 0;
    if (held.sources.length !== sources.length || held.sources.some((id, i) => id !== sources[i])) {
      // The weights changed since the session was made (an optimizer step, copyFrom, a merge).
      held.sources = sources;
      if (decoder.weightsAsInputs) buildMs = decoder.updateWeights(readWeights());
      else {
        held.users--;
        if (this.onnxDecoder === held) this.releaseOnnxDecoder();
        else if (held.users === 0) void decoder.release();
        return this.openOnnxEngine(options);
      }
    }
    this.lastGenerationEngine = {
      engine: 'onnx',
      onnxBuildMs: buildMs,
      onnxWeights: asInputs ? 'inputs' : 'initializers',
      onnxThreads: threads,
    };
    return { decoder, held };
  }

  /** Records (and for engine 'onnx' logs, once per reason) why generation runs on tfjs instead. */
  private fallBack(options: GenerateOptions, reason: string): undefined {
    this.noteGenerationEngine({ engine: 'tfjs', fallbackReason: reason }, options);
    return undefined;
  }

  /**
   * Records the engine a generation of this model's weights ran on elsewhere (a worker thread's
   * copy): `lastGenerationEngine` is set, and a fallback from engine 'onnx' is logged on
   * `options.logger` once per reason, as an in-process call does.
   */
  noteGenerationEngine(
    report: GenerationEngineReport,
    options: Pick<GenerateOptions, 'engine' | 'logger'>,
  ): void {
    const reason = report.fallbackReason;
    if (reason !== undefined && options.engine === 'onnx' && !loggedFallbacks.has(reason)) {
      loggedFallbacks.add(reason);
      options.logger?.warn(`generation falls back from the onnx engine to tfjs: ${reason}`);
    }
    this.lastGenerationEngine = report;
  }

  /** Drops the ONNX session (its native memory is freed now, or when the generations using it end). */
  private releaseOnnxDecoder(): void {
    const held = this.onnxDecoder;
    this.onnxDecoder = undefined;
    if (held === undefined) return;
    const release = async (): Promise<void> => {
      const decoder = await held.decoder.catch(() => undefined);
      if (decoder !== undefined && held.users === 0) await decoder.release();
    };
    void release();
  }

  private async generateBatch(
    prompts: number[][],
    rngs: Rng[],
    options: GenerateOptions,
    onStep: (tokens: number) => void,
    onnx?: OnnxDecoder,
  ): Promise<GenerationOutput[]> {
    const batch = prompts.length;
    const promptLength = Math.max(...prompts.map((p) => p.length));
    const maxNew = Math.min(options.maxNewTokens, this.config.maxPositionEmbeddings - promptLength);
    const stop = new Set(options.stopTokens ?? []);
    const compactAfter = options.compactAfter ?? COMPACT_AFTER;
    const sampling = {
      temperature: options.temperature ?? 1,
      topK: options.topK,
      topP: options.topP,
    } as const;
    const outputs: GenerationOutput[] = prompts.map(() => ({
      tokens: [],
      logProbs: [],
      finishReason: 'length',
    }));
    const finished = new Array<boolean>(batch).fill(false);
    if (maxNew <= 0) return outputs;

    // Left-pad so every row's last prompt token sits at the same step; masked keys and mask-derived positions undo the padding.
    const idsData = new Int32Array(batch * promptLength);
    const keyMask: number[][] = prompts.map((p) => {
      const pad = promptLength - p.length;
      return [...new Array<number>(pad).fill(0), ...new Array<number>(p.length).fill(1)];
    });
    prompts.forEach((p, i) => idsData.set(p, i * promptLength + promptLength - p.length));
    const lengths = prompts.map((p) => p.length);
    const cache: KvCache[] = this.layers.map(() => ({ k: undefined, v: undefined }));
    const vocab = this.config.vocabSize;
    const sampleVocab = Math.min(vocab, options.vocabLimit ?? vocab);
    if (!(sampleVocab >= 1))
      throw new ModelInputError(`vocabLimit must be at least 1, got ${options.vocabLimit}`);
    // The output projection as one [hidden, vocab] tensor for the whole generation: a tied embedding
    // is transposed once instead of every step, and XNNPACK keeps its packed weights between steps.
    const onnxRun = onnx?.begin(batch, promptLength + maxNew, {
      temperature: sampling.temperature,
      vocabLimit: sampleVocab,
    });
    const headWeight =
      onnxRun !== undefined
        ? undefined
        : this.lmHead !== undefined
          ? (this.lmHead as tf.Tensor2D)
          : tf.tidy(() => transposeLast2(this.embed as tf.Tensor2D));
    const fused = onnxRun === undefined ? this.fusedDecodeWeights(options) : undefined;
    try {
      // the onnx engine also returns sampleToken's exp weights (computed in its graph)
      let samplingWeights: Float32Array | undefined;
      let samplingMax: Float32Array | undefined;
      let samplingTotal: Float64Array | undefined;
      let logits: Float32Array;
      if (onnxRun !== undefined)
        ({ logits, samplingWeights, samplingMax, samplingTotal } = await onnxRun.prefill(
          idsData,
          promptLength,
          keyMask,
          CausalLM.positionsFromMask(keyMask.flat(), batch, promptLength),
          this.ropeArrays(promptLength),
        ));
      else
        logits = this.decodeStep(
          idsData,
          batch,
          promptLength,
          keyMask,
          lengths,
          cache,
          true,
          headWeight!,
        );
      // The fused path needs its cache to fit (head dim a multiple of 4, under 2 GiB); else the
      // reference path goes on from the prefill's cache.
      const attention =
        fused !== undefined &&
        maxNew > 1 &&
        DecodeAttention.supports({
          layers: this.layers.length,
          batch,
          heads: this.config.numAttentionHeads,
          kvHeads: this.config.numKeyValueHeads,
          headDim: this.headDim,
          capacity: promptLength + maxNew,
        })
          ? this.preallocateCache(cache, promptLength + maxNew)
          : undefined;
      let produced = 0;
      // The rows the batch holds, in its order (row j of the logits is prompt active[j]): the
      // rows not finished at the last compaction (every row on the reference path).
      let active = prompts.map((_, i) => i);
      let finishedSinceCompaction = 0;
      for (let step = 0; step < maxNew; step++) {
        let next = new Int32Array(active.length);
        for (let j = 0; j < active.length; j++) {
          const i = active[j]!;
          if (finished[i]) continue;
          const { token, logProb } = sampleToken(
            logits,
            j * vocab,
            sampleVocab,
            sampling,
            rngs[i]!,
            samplingWeights === undefined
              ? undefined
              : {
                  weights: samplingWeights,
                  offset: j * sampleVocab,
                  max: samplingMax![j]!,
                  total: samplingTotal![j]!,
                },
          );
          outputs[i]!.tokens.push(token);
          outputs[i]!.logProbs.push(logProb);
          next[j] = token;
          produced++;
          if (stop.has(token)) {
            finished[i] = true;
            finishedSinceCompaction++;
            outputs[i]!.finishReason = 'stop';
          }
        }
        onStep(produced);
        if (finished.every(Boolean) || step === maxNew - 1) break;
        for (let i = 0; i < batch; i++) keyMask[i]!.push(finished[i] ? 0 : 1);
        // The onnx engine and the fused path drop finished rows from their caches (the
        // reference path's cache is tfjs tensors and keeps every row).
        const compacting = onnxRun ?? (fused !== undefined ? attention : undefined);
        if (
          compacting !== undefined &&
          compactAfter > 0 &&
          finishedSinceCompaction >= compactAfter
        ) {
          const keep = compactionOrder(active.map((i) => !finished[i]));
          compacting.compact(keep);
          next = Int32Array.from(keep, (j) => next[j]!);
          active = keep.map((j) => active[j]!);
          finishedSinceCompaction = 0;
        }
        const positions = Int32Array.from(active, (i) => lengths[i]! + step);
        if (onnxRun !== undefined) {
          ({ logits, samplingWeights, samplingMax, samplingTotal } = await onnxRun.step(
            next,
            active.map((i) => keyMask[i]!),
            positions,
            this.ropeArrays(promptLength + step + 1),
          ));
          continue;
        }
        logits =
          fused !== undefined && attention !== undefined
            ? this.fusedDecodeStep(
                next,
                active.map((i) => keyMask[i]!),
                positions,
                attention,
                fused,
                headWeight!,
              )
            : this.decodeStep(
                next,
                batch,
                1,
                keyMask,
                lengths.map((l) => l + step),
                cache,
                false,
                headWeight!,
              );
        // Let timers and I/O run between steps of a long generation.
        if (step % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
      }
      return outputs;
    } finally {
      for (const entry of cache) {
        entry.k?.dispose();
        entry.v?.dispose();
      }
      if (headWeight !== undefined && headWeight !== this.lmHead) headWeight.dispose();
    }
  }

  /** The rotary tables as arrays, covering positions below `length`. */
  private ropeArrays(length: number): { cos: Float32Array; sin: Float32Array } {
    this.ensureRope(length);
    return this.ropeValues;
  }

  /**
   * The concatenated projections of the fused decode path, or undefined where it does not apply
   * (asked for 'reference', a backend without the JS kernels, Qwen3's per-head q/k norms, active
   * LoRA adapters). Concatenating costs one copy of the layer weights per `generate` call.
   */
  private fusedDecodeWeights(options: GenerateOptions): DecodeWeights[] | undefined {
    if (options.decode === 'reference' || !jsKernelsActive()) return undefined;
    if (this.layers.some((l) => l.qNorm !== undefined || l.kNorm !== undefined)) return undefined;
    if (this.lora !== undefined && this.adaptersEnabled) return undefined;
    // Reused while the weights are unchanged: Variable.assign (optimizer steps, copyFrom, merges)
    // gives a variable a new buffer, so the buffers identify the values.
    const sources = this.layers.flatMap((l) =>
      [l.q, l.k, l.v, l.gate, l.up, l.qBias, l.kBias, l.vBias].map((v) => v?.dataId),
    );
    const cached = this.fusedWeights;
    if (cached !== undefined && cached.sources.every((id, i) => id === sources[i]))
      return cached.weights;
    this.disposeFusedWeights();
    let floats = 0;
    for (const l of this.layers) floats += l.q.size + l.k.size + l.v.size + l.gate.size + l.up.size;
    const concatenate = floats <= FUSED_WEIGHTS_MAX_FLOATS;
    const weights = this.layers.map((l) =>
      tf.tidy(() => ({
        qkv: concatenate ? (tf.concat([l.q, l.k, l.v], 1) as tf.Tensor2D) : undefined,
        qkvBias:
          l.qBias !== undefined && l.kBias !== undefined && l.vBias !== undefined
            ? (tf.concat([l.qBias, l.kBias, l.vBias]) as tf.Tensor1D)
            : undefined,
        gateUp: concatenate ? (tf.concat([l.gate, l.up], 1) as tf.Tensor2D) : undefined,
      })),
    );
    this.fusedWeights = { sources, weights };
    return weights;
  }

  /**
   * Frees the fused decode path's concatenated weights (a copy of the q/k/v and gate/up
   * projections kept between `generate` calls) and the onnx engine's session (another copy of the
   * weights, in onnxruntime); the next `generate` rebuilds them. Trainers call it when they are
   * disposed, so a model they generated with holds no copy afterwards.
   */
  releaseDecodeCache(): void {
    this.disposeFusedWeights();
    this.releaseOnnxDecoder();
  }

  private disposeFusedWeights(): void {
    for (const w of this.fusedWeights?.weights ?? [])
      for (const t of [w.qkv, w.qkvBias, w.gateUp]) t?.dispose();
    this.fusedWeights = undefined;
  }

  /** The fused path's KV cache: the prefill's k/v [B, K, T, hd] copied into slots 0..T-1 of one of `capacity` slots per row (the tensors are disposed). */
  private preallocateCache(cache: KvCache[], capacity: number): DecodeAttention {
    const c = this.config;
    const first = cache[0]!.k!;
    const attention = new DecodeAttention({
      layers: cache.length,
      batch: first.shape[0],
      heads: c.numAttentionHeads,
      kvHeads: c.numKeyValueHeads,
      headDim: this.headDim,
      capacity,
    });
    cache.forEach((entry, layer) => {
      attention.fill(
        layer,
        entry.k!.dataSync() as Float32Array,
        entry.v!.dataSync() as Float32Array,
        entry.k!.shape[2],
      );
      entry.k!.dispose();
      entry.v!.dispose();
      entry.k = undefined;
      entry.v = undefined;
    });
    return attention;
  }

  /** One token per row through the fused decode path (see `GenerateOptions.decode`); returns logits [B·vocab]. */
  private fusedDecodeStep(
    ids: Int32Array,
    keyMask: number[][],
    positions: Int32Array,
    attention: DecodeAttention,
    weights: DecodeWeights[],
    headWeight: tf.Tensor2D,
  ): Float32Array {
    const batch = ids.length;
    const keys = keyMask[0]!.length;
    const c = this.config;
    let maxPosition = 0;
    for (const p of positions) if (p > maxPosition) maxPosition = p;
    this.ensureRope(maxPosition + 1);
    const maskData = new Float32Array(batch * keys);
    keyMask.forEach((row, i) => maskData.set(row, i * keys));
    const scale = 1 / Math.sqrt(this.headDim);
    const out = tf.tidy(() => {
      let x = embeddingLookup(this.embed as tf.Tensor2D, tf.tensor1d(ids, 'int32'));
      this.layers.forEach((layer, index) => {
        const w = weights[index]!;
        const h = rmsNorm(x, layer.inputNorm as tf.Tensor1D, c.rmsNormEps) as tf.Tensor2D;
        let qkv =
          w.qkv !== undefined
            ? tf.matMul(h, w.qkv)
            : tf.concat([tf.matMul(h, layer.q), tf.matMul(h, layer.k), tf.matMul(h, layer.v)], 1);
        if (w.qkvBias !== undefined) qkv = tf.add(qkv, w.qkvBias);
        const attn = attention.step(
          index,
          qkv.dataSync() as Float32Array,
          positions,
          this.ropeValues.cos,
          this.ropeValues.sin,
          maskData,
          keys - 1,
          scale,
        );
        const merged = tf.tensor2d(attn, [batch, c.numAttentionHeads * this.headDim]);
        x = tf.add(x, tf.matMul(merged, layer.o as tf.Tensor2D));
        const h2 = rmsNorm(x, layer.postNorm as tf.Tensor1D, c.rmsNormEps) as tf.Tensor2D;
        const gu =
          w.gateUp !== undefined
            ? tf.matMul(h2, w.gateUp)
            : tf.concat([tf.matMul(h2, layer.gate), tf.matMul(h2, layer.up)], 1);
        const act = tf.engine().runKernel('CrSwiGluAct', { gu }) as tf.Tensor2D;
        x = tf.add(x, tf.matMul(act, layer.down as tf.Tensor2D));
      });
      return this.head(
        rmsNorm(x, this.finalNorm as tf.Tensor1D, c.rmsNormEps) as tf.Tensor2D,
        headWeight,
      );
    });
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  }

  /** Runs `time` new tokens per row through the model with the cache; returns last-position logits [B·vocab]. */
  private decodeStep(
    ids: Int32Array,
    batch: number,
    time: number,
    keyMask: number[][],
    lengthsBefore: number[],
    cache: KvCache[],
    prefill: boolean,
    headWeight: tf.Tensor2D,
  ): Float32Array {
    const keyLength = keyMask[0]!.length;
    const positions = new Int32Array(batch * time);
    if (prefill) {
      const flatMask = keyMask.flat();
      positions.set(CausalLM.positionsFromMask(flatMask, batch, time));
    } else {
      for (let i = 0; i < batch; i++) positions[i] = lengthsBefore[i]!;
    }
    const old = cache.map((e) => [e.k, e.v]);
    const out = tf.tidy(() => {
      const bias = attentionBias(keyMask.flat(), batch, time, keyLength);
      const input = tf.tensor2d(ids, [batch, time], 'int32');
      const hidden = this.hidden(input, positions, bias, cache);
      const last =
        time === 1
          ? hidden
          : tf.reshape(
              tf.slice(tf.reshape(hidden, [batch, time, -1]), [0, time - 1, 0], [batch, 1, -1]),
              [batch, -1],
            );
      return this.head(last as tf.Tensor2D, headWeight);
    });
    for (const [k, v] of old) {
      k?.dispose();
      v?.dispose();
    }
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  }

  /** A copy with its own variables; frozen (no trainable variables) unless `trainable: true`. */
  clone(options: { trainable?: boolean } = {}): CausalLM {
    const copy = new CausalLM(this.config, new Map(this.variables), options.trainable ?? false);
    copy.hfSource = this.hfSource;
    copy.baseMatchesSource = this.baseMatchesSource;
    copy.attention = this.attention;
    return copy;
  }

  /** Copies every parameter value from `other` (same config), LoRA adapters included, e.g. to refresh a reference model or resume. */
  copyFrom(other: CausalLM): void {
    if (other.lora !== undefined) {
      if (this.lora === undefined)
        this.addAdapters(other.lora.config, { values: other.lora.variables });
      else {
        for (const [name, variable] of this.lora.variables) {
          const source = other.lora.variables.get(name);
          if (source === undefined || source.shape.join(',') !== variable.shape.join(','))
            throw new ModelInputError(`cannot copy adapter ${name}: the adapters differ`);
          variable.assign(source);
        }
        if (other.lora.variables.size !== this.lora.variables.size)
          throw new ModelInputError('cannot copy adapters: the adapters differ');
      }
    } else if (this.lora !== undefined) {
      throw new ModelInputError('cannot copy a model without adapters into one with adapters');
    }
    for (const [name, variable] of this.variables) {
      const source = other.variables.get(name);
      if (source === undefined || source.shape.join(',') !== variable.shape.join(',')) {
        throw new ModelInputError(
          `cannot copy parameter ${name}: the models have different configs`,
        );
      }
      variable.assign(source);
    }
    // The base now holds `other`'s values. The layout source stays this model's own (a resumed
    // run copies from a checkpoint that may be rotated away later); the base matches its files
    // only when `other`'s matched the same ones.
    this.baseMatchesSource =
      other.baseMatchesSource && (this.hfSource === undefined || other.hfSource === this.hfSource);
    this.hfSource ??= other.hfSource;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.removeAdapters();
    this.disposeFusedWeights();
    this.releaseOnnxDecoder();
    for (const v of this.variables.values()) v.dispose();
    this.ropeCos.dispose();
    this.ropeSin.dispose();
    this.rotate.dispose();
  }
}
