import { CausalLM, DEFAULT_MODEL_CONFIG, initBackend, tf, computeGradients, padBatch } from '@codereasoner/core-tensors';
await initBackend();
const policy = CausalLM.create(DEFAULT_MODEL_CONFIG, { seed: 1 });
for (const [b, t] of [[8, 200], [16, 200], [32, 200]]) {
  const seqs = Array.from({ length: b }, (_, i) => Array.from({ length: t }, (_, j) => (i * 7 + j * 13) % 259));
  const { inputIds, attentionMask } = padBatch(seqs, 0);
  for (let r = 0; r < 2; r++) {
    let s = performance.now();
    const out = policy.tokenLogProbs(inputIds, attentionMask, { entropy: true });
    out.logProbs.dataSync(); tf.dispose([out.logProbs, out.entropy!]);
    const fwd = performance.now() - s;
    s = performance.now();
    const { grads } = computeGradients(policy, () => tf.mean(policy.tokenLogProbs(inputIds, attentionMask, { entropy: true }).logProbs) as tf.Scalar);
    tf.dispose(Object.values(grads));
    const g = performance.now() - s;
    console.log(b, t, 'fwd ms', fwd.toFixed(0), 'grad ms', g.toFixed(0), 'tok/s', ((b * t) / (g / 1000)).toFixed(0));
  }
}
