import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { tempPathFor, writeFileAtomic } from '@codereasoner/common';
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

/** One tensor's place in a safetensors file (offsets relative to the data section). */
export interface SafetensorsSpan {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Checks dtypes, shapes and that the data offsets tile the data section exactly. */
function validateEntries(
  header: Record<string, unknown>,
  dataLength: number,
  fail: (reason: string) => never,
): SafetensorsSpan[] {
  const spans: [number, number, string][] = [];
  const entries: SafetensorsSpan[] = [];
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
    entries.push({ name, dtype, shape: shape as number[], begin, end });
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
  return entries;
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
  const entries = validateEntries(header, dataLength, fail);
  const tensors = new Map<string, SafetensorsEntry>();
  for (const { name, dtype, shape, begin, end } of entries) {
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

/** bf16 bits → float32 by placing them in the high half (exact). */
export function bf16ToFloat32(
  bits: Uint16Array,
  out = new Float32Array(bits.length),
): Float32Array {
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i]! << 16;
  return out;
}

/** float32 → bf16 bits, rounding to nearest even as torch's `.to(torch.bfloat16)` does (NaN stays NaN). */
export function float32ToBf16(
  values: Float32Array,
  out = new Uint16Array(values.length),
): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if ((w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0) out[i] = (w >>> 16) | 0x40;
    else out[i] = (w + 0x7fff + ((w >>> 16) & 1)) >>> 16;
  }
  return out;
}

let halfTable: Float32Array | undefined;

function float32ToHalf(value: number): number {
  const f = new Float32Array([value]);
  const w = new Uint32Array(f.buffer)[0]!;
  const sign = (w >>> 16) & 0x8000;
  const exponent = (w >>> 23) & 0xff;
  let mantissa = w & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is the correctly rounded result.
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1;
  return sign | half;
}

/** Encodes float32 values as `dtype` bytes (little-endian). */
export function encodeFloats(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') {
    if (littleEndianHost)
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    const out = new Uint8Array(values.length * 4);
    const view = new DataView(out.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
    return out;
  }
  const bits =
    dtype === 'BF16' ? float32ToBf16(values) : Uint16Array.from(values, (v) => float32ToHalf(v));
  if (!littleEndianHost) {
    const view = new DataView(bits.buffer);
    for (let i = 0; i < bits.length; i++) view.setUint16(i * 2, bits[i]!, true);
  }
  return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
}

/** Widens float bytes of `dtype` to float32 (fast paths for aligned little-endian data). */
function decodeFloats(
  dtype: 'F32' | 'F16' | 'BF16' | 'F64',
  bytes: Uint8Array,
  count: number,
): Float32Array {
  if (littleEndianHost && dtype === 'BF16' && bytes.byteOffset % 2 === 0)
    return bf16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, count));
  if (littleEndianHost && dtype === 'F16' && bytes.byteOffset % 2 === 0) {
    if (halfTable === undefined) {
      halfTable = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
    }
    const table = halfTable;
    const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = table[bits[i]!]!;
    return out;
  }
  return decodeValues(dtype, bytes, count, (reason) => {
    throw new TypeError(reason);
  }) as Float32Array;
}

/** A safetensors file opened for reading tensor by tensor (positioned reads; the file is never read whole). */
export interface SafetensorsReader {
  path: string;
  metadata: Record<string, string>;
  tensors: ReadonlyMap<string, SafetensorsSpan>;
  /** One float tensor widened to float32 (F32/F16/BF16/F64). */
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

// Positioned reads larger than this are split (fs reads are limited to 2 GiB).
const READ_CHUNK = 1 << 30;

/**
 * Opens a safetensors file, validating its header against the file size, without reading the data.
 * Tensors are read with positioned reads of at most `chunkBytes` (default 1 GiB: one fs read is
 * limited to 2 GiB), so files of any size work and only the tensor asked for is in memory.
 */
export async function openSafetensors(
  path: string,
  options: { chunkBytes?: number } = {},
): Promise<SafetensorsReader> {
  const chunk = options.chunkBytes ?? READ_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > READ_CHUNK)
    throw new RangeError(`chunkBytes must be an integer from 1 to ${READ_CHUNK}, got ${chunk}`);
  const fail = (reason: string): never => {
    throw new CheckpointError(path, reason);
  };
  const handle: FileHandle = await open(path, 'r').catch((cause: Error) => {
    throw new CheckpointError(path, `cannot open the file (${cause.message})`, { cause });
  });
  try {
    const { size } = await handle.stat();
    if (size < 8) fail(`file is ${size} bytes, shorter than the 8-byte header length (truncated?)`);
    const prefix = Buffer.alloc(8);
    await handle.read(prefix, 0, 8, 0);
    const n = prefix.readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER_BYTES, size - 8)))
      fail(
        `header length ${n} exceeds the file (${size} bytes): truncated or not a safetensors file`,
      );
    const json = Buffer.alloc(Number(n));
    await handle.read(json, 0, json.length, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
    } catch (cause) {
      throw new CheckpointError(path, `header is not valid JSON (${(cause as Error).message})`, {
        cause,
      });
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      fail('header must be a JSON object');
    const dataStart = 8 + Number(n);
    const metadata: Record<string, string> = {};
    const raw = header['__metadata__'];
    if (raw !== undefined && raw !== null) {
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} must be a string`);
        metadata[k] = v as string;
      }
    }
    const spans = validateEntries(header, size - dataStart, fail);
    const tensors = new Map(spans.map((e) => [e.name, e]));
    return {
      path,
      metadata,
      tensors,
      async readFloat32(name: string): Promise<Float32Array> {
        const span = tensors.get(name);
        if (span === undefined) return fail(`tensor ${name} is not in the file`);
        if (!['F32', 'F16', 'BF16', 'F64'].includes(span.dtype))
          fail(`${name} has dtype ${span.dtype}, expected a float type (F32, F16, BF16 or F64)`);
        const length = span.end - span.begin;
        const bytes = new Uint8Array(length);
        for (let done = 0; done < length;) {
          const want = Math.min(chunk, length - done);
          const { bytesRead } = await handle.read(bytes, done, want, dataStart + span.begin + done);
          if (bytesRead === 0) fail(`tensor ${name}: file ended early (truncated?)`);
          done += bytesRead;
        }
        return decodeFloats(
          span.dtype as 'F32' | 'F16' | 'BF16' | 'F64',
          bytes,
          sizeOf(span.shape),
        );
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** A tensor for `writeSafetensorsStreaming`: its bytes are produced only when its turn comes. */
export interface StreamedTensor {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: readonly number[];
  /** float32 values (row-major, file layout), converted to `dtype` on write. */
  values: () => Float32Array | Promise<Float32Array>;
}

/** Bytes a tensor takes in a file. */
export function storedBytes(dtype: 'F32' | 'F16' | 'BF16', shape: readonly number[]): number {
  return sizeOf(shape) * BYTES[dtype];
}

/**
 * Writes a safetensors file one tensor at a time (only one tensor's values in memory), atomically
 * (temp file, fsync, rename). The header is laid out first from the shapes, as the reference writer
 * orders it: tensors in the order given, data 8-byte aligned after the space-padded header.
 */
export async function writeSafetensorsStreaming(
  path: string,
  tensors: readonly StreamedTensor[],
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = storedBytes(t.dtype, t.shape);
    header[t.name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const jsonLength = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + jsonLength) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(jsonBytes.length), 0);
  const temp = tempPathFor(path);
  const handle = await open(temp, 'w');
  try {
    let position = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      for (let done = 0; done < bytes.length;) {
        const { bytesWritten } = await handle.write(
          bytes,
          done,
          Math.min(READ_CHUNK, bytes.length - done),
          position,
        );
        done += bytesWritten;
        position += bytesWritten;
      }
    };
    await write(prefix);
    await write(jsonBytes);
    for (const t of tensors) {
      const values = await t.values();
      if (values.length !== sizeOf(t.shape))
        throw new TypeError(
          `tensor ${t.name}: shape [${t.shape.join(', ')}] holds ${sizeOf(t.shape)} values, got ${values.length}`,
        );
      await write(encodeFloats(values, t.dtype));
    }
    await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
}
