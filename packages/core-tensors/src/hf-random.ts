import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HfDtype } from './hf-model.js';
import { Rng } from '@codereasoner/common';
import { storedBytes, writeSafetensorsStreaming, type StreamedTensor } from './safetensors.js';
import { Tokenizer } from './tokenizer.js';

/** Shape and layout of a random checkpoint in a Hugging Face family's exact layout. */
export interface RandomHfCheckpointOptions {
  family: 'llama' | 'qwen2' | 'qwen3';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  /** Written as `head_dim` (Qwen3 always writes one; default hiddenSize / heads). */
  headDim?: number;
  maxPositionEmbeddings?: number;
  tieWordEmbeddings: boolean;
  /** Tied, and `lm_head.weight` stored all the same (as some exports do). */
  storeTiedHead?: boolean;
  dtype: HfDtype;
  /** Shard like `save_pretrained(max_shard_size=…)`, with model.safetensors.index.json; default one file. */
  maxShardBytes?: number;
  /** Llama 3 `rope_scaling` (llama family only). */
  ropeScaling?: {
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };
  ropeTheta?: number;
  seed?: number;
  /** Standard deviation of the projection weights (default 1/√fan-in, so logits are well spread). */
  std?: number;
  /** Written as tokenizer.json; default: a byte-level BPE trained on a few lines of Python (vocabulary below vocabSize, i.e. padded). */
  tokenizer?: Tokenizer;
  /**
   * A directory of a real model's tokenizer files (tokenizer.json, tokenizer_config.json with its
   * chat template, ...), copied verbatim instead of `tokenizer`: a tiny random model that speaks
   * Llama-3's or Qwen3's own chat format. `eosTokenIds` then defaults to its `eos_token`.
   */
  tokenizerDir?: string;
  /** `eos_token_id` of generation_config.json (a list, as Llama 3 and Qwen ship it); default the tokenizer's end-of-text and im_end. */
  eosTokenIds?: number[];
}

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/** A small tokenizer for random checkpoints: the core byte-level BPE on a few lines of Python. */
export function smallPythonTokenizer(vocabSize = 320): Tokenizer {
  return Tokenizer.train(
    [
      'def f(x):\n    return x + 1\n',
      'assert f(3) == 4\n',
      'for i in range(10):\n    print(i * 2)\n',
      'class A:\n    def __init__(self, n):\n        self.n = n\n',
      "s = 'hello world'\nprint(s.upper())\n",
    ],
    { vocabSize },
  );
}

/**
 * config.json as each family's transformers config class writes it. Field names and defaults
 * follow transformers' LlamaConfig, Qwen2Config and Qwen3Config, spelled out here rather than
 * derived from the loader's own mapping, so the loader is tested against the real layout.
 */
function familyConfig(
  o: RandomHfCheckpointOptions,
  eos: number[],
  bos: number,
): Record<string, unknown> {
  const common = {
    vocab_size: o.vocabSize,
    hidden_size: o.hiddenSize,
    intermediate_size: o.intermediateSize,
    num_hidden_layers: o.numHiddenLayers,
    num_attention_heads: o.numAttentionHeads,
    num_key_value_heads: o.numKeyValueHeads,
    hidden_act: 'silu',
    max_position_embeddings: o.maxPositionEmbeddings ?? 4096,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    use_cache: true,
    tie_word_embeddings: o.tieWordEmbeddings,
    rope_theta: o.ropeTheta ?? (o.family === 'llama' ? 500000 : 1000000),
    attention_dropout: 0,
    torch_dtype: TORCH_DTYPE[o.dtype],
    transformers_version: '4.51.0',
    bos_token_id: bos,
    eos_token_id: eos.length === 1 ? eos[0] : eos,
  };
  if (o.family === 'llama') {
    const s = o.ropeScaling;
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      ...common,
      ...(o.headDim === undefined ? {} : { head_dim: o.headDim }),
      attention_bias: false,
      mlp_bias: false,
      pretraining_tp: 1,
      rope_scaling:
        s === undefined
          ? null
          : {
              factor: s.factor,
              low_freq_factor: s.lowFreqFactor,
              high_freq_factor: s.highFreqFactor,
              original_max_position_embeddings: s.originalMaxPositionEmbeddings,
              rope_type: 'llama3',
            },
    };
  }
  if (o.family === 'qwen2')
    return {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      ...common,
      max_window_layers: o.numHiddenLayers,
      sliding_window: 32768,
      use_sliding_window: false,
      rope_scaling: null,
    };
  return {
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    ...common,
    head_dim: o.headDim ?? o.hiddenSize / o.numAttentionHeads,
    attention_bias: false,
    max_window_layers: o.numHiddenLayers,
    sliding_window: null,
    use_sliding_window: false,
    rope_scaling: null,
  };
}

/**
 * Writes a random checkpoint directory in the family's Hugging Face layout: config.json,
 * generation_config.json, tokenizer.json, and the weights under transformers' parameter names in
 * state-dict order (`[out, in]` projections), in `dtype`, one file or shards with an index. Each
 * tensor is generated when it is written, so a 0.5B-parameter checkpoint needs no more memory than
 * its largest tensor. Returns the weight file names.
 */
export async function writeRandomHfCheckpoint(
  dir: string,
  options: RandomHfCheckpointOptions,
): Promise<{ files: string[]; parameters: number }> {
  const o = options;
  let tokenizerConfig: Record<string, unknown> | undefined;
  let tokenizer: Tokenizer;
  if (o.tokenizerDir !== undefined) {
    tokenizer = await Tokenizer.load(join(o.tokenizerDir, 'tokenizer.json'));
    tokenizerConfig = JSON.parse(
      await readFile(join(o.tokenizerDir, 'tokenizer_config.json'), 'utf8'),
    ) as Record<string, unknown>;
  } else tokenizer = o.tokenizer ?? smallPythonTokenizer(Math.min(320, o.vocabSize));
  if (tokenizer.vocabSize > o.vocabSize)
    throw new RangeError(
      `tokenizer has ${tokenizer.vocabSize} tokens, vocabSize is ${o.vocabSize}`,
    );
  const namedId = (field: string): number | undefined => {
    const value = tokenizerConfig?.[field];
    return typeof value === 'string' ? tokenizer.tokenToId(value) : undefined;
  };
  const eos =
    o.eosTokenIds ??
    (tokenizerConfig === undefined
      ? [tokenizer.special.eos, tokenizer.special.imEnd]
      : [namedId('eos_token')!]);
  if (eos.some((id) => id === undefined))
    throw new RangeError(`${o.tokenizerDir}: tokenizer_config.json names no eos_token`);
  const headDim = o.headDim ?? o.hiddenSize / o.numAttentionHeads;
  const d = o.hiddenSize;
  const qDim = o.numAttentionHeads * headDim;
  const kvDim = o.numKeyValueHeads * headDim;
  const rng = new Rng(o.seed ?? 0);
  type Kind = 'matrix' | 'norm' | 'bias' | 'embed';
  const tensors: { name: string; shape: number[]; kind: Kind }[] = [];
  const add = (name: string, shape: number[], kind: Kind): void => {
    tensors.push({ name, shape, kind });
  };
  add('model.embed_tokens.weight', [o.vocabSize, d], 'embed');
  for (let i = 0; i < o.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.self_attn.q_proj.weight`, [qDim, d], 'matrix');
    if (o.family === 'qwen2') add(`${p}.self_attn.q_proj.bias`, [qDim], 'bias');
    add(`${p}.self_attn.k_proj.weight`, [kvDim, d], 'matrix');
    if (o.family === 'qwen2') add(`${p}.self_attn.k_proj.bias`, [kvDim], 'bias');
    add(`${p}.self_attn.v_proj.weight`, [kvDim, d], 'matrix');
    if (o.family === 'qwen2') add(`${p}.self_attn.v_proj.bias`, [kvDim], 'bias');
    add(`${p}.self_attn.o_proj.weight`, [d, qDim], 'matrix');
    if (o.family === 'qwen3') {
      add(`${p}.self_attn.q_norm.weight`, [headDim], 'norm');
      add(`${p}.self_attn.k_norm.weight`, [headDim], 'norm');
    }
    add(`${p}.mlp.gate_proj.weight`, [o.intermediateSize, d], 'matrix');
    add(`${p}.mlp.up_proj.weight`, [o.intermediateSize, d], 'matrix');
    add(`${p}.mlp.down_proj.weight`, [d, o.intermediateSize], 'matrix');
    add(`${p}.input_layernorm.weight`, [d], 'norm');
    add(`${p}.post_attention_layernorm.weight`, [d], 'norm');
  }
  add('model.norm.weight', [d], 'norm');
  if (!o.tieWordEmbeddings || o.storeTiedHead === true)
    add('lm_head.weight', [o.vocabSize, d], 'matrix');

  const streamed: StreamedTensor[] = tensors.map((t) => ({
    name: t.name,
    dtype: o.dtype,
    shape: t.shape,
    values: () => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n);
      if (t.name === 'lm_head.weight' && o.tieWordEmbeddings) {
        // A stored copy of a tied head: different values, which the loader must ignore as transformers does.
        for (let i = 0; i < n; i++) out[i] = rng.normal();
        return out;
      }
      const std =
        t.kind === 'norm'
          ? 0.1
          : t.kind === 'bias'
            ? 0.1
            : t.kind === 'embed'
              ? 1
              : (o.std ?? 1 / Math.sqrt(t.shape[1]!));
      for (let i = 0; i < n; i++) out[i] = (t.kind === 'norm' ? 1 : 0) + rng.normal() * std;
      return out;
    },
  }));
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const groups: StreamedTensor[][] = [[]];
  if (o.maxShardBytes === undefined) groups[0] = streamed;
  else {
    let size = 0;
    for (const t of streamed) {
      const bytes = storedBytes(t.dtype, t.shape);
      if (size + bytes > o.maxShardBytes && groups[groups.length - 1]!.length > 0) {
        groups.push([]);
        size = 0;
      }
      groups[groups.length - 1]!.push(t);
      size += bytes;
    }
  }
  const count = groups.length;
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let i = 0; i < count; i++) {
    const name =
      o.maxShardBytes === undefined
        ? 'model.safetensors'
        : `model-${String(i + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
    await writeSafetensorsStreaming(join(dir, name), groups[i]!, { format: 'pt' });
    files.push(name);
    for (const t of groups[i]!) {
      weightMap[t.name] = name;
      total += storedBytes(t.dtype, t.shape);
    }
  }
  if (o.maxShardBytes !== undefined) {
    const sorted = Object.fromEntries(
      Object.keys(weightMap)
        .sort()
        .map((k) => [k, weightMap[k]]),
    );
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      `${JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2)}\n`,
    );
  }
  const bos =
    tokenizerConfig === undefined ? tokenizer.special.eos : (namedId('bos_token') ?? eos[0]!);
  await writeFile(
    join(dir, 'config.json'),
    `${JSON.stringify(familyConfig(o, eos, bos), null, 2)}\n`,
  );
  await writeFile(
    join(dir, 'generation_config.json'),
    `${JSON.stringify({ bos_token_id: bos, eos_token_id: eos, do_sample: false, transformers_version: '4.51.0' }, null, 2)}\n`,
  );
  if (o.tokenizerDir !== undefined) {
    for (const file of ['tokenizer.json', 'tokenizer_config.json'])
      await copyFile(join(o.tokenizerDir, file), join(dir, file));
  } else {
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
    await writeFile(
      join(dir, 'tokenizer_config.json'),
      `${JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', model_max_length: o.maxPositionEmbeddings ?? 4096 }, null, 2)}\n`,
    );
  }
  const parameters = tensors
    .filter((t) => !(t.name === 'lm_head.weight' && o.tieWordEmbeddings))
    .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
  return { files, parameters };
}
