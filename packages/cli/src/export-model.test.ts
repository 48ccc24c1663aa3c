import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  initBackend,
  loadPretrained,
  saveCheckpoint,
  tf,
  writeRandomHfCheckpoint,
  type CausalLM,
} from '@codereasoner/core-tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lenmlTokenizerDir } from '../../../test-support/hf-chat.js';
import { parseShardSize } from './export-model.js';
import { cr } from './testing/spawn-cr.js';

const QWEN3 = lenmlTokenizerDir('qwen3', import.meta.url);

/**
 * A safetensors file read here byte by byte, without the package's loader: the 8-byte
 * little-endian header length, the JSON header, and each tensor's raw bytes.
 */
async function readRaw(path: string): Promise<{
  metadata: unknown;
  tensors: Map<string, { dtype: string; shape: number[]; bytes: Buffer }>;
}> {
  const file = await readFile(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const data = file.subarray(8 + headerLength);
  const tensors = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    tensors.set(name, {
      dtype: entry.dtype,
      shape: entry.shape,
      bytes: data.subarray(entry.data_offsets[0], entry.data_offsets[1]),
    });
  }
  expect(Math.max(...Object.values(header).map((e) => e.data_offsets?.[1] ?? 0))).toBe(data.length);
  return { metadata: (header as Record<string, unknown>)['__metadata__'], tensors };
}

/** Every tensor of a Hugging Face directory (single file or shards with the index). */
async function readDirectory(dir: string): Promise<{
  files: string[];
  index: { metadata: { total_size: number }; weight_map: Record<string, string> } | undefined;
  tensors: Map<string, { dtype: string; shape: number[]; bytes: Buffer; file: string }>;
}> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
  const tensors = new Map<
    string,
    { dtype: string; shape: number[]; bytes: Buffer; file: string }
  >();
  for (const file of files) {
    const raw = await readRaw(join(dir, file));
    expect(raw.metadata).toEqual({ format: 'pt' });
    for (const [name, tensor] of raw.tensors) tensors.set(name, { ...tensor, file });
  }
  const indexPath = join(dir, 'model.safetensors.index.json');
  const index = files.length > 1 ? JSON.parse(await readFile(indexPath, 'utf8')) : undefined;
  return { files, index, tensors };
}

/** bf16 bits (little-endian) → float32 values. */
function bf16Values(bytes: Buffer): Float32Array {
  const out = new Float32Array(bytes.length / 2);
  const words = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) words[i] = bytes.readUInt16LE(i * 2) << 16;
  return out;
}

let root: string;
let source: string;
beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-export-model-'));
  source = join(root, 'qwen3');
  // A bf16 Qwen3 (tied embeddings, real tokenizer files) sharded at 3 MB as save_pretrained would.
  await writeRandomHfCheckpoint(source, {
    family: 'qwen3',
    vocabSize: 151936,
    hiddenSize: 16,
    intermediateSize: 32,
    numHiddenLayers: 2,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    headDim: 8,
    maxPositionEmbeddings: 256,
    tieWordEmbeddings: true,
    dtype: 'BF16',
    maxShardBytes: 3_000_000,
    tokenizerDir: QWEN3,
    eosTokenIds: [151645, 151643],
    seed: 11,
  });
}, 300_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Fine-tunes by hand: LoRA adapters with non-zero values, or one full weight changed. */
async function fineTuned(kind: 'lora' | 'full'): Promise<{ model: CausalLM; changed: string[] }> {
  const loaded = await loadPretrained(source);
  const { model } = loaded;
  if (kind === 'lora') {
    model.addAdapters(
      { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] },
      { seed: 1 },
    );
    let seed = 5;
    for (const variable of model.adapterParameters.values())
      variable.assign(tf.randomNormal(variable.shape, 0, 0.5, 'float32', seed++));
    await saveCheckpoint(join(root, 'lora-checkpoint'), loaded);
    return {
      model,
      changed: [0, 1].flatMap((layer) =>
        ['q_proj', 'v_proj'].map((p) => `model.layers.${layer}.self_attn.${p}.weight`),
      ),
    };
  }
  const name = 'model.layers.1.mlp.up_proj.weight';
  const weight = model.parameters.get(name)!;
  weight.assign(tf.tidy(() => weight.add(0.25)));
  await saveCheckpoint(join(root, 'full-checkpoint'), loaded);
  return { model, changed: [name] };
}

describe('cr export --checkpoint', { timeout: 600_000 }, () => {
  it.each(['lora', 'full'] as const)(
    'writes a %s fine-tuned checkpoint back in the source layout: names, bf16, shards, index, configs, tokenizer files',
    async (kind) => {
      const { model, changed } = await fineTuned(kind);
      const out = join(root, `${kind}-export`);
      const exit = await cr([
        'export',
        '--checkpoint',
        join(root, `${kind}-checkpoint`),
        '--out',
        out,
        '--max-shard-size',
        '3MB',
      ]);
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stdout).toMatch(/weight file\(s\)/);

      const before = await readDirectory(source);
      const after = await readDirectory(out);
      // Same shard names and the same tensor → shard map as the source (names sorted in the index).
      expect(after.files).toEqual(before.files);
      expect(after.files.length).toBeGreaterThan(1);
      expect(after.index).toEqual(before.index);
      expect(after.index!.metadata.total_size).toBe(
        [...after.tensors.values()].reduce((sum, t) => sum + t.bytes.length, 0),
      );
      expect(new Set(Object.values(after.index!.weight_map))).toEqual(new Set(after.files));
      for (const [name, file] of Object.entries(after.index!.weight_map))
        expect(after.tensors.get(name)?.file).toBe(file);
      expect([...after.tensors.keys()].sort()).toEqual([...before.tensors.keys()].sort());

      for (const [name, tensor] of after.tensors) {
        const original = before.tensors.get(name)!;
        expect([tensor.dtype, tensor.shape]).toEqual(['BF16', original.shape]);
        if (!changed.includes(name)) {
          // bf16 → float32 → training (frozen or untouched) → bf16: the same bits.
          expect(tensor.bytes.equals(original.bytes), name).toBe(true);
          continue;
        }
        // The fine-tuned weight: what the model computes with (adapters merged), in [out, in].
        const merged = model.mergedParameter(name);
        const memory = (await merged.data()) as Float32Array;
        if (merged !== model.parameters.get(name)) merged.dispose();
        const [rows, cols] = tensor.shape as [number, number];
        const exported = bf16Values(tensor.bytes);
        let worst = 0;
        let moved = 0;
        const source16 = bf16Values(original.bytes);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const expected = memory[c * rows + r]!;
            const got = exported[r * cols + c]!;
            worst = Math.max(worst, Math.abs(got - expected) / Math.max(Math.abs(expected), 1e-3));
            if (got !== source16[r * cols + c]) moved++;
          }
        }
        expect(worst, name).toBeLessThanOrEqual(2 ** -8); // bf16 rounding: half an ulp of 8 bits
        expect(moved, name).toBeGreaterThan((rows * cols) / 2);
      }
      // config.json as the source wrote it (bf16 declared), generation config and tokenizer files verbatim.
      for (const file of [
        'config.json',
        'generation_config.json',
        'tokenizer.json',
        'tokenizer_config.json',
      ]) {
        const [a, b] = [await readFile(join(source, file)), await readFile(join(out, file))];
        if (file === 'config.json')
          expect(JSON.parse(b.toString())).toEqual(JSON.parse(a.toString()));
        else expect(b.equals(a), file).toBe(true);
      }
      model.dispose();
    },
  );

  it('reads transformers-style shard sizes and refuses mixed modes', async () => {
    expect(parseShardSize('5GB')).toBe(5e9);
    expect(parseShardSize('500MiB')).toBe(500 * 2 ** 20);
    expect(parseShardSize('1024')).toBe(1024);
    expect(() => parseShardSize('big')).toThrow(/5GB/);
    const mixed = await cr(['export', '--checkpoint', source, '--format', 'trl', '--out', 'x']);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('give one or the other');
    const none = await cr(['export', '--out', 'x']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--checkpoint <dir> (a model)');
  });
});
