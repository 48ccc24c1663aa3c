// Qwen2.5-0.5B's dimensions, as its config.json gives them: the one definition that the
// benchmarks (shapes.mjs, hf-checkpoint.mjs) and scripts/make-random-hf-checkpoint.mjs share.
// No import, so a script can take it without loading the package.

/** Its sizes: hidden 896, 24 layers, 14 query / 2 KV heads, SwiGLU 4864, vocabulary 151936. */
export const QWEN25_05B_SIZES = {
  vocabSize: 151936,
  hiddenSize: 896,
  intermediateSize: 4864,
  numHiddenLayers: 24,
  numAttentionHeads: 14,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 32768,
};

/** The rest of the config.json a model of that shape needs: RoPE base, norm epsilon, tied embeddings. */
export const QWEN25_05B_SETTINGS = {
  ropeTheta: 1000000,
  rmsNormEps: 1e-6,
  tieWordEmbeddings: true,
};
