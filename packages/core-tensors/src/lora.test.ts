import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { CheckpointError } from './errors.js';
import { loadPretrained, savePretrained } from './hf-model.js';
import { smallPythonTokenizer, writeRandomHfCheckpoint } from './hf-random.js';
import {
  ADAPTER_FILES,
  loadAdapter,
  readAdapterConfig,
  resolveLoraConfig,
  saveAdapter,
} from './lora.js';
import type { CausalLM } from './model.js';
import { AdamW, computeGradients } from './optimizer.js';
import { readSafetensorsHeader } from './safetensors.js';

let root: string;
let base: string;
const tokenizer = smallPythonTokenizer(300);
const ids = tokenizer.encode('def f(x):\n    return x + 1\n');

beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-lora-'));
  base = join(root, 'base');
  await writeRandomHfCheckpoint(base, {
    family: 'qwen3',
    vocabSize: 320,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 8,
    maxPositionEmbeddings: 128,
    tieWordEmbeddings: true,
    dtype: 'BF16',
    tokenizer,
    seed: 7,
  });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function input(): tf.Tensor2D {
  return tf.tensor2d([ids], undefined, 'int32');
}

function logits(model: CausalLM): Float32Array {
  return tf.tidy(() => model.logits(input()).dataSync() as Float32Array);
}

function nll(model: CausalLM): tf.Scalar {
  const x = input();
  const mask = tf.onesLike(x).toFloat() as tf.Tensor2D;
  return tf.neg(tf.mean(model.tokenLogProbs(x, mask).logProbs)) as tf.Scalar;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const lora = resolveLoraConfig({
  r: 4,
  alpha: 8,
  targetModules: ['q_proj', 'v_proj', 'o_proj', 'down_proj'],
});

/** Adapters trained a few AdamW steps, so B ≠ 0 and every path is exercised. */
async function trainedLoraModel(): Promise<{ model: CausalLM; baseLogits: Float32Array }> {
  const { model } = await loadPretrained(base);
  const baseLogits = logits(model);
  model.addAdapters(lora, { seed: 3 });
  const optimizer = new AdamW({ learningRate: 1e-2 });
  for (let i = 0; i < 5; i++) {
    const { grads } = computeGradients(model, () => nll(model));
    optimizer.applyGradients(grads);
    tf.dispose(grads);
  }
  return { model, baseLogits };
}

describe('LoRA adapters', () => {
  it('start as the identity, train only adapter weights, and leave the base bit for bit', async () => {
    const { model } = await loadPretrained(base);
    const before = logits(model);
    const baseValues = new Map([...model.parameters].map(([n, v]) => [n, v.dataSync().slice()]));
    model.addAdapters(lora, { seed: 1 });
    try {
      expect(Array.from(logits(model))).toEqual(Array.from(before));
      const names = model.trainableVariables.map((v) => v.name.slice(v.name.indexOf('/') + 1));
      expect(names).toHaveLength(2 * 2 * 4);
      expect(names).toContain('model.layers.1.mlp.down_proj.lora_B.weight');
      expect(names.every((n) => /\.lora_[AB]\.weight$/.test(n))).toBe(true);
      const optimizer = new AdamW({ learningRate: 1e-2 });
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const { loss, grads } = computeGradients(model, () => nll(model));
        expect(Object.keys(grads).every((k) => k.includes('.lora_'))).toBe(true);
        optimizer.applyGradients(grads);
        tf.dispose(grads);
        losses.push(loss);
      }
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      for (const [name, v] of model.parameters) expect(v.dataSync()).toEqual(baseValues.get(name));
      expect(Object.keys(optimizer.getState().firstMoment).every((k) => k.includes('.lora_'))).toBe(
        true,
      );
    } finally {
      model.dispose();
    }
  });

  it('gradients match finite differences of the loss', async () => {
    const { model } = await trainedLoraModel();
    try {
      const { grads } = computeGradients(model, () => nll(model));
      const name = [...model.adapterParameters.keys()].find((n) =>
        n.includes('layers.0.self_attn.v_proj.lora_A'),
      )!;
      const variable = model.adapterParameters.get(name)!;
      const analytic = grads[variable.name]!.dataSync();
      const values = variable.dataSync().slice();
      const eps = 1e-2;
      for (const index of [0, 5, 17]) {
        const at = (delta: number): number => {
          const copy = values.slice();
          copy[index]! += delta;
          variable.assign(tf.tensor(copy, variable.shape));
          return tf.tidy(() => nll(model).dataSync()[0]!);
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        expect(Math.abs(numeric - analytic[index]!)).toBeLessThan(
          2e-3 * Math.max(1, Math.abs(numeric)),
        );
      }
      variable.assign(tf.tensor(values, variable.shape));
      tf.dispose(grads);
    } finally {
      model.dispose();
    }
  });

  it('withoutAdapters and clone() give the base model, sharing its weights', async () => {
    const { model, baseLogits } = await trainedLoraModel();
    try {
      const adapted = logits(model);
      expect(maxDiff(adapted, baseLogits)).toBeGreaterThan(1e-3);
      expect(Array.from(model.withoutAdapters(() => logits(model)))).toEqual(
        Array.from(baseLogits),
      );
      const reference = model.clone();
      expect(Array.from(logits(reference))).toEqual(Array.from(baseLogits));
      expect(reference.loraConfig).toBeUndefined();
      reference.dispose();
      expect(Array.from(logits(model))).toEqual(Array.from(adapted));
    } finally {
      model.dispose();
    }
  });

  it('merging folds W + (alpha/r)·A·B into the weights', async () => {
    const { model } = await trainedLoraModel();
    try {
      const adapted = logits(model);
      model.mergeAdapters();
      expect(model.loraConfig).toBeUndefined();
      expect(maxDiff(logits(model), adapted)).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });

  it('dropout applies only when enabled', async () => {
    const { model } = await trainedLoraModel();
    try {
      model.removeAdapters();
      model.addAdapters({ ...lora, dropout: 0.5 }, { seed: 1 });
      // B = 0 again: give it values so dropout on the adapter input changes the output.
      for (const [name, v] of model.adapterParameters)
        if (name.includes('lora_B')) v.assign(tf.fill(v.shape, 0.05));
      const plain = logits(model);
      expect(Array.from(logits(model))).toEqual(Array.from(plain));
      model.adapterDropout = true;
      expect(maxDiff(logits(model), plain)).toBeGreaterThan(1e-4);
    } finally {
      model.dispose();
    }
  });
});

describe('PEFT format', () => {
  it('saves adapter_config.json and adapter_model.safetensors with PEFT names and layouts, and loads them back', async () => {
    const { model } = await trainedLoraModel();
    const dir = join(root, 'adapter');
    await (await import('node:fs/promises')).mkdir(dir, { recursive: true });
    try {
      await saveAdapter(dir, model, { baseModelNameOrPath: base });
      const config = JSON.parse(await readFile(join(dir, ADAPTER_FILES.config), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(config).toMatchObject({
        peft_type: 'LORA',
        task_type: 'CAUSAL_LM',
        r: 4,
        lora_alpha: 8,
        lora_dropout: 0,
        bias: 'none',
        target_modules: ['down_proj', 'o_proj', 'q_proj', 'v_proj'],
        base_model_name_or_path: base,
      });
      const header = await readSafetensorsHeader(join(dir, ADAPTER_FILES.weights));
      // PEFT: lora_A is Linear(in, r) → weight [r, in]; lora_B is Linear(r, out) → [out, r].
      expect(
        header['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'],
      ).toMatchObject({
        dtype: 'F32',
        shape: [4, 32],
      });
      expect(
        header['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight'],
      ).toMatchObject({
        shape: [32, 4],
      });
      expect(
        header['base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight'],
      ).toMatchObject({
        shape: [16, 4],
      });
      expect(header['base_model.model.model.layers.1.mlp.down_proj.lora_A.weight']).toMatchObject({
        shape: [4, 64],
      });
      expect(Object.keys(header).filter((k) => k !== '__metadata__')).toHaveLength(16);

      const fresh = (await loadPretrained(base)).model;
      try {
        await loadAdapter(fresh, dir);
        expect(Array.from(logits(fresh))).toEqual(Array.from(logits(model)));
      } finally {
        fresh.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  it('refuses adapter configs it cannot reproduce, naming the field', async () => {
    const dir = join(root, 'dora');
    await (await import('node:fs/promises')).mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, ADAPTER_FILES.config),
      JSON.stringify({
        peft_type: 'LORA',
        r: 4,
        lora_alpha: 8,
        target_modules: ['q_proj'],
        use_dora: true,
      }),
    );
    await expect(readAdapterConfig(dir)).rejects.toThrow('/use_dora');
    await writeFile(
      join(dir, ADAPTER_FILES.config),
      JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: 'q_proj|v_proj' }),
    );
    await expect(readAdapterConfig(dir)).rejects.toThrow(CheckpointError);
  });

  it('merge-and-export writes a plain HF model computing what base + adapters computed', async () => {
    const { model } = await trainedLoraModel();
    const { info } = await loadPretrained(base).then((l) => {
      l.model.dispose();
      return l;
    });
    const out = join(root, 'merged');
    try {
      await savePretrained(out, model, { info, dtype: 'F32' });
      const merged = await loadPretrained(out);
      try {
        expect(merged.model.loraConfig).toBeUndefined();
        expect(maxDiff(logits(merged.model), logits(model))).toBeLessThan(1e-4);
      } finally {
        merged.model.dispose();
      }
      expect(model.loraConfig).toBeDefined(); // the exported model itself is unchanged
    } finally {
      model.dispose();
    }
  });

  it('training checkpoints hold the adapters with their optimizer moments and refer to the unchanged base', async () => {
    const { model } = await trainedLoraModel();
    const optimizer = new AdamW({ learningRate: 1e-2 });
    const { grads } = computeGradients(model, () => nll(model));
    optimizer.applyGradients(grads);
    tf.dispose(grads);
    const dir = join(root, 'checkpoint');
    try {
      await saveCheckpoint(dir, { model, tokenizer, optimizer });
      // No float32 copy of the base: a reference to its files with their size and SHA-256.
      const files = await readdir(dir);
      expect(files).not.toContain('model.safetensors');
      const reference = JSON.parse(await readFile(join(dir, 'base_model.json'), 'utf8')) as {
        dir: string;
        files: { name: string; bytes: number; sha256: string }[];
      };
      const baseFile = await readFile(join(base, 'model.safetensors'));
      expect(reference.dir).toBe(base);
      expect(reference.files).toEqual([
        {
          name: 'model.safetensors',
          bytes: baseFile.length,
          sha256: createHash('sha256').update(baseFile).digest('hex'),
        },
      ]);
      const loaded = await loadCheckpoint(dir);
      try {
        // adapter_config.json lists target modules sorted, as PEFT does (a set).
        expect(loaded.model.loraConfig).toEqual({
          ...model.loraConfig,
          targetModules: [...model.loraConfig!.targetModules].sort(),
        });
        expect(Array.from(logits(loaded.model))).toEqual(Array.from(logits(model)));
        expect(Object.keys(loaded.optimizerState!.firstMoment).sort()).toEqual(
          [...model.adapterParameters.keys()].sort(),
        );
        tf.dispose([
          ...Object.values(loaded.optimizerState!.firstMoment),
          ...Object.values(loaded.optimizerState!.secondMoment),
        ]);
      } finally {
        loaded.model.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  it('a checkpoint whose base files changed, or are gone, is refused naming the file', async () => {
    const copy = join(root, 'base-copy');
    await cp(base, copy, { recursive: true });
    const loaded = await loadPretrained(copy);
    loaded.model.addAdapters(resolveLoraConfig({ r: 2 }), { seed: 1 });
    const dir = join(root, 'checkpoint-of-copy');
    try {
      await saveCheckpoint(dir, { model: loaded.model, tokenizer: loaded.tokenizer });
    } finally {
      loaded.model.dispose();
    }
    const back = await loadCheckpoint(dir);
    back.model.dispose();
    // One byte of the base changed (same size, new mtime): the adapters no longer fit it.
    const bytes = await readFile(join(copy, 'model.safetensors'));
    bytes[bytes.length - 1]! ^= 1;
    await writeFile(join(copy, 'model.safetensors'), bytes);
    await expect(loadCheckpoint(dir)).rejects.toThrow(/model\.safetensors changed since/);
    await rm(copy, { recursive: true });
    await expect(loadCheckpoint(dir)).rejects.toThrow(/cannot be read.*restore the base/);
  });

  it('full fine-tuning or merged adapters checkpoint the whole model again', async () => {
    const loaded = await loadPretrained(base);
    const dir = join(root, 'full');
    try {
      // The base was handed to an optimizer: it may differ from its files.
      expect(loaded.model.trainableVariables.length).toBeGreaterThan(0);
      loaded.model.addAdapters(resolveLoraConfig({ r: 2 }), { seed: 1 });
      await saveCheckpoint(dir, { model: loaded.model, tokenizer: loaded.tokenizer });
      expect(await readdir(dir)).toContain('model.safetensors');
      expect(await readdir(dir)).not.toContain('base_model.json');
    } finally {
      loaded.model.dispose();
    }
    const merged = await loadPretrained(base);
    try {
      merged.model.addAdapters(resolveLoraConfig({ r: 2 }), { seed: 1 });
      merged.model.mergeAdapters();
      merged.model.addAdapters(resolveLoraConfig({ r: 2 }), { seed: 2 });
      await saveCheckpoint(dir, { model: merged.model, tokenizer: merged.tokenizer });
      expect(await readdir(dir)).toContain('model.safetensors');
    } finally {
      merged.model.dispose();
    }
  });
});
