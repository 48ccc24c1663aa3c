// Types of qwen25-05b.mjs for the tests that use the same sizes.
import type { ModelConfig } from '../src/config.js';

export declare const QWEN25_05B_SIZES: Pick<
  ModelConfig,
  | 'vocabSize'
  | 'hiddenSize'
  | 'intermediateSize'
  | 'numHiddenLayers'
  | 'numAttentionHeads'
  | 'numKeyValueHeads'
  | 'maxPositionEmbeddings'
>;

export declare const QWEN25_05B_SETTINGS: Pick<
  ModelConfig,
  'ropeTheta' | 'rmsNormEps' | 'tieWordEmbeddings'
>;
