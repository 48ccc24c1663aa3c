import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallPythonTokenizer, writeRandomHfCheckpoint } from '@codereasoner/core-tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cr } from './testing/spawn-cr.js';

// End to end through the built `cr`: the tiny preset's pipeline started from a local Hugging Face
// directory (`--model`) with LoRA. The directory is a tiny random Qwen3-layout model whose
// tokenizer_config.json carries a chat template that is not ChatML (turns end with
// <|endoftext|>, never <|im_end|>; the only eos id is <|endoftext|>'s), so every stage must use
// the model's own template and eos ids.
const TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ': ' + message['content'] + '<|endoftext|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant: ' }}{% endif %}";

let root: string;
let modelDir: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cr-run-pretrained-'));
  modelDir = join(root, 'model');
  const tokenizer = smallPythonTokenizer(384);
  const eos = tokenizer.tokenToId('<|endoftext|>')!;
  await writeRandomHfCheckpoint(modelDir, {
    family: 'qwen3',
    vocabSize: 384,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    headDim: 16,
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: true,
    dtype: 'BF16',
    tokenizer,
    eosTokenIds: [eos],
    seed: 2,
  });
  await writeFile(
    join(modelDir, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast',
      eos_token: '<|endoftext|>',
      pad_token: '<|endoftext|>',
      chat_template: TEMPLATE,
    }),
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('cr run-all --model <hf dir> (tiny preset, LoRA)', () => {
  it('runs every stage on the pretrained model in its own chat format and exports it', async () => {
    const out = join(root, 'run');
    const config = join(root, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        preset: 'tiny',
        // The model's small tokenizer (trained on a few lines, not on the corpus) spends more
        // tokens per chain than the tokenizer a from-scratch run trains.
        sft: { maxSeqLen: 4096 },
        lora: { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] },
      }),
    );
    const run = await cr(['run-all', '--config', config, '--model', modelDir, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    for (const stage of ['data', 'sft', 'grpo', 'eval'])
      expect(existsSync(join(out, stage, '.done')), `${stage} marker`).toBe(true);

    // SFT and GRPO checkpoints hold adapters and a reference to the base, and the model's own
    // template (not ChatML) travels with them.
    const sftMarker = JSON.parse(await readFile(join(out, 'sft', '.done'), 'utf8')) as {
      artifacts: { checkpoint: string };
    };
    const grpoMarker = JSON.parse(await readFile(join(out, 'grpo', '.done'), 'utf8')) as {
      artifacts: { checkpoint: string };
    };
    for (const checkpoint of [sftMarker.artifacts.checkpoint, grpoMarker.artifacts.checkpoint]) {
      const dir = join(out, checkpoint);
      const files = await readdir(dir);
      expect(files).toEqual(
        expect.arrayContaining(['adapter_model.safetensors', 'base_model.json']),
      );
      expect(files).not.toContain('model.safetensors');
      const tokenizerConfig = JSON.parse(
        await readFile(join(dir, 'tokenizer_config.json'), 'utf8'),
      ) as { chat_template: string };
      expect(tokenizerConfig.chat_template).toBe(TEMPLATE);
    }
    // GRPO's rollouts were prompted in the template's layout and stopped at its one eos id.
    const rollouts = (await readFile(join(out, 'grpo', 'train', 'rollouts.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            groups: { completions: { ids: number[]; finishReason: string }[] }[];
          },
      );
    const eos = smallPythonTokenizer(384).tokenToId('<|endoftext|>')!;
    const imEnd = smallPythonTokenizer(384).tokenToId('<|im_end|>')!;
    for (const { ids, finishReason } of rollouts.flatMap((r) =>
      r.groups.flatMap((g) => g.completions),
    )) {
      if (finishReason === 'stop') expect(ids.at(-1)).toBe(eos);
      expect(ids.slice(0, finishReason === 'stop' ? -1 : undefined)).not.toContain(eos);
      // <|im_end|> is an ordinary token for this template: it does not end a rollout.
      if (ids.includes(imEnd)) expect(ids.at(-1) === imEnd && finishReason === 'stop').toBe(false);
    }
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as {
      evaluation: { model: string }[];
    };
    expect(summary.evaluation.map((e) => e.model)).toEqual(['base', 'sft', 'grpo']);

    // The trained model back in the source's layout (bf16, LoRA merged).
    const exported = join(root, 'exported');
    const exit = await cr([
      'export',
      '--checkpoint',
      join(out, grpoMarker.artifacts.checkpoint),
      '--out',
      exported,
    ]);
    expect(exit.code, exit.stderr).toBe(0);
    const bytes = await readFile(join(exported, 'model.safetensors'));
    const header = JSON.parse(
      bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'),
    ) as Record<string, { dtype?: string }>;
    const dtypes = new Set(
      Object.entries(header)
        .filter(([name]) => name !== '__metadata__')
        .map(([, entry]) => entry.dtype),
    );
    expect(dtypes).toEqual(new Set(['BF16']));
  }, 1_200_000);
});
