import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from './errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from './safetensors.js';

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import json, struct'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('safetensors', () => {
  const tensors = {
    'a.weight': {
      dtype: 'F32' as const,
      shape: [2, 3],
      values: new Float32Array([1, -2, 3.5, 0, 1e-8, -0.25]),
    },
    ids: { dtype: 'I64' as const, shape: [3], values: new Int32Array([7, -1, 2147483647]) },
    small: { dtype: 'I32' as const, shape: [1], values: new Int32Array([42]) },
  };

  it('lays out bytes as the format specifies: u64 LE header length, padded JSON, LE data in offset order', () => {
    const bytes = concat(encodeSafetensors(tensors, { format: 'pt' }));
    const view = new DataView(bytes.buffer);
    const n = Number(view.getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header).toEqual({
      __metadata__: { format: 'pt' },
      'a.weight': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      ids: { dtype: 'I64', shape: [3], data_offsets: [24, 48] },
      small: { dtype: 'I32', shape: [1], data_offsets: [48, 52] },
    });
    expect(bytes.length).toBe(8 + n + 52);
    const data = 8 + n;
    // 3.5 as float32 LE = 00 00 60 40
    expect(Array.from(bytes.subarray(data + 8, data + 12))).toEqual([0x00, 0x00, 0x60, 0x40]);
    // -1 as int64 LE = ff × 8
    expect(Array.from(bytes.subarray(data + 32, data + 40))).toEqual(new Array(8).fill(0xff));
    expect(view.getInt32(data + 48, true)).toBe(42);
  });

  it('round-trips through a file, widening I64 to int32', async () => {
    const path = join(dir, 'rt.safetensors');
    await writeSafetensors(path, tensors, { note: 'x' });
    const { tensors: read, metadata } = await readSafetensors(path);
    expect(metadata).toEqual({ note: 'x' });
    expect(Array.from(read.get('a.weight')!.values)).toEqual(
      Array.from(tensors['a.weight'].values),
    );
    expect(read.get('ids')).toEqual({
      dtype: 'I64',
      shape: [3],
      values: new Int32Array([7, -1, 2147483647]),
    });
    expect((await readSafetensorsHeader(path))['small']).toEqual({
      dtype: 'I32',
      shape: [1],
      data_offsets: [48, 52],
    });
  });

  it.skipIf(!hasPython)(
    'is read by an independent Python reader (struct + json, numpy when present)',
    async () => {
      const path = join(dir, 'py.safetensors');
      await writeSafetensors(path, tensors, { format: 'pt' });
      const script = `
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
out = {}
for name, info in header.items():
    if name == '__metadata__':
        continue
    b, e = info['data_offsets']
    fmt = {'F32': 'f', 'I64': 'q', 'I32': 'i'}[info['dtype']]
    out[name] = list(struct.unpack('<%d%s' % ((e - b) // struct.calcsize(fmt), fmt), data[b:e]))
try:
    import numpy as np
    w = np.frombuffer(data[0:24], dtype='<f4').reshape(header['a.weight']['shape'])
    out['numpy_sum'] = float(w.sum())
except ImportError:
    pass
print(json.dumps({'meta': header['__metadata__'], 'tensors': out}))
`;
      const result = JSON.parse(
        execFileSync('python3', ['-c', script, path], { encoding: 'utf8' }),
      );
      expect(result.meta).toEqual({ format: 'pt' });
      expect(result.tensors['a.weight'].map((x: number) => Math.fround(x))).toEqual(
        Array.from(tensors['a.weight'].values),
      );
      expect(result.tensors.ids).toEqual([7, -1, 2147483647]);
      expect(result.tensors.small).toEqual([42]);
      if (result.tensors.numpy_sum !== undefined)
        expect(result.tensors.numpy_sum).toBeCloseTo(2.25, 5);
    },
  );

  it('reads half-precision and bfloat16 data written by other tools', () => {
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
    });
    const bytes = new Uint8Array(8 + header.length + 6);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    // F16: 1.0 = 0x3c00, -2.0 = 0xc000; BF16 1.5 = 0x3fc0
    bytes.set([0x00, 0x3c, 0x00, 0xc0, 0xc0, 0x3f], 8 + header.length);
    const { tensors } = decodeSafetensors(bytes);
    expect(Array.from(tensors.get('h')!.values)).toEqual([1, -2]);
    expect(Array.from(tensors.get('b')!.values)).toEqual([1.5]);
  });

  describe('rejects broken files with CheckpointError', () => {
    const good = concat(encodeSafetensors(tensors));
    const n = Number(new DataView(good.buffer).getBigUint64(0, true));
    const withHeader = (header: unknown, dataBytes: number): Uint8Array => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.length + dataBytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out;
    };
    it.each([
      ['empty file', new Uint8Array(0), /shorter than the 8-byte header length/],
      ['truncated data', good.subarray(0, good.length - 3), /truncated/],
      ['header length beyond the file', good.subarray(0, 8 + n - 1), /exceeds the file/],
      ['trailing bytes', concat([good, new Uint8Array(4)]), /trailing bytes/],
      [
        'invalid JSON',
        withHeader('x', 0).map((b, i) => (i === 8 ? 0x7b : b)),
        /not valid UTF-8 JSON/,
      ],
      [
        'unknown dtype',
        withHeader({ x: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }, 1),
        /unsupported dtype "Q8"/,
      ],
      [
        'size mismatch',
        withHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4),
        /needs 8/,
      ],
      [
        'overlap',
        withHeader(
          {
            x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            y: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          },
          4,
        ),
        /overlapping or holes/,
      ],
      [
        'bad shape',
        withHeader({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4),
        /non-negative integers/,
      ],
    ])('%s', (_name, bytes, message) => {
      expect(() => decodeSafetensors(bytes, '/ckpt/model.safetensors')).toThrow(CheckpointError);
      expect(() => decodeSafetensors(bytes, '/ckpt/model.safetensors')).toThrow(message);
    });

    it('names the file in the error', async () => {
      const path = join(dir, 'broken.safetensors');
      await writeFile(path, good.subarray(0, 20));
      await expect(readSafetensors(path)).rejects.toMatchObject({
        code: 'CHECKPOINT_INVALID',
        path,
      });
      await expect(readSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow(/cannot read/);
      expect((await readFile(path)).length).toBe(20);
    });
  });
});
