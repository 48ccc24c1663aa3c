import { CausalLM, initBackend, tf, computeGradients, padBatch } from '@codereasoner/core-tensors';
const backend = await initBackend({ backend: (process.env.B as 'cpu') ?? 'cpu' });
console.log(backend.active);
const policy = CausalLM.create({ vocabSize: 259, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 64 }, { seed: 1 });
const seqs = Array.from({ length: 32 }, (_, i) => Array.from({ length: 14 }, (_, t) => (i * 7 + t * 13) % 259));
const { inputIds, attentionMask } = padBatch(seqs, 0);
for (let r = 0; r < 3; r++) {
  let t = performance.now();
  const out = policy.tokenLogProbs(inputIds, attentionMask, { entropy: true });
  out.logProbs.dataSync();
  console.log('fwd', performance.now() - t);
  tf.dispose([out.logProbs, out.entropy!]);
  t = performance.now();
  const { grads } = computeGradients(policy, () => tf.mean(policy.tokenLogProbs(inputIds, attentionMask).logProbs) as tf.Scalar);
  console.log('grad', performance.now() - t);
  tf.dispose(Object.values(grads));
  t = performance.now();
  const { grads: g2 } = computeGradients(policy, () => tf.mean(policy.logits(inputIds, attentionMask)) as tf.Scalar);
  console.log('grad logits', performance.now() - t);
  tf.dispose(Object.values(g2));
}
