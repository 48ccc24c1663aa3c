import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fsyncDirectory, tempPathFor, writeFileAtomic } from '@codereasoner/common';
import { isTransposedInFile, transpose2d } from './hf-layout.js';
import { loadChatFormat, type ChatFormat } from './chat-template.js';
import { eosTokenIdsOf, fromHfConfig, toHfConfig, type ModelConfig } from './config.js';
import { CheckpointError } from './errors.js';
import { CausalLM, parameterSpecs, type ParameterSpec } from './model.js';
import {
  openSafetensors,
  storedBytes,
  writeSafetensorsStreaming,
  type SafetensorsReader,
  type StreamedTensor,
} from './safetensors.js';
import { Tokenizer } from './tokenizer.js';

/** Float dtypes a Hugging Face checkpoint is read from and written in. */
export type HfDtype = 'F32' | 'F16' | 'BF16';

/** What `loadPretrained` learned about a Hugging Face directory, so that `savePretrained` writes the same layout back. */
export interface HfModelInfo {
  /** The directory read (absolute). */
  dir: string;
  /** config.json as read (unknown fields kept for the export). */
  config: Record<string, unknown>;
  /** generation_config.json, when present. */
  generationConfig?: Record<string, unknown>;
  /** Ids that end generation: generation_config.json's `eos_token_id` (one or a list), else config.json's. */
  eosTokenIds: number[];
  /** dtype of the stored weights (the most common one when mixed). */
  dtype: HfDtype;
  /** Weight files in index order (one when not sharded). */
  weightFiles: string[];
  /** Whether the weights came with `model.safetensors.index.json`. */
  sharded: boolean;
  /** Tied embeddings and `lm_head.weight` stored anyway (written back the same way). */
  storesTiedHead: boolean;
}

export interface LoadedPretrained {
  model: CausalLM;
  tokenizer: Tokenizer;
  /**
   * How chats become ids and where generation stops: the directory's own chat template and eos
   * ids, or ChatML for a from-scratch model's checkpoint (see `loadChatFormat`).
   */
  chat: ChatFormat;
  info: HfModelInfo;
}

export const HF_FILES = {
  config: 'config.json',
  generationConfig: 'generation_config.json',
  weights: 'model.safetensors',
  index: 'model.safetensors.index.json',
} as const;

/** Tokenizer files copied verbatim by `savePretrained` (whichever the source directory has). */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
  'chat_template.json',
] as const;

const TORCH_DTYPE: Record<HfDtype, string> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
};

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function readJsonObject(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new CheckpointError(path, `cannot read ${what} (${(cause as Error).message})`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(path, `${what} is not valid JSON (${(cause as Error).message})`, {
      cause,
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new CheckpointError(path, `${what} must be a JSON object`);
  return json as Record<string, unknown>;
}

/**
 * The tokenizer of a model directory. The one seam between model loading and tokenizers: today
 * the core byte-level BPE `tokenizer.json`; the pretrained families' tokenizers plug in here.
 */
export async function loadHfTokenizer(dir: string): Promise<Tokenizer> {
  const path = join(dir, 'tokenizer.json');
  const json = await readJsonObject(path, 'tokenizer.json');
  try {
    return Tokenizer.fromJSON(json, path);
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(path, (error as Error).message, { cause: error });
  }
}

/** config.json → ModelConfig, with every unsupported field named in a CheckpointError. */
export function modelConfigFromHf(json: Record<string, unknown>, path: string): ModelConfig {
  try {
    return fromHfConfig(json);
  } catch (error) {
    const issues = (error as { issues?: string[] }).issues;
    throw new CheckpointError(
      path,
      `config does not describe a supported model: ${issues?.join('; ') ?? (error as Error).message}`,
      { cause: error },
    );
  }
}

/** Weight files of a directory: `model.safetensors.index.json`'s weight map, or `model.safetensors`. */
async function weightLayout(
  dir: string,
): Promise<{ files: string[]; map: Map<string, string> | undefined }> {
  const indexPath = join(dir, HF_FILES.index);
  if (await exists(indexPath)) {
    const index = await readJsonObject(indexPath, 'the safetensors index');
    const weightMap = index['weight_map'];
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap))
      throw new CheckpointError(indexPath, 'weight_map must be an object of tensor name → file');
    const map = new Map<string, string>();
    for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\'))
        throw new CheckpointError(indexPath, `weight_map.${name} must be a file name`);
      map.set(name, file);
    }
    return { files: [...new Set(map.values())], map };
  }
  if (await exists(join(dir, HF_FILES.weights)))
    return { files: [HF_FILES.weights], map: undefined };
  if (await exists(join(dir, 'pytorch_model.bin')))
    throw new CheckpointError(
      dir,
      'only safetensors weights are supported (found pytorch_model.bin); convert with safetensors first',
    );
  throw new CheckpointError(dir, `no ${HF_FILES.weights} or ${HF_FILES.index}`);
}

// Buffers transformers itself ignores in older Llama checkpoints.
const IGNORED_TENSOR = /\.rotary_emb\.inv_freq$/;

/**
 * Loads a local Hugging Face directory of a `LlamaForCausalLM`, `Qwen2ForCausalLM` or
 * `Qwen3ForCausalLM`: config.json (unsupported fields refused by name), generation_config.json,
 * weights from `model.safetensors` or the shards of `model.safetensors.index.json` (F32/F16/BF16),
 * and the tokenizer. Weights are read tensor by tensor with positioned reads, so the memory peak is
 * the float32 model plus one tensor's bytes, whatever the file sizes.
 */
export async function loadPretrained(
  dir: string,
  options: { trainable?: boolean } = {},
): Promise<LoadedPretrained> {
  const root = resolve(dir);
  if (!(await exists(root))) throw new CheckpointError(root, 'model directory does not exist');
  const configPath = join(root, HF_FILES.config);
  const hfConfig = await readJsonObject(configPath, 'config.json');
  const config = modelConfigFromHf(hfConfig, configPath);
  let generationConfig: Record<string, unknown> | undefined;
  const generationPath = join(root, HF_FILES.generationConfig);
  if (await exists(generationPath))
    generationConfig = await readJsonObject(generationPath, 'generation_config.json');
  const eosTokenIds = eosTokenIdsOf(generationConfig);
  if (eosTokenIds.length === 0) eosTokenIds.push(...eosTokenIdsOf(hfConfig));
  for (const id of eosTokenIds)
    if (id < 0 || id >= config.vocabSize)
      throw new CheckpointError(
        configPath,
        `eos_token_id ${id} is outside vocab_size ${config.vocabSize}`,
      );

  const tokenizer = await loadHfTokenizer(root);
  if (tokenizer.vocabSize > config.vocabSize)
    throw new CheckpointError(
      join(root, 'tokenizer.json'),
      `tokenizer has ${tokenizer.vocabSize} tokens, more than config vocab_size ${config.vocabSize}`,
    );

  const { files, map } = await weightLayout(root);
  const readers = new Map<string, SafetensorsReader>();
  const values = new Map<string, tf.Tensor>();
  const dtypeCounts = new Map<string, number>();
  let storesTiedHead = false;
  try {
    for (const file of files) readers.set(file, await openSafetensors(join(root, file)));
    // Where each tensor is: the index's word, checked against the file headers.
    const location = new Map<string, SafetensorsReader>();
    for (const [file, reader] of readers) {
      for (const name of reader.tensors.keys()) {
        if (map !== undefined && map.get(name) !== file)
          throw new CheckpointError(
            join(root, file),
            `tensor ${name} is in ${file} but ${HF_FILES.index} puts it in ${map.get(name) ?? 'no file'}`,
          );
        location.set(name, reader);
      }
    }
    if (map !== undefined)
      for (const [name, file] of map)
        if (!location.has(name))
          throw new CheckpointError(
            join(root, file),
            `${HF_FILES.index} lists ${name}, which the file lacks`,
          );
    const specs = parameterSpecs(config);
    const expected = new Set(specs.map((s) => s.name));
    if (config.tieWordEmbeddings && location.has('lm_head.weight')) {
      // transformers ties the head to the embedding after loading: the stored copy is not used.
      storesTiedHead = true;
      expected.add('lm_head.weight');
      const reader = location.get('lm_head.weight')!;
      const stored = reader.tensors.get('lm_head.weight')!.shape;
      if (stored.join(',') !== [config.vocabSize, config.hiddenSize].join(','))
        throw new CheckpointError(
          reader.path,
          `lm_head.weight has shape [${stored.join(', ')}], config.json implies [${config.vocabSize}, ${config.hiddenSize}]`,
        );
    }
    const unexpected = [...location.keys()].filter(
      (n) => !expected.has(n) && !IGNORED_TENSOR.test(n),
    );
    const missing = specs.filter((s) => !location.has(s.name)).map((s) => s.name);
    if (missing.length > 0 || unexpected.length > 0) {
      const list = (names: string[]): string =>
        `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;
      throw new CheckpointError(
        root,
        `weights do not match config.json (${config.architecture}${config.tieWordEmbeddings ? ', tied embeddings' : ''}): ${[
          missing.length > 0 ? `missing ${list(missing)}` : '',
          unexpected.length > 0 ? `unexpected ${list(unexpected)}` : '',
        ]
          .filter(Boolean)
          .join('; ')}`,
      );
    }
    for (const spec of specs) {
      const reader = location.get(spec.name)!;
      const span = reader.tensors.get(spec.name)!;
      const shape = isTransposedInFile(spec) ? [spec.shape[1]!, spec.shape[0]!] : spec.shape;
      if (span.shape.join(',') !== shape.join(','))
        throw new CheckpointError(
          reader.path,
          `${spec.name} has shape [${span.shape.join(', ')}], config.json implies [${shape.join(', ')}]`,
        );
      dtypeCounts.set(span.dtype, (dtypeCounts.get(span.dtype) ?? 0) + 1);
      const data = await reader.readFloat32(spec.name);
      for (let i = 0; i < data.length; i++)
        if (!Number.isFinite(data[i]!))
          throw new CheckpointError(
            reader.path,
            `${spec.name} holds a non-finite value at index ${i}`,
          );
      values.set(
        spec.name,
        tf.tensor(
          isTransposedInFile(spec) ? transpose2d(data, shape[0]!, shape[1]!) : data,
          spec.shape,
          'float32',
        ),
      );
    }
    const chat = await loadChatFormat(root, tokenizer);
    const model = CausalLM.fromParameters(config, values, { trainable: options.trainable ?? true });
    model.markLoadedFrom(root);
    const dtype = ([...dtypeCounts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ??
      'F32') as string;
    return {
      model,
      tokenizer,
      chat,
      info: {
        dir: root,
        config: hfConfig,
        ...(generationConfig === undefined ? {} : { generationConfig }),
        eosTokenIds,
        dtype: (['F32', 'F16', 'BF16'].includes(dtype) ? dtype : 'F32') as HfDtype,
        weightFiles: files,
        sharded: map !== undefined,
        storesTiedHead,
      },
    };
  } finally {
    tf.dispose([...values.values()]);
    await Promise.all([...readers.values()].map((r) => r.close()));
  }
}

const DTYPE_OF_TORCH: Record<string, HfDtype> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
};

/** The dtype config.json declares (`torch_dtype`, or `dtype` in newer transformers), if a float one. */
export function declaredDtype(config: Record<string, unknown>): HfDtype | undefined {
  const value = config['torch_dtype'] ?? config['dtype'];
  return typeof value === 'string' ? DTYPE_OF_TORCH[value] : undefined;
}

/**
 * What `loadPretrained` reports about a directory, read without loading the weights (only the
 * safetensors headers): for exports of a model whose `hfSource` is that directory.
 */
export async function readHfModelInfo(dir: string): Promise<HfModelInfo> {
  const root = resolve(dir);
  const configPath = join(root, HF_FILES.config);
  const config = await readJsonObject(configPath, 'config.json');
  const modelConfig = modelConfigFromHf(config, configPath);
  let generationConfig: Record<string, unknown> | undefined;
  const generationPath = join(root, HF_FILES.generationConfig);
  if (await exists(generationPath))
    generationConfig = await readJsonObject(generationPath, 'generation_config.json');
  const eosTokenIds = eosTokenIdsOf(generationConfig);
  if (eosTokenIds.length === 0) eosTokenIds.push(...eosTokenIdsOf(config));
  let files: string[] = [];
  let sharded = false;
  let storesTiedHead = false;
  let stored: HfDtype | undefined;
  // A LoRA checkpoint that refers to its base has no weight files of its own.
  if ((await exists(join(root, HF_FILES.index))) || (await exists(join(root, HF_FILES.weights)))) {
    const layout = await weightLayout(root);
    files = layout.files;
    sharded = layout.map !== undefined;
    for (const file of files) {
      const reader = await openSafetensors(join(root, file));
      try {
        if (reader.tensors.has('lm_head.weight') && modelConfig.tieWordEmbeddings)
          storesTiedHead = true;
        const embed = reader.tensors.get('model.embed_tokens.weight');
        if (embed !== undefined && ['F32', 'F16', 'BF16'].includes(embed.dtype))
          stored = embed.dtype as HfDtype;
      } finally {
        await reader.close();
      }
    }
  }
  return {
    dir: root,
    config,
    ...(generationConfig === undefined ? {} : { generationConfig }),
    eosTokenIds,
    dtype: stored ?? declaredDtype(config) ?? 'F32',
    weightFiles: files,
    sharded,
    storesTiedHead,
  };
}

/** Shard file names as transformers writes them. */
export function shardFileName(index: number, count: number): string {
  return `model-${String(index + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
}

export interface SavePretrainedOptions {
  /** The layout to reproduce (from `loadPretrained`); without it a fresh config.json is written. */
  info?: HfModelInfo;
  /** The tokenizer written as tokenizer.json when there is no source directory to copy from. */
  tokenizer?: Tokenizer;
  /**
   * Stored dtype (default: the dtype the source's config.json declares, so a bf16 model fine-tuned
   * in float32 is exported in bf16 again; else the source's stored dtype; else F32).
   */
  dtype?: HfDtype;
  /** Shard above this many bytes, as transformers' `max_shard_size` (default 5 GB, decimal). */
  maxShardBytes?: number;
}

/** eos/pad ids of a tokenizer with the ChatML specials (the from-scratch path); none otherwise. */
function specialIds(tokenizer: Tokenizer | undefined): {
  eosTokenId?: number;
  padTokenId?: number;
} {
  try {
    return tokenizer === undefined
      ? {}
      : { eosTokenId: tokenizer.special.eos, padTokenId: tokenizer.special.pad };
  } catch {
    // Tokenizers without ChatML specials throw here: config.json then carries no eos/pad.
    return {};
  }
}

/** Float32 values of a parameter in file layout ([out, in] for projections), LoRA adapters folded in. */
async function fileValues(model: CausalLM, spec: ParameterSpec): Promise<Float32Array> {
  const tensor = model.mergedParameter(spec.name);
  try {
    const values = (await tensor.data()) as Float32Array;
    return isTransposedInFile(spec)
      ? transpose2d(values, spec.shape[0]!, spec.shape[1]!)
      : Float32Array.from(values);
  } finally {
    if (tensor !== model.parameters.get(spec.name)) tensor.dispose();
  }
}

/**
 * Writes `model` as a Hugging Face directory transformers and vLLM load: config.json (the source's
 * with `torch_dtype` updated, or a fresh one), generation_config.json, the weights under their HF
 * names in the source's dtype (bf16 stays bf16), sharded like `save_pretrained` above
 * `maxShardBytes` with `model.safetensors.index.json`, and the tokenizer files copied. LoRA
 * adapters are merged into the written weights (the model itself is unchanged). Atomic: written
 * into a temp sibling and renamed over `dir`.
 */
export async function savePretrained(
  dir: string,
  model: CausalLM,
  options: SavePretrainedOptions = {},
): Promise<{ files: string[]; totalBytes: number }> {
  // Without `info`, the layout of the directory the model was loaded from (its chat template,
  // eos ids and dtype), so a Llama-3 exports as a Llama-3 rather than as a from-scratch ChatML model.
  const info =
    options.info ??
    (model.hfSource === undefined ? undefined : await readHfModelInfo(model.hfSource));
  const dtype =
    options.dtype ??
    (info === undefined ? undefined : (declaredDtype(info.config) ?? info.dtype)) ??
    'F32';
  const maxShardBytes = options.maxShardBytes ?? 5_000_000_000;
  const target = resolve(dir);
  if (info !== undefined && resolve(info.dir) === target)
    throw new CheckpointError(target, 'cannot export over the directory the model was loaded from');
  const tensors: (StreamedTensor & { bytes: number })[] = [];
  for (const spec of model.specs) {
    const shape = isTransposedInFile(spec) ? [spec.shape[1]!, spec.shape[0]!] : [...spec.shape];
    tensors.push({
      name: spec.name,
      dtype,
      shape,
      bytes: storedBytes(dtype, shape),
      values: () => fileValues(model, spec),
    });
  }
  if (model.config.tieWordEmbeddings && info?.storesTiedHead === true) {
    const embed = model.specs.find((s) => s.name === 'model.embed_tokens.weight')!;
    tensors.push({
      name: 'lm_head.weight',
      dtype,
      shape: [...embed.shape],
      bytes: storedBytes(dtype, embed.shape),
      values: () => fileValues(model, embed),
    });
  }
  // Greedy in order, a new shard when the next tensor would overflow (transformers' rule).
  const shards: (typeof tensors)[] = [[]];
  let current = 0;
  for (const t of tensors) {
    if (current + t.bytes > maxShardBytes && shards[shards.length - 1]!.length > 0) {
      shards.push([]);
      current = 0;
    }
    shards[shards.length - 1]!.push(t);
    current += t.bytes;
  }
  const totalBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
  const names =
    shards.length === 1
      ? [HF_FILES.weights]
      : shards.map((_, i) => shardFileName(i, shards.length));

  await mkdir(dirname(target), { recursive: true });
  const temp = tempPathFor(target);
  await mkdir(temp);
  const written: string[] = [];
  try {
    for (let i = 0; i < shards.length; i++) {
      await writeSafetensorsStreaming(join(temp, names[i]!), shards[i]!, { format: 'pt' });
      written.push(names[i]!);
    }
    if (shards.length > 1) {
      const weightMap: Record<string, string> = {};
      shards.forEach((shard, i) => {
        for (const t of shard) weightMap[t.name] = names[i]!;
      });
      const sorted = Object.fromEntries(
        Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
      await writeFileAtomic(
        join(temp, HF_FILES.index),
        `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: sorted }, null, 2)}\n`,
      );
      written.push(HF_FILES.index);
    }
    const config =
      info !== undefined
        ? { ...info.config }
        : toHfConfig(model.config, specialIds(options.tokenizer));
    // Newer transformers read `dtype`, older `torch_dtype`: keep whichever the source had.
    if ('dtype' in config) config['dtype'] = TORCH_DTYPE[dtype];
    if (!('dtype' in config) || 'torch_dtype' in config) config['torch_dtype'] = TORCH_DTYPE[dtype];
    await writeFileAtomic(join(temp, HF_FILES.config), `${JSON.stringify(config, null, 2)}\n`);
    written.push(HF_FILES.config);
    if (info?.generationConfig !== undefined) {
      await writeFileAtomic(
        join(temp, HF_FILES.generationConfig),
        `${JSON.stringify(info.generationConfig, null, 2)}\n`,
      );
      written.push(HF_FILES.generationConfig);
    }
    let copied = 0;
    if (info !== undefined) {
      for (const file of TOKENIZER_FILES) {
        if (await exists(join(info.dir, file))) {
          await copyFile(join(info.dir, file), join(temp, file));
          written.push(file);
          copied++;
        }
      }
    }
    if (copied === 0) {
      if (options.tokenizer === undefined)
        throw new CheckpointError(
          target,
          'no tokenizer to write: pass `tokenizer` or `info` of a directory with tokenizer files',
        );
      await writeFileAtomic(
        join(temp, 'tokenizer.json'),
        JSON.stringify(options.tokenizer.toJSON()),
      );
      written.push('tokenizer.json');
    }
    await fsyncDirectory(temp);
    const previous = `${target}.previous`;
    await rm(previous, { recursive: true, force: true });
    const had = await exists(target);
    if (had) await rename(target, previous);
    await rename(temp, target);
    await fsyncDirectory(dirname(target));
    if (had) await rm(previous, { recursive: true, force: true });
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  return { files: written, totalBytes };
}
