import { open, readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { writeFileAtomic } from './atomic-write.js';
import { CheckpointError } from './errors.js';

export type SafetensorsDtype =
  'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A tensor as stored: floats are widened to Float32Array, integers to Int32Array (I64 must fit in int32). */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  values: Float32Array | Int32Array;
}

/** What `writeSafetensors` accepts per tensor; F32 from a Float32Array, I32 or I64 from an Int32Array. */
export interface SafetensorsInput {
  dtype?: 'F32' | 'I32' | 'I64';
  shape: readonly number[];
  values: Float32Array | Int32Array;
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const littleEndianHost = endianness() === 'LE';

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes of a safetensors file: 8-byte little-endian header length, JSON header (space-padded to 8 bytes), raw little-endian data. */
export function encodeSafetensors(
  tensors: Readonly<Record<string, SafetensorsInput>>,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === '__metadata__')
      throw new TypeError('"__metadata__" is reserved in safetensors headers');
    const dtype = tensor.dtype ?? (tensor.values instanceof Float32Array ? 'F32' : 'I32');
    const count = sizeOf(tensor.shape);
    if (count !== tensor.values.length) {
      throw new TypeError(
        `tensor ${name}: shape [${tensor.shape.join(', ')}] holds ${count} values, got ${tensor.values.length}`,
      );
    }
    if ((dtype === 'F32') !== tensor.values instanceof Float32Array)
      throw new TypeError(
        `tensor ${name}: dtype ${dtype} does not match its ${tensor.values.constructor.name}`,
      );
    const bytes = new Uint8Array(count * BYTES[dtype]);
    const view = new DataView(bytes.buffer);
    if (dtype === 'F32')
      for (let i = 0; i < count; i++) view.setFloat32(i * 4, tensor.values[i]!, true);
    else if (dtype === 'I32')
      for (let i = 0; i < count; i++) view.setInt32(i * 4, tensor.values[i]!, true);
    else for (let i = 0; i < count; i++) view.setBigInt64(i * 8, BigInt(tensor.values[i]!), true);
    header[name] = {
      dtype,
      shape: [...tensor.shape],
      data_offsets: [offset, offset + bytes.length],
    };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned (what the reference writer does).
  const jsonBytesLength = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + jsonBytesLength) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  return [prefix, jsonBytes, ...chunks];
}

/** Writes a safetensors file atomically (temp file + fsync + rename). */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, SafetensorsInput>>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

function decodeValues(
  dtype: SafetensorsDtype,
  bytes: Uint8Array,
  count: number,
  fail: (reason: string) => never,
): Float32Array | Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': {
      if (littleEndianHost && bytes.byteOffset % 4 === 0)
        return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 4));
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      const scratch = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) {
        scratch.setUint32(0, view.getUint16(i * 2, true) << 16);
        out[i] = scratch.getFloat32(0);
      }
      return out;
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) fail(`I64 value ${v} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      return out;
    }
    case 'I16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      return out;
    }
    case 'I8':
      return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, count));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(bytes.subarray(0, count));
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * Math.pow(2, -14) * (fraction / 1024);
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
}

/**
 * Parses safetensors bytes, validating the header length, JSON, dtypes, shapes and that the data
 * offsets tile the data section exactly. Throws CheckpointError { path, reason } otherwise.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  path = '<memory>',
): { tensors: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  const fail = (reason: string): never => {
    throw new CheckpointError(path, reason);
  };
  if (bytes.length < 8)
    fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) {
    fail(
      `header length ${headerLength} exceeds the file (${bytes.length} bytes): truncated or not a safetensors file`,
    );
  }
  const n = Number(headerLength);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)),
    ) as Record<string, unknown>;
  } catch (cause) {
    throw new CheckpointError(
      path,
      `header is not valid UTF-8 JSON (${(cause as Error).message})`,
      { cause },
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header must be a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadataRaw = header['__metadata__'];
  const metadata: Record<string, string> = {};
  if (metadataRaw !== undefined) {
    if (typeof metadataRaw !== 'object' || metadataRaw === null)
      fail('__metadata__ must be an object of strings');
    for (const [k, v] of Object.entries(metadataRaw as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`__metadata__.${k} must be a string`);
      metadata[k] = v as string;
    }
  }
  const spans: [number, number, string][] = [];
  const entries: [string, SafetensorsDtype, number[], number, number][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof entry !== 'object' || entry === null)
      fail(`tensor ${name}: header entry must be an object`);
    const dtype = entry.dtype as SafetensorsDtype;
    if (typeof dtype !== 'string' || !(dtype in BYTES))
      fail(`tensor ${name}: unsupported dtype ${JSON.stringify(entry.dtype)}`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      fail(`tensor ${name}: shape must be an array of non-negative integers`);
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0)
    ) {
      fail(`tensor ${name}: data_offsets must be [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = sizeOf(shape as number[]) * BYTES[dtype];
    if (end < begin || end - begin !== expected) {
      fail(
        `tensor ${name}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, ${dtype}[${(shape as number[]).join(', ')}] needs ${expected}`,
      );
    }
    if (end > dataLength)
      fail(
        `tensor ${name}: data ends at byte ${end} but the data section has ${dataLength} bytes (truncated?)`,
      );
    spans.push([begin, end, name]);
    entries.push([name, dtype, shape as number[], begin, end]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cursor = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== cursor)
      fail(
        `tensor ${name}: data starts at ${begin}, expected ${cursor} (overlapping or holes in the data section)`,
      );
    cursor = end;
  }
  if (cursor !== dataLength)
    fail(
      `data section has ${dataLength} bytes but the tensors cover ${cursor} (trailing bytes or truncation)`,
    );
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, dtype, shape, begin, end] of entries) {
    const slice = bytes.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, {
      dtype,
      shape,
      values: decodeValues(dtype, slice, sizeOf(shape), (r) => fail(`tensor ${name}: ${r}`)),
    });
  }
  return { tensors, metadata };
}

/** Reads and validates a safetensors file (see `decodeSafetensors`). */
export async function readSafetensors(
  path: string,
): Promise<{ tensors: Map<string, SafetensorsEntry>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new CheckpointError(path, `cannot read the file (${(cause as Error).message})`, {
      cause,
    });
  }
  return decodeSafetensors(bytes, path);
}

/** Only the header (names, dtypes, shapes, metadata) without reading the data. */
export async function readSafetensorsHeader(path: string): Promise<Record<string, unknown>> {
  const handle = await open(path, 'r').catch((cause: Error) => {
    throw new CheckpointError(path, `cannot open the file (${cause.message})`, { cause });
  });
  try {
    const prefix = Buffer.alloc(8);
    const { bytesRead } = await handle.read(prefix, 0, 8, 0);
    if (bytesRead < 8)
      throw new CheckpointError(path, 'file is shorter than the 8-byte header length');
    const n = prefix.readBigUInt64LE(0);
    const { size } = await handle.stat();
    if (n > BigInt(Math.min(MAX_HEADER_BYTES, size - 8)))
      throw new CheckpointError(path, `header length ${n} exceeds the file size ${size}`);
    const json = Buffer.alloc(Number(n));
    await handle.read(json, 0, json.length, 8);
    try {
      return JSON.parse(json.toString('utf8')) as Record<string, unknown>;
    } catch (cause) {
      throw new CheckpointError(path, `header is not valid JSON (${(cause as Error).message})`, {
        cause,
      });
    }
  } finally {
    await handle.close();
  }
}
