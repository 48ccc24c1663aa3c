import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fsyncDirectory, tempPathFor, writeFileAtomic } from '@codereasoner/common';
import { toHfConfig } from './config.js';
import { CheckpointError } from './errors.js';
import { fileShape, isTransposedInFile, transpose2d } from './hf-layout.js';
import type { ChatFormat } from './chat-template.js';
import { HF_FILES, loadPretrained, readHfModelInfo, TOKENIZER_FILES } from './hf-model.js';
import { ADAPTER_FILES, loadAdapter, saveAdapter } from './lora.js';
import type { CausalLM } from './model.js';
import { parameterSpecs } from './model.js';
import type { AdamW, OptimizerState } from './optimizer.js';
import { readSafetensors, writeSafetensors, type SafetensorsInput } from './safetensors.js';
import type { Tokenizer } from './tokenizer.js';

export const CHECKPOINT_FILES = {
  model: 'model.safetensors',
  config: 'config.json',
  tokenizer: 'tokenizer.json',
  optimizer: 'optimizer.safetensors',
  trainerState: 'trainer_state.json',
  /** A LoRA checkpoint's reference to the unchanged base weights it was trained on. */
  base: 'base_model.json',
} as const;

/** `base_model.json`: where a LoRA checkpoint's base weights are, and how to tell they did not change. */
export interface BaseModelReference {
  format: 'codereasoner-base-model';
  version: 1;
  /** Absolute path of the Hugging Face directory holding the base weights. */
  dir: string;
  /** Its weight files, with the size and SHA-256 they had when the checkpoint was written. */
  files: { name: string; bytes: number; sha256: string }[];
}

export interface CheckpointParts {
  model: CausalLM;
  tokenizer: Tokenizer;
  optimizer?: AdamW;
  trainerState?: Record<string, unknown>;
}

export interface LoadedCheckpoint {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The model's chat layout: its own template and eos ids for a pretrained model, else ChatML. */
  chat: ChatFormat;
  optimizerState?: OptimizerState;
  trainerState?: Record<string, unknown>;
}

/** Model weights with Hugging Face names and layouts, ready for `writeSafetensors`. */
export async function exportHfWeights(model: CausalLM): Promise<Record<string, SafetensorsInput>> {
  const out: Record<string, SafetensorsInput> = {};
  for (const spec of model.specs) {
    const values = (await model.parameters.get(spec.name)!.data()) as Float32Array;
    out[spec.name] = isTransposedInFile(spec)
      ? {
          dtype: 'F32',
          shape: fileShape(spec),
          values: transpose2d(values, spec.shape[0]!, spec.shape[1]!),
        }
      : { dtype: 'F32', shape: [...spec.shape], values: Float32Array.from(values) };
  }
  return out;
}

/**
 * Writes `dir` atomically: every file goes into a temp sibling directory which is fsynced and then
 * renamed over `dir` (an existing `dir` is first moved to `dir.previous`, removed afterwards, and
 * used by `loadCheckpoint` if a crash happened between the two renames).
 */
export async function saveCheckpoint(dir: string, parts: CheckpointParts): Promise<void> {
  const { model, tokenizer, optimizer, trainerState } = parts;
  if (tokenizer.vocabSize > model.config.vocabSize) {
    throw new CheckpointError(
      dir,
      `tokenizer has ${tokenizer.vocabSize} tokens, more than the model's vocabSize ${model.config.vocabSize}`,
    );
  }
  await mkdir(dirname(dir), { recursive: true });
  const temp = tempPathFor(dir);
  await mkdir(temp);
  try {
    // LoRA on a base that still equals its files: the checkpoint refers to them (size and
    // SHA-256 checked on load) instead of holding another float32 copy of the base.
    const baseDir = model.loraConfig === undefined ? undefined : model.unchangedBaseSource;
    if (baseDir !== undefined) {
      await writeFileAtomic(
        join(temp, CHECKPOINT_FILES.base),
        `${JSON.stringify(await baseReference(baseDir), null, 2)}\n`,
      );
    } else {
      await writeSafetensors(join(temp, CHECKPOINT_FILES.model), await exportHfWeights(model), {
        format: 'pt',
      });
    }
    await writeModelFiles(temp, model, tokenizer);
    // LoRA: the adapters go beside the base (or its reference) in PEFT's format.
    if (model.loraConfig !== undefined)
      await saveAdapter(temp, model, { baseModelNameOrPath: baseDir ?? null });
    if (optimizer !== undefined) {
      const state = optimizer.getState();
      try {
        const tensors: Record<string, SafetensorsInput> = {};
        for (const [name, m] of Object.entries(state.firstMoment)) {
          tensors[`${name}.exp_avg`] = {
            dtype: 'F32',
            shape: m.shape,
            values: Float32Array.from((await m.data()) as Float32Array),
          };
          const v = state.secondMoment[name]!;
          tensors[`${name}.exp_avg_sq`] = {
            dtype: 'F32',
            shape: v.shape,
            values: Float32Array.from((await v.data()) as Float32Array),
          };
        }
        await writeSafetensors(join(temp, CHECKPOINT_FILES.optimizer), tensors, {
          step: String(state.step),
          optimizer: 'adamw',
        });
      } finally {
        tf.dispose([...Object.values(state.firstMoment), ...Object.values(state.secondMoment)]);
      }
    }
    if (trainerState !== undefined) {
      await writeFileAtomic(
        join(temp, CHECKPOINT_FILES.trainerState),
        `${JSON.stringify(trainerState, null, 2)}\n`,
      );
    }
    await fsyncDirectory(temp);
    const previous = `${dir}.previous`;
    await rm(previous, { recursive: true, force: true });
    const exists = await stat(dir).then(
      () => true,
      () => false,
    );
    if (exists) await rename(dir, previous);
    await rename(temp, dir);
    await fsyncDirectory(dirname(dir));
    if (exists) await rm(previous, { recursive: true, force: true });
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/**
 * config.json and the tokenizer files. A model loaded from a Hugging Face directory keeps that
 * directory's own files (config.json with its extra fields and declared dtype, generation_config.json,
 * tokenizer_config.json with the chat template): later stages then use the model's chat format and
 * eos ids, and an export restores its layout. A from-scratch model gets a fresh config.json and its
 * ChatML tokenizer.
 */
async function writeModelFiles(dir: string, model: CausalLM, tokenizer: Tokenizer): Promise<void> {
  const source = model.hfSource;
  if (source !== undefined) {
    await copyFile(join(source, HF_FILES.config), join(dir, CHECKPOINT_FILES.config));
    let copied = 0;
    for (const file of [HF_FILES.generationConfig, ...TOKENIZER_FILES]) {
      if (!(await exists(join(source, file)))) continue;
      await copyFile(join(source, file), join(dir, file));
      if (file !== HF_FILES.generationConfig) copied++;
    }
    if (copied > 0) return;
  } else {
    const ids = tokenizer.hasChatML
      ? { eosTokenId: tokenizer.special.eos, padTokenId: tokenizer.special.pad }
      : {};
    await writeFileAtomic(
      join(dir, CHECKPOINT_FILES.config),
      `${JSON.stringify(toHfConfig(model.config, ids), null, 2)}\n`,
    );
  }
  await writeFileAtomic(join(dir, CHECKPOINT_FILES.tokenizer), JSON.stringify(tokenizer.toJSON()));
}

// SHA-256 of weight files by path, size and mtime: a run writes many checkpoints of one base.
const digests = new Map<string, string>();

async function sha256Of(path: string): Promise<{ bytes: number; sha256: string }> {
  const info = await stat(path);
  const key = `${path}\0${info.size}\0${info.mtimeMs}\0${info.ino}`;
  let sha256 = digests.get(key);
  if (sha256 === undefined) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 24 }))
      hash.update(chunk as Buffer);
    sha256 = hash.digest('hex');
    digests.set(key, sha256);
  }
  return { bytes: info.size, sha256 };
}

async function baseReference(dir: string): Promise<BaseModelReference> {
  const info = await readHfModelInfo(dir);
  if (info.weightFiles.length === 0)
    throw new CheckpointError(dir, 'the base model directory has no weight files to refer to');
  const files: BaseModelReference['files'] = [];
  for (const name of info.weightFiles) files.push({ name, ...(await sha256Of(join(dir, name))) });
  if (info.sharded) {
    files.push({ name: HF_FILES.index, ...(await sha256Of(join(dir, HF_FILES.index))) });
  }
  return { format: 'codereasoner-base-model', version: 1, dir: info.dir, files };
}

/** Reads `base_model.json` and checks that the base's files are still the ones trained on. */
async function checkedBaseDir(path: string): Promise<string> {
  const raw = (await readJson(path, CHECKPOINT_FILES.base)) as Partial<BaseModelReference>;
  if (
    typeof raw !== 'object' ||
    raw === null ||
    raw.format !== 'codereasoner-base-model' ||
    raw.version !== 1 ||
    typeof raw.dir !== 'string' ||
    !Array.isArray(raw.files)
  )
    throw new CheckpointError(
      path,
      'not a codereasoner-base-model reference (format, version 1, dir, files)',
    );
  for (const file of raw.files) {
    const at = join(raw.dir, String(file.name));
    let actual: { bytes: number; sha256: string };
    try {
      actual = await sha256Of(at);
    } catch (cause) {
      throw new CheckpointError(
        path,
        `the base model file ${at} cannot be read (${(cause as Error).message}); this LoRA checkpoint holds only adapters: restore the base directory`,
        { cause },
      );
    }
    if (actual.bytes !== file.bytes || actual.sha256 !== file.sha256)
      throw new CheckpointError(
        path,
        `the base model file ${at} changed since the checkpoint was written (${actual.bytes} bytes, sha256 ${actual.sha256.slice(0, 12)}…; expected ${file.bytes} bytes, ${String(file.sha256).slice(0, 12)}…); the adapters were trained on the old one: restore it`,
      );
  }
  return raw.dir;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new CheckpointError(path, `cannot read ${what} (${(cause as Error).message})`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(path, `${what} is not valid JSON (${(cause as Error).message})`, {
      cause,
    });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Loads and checks a checkpoint; any missing file, mismatch or corruption throws CheckpointError { path, reason }. */
export async function loadCheckpoint(
  dir: string,
  options: { trainable?: boolean } = {},
): Promise<LoadedCheckpoint> {
  let root = dir;
  if (!(await exists(dir))) {
    // A crash between the two renames of saveCheckpoint leaves only the complete previous copy.
    if (await exists(`${dir}.previous`)) root = `${dir}.previous`;
    else throw new CheckpointError(dir, 'checkpoint directory does not exist');
  }
  // Weights, config and tokenizer as from any Hugging Face directory (streamed, any float dtype);
  // a LoRA checkpoint without its own weights reads them from the base it refers to.
  const basePath = join(root, CHECKPOINT_FILES.base);
  const weightsDir =
    !(await exists(join(root, CHECKPOINT_FILES.model))) &&
    !(await exists(join(root, HF_FILES.index))) &&
    (await exists(basePath))
      ? await checkedBaseDir(basePath)
      : root;
  const { model, tokenizer, chat } = await loadPretrained(weightsDir, {
    trainable: options.trainable ?? true,
  });
  const specs = parameterSpecs(model.config);
  const result: LoadedCheckpoint = { model, tokenizer, chat };
  try {
    if (await exists(join(root, ADAPTER_FILES.config))) await loadAdapter(model, root);
    const optimizerPath = join(root, CHECKPOINT_FILES.optimizer);
    const shapes = new Map(specs.map((s) => [s.name, s.shape]));
    for (const [name, v] of model.adapterParameters) shapes.set(name, v.shape);
    if (await exists(optimizerPath))
      result.optimizerState = await readOptimizerState(optimizerPath, shapes);
    const trainerPath = join(root, CHECKPOINT_FILES.trainerState);
    if (await exists(trainerPath)) {
      const state = await readJson(trainerPath, 'trainer_state.json');
      if (typeof state !== 'object' || state === null || Array.isArray(state))
        throw new CheckpointError(trainerPath, 'trainer state must be a JSON object');
      result.trainerState = state as Record<string, unknown>;
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  return result;
}

async function readOptimizerState(
  path: string,
  shapes: ReadonlyMap<string, readonly number[]>,
): Promise<OptimizerState> {
  const { tensors, metadata } = await readSafetensors(path);
  const step = Number(metadata['step']);
  if (!Number.isInteger(step) || step < 0)
    throw new CheckpointError(
      path,
      `metadata.step must be a non-negative integer, got ${JSON.stringify(metadata['step'])}`,
    );
  const firstMoment: tf.NamedTensorMap = {};
  const secondMoment: tf.NamedTensorMap = {};
  try {
    for (const [key, entry] of tensors) {
      const match = /^(.*)\.(exp_avg|exp_avg_sq)$/.exec(key);
      const shape = match === null ? undefined : shapes.get(match[1]!);
      if (match === null || shape === undefined)
        throw new CheckpointError(
          path,
          `unexpected tensor ${key} (not a moment of a model parameter)`,
        );
      if (entry.dtype !== 'F32')
        throw new CheckpointError(path, `${key} has dtype ${entry.dtype}, expected F32`);
      if (entry.shape.join(',') !== shape.join(',')) {
        throw new CheckpointError(
          path,
          `${key} has shape [${entry.shape.join(', ')}], the parameter is [${shape.join(', ')}]`,
        );
      }
      (match[2] === 'exp_avg' ? firstMoment : secondMoment)[match[1]!] = tf.tensor(
        entry.values,
        [...shape],
        'float32',
      );
    }
    for (const name of Object.keys(firstMoment)) {
      if (secondMoment[name] === undefined)
        throw new CheckpointError(path, `${name}.exp_avg_sq is missing`);
    }
    for (const name of Object.keys(secondMoment)) {
      if (firstMoment[name] === undefined)
        throw new CheckpointError(path, `${name}.exp_avg is missing`);
    }
  } catch (error) {
    tf.dispose([...Object.values(firstMoment), ...Object.values(secondMoment)]);
    throw error;
  }
  return { step, firstMoment, secondMoment };
}
