// Model shapes the benchmarks (run.mjs, profile.mjs) measure, with their batch and lengths.
import { QWEN25_05B_SETTINGS, QWEN25_05B_SIZES } from './qwen25-05b.mjs';

const { DEFAULT_MODEL_CONFIG } = await import(process.env.CR_BENCH_DIST ?? '../dist/index.js');

/** Qwen2.5-0.5B's config.json (hidden 896, 24 layers, 14/2 heads, SwiGLU 4864, tied, q/k/v biases). */
export const QWEN25_05B = { architecture: 'qwen2', ...QWEN25_05B_SIZES, ...QWEN25_05B_SETTINGS };

/**
 * The shapes profiled. core-default: DEFAULT_MODEL_CONFIG (the 1.05 M model);
 * cli-default: the `cr` default preset's model (2 layers, 4/4 heads) at its SFT batch of 16 and a
 * 256-token sequence, generation at GRPO/eval-like lengths; qwen2.5-0.5b-layer: one layer of
 * Qwen2.5-0.5B's shape with the vocabulary cut to 8192 (the ops of the 24 layers, ~72% of the
 * real model's FLOPs per token; the LM head alone is one [N, 896]·[896, 151936] product), as the
 * full embedding's gradient does not fit the wasm heap; full-vocab: generation only.
 */
export const SHAPES = {
  'core-default': {
    config: { ...DEFAULT_MODEL_CONFIG },
    train: { batch: 16, seq: 128, optimizer: true },
    generate: { batch: 16, prompt: 32, newTokens: 64 },
  },
  'cli-default': {
    config: {
      ...DEFAULT_MODEL_CONFIG,
      numHiddenLayers: 2,
      numKeyValueHeads: 4,
    },
    train: { batch: 16, seq: 256, optimizer: true },
    generate: { batch: 16, prompt: 256, newTokens: 256 },
  },
  'qwen2.5-0.5b-layer': {
    config: { ...QWEN25_05B, numHiddenLayers: 1, vocabSize: 8192 },
    train: { batch: 4, seq: 128, optimizer: true },
    generate: { batch: 4, prompt: 32, newTokens: 16 },
  },
  'qwen2.5-0.5b-1layer-full-vocab': {
    config: { ...QWEN25_05B, numHiddenLayers: 1 },
    // Generation only: training's [151936, 896] embedding gradient and its transposes pass the
    // wasm heap's limit (RangeError from the heap view), as the full model's weights do.
    train: undefined,
    generate: { batch: 4, prompt: 32, newTokens: 8 },
  },
};

/** What the benchmarks' GFLOP/s count (through CausalLM.flopsPerToken / forwardFlopsPerToken). */
export const FLOPS_COUNTED =
  'matmul FLOPs only: 2 per weight-matrix entry per token (q/k/v/o, gate/up/down, the LM head; ' +
  'not the embedding lookup) + 4·layers·context·hidden for attention scores and values; training = ' +
  '3 × forward at the sequence length; generation = forward at the mean context (prompt + new/2). ' +
  'Norms, RoPE, softmax and the optimizer are not counted.';
