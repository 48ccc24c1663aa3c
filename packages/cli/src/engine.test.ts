import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  onnxRuntimeStatus,
  setOnnxRuntimeLoader,
  smallPythonTokenizer,
  writeRandomHfCheckpoint,
} from '@codereasoner/core-tensors';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProgram } from './program.js';

// `cr bench --checkpoint` in this process (so the test can replace onnxruntime-node's loader, as on
// a machine where it does not load): the engine flag reaches generation, the run log says which
// engine ran, and a fallback's reason is logged.
let root: string;
let modelDir: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cr-engine-'));
  modelDir = join(root, 'model');
  const tokenizer = smallPythonTokenizer(384);
  await writeRandomHfCheckpoint(modelDir, {
    family: 'qwen2',
    vocabSize: 384,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: true,
    dtype: 'F32',
    tokenizer,
    seed: 3,
  });
}, 60_000);
afterEach(() => setOnnxRuntimeLoader(undefined));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function bench(name: string, flags: string[]): Promise<string> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let log = '';
  stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  stdout.resume();
  const program = createProgram({
    stdout,
    stderr: stderr as unknown as NodeJS.WriteStream,
    env: { CI: 'true', NO_COLOR: '1' },
    signal: new AbortController().signal,
  });
  await program.parseAsync(
    [
      'bench',
      '--checkpoint',
      modelDir,
      '--name',
      name,
      '--only',
      'cruxeval',
      '--limit',
      '1',
      '--max-tokens',
      '3',
      '--out',
      join(root, `bench-${name}`),
      ...flags,
    ],
    { from: 'user' },
  );
  return log;
}

describe('cr bench --checkpoint: the generation engine', () => {
  it("is 'auto' by default, and generates on onnxruntime where it loads", async () => {
    expect(onnxRuntimeStatus()).toEqual({ available: true });
    const log = await bench('auto', []);
    expect(log).toContain('auto: generated with onnx (engine auto)');
    expect(log).not.toContain('falls back');
    expect(await bench('tfjs', ['--engine', 'tfjs'])).toContain(
      'tfjs: generated with tfjs (engine tfjs)',
    );
  }, 120_000);

  it('logs why it fell back to tfjs when --engine onnx cannot load onnxruntime-node', async () => {
    setOnnxRuntimeLoader(() => {
      throw new Error('libonnxruntime.so.1: cannot open shared object file');
    });
    const reason =
      'onnxruntime-node did not load: libonnxruntime.so.1: cannot open shared object file';
    const log = await bench('onnx', ['--engine', 'onnx']);
    expect(log).toContain(`generation falls back from the onnx engine to tfjs: ${reason}`);
    expect(log).toContain(`onnx: generated with tfjs (engine onnx; fell back: ${reason})`);
  }, 120_000);

  it('passes --onnx-threads and --onnx-weights to the generation, and says what ran', async () => {
    const log = await bench('inputs', [
      '--engine',
      'onnx',
      '--onnx-threads',
      '2',
      '--onnx-weights',
      'inputs',
    ]);
    expect(log).toContain(
      'inputs: generated with onnx (engine onnx), onnxruntime: 2 threads, weights as inputs',
    );
    // the default: weights chosen by size (this model's are in the graph), one thread
    expect(await bench('default', [])).toContain(
      'default: generated with onnx (engine auto), onnxruntime: 1 thread, weights as initializers',
    );
  }, 120_000);

  it('refuses a bad --onnx-weights or --onnx-threads with the allowed values', async () => {
    await expect(bench('bad', ['--onnx-weights', 'graph'])).rejects.toThrow(
      /Allowed choices are auto, initializers, inputs/,
    );
    await expect(bench('bad', ['--onnx-threads', 'two'])).rejects.toThrow(
      /must be a non-negative integer/,
    );
    await expect(bench('bad', ['--onnx-threads', '0'])).rejects.toThrow(
      /\(flags\)\/onnx\/threads: must be >= 1/,
    );
  });

  it('refuses an unknown --engine', async () => {
    await expect(bench('bad', ['--engine', 'gpu'])).rejects.toThrow(
      /Allowed choices are auto, onnx, tfjs/,
    );
  });
});
