import { initBackend, CausalLM, padBatch, tf } from '@codereasoner/core-tensors';
await initBackend();
const d = Number(process.argv[2]);
const model = CausalLM.create({ vocabSize: 1024, hiddenSize: d, intermediateSize: d * 3, numHiddenLayers: 4, numAttentionHeads: d/32, numKeyValueHeads: d/32, maxPositionEmbeddings: 1024 }, { seed: 1 });
const seqs = Array.from({ length: 16 }, (_, i) => Array.from({ length: 256 }, (_, j) => (i * 7 + j * 13) % 1000));
const { inputIds, attentionMask } = padBatch(seqs, 0);
for (let i = 0; i < 2; i++) {
  let t0 = performance.now();
  const lp = model.tokenLogProbs(inputIds, attentionMask).logProbs; await lp.data(); lp.dispose();
  const fwd = performance.now() - t0;
  const a = tf.randomNormal([4096, d]); const b = tf.randomNormal([d, d*3]);
  t0 = performance.now(); const c = tf.matMul(a, b); await c.data(); const mm = performance.now() - t0;
  console.log(JSON.stringify({ d, fwdMs: Math.round(fwd), matmulMs: mm.toFixed(1), gflops: (2*4096*d*d*3/mm/1e6).toFixed(1) }));
  tf.dispose([a,b,c]);
}
const prof = await tf.profile(() => { const lp = model.tokenLogProbs(inputIds, attentionMask).logProbs; return lp; });
const agg = {};
for (const k of prof.kernels) { agg[k.name] = (agg[k.name] ?? 0) + k.kernelTimeMs; }
console.log(Object.entries(agg).sort((a,b)=>b[1]-a[1]).slice(0,12).map(([k,v])=>`${k}:${Math.round(v)}`).join(' '));
const t0 = performance.now();
const g = tf.variableGrads(() => tf.neg(tf.mean(model.tokenLogProbs(inputIds, attentionMask).logProbs)), model.trainableVariables);
console.log('grad ms', Math.round(performance.now() - t0));
