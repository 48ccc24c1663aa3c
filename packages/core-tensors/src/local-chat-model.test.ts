import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { padBatch } from './batch.js';
import { encodeChat } from './chat.js';
import { ChatTemplate } from './chat-template.js';
import { AdamW, computeGradients } from './optimizer.js';
import { LocalChatModel } from './local-chat-model.js';
import { CausalLM } from './model.js';
import { Tokenizer } from './tokenizer.js';

const tokenizer = Tokenizer.train(
  ['<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\nhi<|im_end|>\n'.repeat(10)],
  { vocabSize: 280 },
);

beforeAll(async () => {
  await initBackend();
});

/** One layer, hidden 32, over the tokenizer above: learns one short answer in a few steps. */
function tinyModel(): CausalLM {
  return CausalLM.create({
    vocabSize: 280,
    hiddenSize: 32,
    intermediateSize: 32,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    maxPositionEmbeddings: 64,
  });
}

/** Trains `model` on the one sequence `ids` (AdamW, lr 1e-2) until its loss is 0.02 or 200 steps; gives the last loss. */
function memorize(model: CausalLM, ids: number[]): number {
  const optimizer = new AdamW({ learningRate: 1e-2, weightDecay: 0 });
  const { inputIds, attentionMask } = padBatch([ids], tokenizer.special.pad);
  let loss = Infinity;
  for (let step = 0; step < 200 && loss > 0.02; step++) {
    let grads: tf.NamedTensorMap;
    ({ grads, loss } = computeGradients(model, () =>
      tf.tidy(
        () => tf.neg(tf.mean(model.tokenLogProbs(inputIds, attentionMask).logProbs)) as tf.Scalar,
      ),
    ));
    optimizer.applyGradients(grads);
    tf.dispose(grads);
  }
  tf.dispose([inputIds, attentionMask]);
  optimizer.dispose();
  return loss;
}

describe('LocalChatModel', () => {
  it('returns n samples per request with finish reasons, reproducibly per seed', async () => {
    const model = tinyModel();
    const chat = new LocalChatModel(model, tokenizer, { id: 'tiny' });
    expect(chat.id).toBe('tiny');
    const request = {
      messages: [{ role: 'user' as const, content: 'hello' }],
      n: 3,
      maxTokens: 6,
      temperature: 1,
      seed: 4,
    };
    const [a] = await chat.complete([request]);
    const [b] = await chat.complete([request]);
    expect(a!.texts).toHaveLength(3);
    expect(a!.finishReasons).toHaveLength(3);
    expect(b).toEqual(a);
    expect(new Set(a!.texts).size).toBeGreaterThan(1);
    const [c] = await chat.complete([{ ...request, seed: 5 }]);
    expect(c!.texts).not.toEqual(a!.texts);
    // batched with other requests (other prompts, other settings), a request's samples are unchanged
    const mixed = await chat.complete([
      {
        messages: [{ role: 'user', content: 'hello there, a longer prompt' }],
        n: 2,
        maxTokens: 6,
        temperature: 1,
        seed: 9,
      },
      request,
      { messages: [{ role: 'user', content: 'x' }], n: 1, maxTokens: 3, temperature: 0 },
    ]);
    expect(mixed[1]).toEqual(a);
    expect(mixed[0]!.texts).toHaveLength(2);
    expect(mixed[2]!.texts).toHaveLength(1);
    model.dispose();
  });

  it('stops at <|im_end|> and drops it from the text (after learning to answer)', async () => {
    const model = tinyModel();
    const { ids } = encodeChat(tokenizer, [
      { role: 'user', content: 'hello there' },
      { role: 'assistant', content: 'hi' },
    ]);
    expect(memorize(model, ids)).toBeLessThan(0.05);
    const chat = new LocalChatModel(model, tokenizer);
    const [response] = await chat.complete([
      { messages: [{ role: 'user', content: 'hello there' }], temperature: 0, maxTokens: 5 },
    ]);
    expect(response).toEqual({ texts: ['hi'], finishReasons: ['stop'] });
    // the same answer from onnxruntime's kernels
    const onnx = new LocalChatModel(model, tokenizer, { engine: 'onnx' });
    const [fromOnnx] = await onnx.complete([
      { messages: [{ role: 'user', content: 'hello there' }], temperature: 0, maxTokens: 5 },
    ]);
    expect(model.lastGenerationEngine?.engine).toBe('onnx');
    expect(fromOnnx).toEqual({ texts: ['hi'], finishReasons: ['stop'] });
    model.dispose();
  });

  it('renders prompts with a chat template and stops at its eos ids', async () => {
    // A template unlike ChatML: turns end with <|endoftext|>, which is the only stop id.
    const chat = ChatTemplate.fromConfig(
      {
        tokenizerConfig: {
          eos_token: '<|endoftext|>',
          chat_template:
            "{% for m in messages %}{{ '<|im_start|>' + m.role + ': ' + m.content + eos_token }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant: ' }}{% endif %}",
        },
      },
      tokenizer,
    );
    expect(chat.stopTokenIds).toEqual([tokenizer.special.eos]);
    const model = tinyModel();
    const { ids, assistantMask } = chat.encode([
      { role: 'user', content: 'hello there' },
      { role: 'assistant', content: 'hi' },
    ]);
    expect(tokenizer.decode(ids.filter((_, i) => assistantMask[i] === 1))).toBe('hi<|endoftext|>');
    expect(memorize(model, ids)).toBeLessThan(0.05);
    const [response] = await new LocalChatModel(model, tokenizer, { chat }).complete([
      { messages: [{ role: 'user', content: 'hello there' }], temperature: 0, maxTokens: 5 },
    ]);
    expect(response).toEqual({ texts: ['hi'], finishReasons: ['stop'] });
    model.dispose();
  });

  it('cuts texts at stop strings', async () => {
    const model = tinyModel();
    const chat = new LocalChatModel(model, tokenizer);
    const [free] = await chat.complete([
      { messages: [{ role: 'user', content: 'hi' }], temperature: 0, maxTokens: 8 },
    ]);
    const text = free!.texts[0]!;
    if (text.length >= 2) {
      const stop = text.slice(1, 2);
      const [cut] = await chat.complete([
        { messages: [{ role: 'user', content: 'hi' }], temperature: 0, maxTokens: 8, stop: [stop] },
      ]);
      expect(cut!.texts[0]).toBe(text.slice(0, text.indexOf(stop)));
      expect(cut!.finishReasons[0]).toBe('stop');
    }
    expect(
      () =>
        new LocalChatModel(
          CausalLM.create({
            vocabSize: 100,
            hiddenSize: 32,
            numAttentionHeads: 2,
            numKeyValueHeads: 1,
          }),
          tokenizer,
        ),
    ).toThrow(`tokenizer has ${tokenizer.vocabSize} tokens`);
    model.dispose();
  });
});
