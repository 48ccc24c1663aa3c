import { CausalLM, Tokenizer, initBackend } from '@codereasoner/core-tensors';

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
