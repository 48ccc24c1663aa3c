#!/usr/bin/env node
// Writes a random checkpoint in a Hugging Face family's exact layout (config.json,
// generation_config.json, tokenizer files, safetensors weights, sharded with an index when asked).
// Build the package first (`pnpm --filter @codereasoner/core-tensors build`).
//
//   node scripts/make-random-hf-checkpoint.mjs <out-dir> [--family qwen3|qwen2|llama]
//        [--shape tiny|qwen2.5-0.5b] [--dtype bf16|f16|f32] [--max-shard-mb N] [--untied] [--seed N]
import { parseArgs } from 'node:util';
import { writeRandomHfCheckpoint } from '../dist/index.js';
import { QWEN25_05B_SIZES } from '../bench/qwen25-05b.mjs';

const SHAPES = {
  // Small enough for tests and the README example on a CPU.
  tiny: {
    vocabSize: 384,
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 16,
    maxPositionEmbeddings: 1024,
  },
  // Qwen2.5-0.5B's dimensions (its config.json): about 1 GB in bf16.
  'qwen2.5-0.5b': QWEN25_05B_SIZES,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    family: { type: 'string', default: 'qwen3' },
    shape: { type: 'string', default: 'tiny' },
    dtype: { type: 'string', default: 'bf16' },
    'max-shard-mb': { type: 'string' },
    untied: { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
  },
});
const out = positionals[0];
const shape = SHAPES[values.shape];
const dtype = { bf16: 'BF16', f16: 'F16', f32: 'F32' }[values.dtype];
if (
  out === undefined ||
  shape === undefined ||
  dtype === undefined ||
  !['qwen3', 'qwen2', 'llama'].includes(values.family)
) {
  console.error(
    'usage: make-random-hf-checkpoint.mjs <out-dir> [--family qwen3|qwen2|llama] [--shape tiny|qwen2.5-0.5b] [--dtype bf16|f16|f32] [--max-shard-mb N] [--untied] [--seed N]',
  );
  process.exit(2);
}
const options = {
  ...shape,
  ...(values.family === 'qwen3' ? {} : { headDim: undefined }),
  family: values.family,
  dtype,
  tieWordEmbeddings: !values.untied,
  seed: Number(values.seed),
  ...(values['max-shard-mb'] === undefined
    ? {}
    : { maxShardBytes: Number(values['max-shard-mb']) * 1e6 }),
};
if (options.headDim === undefined) delete options.headDim;
const started = performance.now();
const result = await writeRandomHfCheckpoint(out, options);
console.log(
  JSON.stringify({
    dir: out,
    family: values.family,
    shape: values.shape,
    dtype,
    ...result,
    seconds: (performance.now() - started) / 1000,
  }),
);
