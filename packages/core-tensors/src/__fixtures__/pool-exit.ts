// Run in a child process by model-worker-pool.test.ts: uses a pool and never closes it; the
// process must still exit on its own once the pool is idle.
import { initBackend } from '../backend.js';
import { CausalLM } from '../model.js';
import { createModelWorkerPool } from '../model-worker-pool.js';

await initBackend();
const model = CausalLM.create({
  vocabSize: 32,
  hiddenSize: 16,
  intermediateSize: 32,
  numHiddenLayers: 1,
  numAttentionHeads: 2,
  numKeyValueHeads: 1,
  maxPositionEmbeddings: 32,
});
const pool = await createModelWorkerPool({ model, workers: 2 });
const outputs = await pool.generate([[1, 2], [3]], {
  maxNewTokens: 2,
  temperature: 0,
  batchSize: 1,
});
process.stdout.write(
  JSON.stringify({ size: pool.size, tokens: outputs.reduce((n, o) => n + o.tokens.length, 0) }),
);
