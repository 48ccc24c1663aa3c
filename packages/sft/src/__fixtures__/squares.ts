import { Tokenizer } from '@codereasoner/core-tensors';
import type { SftRecord } from '../dataset.js';

/**
 * A small fixed set: "what is n squared" (n = 0..11) with a short chain, so the loss has something
 * to learn. `chain(n)` is the text inside <think>.
 */
export function squareRecords(chain: (n: number) => string = (n) => `${n}*${n}`): SftRecord[] {
  return Array.from({ length: 12 }, (_, n) => {
    const prompt = [
      { role: 'system' as const, content: 'Answer.' },
      { role: 'user' as const, content: `sq(${n})?` },
    ];
    return {
      id: `t${n}`,
      type: 'output',
      teacher: 'test',
      messages: [
        ...prompt,
        { role: 'assistant', content: `<think>${chain(n)}</think><answer>${n * n}</answer>` },
      ],
      answer_messages: [...prompt, { role: 'assistant', content: `<answer>${n * n}</answer>` }],
    };
  });
}

/** A 300-token BPE trained on the records' messages. */
export function tokenizerFor(records: readonly SftRecord[]): Tokenizer {
  return Tokenizer.train(
    records.flatMap((record) => record.messages.map((message) => message.content)),
    { vocabSize: 300 },
  );
}

/** A one-layer model for those records (the vocabulary padded past the tokenizer's). */
export const SQUARES_MODEL_CONFIG = {
  vocabSize: 320,
  hiddenSize: 32,
  intermediateSize: 64,
  numHiddenLayers: 1,
  numAttentionHeads: 2,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 96,
};
