import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  initBackend,
  loadPretrained,
  tf,
  writeRandomHfCheckpoint,
  type CausalLM,
} from '@codereasoner/core-tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLlama31Checkpoint } from '../../../test-support/hf-chat.js';
import { GrpoTrainer } from './trainer.js';

/** A tiny random Llama-3.1 with its real tokenizer files and generation_config.json eos ids. */
const LLAMA31 = { ...tinyLlama31Checkpoint(import.meta.url), maxPositionEmbeddings: 128 };
/** <|end_of_text|>, <|eom_id|>, <|eot_id|>. */
const EOS = LLAMA31.eosTokenIds;
const VOCAB = LLAMA31.vocabSize;

let root: string;
let dir: string;
beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-grpo-pretrained-'));
  dir = join(root, 'llama');
  await writeRandomHfCheckpoint(dir, LLAMA31);
}, 300_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Sets the weights so every position has the same next-token distribution: one raised logit for
 * <|eom_id|> and <|eot_id|>, 0 for every other token (every embedding is e0, attention and MLP
 * outputs are zero, the final norm keeps dimension 0). The raise is picked so that some
 * completions stop at one of the two ids and others run to maxCompletionLength.
 */
function stopSometimes(model: CausalLM): void {
  const hidden = model.config.hiddenSize;
  const logit = Math.log(0.03 * VOCAB) / Math.sqrt(hidden);
  const assign = (name: string, value: tf.Tensor): void => {
    model.parameters.get(name)!.assign(value);
    value.dispose();
  };
  assign(
    'model.embed_tokens.weight',
    tf.tidy(() => tf.oneHot(tf.fill([VOCAB], 0, 'int32'), hidden).asType('float32')),
  );
  assign(
    'model.norm.weight',
    tf.tidy(() => tf.oneHot([0], hidden).reshape([hidden]).asType('float32')),
  );
  for (const [name, variable] of model.parameters)
    if (/\.(o_proj|down_proj)\.weight$/.test(name)) variable.assign(tf.zerosLike(variable));
  const head = new Float32Array(hidden * VOCAB); // memory layout [hidden, vocab]
  head[EOS[1]!] = logit;
  head[EOS[2]!] = logit;
  assign('lm_head.weight', tf.tensor2d(head, [hidden, VOCAB]));
}

describe('GRPO on a pretrained Llama-3.1-layout model', { timeout: 300_000 }, () => {
  it('renders prompts with its chat template and stops rollouts at its eos ids', async () => {
    const { model, tokenizer, chat } = await loadPretrained(dir);
    stopSometimes(model);
    const outDir = join(root, 'run');
    const prompt = [{ role: 'user' as const, content: 'What is f(2)?' }];
    const trainer = new GrpoTrainer({
      policy: model,
      tokenizer,
      chat,
      rewards: [{ name: 'length', fn: ({ completionIds }) => completionIds.map((c) => c.length) }],
      dataset: [{ prompt }, { prompt: [{ role: 'user', content: 'And f(3)?' }] }],
      config: {
        numGenerations: 8,
        generationBatchSize: 16,
        maxCompletionLength: 8,
        maxSteps: 1,
        temperature: 1,
        beta: 0,
        workers: 0,
        seed: 7,
      },
      outDir,
    });
    try {
      await trainer.train();
    } finally {
      trainer.dispose();
      model.dispose();
    }
    const [record] = (await readFile(join(outDir, 'rollouts.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            groups: { completions: { ids: number[]; finishReason: string }[] }[];
          },
      );
    const completions = record!.groups.flatMap((g) => g.completions);
    expect(completions).toHaveLength(16);
    for (const { ids, finishReason } of completions) {
      // An eos id ends a completion (kept as its last token, which the loss trains on); none
      // appears before the end; a completion without one ran to maxCompletionLength.
      const firstEos = ids.findIndex((id) => EOS.includes(id));
      if (finishReason === 'stop') expect(firstEos).toBe(ids.length - 1);
      else expect([firstEos, ids.length]).toEqual([-1, 8]);
    }
    const reasons = new Set(completions.map((c) => c.finishReason));
    expect(reasons).toEqual(new Set(['stop', 'length']));
    const stoppedAt = new Set(
      completions.filter((c) => c.finishReason === 'stop').map((c) => c.ids.at(-1)),
    );
    expect(stoppedAt).toEqual(new Set([128008, 128009]));
    // The prompt the policy saw is Llama-3's, not ChatML: BOS, headers, <|eot_id|>.
    expect(tokenizer.decode(chat.encode(prompt, { addGenerationPrompt: true }).ids)).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is f(2)?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });
});
