import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChatTemplate,
  initBackend,
  loadCheckpoint,
  loadPretrained,
  writeRandomHfCheckpoint,
  type CausalLM,
  type ChatMessage,
  type Tokenizer,
} from '@codereasoner/core-tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  maskedRuns,
  tinyLlama31Checkpoint,
  tinyQwen3Checkpoint,
} from '../../../test-support/hf-chat.js';
import { encodeExamples } from './batching.js';
import type { SftRecord } from './dataset.js';
import { latestCheckpoint } from './run-state.js';
import { trainSft } from './trainer.js';

let root: string;
let llamaDir: string;
let qwenDir: string;
beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-sft-pretrained-'));
  llamaDir = join(root, 'llama');
  qwenDir = join(root, 'qwen3');
  await writeRandomHfCheckpoint(llamaDir, tinyLlama31Checkpoint(import.meta.url));
  await writeRandomHfCheckpoint(qwenDir, tinyQwen3Checkpoint(import.meta.url));
}, 300_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You reason about code.' },
  { role: 'user', content: 'What is f(2)?' },
  { role: 'assistant', content: 'It returns 5.' },
  { role: 'user', content: 'And f(3)?' },
  { role: 'assistant', content: 'It returns 7.' },
];

describe('SFT on a pretrained model uses its own chat template', { timeout: 300_000 }, () => {
  // The expected texts are written by hand from the two templates in the fixtures'
  // tokenizer_config.json: Llama-3.1's (the short Llama-3 template this package ships: BOS,
  // headers, trimmed contents) closes a turn with <|eot_id|>; Qwen3 writes an (empty)
  // thinking block before the last assistant turn, which the model produces after its prompt.
  it.each([
    [
      'Llama-3.1',
      () => llamaDir,
      ['It returns 5.<|eot_id|>', 'It returns 7.<|eot_id|>'],
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou reason about code.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is f(2)?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt returns 5.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd f(3)?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt returns 7.<|eot_id|>',
    ],
    [
      'Qwen3',
      () => qwenDir,
      ['It returns 5.<|im_end|>', '<think>\n\n</think>\n\nIt returns 7.<|im_end|>'],
      '<|im_start|>system\nYou reason about code.<|im_end|>\n<|im_start|>user\nWhat is f(2)?<|im_end|>\n<|im_start|>assistant\nIt returns 5.<|im_end|>\n<|im_start|>user\nAnd f(3)?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nIt returns 7.<|im_end|>',
    ],
  ])(
    '%s: the assistant masks are the assistant spans of the rendered template',
    async (_family, dir, spans, text) => {
      const { model, tokenizer, chat } = await loadPretrained(dir());
      model.dispose();
      expect(chat).toBeInstanceOf(ChatTemplate);
      const { examples } = encodeExamples([conversation], chat, 4096);
      const [example] = examples;
      expect(maskedRuns(tokenizer, example!.ids, example!.assistantMask)).toEqual(spans);
      // The ids are the whole rendering (up to the last end of turn), not ChatML.
      expect(tokenizer.decode(example!.ids)).toBe(text);
    },
  );

  it('Llama-3.1 with LoRA: trains, checkpoints only the adapters, resumes exactly, keeps the template', async () => {
    const records: SftRecord[] = Array.from({ length: 6 }, (_, n) => {
      const prompt = [{ role: 'user' as const, content: `sq(${n})?` }];
      const answer = { role: 'assistant' as const, content: `<answer>${n * n}</answer>` };
      return {
        id: `t${n}`,
        type: 'output',
        teacher: 'test',
        messages: [...prompt, answer],
        answer_messages: [...prompt, answer],
      };
    });
    const config = { steps: 4, batchSize: 2, learningRate: 1e-2, checkpointEvery: 2, seed: 5 };
    const lora = {
      r: 2,
      alpha: 4,
      dropout: 0.1,
      targetModules: ['q_proj' as const, 'v_proj' as const],
    };
    const adapted = async (
      seed = 1,
    ): Promise<{ model: CausalLM; tokenizer: Tokenizer; chat: ChatTemplate }> => {
      const loaded = await loadPretrained(llamaDir);
      loaded.model.addAdapters(lora, { seed });
      return { ...loaded, chat: loaded.chat as ChatTemplate };
    };
    const adapterValues = (model: CausalLM): number[][] =>
      [...model.adapterParameters.values()].map((v) => Array.from(v.dataSync()));

    const straight = await adapted();
    await trainSft({ ...straight, train: records, outDir: join(root, 'straight'), config });

    const outDir = join(root, 'interrupted');
    const crashing = await adapted();
    await trainSft({
      ...crashing,
      train: records,
      outDir,
      config,
      onMetrics: (metric) => {
        if (metric.step === 3) throw new Error('simulated crash');
      },
    }).catch(() => undefined);
    crashing.model.dispose();
    const checkpoint = await latestCheckpoint(outDir);
    expect(checkpoint?.step).toBe(2);
    const files = await readdir(checkpoint!.dir);
    // Adapters and a reference to the bf16 base, not a float32 copy of its 4M parameters.
    expect(files).toEqual(
      expect.arrayContaining([
        'adapter_model.safetensors',
        'base_model.json',
        'tokenizer_config.json',
      ]),
    );
    expect(files).not.toContain('model.safetensors');

    const resumed = await adapted(42); // other adapter values: the checkpoint's replace them
    const result = await trainSft({ ...resumed, train: records, outDir, config });
    expect(result.resumedFrom).toBe(2);
    expect(adapterValues(resumed.model)).toEqual(adapterValues(straight.model));

    const final = await loadCheckpoint(result.checkpointDir);
    try {
      expect(final.chat).toBeInstanceOf(ChatTemplate);
      expect(final.chat.stopTokenIds).toEqual([128001, 128008, 128009]);
      expect(adapterValues(final.model)).toEqual(adapterValues(straight.model));
    } finally {
      final.model.dispose();
      straight.model.dispose();
      resumed.model.dispose();
    }
  });
});
