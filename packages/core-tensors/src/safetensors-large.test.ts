import { mkdir, mkdtemp, open, readFile, rm, stat, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { loadPretrained } from './hf-model.js';
import { writeRandomHfCheckpoint } from './hf-random.js';
import { openSafetensors } from './safetensors.js';

/**
 * A model.safetensors larger than 2 GiB (the most one fs read, or one `readFile`, can return)
 * without writing 2 GiB: the file is a tiny checkpoint's tensors moved behind a 2.25 GiB tensor
 * that transformers ignores (`rotary_emb.inv_freq`, as old Llama checkpoints store it). The gap is
 * a hole: the file is laid out with positioned writes and `ftruncate`, so it takes a few kB of
 * disk, and every real tensor sits past the 2 GiB mark. `readFile` of this file throws
 * ERR_FS_FILE_TOO_LARGE, so a loader that read it whole would fail here.
 */
const GAP = 2.25 * 2 ** 30;

let root: string;
let small: string;
let large: string;
beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-large-safetensors-'));
  small = join(root, 'small');
  large = join(root, 'large');
  await writeRandomHfCheckpoint(small, {
    family: 'llama',
    vocabSize: 320,
    hiddenSize: 16,
    intermediateSize: 32,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    tieWordEmbeddings: false,
    dtype: 'BF16',
    seed: 4,
  });
  await mkdir(large);
  for (const file of ['config.json', 'generation_config.json', 'tokenizer.json'])
    await copyFile(join(small, file), join(large, file));
  // The small file's header, read here by hand; every tensor moves GAP bytes further.
  const bytes = await readFile(join(small, 'model.safetensors'));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const data = bytes.subarray(8 + headerLength);
  const moved: Record<string, unknown> = {
    __metadata__: { format: 'pt' },
    'model.layers.0.self_attn.rotary_emb.inv_freq': {
      dtype: 'U8',
      shape: [GAP],
      data_offsets: [0, GAP],
    },
  };
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    moved[name] = {
      ...entry,
      data_offsets: [entry.data_offsets[0] + GAP, entry.data_offsets[1] + GAP],
    };
  }
  let json = JSON.stringify(moved);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const dataStart = 8 + Buffer.byteLength(json);
  const handle = await open(join(large, 'model.safetensors'), 'w');
  try {
    await handle.write(prefix, 0, 8, 0);
    await handle.write(Buffer.from(json), 0, Buffer.byteLength(json), 8);
    await handle.truncate(dataStart + GAP + data.length);
    await handle.write(data, 0, data.length, dataStart + GAP);
  } finally {
    await handle.close();
  }
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('safetensors files over 2 GiB', { timeout: 120_000 }, () => {
  it('load with positioned reads and give the same model as the small file', async () => {
    const info = await stat(join(large, 'model.safetensors'));
    expect(info.size).toBeGreaterThan(2 ** 31);
    // A hole, not 2 GiB of zeros on disk (st_blocks counts 512-byte blocks).
    expect(info.blocks * 512).toBeLessThan(2 ** 20);
    await expect(readFile(join(large, 'model.safetensors'))).rejects.toThrow(/2 GiB/);

    const a = await loadPretrained(small);
    const b = await loadPretrained(large);
    try {
      for (const [name, variable] of a.model.parameters)
        expect(Array.from(b.model.parameters.get(name)!.dataSync()), name).toEqual(
          Array.from(variable.dataSync()),
        );
      const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
      expect(Array.from(b.model.logits(ids).dataSync())).toEqual(
        Array.from(a.model.logits(ids).dataSync()),
      );
      ids.dispose();
    } finally {
      a.model.dispose();
      b.model.dispose();
    }
  });

  it('read a tensor past 2 GiB in chunks of any size', async () => {
    const whole = await openSafetensors(join(large, 'model.safetensors'));
    const chunked = await openSafetensors(join(large, 'model.safetensors'), { chunkBytes: 7 });
    try {
      const span = whole.tensors.get('lm_head.weight')!;
      expect(span.begin).toBeGreaterThan(2 ** 31);
      const expected = await whole.readFloat32('lm_head.weight');
      expect(Array.from(await chunked.readFloat32('lm_head.weight'))).toEqual(Array.from(expected));
      expect(expected.some((v) => v !== 0)).toBe(true);
    } finally {
      await whole.close();
      await chunked.close();
    }
    await expect(
      openSafetensors(join(large, 'model.safetensors'), { chunkBytes: 0 }),
    ).rejects.toThrow(/chunkBytes/);
  });
});
