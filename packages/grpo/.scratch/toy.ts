import { CausalLM, Tokenizer, initBackend } from '@codereasoner/core-tensors';
import { GrpoTrainer } from '../src/index.js';

const backend = await initBackend({ backend: (process.env.B as 'cpu') ?? 'cpu' });
console.log(backend);
const tokenizer = Tokenizer.train(['hello world, say a letter'], { vocabSize: 270 });
console.log('vocab', tokenizer.vocabSize);
const policy = CausalLM.create({ vocabSize: tokenizer.vocabSize, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 64 }, { seed: 1 });
const target = process.env.T === 'tok' ? tokenizer.encode('a')[0]! : -1;
const letters = new Set<number>();
for (let i = 0; i < tokenizer.vocabSize; i++) if (/^[a-z]$/.test(tokenizer.decode([i]))) letters.add(i);
console.log('letters', letters.size, 'target', target);
const trainer = new GrpoTrainer({
  policy, tokenizer,
  config: { numGenerations: 8, generationBatchSize: 32, microBatchSize: 32, maxSteps: Number(process.env.S ?? 20), maxCompletionLength: 8, learningRate: Number(process.env.LR ?? 3e-3), seed: 3 },
  rewards: [{ name: 'target', fn: ({ completionIds }) => completionIds.map((ids) => ids.filter((t) => target >= 0 ? t === target : letters.has(t)).length / ids.length) }],
  dataset: [{ prompt: 'say a' }, { prompt: 'hello' }, { prompt: 'world' }, { prompt: 'letter' }],
  onMetrics: (m) => console.log(m.step, m.reward.toFixed(3), m.loss.toFixed(4), m.entropy.toFixed(3), m['time/generation_s'].toFixed(2), m['time/training_s'].toFixed(2), m.grad_norm.toFixed(3)),
});
const t = performance.now();
await trainer.train();
console.log('total s', (performance.now() - t) / 1000);
