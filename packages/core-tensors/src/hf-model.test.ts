import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceModel } from './__fixtures__/hf-reference.js';
import { initBackend } from './backend.js';
import { CheckpointError } from './errors.js';
import { CausalLM } from './model.js';
import { loadPretrained, savePretrained } from './hf-model.js';
import {
  smallPythonTokenizer,
  writeRandomHfCheckpoint,
  type RandomHfCheckpointOptions,
} from './hf-random.js';
import { readSafetensorsHeader } from './safetensors.js';
import { relativeError } from './test-utils.js';

/*
 * Parity of the loader + model with an independent float64 reference (__fixtures__/hf-reference.ts:
 * its own safetensors parser and plain float64 loops written from transformers' modeling code).
 * The fixtures are random checkpoints in each family's exact Hugging Face layout written by
 * `writeRandomHfCheckpoint` (the same code as scripts/make-random-hf-checkpoint.mjs); the reference
 * reads the stored bf16 values, so both sides see identical weights.
 */

let root: string;
const tokenizer = smallPythonTokenizer(300);
const text = 'def f(x):\n    return x + 1\nassert f(3) == 4\n';

const shape = {
  vocabSize: 320, // wider than the tokenizer (300): a padded vocabulary, as Qwen ships
  hiddenSize: 48,
  intermediateSize: 96,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 256,
  tokenizer,
};

const families: [string, RandomHfCheckpointOptions][] = [
  [
    'Llama-3 layout: bf16, sharded, untied, llama3 rope scaling, eos list',
    {
      ...shape,
      family: 'llama',
      tieWordEmbeddings: false,
      dtype: 'BF16',
      maxShardBytes: 40_000,
      headDim: 12,
      ropeScaling: {
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 64,
      },
      seed: 1,
    },
  ],
  [
    'Qwen2 layout: bf16, one file, tied, q/k/v biases',
    { ...shape, family: 'qwen2', tieWordEmbeddings: true, dtype: 'BF16', seed: 2 },
  ],
  [
    'Qwen3 layout: bf16, sharded, tied with lm_head.weight stored, head_dim ≠ hidden/heads, q/k norms',
    {
      ...shape,
      family: 'qwen3',
      tieWordEmbeddings: true,
      storeTiedHead: true,
      headDim: 16,
      dtype: 'BF16',
      maxShardBytes: 30_000,
      seed: 3,
    },
  ],
  [
    'Qwen2 layout: f16, untied',
    { ...shape, family: 'qwen2', tieWordEmbeddings: false, dtype: 'F16', seed: 4 },
  ],
  [
    'Llama layout: f32, tied',
    { ...shape, family: 'llama', tieWordEmbeddings: true, dtype: 'F32', seed: 5 },
  ],
];

beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-hf-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each(families)('%s', (_title, options) => {
  let dir: string;
  beforeAll(async () => {
    dir = join(root, `${options.family}-${options.seed}`);
    await writeRandomHfCheckpoint(dir, options);
  });

  it('logits match the float64 reference within 1e-4 relative, greedy decoding token for token', async () => {
    const { model, info, tokenizer: loadedTokenizer } = await loadPretrained(dir);
    try {
      expect(info.dtype).toBe(options.dtype);
      expect(info.sharded).toBe(options.maxShardBytes !== undefined);
      expect(info.weightFiles.length > 1).toBe(options.maxShardBytes !== undefined);
      expect(info.eosTokenIds).toEqual([tokenizer.special.eos, tokenizer.special.imEnd]);
      expect(loadedTokenizer.vocabSize).toBe(tokenizer.vocabSize);
      const reference = new ReferenceModel(dir);
      const ids = tokenizer.encode(text);
      const expected = reference.logits(ids);
      const actual = model.logits(tf.tensor2d([ids], undefined, 'int32'));
      const values = actual.dataSync();
      actual.dispose();
      const flat = new Float64Array(ids.length * shape.vocabSize);
      expected.forEach((row, t) => flat.set(row, t * shape.vocabSize));
      expect(relativeError(values, flat)).toBeLessThan(1e-4);

      const prompt = ids.slice(0, 6);
      const greedy = reference.greedy(prompt, 10);
      const [out] = await model.generate([prompt], { maxNewTokens: 10, temperature: 0 });
      expect(out!.tokens).toEqual(greedy);
    } finally {
      model.dispose();
    }
  });
});

describe('refusals name the field', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(root, 'refusals');
    await writeRandomHfCheckpoint(dir, {
      ...shape,
      family: 'qwen2',
      tieWordEmbeddings: true,
      dtype: 'BF16',
    });
  });

  const cases: [string, Record<string, unknown>, string][] = [
    [
      'another architecture',
      { architectures: ['MistralForCausalLM'], model_type: 'mistral' },
      '/model_type',
    ],
    [
      'a class that does not match model_type',
      { architectures: ['LlamaForCausalLM'] },
      '/architectures',
    ],
    ['sliding-window attention', { use_sliding_window: true }, '/use_sliding_window'],
    [
      'yarn rope scaling',
      { rope_scaling: { rope_type: 'yarn', factor: 4 } },
      '/rope_scaling/rope_type',
    ],
    ['quantization', { quantization_config: { quant_method: 'gptq' } }, '/quantization_config'],
    ['another activation', { hidden_act: 'gelu' }, '/hidden_act'],
    ['biases on every projection', { attention_bias: true }, '/attention_bias'],
  ];
  it.each(cases)('refuses %s', async (_what, patch, field) => {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const patched = join(root, `refuse-${field.replaceAll('/', '_')}`);
    await writeRandomHfCheckpoint(patched, {
      ...shape,
      family: 'qwen2',
      tieWordEmbeddings: true,
      dtype: 'BF16',
    });
    await writeFile(join(patched, 'config.json'), JSON.stringify({ ...config, ...patch }));
    const error = await loadPretrained(patched).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toContain(field);
  });

  it('refuses weights that do not fit the config, naming the tensors', async () => {
    const patched = join(root, 'wrong-tie');
    await writeRandomHfCheckpoint(patched, {
      ...shape,
      family: 'qwen2',
      tieWordEmbeddings: true,
      dtype: 'BF16',
    });
    const config = JSON.parse(await readFile(join(patched, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    await writeFile(
      join(patched, 'config.json'),
      JSON.stringify({ ...config, tie_word_embeddings: false }),
    );
    await expect(loadPretrained(patched)).rejects.toThrow(/missing lm_head\.weight/);
  });

  it('refuses a shard the index disagrees with', async () => {
    const patched = join(root, 'bad-index');
    await writeRandomHfCheckpoint(patched, {
      ...shape,
      family: 'qwen2',
      tieWordEmbeddings: true,
      dtype: 'BF16',
      maxShardBytes: 40_000,
    });
    const index = JSON.parse(
      await readFile(join(patched, 'model.safetensors.index.json'), 'utf8'),
    ) as {
      weight_map: Record<string, string>;
    };
    // Point the final norm at a shard that does not hold it.
    const other = Object.values(index.weight_map).find(
      (f) => f !== index.weight_map['model.norm.weight'],
    )!;
    index.weight_map['model.norm.weight'] = other;
    await writeFile(join(patched, 'model.safetensors.index.json'), JSON.stringify(index));
    await expect(loadPretrained(patched)).rejects.toThrow(/model\.norm\.weight/);
  });
});

describe('export in the original layout', () => {
  it('a bf16 sharded Qwen3 checkpoint is written back with the same names, dtype, sharding rule and files, and reloads bit for bit', async () => {
    const source = join(root, 'export-source');
    await writeRandomHfCheckpoint(source, {
      ...shape,
      family: 'qwen3',
      tieWordEmbeddings: true,
      storeTiedHead: true,
      headDim: 16,
      dtype: 'BF16',
      maxShardBytes: 30_000,
      seed: 9,
    });
    const loaded = await loadPretrained(source);
    const out = join(root, 'export-out');
    try {
      const result = await savePretrained(out, loaded.model, {
        info: loaded.info,
        maxShardBytes: 30_000,
      });
      const files = (await readdir(out)).sort();
      expect(files).toEqual((await readdir(source)).sort());
      expect(result.files).toContain('model.safetensors.index.json');
      // Same tensor names, shapes and dtypes in every shard as transformers' state dict (source).
      const index = JSON.parse(
        await readFile(join(out, 'model.safetensors.index.json'), 'utf8'),
      ) as {
        metadata: { total_size: number };
        weight_map: Record<string, string>;
      };
      const sourceIndex = JSON.parse(
        await readFile(join(source, 'model.safetensors.index.json'), 'utf8'),
      ) as typeof index;
      expect(Object.keys(index.weight_map).sort()).toEqual(
        Object.keys(sourceIndex.weight_map).sort(),
      );
      expect(index.metadata.total_size).toBe(sourceIndex.metadata.total_size);
      for (const file of new Set(Object.values(index.weight_map))) {
        const header = await readSafetensorsHeader(join(out, file));
        expect(header['__metadata__']).toEqual({ format: 'pt' });
        for (const [name, entry] of Object.entries(header)) {
          if (name === '__metadata__') continue;
          expect(index.weight_map[name]).toBe(file);
          expect((entry as { dtype: string }).dtype).toBe('BF16');
        }
      }
      const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(config['torch_dtype']).toBe('bfloat16');
      expect(config['architectures']).toEqual(['Qwen3ForCausalLM']);
      expect(await readFile(join(out, 'tokenizer.json'), 'utf8')).toBe(
        await readFile(join(source, 'tokenizer.json'), 'utf8'),
      );
      // bf16 → float32 → bf16 is exact: the reload computes the same logits as the source.
      const again = await loadPretrained(out);
      try {
        const ids = tf.tensor2d([tokenizer.encode(text)], undefined, 'int32');
        const a = loaded.model.logits(ids).dataSync();
        const b = again.model.logits(ids).dataSync();
        expect(Array.from(b)).toEqual(Array.from(a));
        expect(again.info.storesTiedHead).toBe(true);
      } finally {
        again.model.dispose();
      }
    } finally {
      loaded.model.dispose();
    }
  });
});

describe('export of a from-scratch model', () => {
  it('writes a fresh config.json and tokenizer.json that load back to the same model', async () => {
    const model = CausalLM.create(
      {
        architecture: 'qwen3',
        vocabSize: 320,
        hiddenSize: 32,
        intermediateSize: 64,
        numHiddenLayers: 1,
        numAttentionHeads: 4,
        numKeyValueHeads: 2,
        headDim: 16,
        maxPositionEmbeddings: 64,
      },
      { seed: 4 },
    );
    const out = join(root, 'from-scratch');
    try {
      await savePretrained(out, model, { tokenizer });
      expect((await readdir(out)).sort()).toEqual([
        'config.json',
        'model.safetensors',
        'tokenizer.json',
      ]);
      const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(config).toMatchObject({
        architectures: ['Qwen3ForCausalLM'],
        head_dim: 16,
        torch_dtype: 'float32',
        eos_token_id: tokenizer.special.eos,
      });
      const again = await loadPretrained(out);
      try {
        const ids = tf.tensor2d([tokenizer.encode(text).slice(0, 20)], undefined, 'int32');
        expect(Array.from(again.model.logits(ids).dataSync())).toEqual(
          Array.from(model.logits(ids).dataSync()),
        );
      } finally {
        again.model.dispose();
      }
    } finally {
      model.dispose();
    }
  });
});
