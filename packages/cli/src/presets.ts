import type { RunConfig } from './config.js';

export type PresetName = 'default' | 'tiny';

/**
 * Embedded defaults. `default` is the full pipeline sized to finish in under 15 minutes on a
 * 2-core machine with only Node; `tiny` is the same pipeline shrunk to a smoke run (CI).
 */
export const PRESETS: Record<PresetName, Omit<RunConfig, 'preset'>> = {
  default: {
    seed: 1,
    out: 'runs/default',
    backend: 'auto',
    workers: 'auto',
    onnx: { threads: 1, weights: 'auto' },
    sandbox: { engine: 'pyodide' },
    // mostly programs a sub-million-parameter model can trace (issue 16): basic 50 %, easy 30 %,
    // medium 15 %, hard 5 %; answers balanced per type by data's default labelShares
    data: {
      source: {
        kind: 'generator',
        count: 1200,
        difficulty: { mix: { basic: 5, easy: 3, medium: 1.5, hard: 0.5 } },
      },
    },
    tokenizer: { vocabSize: 2048 },
    // sized by the SFT budget sweep (packages/sft/README.md): the most learned in about 5 minutes
    model: {
      hiddenSize: 128,
      intermediateSize: 384,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 4,
      maxPositionEmbeddings: 1024,
    },
    // compact chains (`L3 s=3`): 43 % fewer chain tokens than `full`, and at this size SFT on them
    // scored 16.5 % held-out against 3.5 % (seed 1; packages/sft/README.md, issue 16)
    teacher: { kind: 'trace', format: 'compact' },
    sft: {
      // twice the steps of the 2026-12-06 preset, paid for by the faster training step (issue 18):
      // on all 748 held-out items (seed 1) SFT 540 → 1080 steps went 15.2 → 20.9 % overall,
      // output 7.7 → 13.8 (best constant 15.9 and 8.2); packages/cli/README.md, `cr scale`
      steps: 1080,
      warmupSteps: 12,
      batchSize: 16,
      maxSeqLen: 512,
      learningRate: 3e-3,
      evalEvery: 360,
      evalLimit: 50,
      checkpointEvery: 120,
      // the ONNX training graph on onnxruntime-node where it loads (tfjs otherwise): 2.4-2.8× the
      // tfjs-wasm step per CPU second at this shape (core-tensors README); the same held-out
      // accuracy within noise (seed 1: 18.5 % against 17.0 %, training loss 0.90 both)
      trainEngine: 'auto',
    },
    grpo: {
      // DAPO's dynamic sampling: groups whose rewards are all equal (62 % of them here) are
      // dropped and more prompts drawn, so each step trains on 4 groups with a learning signal.
      // On all 748 held-out items (seed 1 SFT checkpoint, GRPO seeds 1 and 2): 60 steps 16.3 /
      // 16.8 %, 80 steps 16.3 / 17.0, 40 steps 15.8 / 15.4, without it (80 steps) 14.8 / 15.2;
      // SFT 14.7, best constant 15.9 (issue 16).
      dynamicSampling: true,
      // 240 steps after the 1080 SFT steps, paid for by generation that drops finished rows
      // (issue 18): from the same SFT checkpoints, all held-out items, 120 → 240 steps went
      // 22.3 → 24.5 % overall (seed 1, output 12.8 → 16.3) and 24.1 → 25.6 (seed 2, output 11.5
      // both); SFT 20.3 and 20.7 (packages/cli/README.md)
      maxSteps: 240,
      // Measured from one SFT checkpoint (seed 1) on all 748 held-out items, GRPO seeds 1 and 2
      // (issue 16): lr 1e-4 at temperature 1 fell below SFT on both
      // (12.7 and 13.1 % vs 14.7 %): a quarter of T-1 samples lost the chain format and greedy
      // answers collapsed onto one value per type. lr 3e-5 at temperature 0.7 scored 14.8 and
      // 15.2 %: ahead of SFT by 1 and 4 items (within noise, from coverage), i.e. no longer harmful.
      learningRate: 3e-5,
      // the longest compact gold completion is 358 tokens (training split; held-out 298)
      maxCompletionLength: 384,
      temperature: 0.7,
      saveSteps: 20,
      // on-policy updates with beta 0: the policy gradient on the ONNX training graph where
      // onnxruntime loads (tfjs otherwise, the reason logged); grpo README for the figures
      trainEngine: 'auto',
    },
    eval: { tasksPerType: 40, maxNewTokens: 384, temperature: 0, samples: 1 },
    bench: { limit: 20 },
  },
  tiny: {
    seed: 1,
    out: 'runs/tiny',
    backend: 'auto',
    workers: 'auto',
    onnx: { threads: 1, weights: 'auto' },
    sandbox: { engine: 'pyodide' },
    data: { source: { kind: 'generator', count: 60 } },
    tokenizer: { vocabSize: 384 },
    model: {
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
      maxPositionEmbeddings: 768,
    },
    teacher: { kind: 'trace' },
    sft: {
      steps: 6,
      warmupSteps: 2,
      batchSize: 8,
      maxSeqLen: 512,
      evalEvery: 0,
      evalLimit: 10,
      checkpointEvery: 3,
    },
    grpo: { maxSteps: 2 },
    eval: { tasksPerType: 3, maxNewTokens: 32, temperature: 0, samples: 1, batchSize: 4 },
    bench: { limit: 2, maxNewTokens: 32 },
  },
};
