import { CausalLM, Tokenizer, initBackend } from '@codereasoner/core-tensors';
import type { GrpoConfigInput } from '../config.js';
import type { RewardSpec } from '../rewards.js';

/** The auto backend (wasm here; tfjs-node where it is installed). Not 'cpu': its gather gradient is quadratic. */
export async function setUpBackend(): Promise<void> {
  await initBackend();
}

/** A byte-level tokenizer with no merges beyond the bytes (259 tokens: 256 bytes + 3 specials). */
export function tinyTokenizer(): Tokenizer {
  return Tokenizer.train(['say a'], { vocabSize: 259 });
}

/** A one-layer model small enough that a GRPO step takes tens of milliseconds. */
export function tinyPolicy(tokenizer: Tokenizer, seed = 1): CausalLM {
  return CausalLM.create(
    {
      vocabSize: tokenizer.vocabSize,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
      maxPositionEmbeddings: 64,
    },
    { seed },
  );
}

export const TINY_DATASET = [
  { prompt: 'say a', answer: 'a' },
  { prompt: 'hello', answer: 'a' },
  { prompt: 'world', answer: 'a' },
  { prompt: [{ role: 'user' as const, content: 'a?' }], answer: 'a' },
];

/** One point per `a` token, over the completion's length (sparse: a fresh policy rarely emits one). */
export function emitAReward(tokenizer: Tokenizer): RewardSpec {
  const target = tokenizer.encode('a')[0]!;
  return {
    name: 'emit_a',
    fn: ({ completionIds }) =>
      completionIds.map((ids) => ids.filter((t) => t === target).length / ids.length),
  };
}

/** A reward every completion differs on (its first token), so groups are informative from the start. */
export const FIRST_TOKEN_REWARD: RewardSpec = {
  name: 'first_token',
  fn: ({ completionIds }) => completionIds.map((ids) => (ids[0]! % 7) / 7),
};

/** Two groups of 4 completions of at most 6 tokens per step. */
export const TINY_CONFIG: GrpoConfigInput = {
  numGenerations: 4,
  generationBatchSize: 8,
  maxCompletionLength: 6,
  learningRate: 1e-2,
  seed: 7,
};
