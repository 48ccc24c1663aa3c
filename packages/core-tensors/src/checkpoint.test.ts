import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { padBatch } from './batch.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { ModelConfig } from './config.js';
import { CheckpointError } from './errors.js';
import { CausalLM } from './model.js';
import { AdamW, computeGradients } from './optimizer.js';
import { readSafetensors, writeSafetensors, type SafetensorsInput } from './safetensors.js';
import { Tokenizer } from './tokenizer.js';

const config: Partial<ModelConfig> = {
  vocabSize: 300,
  hiddenSize: 32,
  intermediateSize: 40,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 32,
};
const tokenizer = Tokenizer.train(
  ['def f(x): return x + 1\n'.repeat(20), 'print(f(2))\n'.repeat(20)],
  { vocabSize: 300 },
);

let dir = '';
beforeAll(async () => {
  await initBackend();
  dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function trainStep(
  model: CausalLM,
  optimizer: AdamW,
  batch: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D },
): number {
  const { loss, grads } = computeGradients(model, () =>
    tf.tidy(
      () =>
        tf.neg(
          tf.mean(model.tokenLogProbs(batch.inputIds, batch.attentionMask).logProbs),
        ) as tf.Scalar,
    ),
  );
  optimizer.applyGradients(grads);
  tf.dispose(grads);
  return loss;
}

describe('checkpoints', () => {
  it('save → load gives identical logits, tokenizer, optimizer state and resumes training exactly', async () => {
    const model = CausalLM.create(
      { ...config, architecture: 'qwen2', tieWordEmbeddings: false },
      { seed: 1 },
    );
    const optimizer = new AdamW({ learningRate: 1e-2 });
    const batch = padBatch(
      [tokenizer.encode('def f(x): return x'), tokenizer.encode('print(f(2))')],
      tokenizer.special.pad,
    );
    trainStep(model, optimizer, batch);
    trainStep(model, optimizer, batch);
    const path = join(dir, 'a');
    await saveCheckpoint(path, {
      model,
      tokenizer,
      optimizer,
      trainerState: { step: 2, rng: { algorithm: 'xoshiro128**', state: [1, 2, 3, 4] } },
    });
    expect((await readdir(path)).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'tokenizer.json',
      'trainer_state.json',
    ]);

    const baseline = tf.memory().numTensors;
    const loaded = await loadCheckpoint(path);
    expect(loaded.model.config).toEqual(model.config);
    expect(loaded.tokenizer.toJSON()).toEqual(tokenizer.toJSON());
    expect(loaded.trainerState).toEqual({
      step: 2,
      rng: { algorithm: 'xoshiro128**', state: [1, 2, 3, 4] },
    });
    const a = model.logits(batch.inputIds, batch.attentionMask);
    const b = loaded.model.logits(batch.inputIds, batch.attentionMask);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([a, b]);

    // resumed optimizer continues bit-for-bit like the uninterrupted one
    const resumed = new AdamW({ learningRate: 1e-2 });
    resumed.setState(loaded.optimizerState!);
    expect(resumed.step).toBe(2);
    tf.dispose([
      ...Object.values(loaded.optimizerState!.firstMoment),
      ...Object.values(loaded.optimizerState!.secondMoment),
    ]);
    const lossA = trainStep(model, optimizer, batch);
    const lossB = trainStep(loaded.model, resumed, batch);
    expect(lossB).toBe(lossA);
    const c = model.logits(batch.inputIds, batch.attentionMask);
    const d = loaded.model.logits(batch.inputIds, batch.attentionMask);
    expect(Array.from(d.dataSync())).toEqual(Array.from(c.dataSync()));
    tf.dispose([c, d]);
    resumed.dispose();
    loaded.model.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    optimizer.dispose();
    model.dispose();
    tf.dispose([batch.inputIds, batch.attentionMask]);
  });

  it('writes Hugging Face Llama names, [out, in] layouts and config.json', async () => {
    const model = CausalLM.create(config, { seed: 2 });
    const path = join(dir, 'hf');
    await saveCheckpoint(path, { model, tokenizer });
    const { tensors, metadata } = await readSafetensors(join(path, 'model.safetensors'));
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toContain('model.layers.1.self_attn.q_proj.weight');
    expect(tensors.has('lm_head.weight')).toBe(false); // tied
    expect(tensors.get('model.embed_tokens.weight')!.shape).toEqual([300, 32]);
    expect(tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([16, 32]);
    expect(tensors.get('model.layers.0.mlp.down_proj.weight')!.shape).toEqual([32, 40]);
    // file [out, in] is the transpose of the in-memory [in, out]
    const memory = model.parameters
      .get('model.layers.0.mlp.down_proj.weight')!
      .arraySync() as number[][];
    const file = tensors.get('model.layers.0.mlp.down_proj.weight')!.values;
    expect(file[3 * 40 + 7]).toBe(memory[7]![3]);
    const hf = JSON.parse(await readFile(join(path, 'config.json'), 'utf8'));
    expect(hf).toMatchObject({
      architectures: ['LlamaForCausalLM'],
      hidden_size: 32,
      num_key_value_heads: 2,
      eos_token_id: tokenizer.special.eos,
    });
    model.dispose();
  });

  describe('rejects mismatched or damaged checkpoints with CheckpointError', () => {
    let source = '';
    beforeAll(async () => {
      const model = CausalLM.create(config, { seed: 3 });
      source = join(dir, 'source');
      await saveCheckpoint(source, { model, tokenizer, optimizer: new AdamW({ learningRate: 1 }) });
      model.dispose();
    });

    async function damaged(name: string, damage: (path: string) => Promise<void>): Promise<string> {
      const path = join(dir, name);
      await rm(path, { recursive: true, force: true });
      await mkdir(path);
      for (const file of await readdir(source))
        await writeFile(join(path, file), await readFile(join(source, file)));
      await damage(path);
      return path;
    }

    async function rewriteWeights(
      path: string,
      edit: (tensors: Record<string, SafetensorsInput>) => void,
    ): Promise<void> {
      const { tensors } = await readSafetensors(join(path, 'model.safetensors'));
      const plain: Record<string, SafetensorsInput> = {};
      for (const [name, t] of tensors)
        plain[name] = { dtype: t.dtype as 'F32', shape: t.shape, values: t.values };
      edit(plain);
      await writeSafetensors(join(path, 'model.safetensors'), plain);
    }

    it.each([
      ['a missing directory', async (p: string) => rm(p, { recursive: true }), /does not exist/],
      [
        'a truncated weights file',
        async (p: string) => {
          const bytes = await readFile(join(p, 'model.safetensors'));
          await writeFile(join(p, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
        },
        /truncated/,
      ],
      [
        'a config that no longer matches the weights',
        async (p: string) => {
          const hf = JSON.parse(await readFile(join(p, 'config.json'), 'utf8'));
          await writeFile(join(p, 'config.json'), JSON.stringify({ ...hf, intermediate_size: 48 }));
        },
        /mlp.gate_proj.weight has shape \[40, 32\], config.json implies \[48, 32\]/,
      ],
      [
        'a missing tensor',
        async (p: string) =>
          rewriteWeights(p, (t) => delete t['model.layers.1.mlp.up_proj.weight']),
        /missing model.layers.1.mlp.up_proj.weight/,
      ],
      [
        'an unexpected tensor',
        async (p: string) =>
          rewriteWeights(
            p,
            (t) => (t['model.extra.weight'] = { shape: [1], values: new Float32Array(1) }),
          ),
        /unexpected model.extra.weight/,
      ],
      [
        'a stored tied head of the wrong shape',
        async (p: string) =>
          rewriteWeights(
            p,
            (t) => (t['lm_head.weight'] = { shape: [1], values: new Float32Array(1) }),
          ),
        /lm_head.weight has shape \[1\]/,
      ],
      [
        'an integer weight',
        async (p: string) =>
          rewriteWeights(
            p,
            (t) =>
              (t['model.norm.weight'] = { dtype: 'I32', shape: [32], values: new Int32Array(32) }),
          ),
        /dtype I32, expected a float/,
      ],
      [
        'a NaN weight',
        async (p: string) =>
          rewriteWeights(p, (t) => t['model.norm.weight']!.values.fill(NaN, 3, 4)),
        /non-finite value at index 3/,
      ],
      [
        'a corrupted tokenizer',
        async (p: string) => writeFile(join(p, 'tokenizer.json'), '{"model": '),
        /tokenizer.json is not valid JSON/,
      ],
      [
        'an unsupported config',
        async (p: string) =>
          writeFile(join(p, 'config.json'), JSON.stringify({ model_type: 'gpt2' })),
        /model_type/,
      ],
      [
        'optimizer moments of the wrong shape',
        async (p: string) => {
          const { tensors, metadata } = await readSafetensors(join(p, 'optimizer.safetensors'));
          const plain: Record<string, SafetensorsInput> = {};
          for (const [name, t] of tensors) plain[name] = { shape: t.shape, values: t.values };
          plain['model.norm.weight.exp_avg'] = { shape: [31], values: new Float32Array(31) };
          await writeSafetensors(join(p, 'optimizer.safetensors'), plain, metadata);
        },
        /model.norm.weight.exp_avg has shape \[31\]/,
      ],
    ])('%s', async (name, damage, message) => {
      const path = await damaged(name.replace(/\W+/g, '-'), damage);
      const baseline = tf.memory().numTensors;
      const error = await loadCheckpoint(path).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as CheckpointError).message).toMatch(message);
      expect((error as CheckpointError).path.startsWith(path)).toBe(true);
      expect(tf.memory().numTensors).toBe(baseline);
    });
  });

  it('replaces an existing checkpoint atomically and recovers the previous copy after a crash between renames', async () => {
    const path = join(dir, 'atomic');
    const first = CausalLM.create(config, { seed: 10 });
    const second = CausalLM.create(config, { seed: 11 });
    await saveCheckpoint(path, { model: first, tokenizer, trainerState: { step: 1 } });
    await saveCheckpoint(path, { model: second, tokenizer, trainerState: { step: 2 } });
    expect(await loadCheckpoint(path).then((c) => (c.model.dispose(), c.trainerState))).toEqual({
      step: 2,
    });
    expect((await readdir(dir)).filter((f) => f.includes('atomic'))).toEqual(['atomic']);
    // a crash after `dir → dir.previous` and before `temp → dir` leaves only the previous copy
    await rename(path, `${path}.previous`);
    expect(await loadCheckpoint(path).then((c) => (c.model.dispose(), c.trainerState))).toEqual({
      step: 2,
    });
    await rename(`${path}.previous`, path);
    // a failing save leaves the existing checkpoint untouched
    const big = Tokenizer.train(
      [
        'abcdefgh ijklmnop qrstuvwx'.repeat(50) +
          Array.from({ length: 400 }, (_, i) => `w${i}x${i * 7}`).join(' '),
      ],
      { vocabSize: 400 },
    );
    expect(big.vocabSize).toBeGreaterThan(300);
    await expect(saveCheckpoint(path, { model: first, tokenizer: big })).rejects.toThrow(
      CheckpointError,
    );
    expect(await loadCheckpoint(path).then((c) => (c.model.dispose(), c.trainerState))).toEqual({
      step: 2,
    });
    first.dispose();
    second.dispose();
  });
});
