// A pretrained Hugging Face model through LoRA SFT, LoRA GRPO, export and reload (the README's
// "Pretrained Hugging Face models" example). Build first (`pnpm build`), then:
//
//   node packages/core-tensors/scripts/make-random-hf-checkpoint.mjs /tmp/qwen3-tiny --family qwen3
//   node scripts/hf-lora-example.mjs /tmp/qwen3-tiny /tmp/qwen3-tiny-tuned
//
// Every figure it prints comes from this run; see the README for one run's output.
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  initBackend,
  loadPretrained,
  resolveLoraConfig,
  saveAdapter,
  savePretrained,
  tf,
} from '../packages/core-tensors/dist/index.js';
import { GrpoTrainer } from '../packages/grpo/dist/index.js';
import { trainSft } from '../packages/sft/dist/index.js';

const [source, out] = process.argv.slice(2);
if (source === undefined || out === undefined) {
  console.error('usage: node scripts/hf-lora-example.mjs <hf model dir> <export dir>');
  process.exit(2);
}
const backend = await initBackend();
const log = (what, value) => console.log(JSON.stringify({ [what]: value }));
log('backend', backend.active);

// 1. Load the Hugging Face directory and attach LoRA adapters (PEFT's names and initialisation).
let started = performance.now();
const { model, tokenizer, info } = await loadPretrained(source);
log('loaded', {
  architecture: model.config.architecture,
  parameters: model.numParameters(),
  dtype: info.dtype,
  eosTokenIds: info.eosTokenIds,
  seconds: +((performance.now() - started) / 1000).toFixed(2),
});
model.addAdapters(
  resolveLoraConfig({
    r: 8,
    alpha: 16,
    dropout: 0.05,
    targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  }),
  { seed: 1 },
);
log('lora', {
  trainable: model.trainableVariables.reduce((n, v) => n + v.size, 0),
  frozen: model.numParameters(),
});

// 2. SFT on a few chat examples (assistant tokens only).
const records = Array.from({ length: 16 }, (_, n) => {
  const prompt = [{ role: 'user', content: `f(x) = x + 1. f(${n})?` }];
  return {
    id: `add-${n}`,
    type: 'output',
    teacher: 'example',
    messages: [...prompt, { role: 'assistant', content: `<answer>${n + 1}</answer>` }],
    answer_messages: [...prompt, { role: 'assistant', content: `<answer>${n + 1}</answer>` }],
  };
});
const work = await mkdtemp(join(tmpdir(), 'cr-hf-example-'));
started = performance.now();
const sft = await trainSft({
  model,
  tokenizer,
  train: records,
  outDir: join(work, 'sft'),
  config: { steps: 30, batchSize: 8, learningRate: 2e-2, warmupSteps: 3, seed: 1 },
});
const sftSteps = (await readFile(sft.metricsPath, 'utf8'))
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line))
  .filter((m) => m.kind === 'step');
log('sft', {
  steps: sft.steps,
  firstLoss: +sftSteps[0].loss.toFixed(3),
  workers: sft.workers,
  finalLoss: +sft.finalLoss.toFixed(3),
  seconds: +((performance.now() - started) / 1000).toFixed(1),
  checkpointFiles: (await readdir(sft.checkpointDir)).sort(),
});

// 3. GRPO on the same adapters; the reference policy is the base with adapters off.
started = performance.now();
const trainer = new GrpoTrainer({
  policy: model,
  tokenizer,
  dataset: records.map((r, n) => ({ prompt: r.messages.slice(0, 1), answer: String(n + 1) })),
  rewards: [
    {
      name: 'correct',
      fn: ({ completions, rows }) =>
        completions.map((text, i) => (text.includes(`<answer>${rows[i].answer}</answer>`) ? 1 : 0)),
    },
  ],
  outDir: join(work, 'grpo'),
  config: {
    maxSteps: 8,
    numGenerations: 4,
    generationBatchSize: 8,
    maxCompletionLength: 12,
    learningRate: 5e-3,
    beta: 0.04,
    seed: 1,
  },
});
const grpo = await trainer.train();
trainer.dispose();
log('grpo', {
  steps: grpo.steps,
  reward: grpo.metrics.map((m) => +m.reward.toFixed(3)),
  kl: grpo.metrics.map((m) => +(m.kl ?? 0).toFixed(5)),
  seconds: +((performance.now() - started) / 1000).toFixed(1),
});

// 4. Export: the adapter in PEFT format, and the merged model in the source's layout and dtype.
await rm(out, { recursive: true, force: true });
started = performance.now();
const exported = await savePretrained(out, model, { info });
const adapterDir = `${out}-adapter`;
await rm(adapterDir, { recursive: true, force: true });
await mkdir(adapterDir, { recursive: true });
await saveAdapter(adapterDir, model, { baseModelNameOrPath: info.dir });
log('export', {
  files: exported.files,
  bytes: exported.totalBytes,
  adapterFiles: (await readdir(adapterDir)).sort(),
  seconds: +((performance.now() - started) / 1000).toFixed(2),
});

// 5. Reload the export: the same logits as base + adapters (up to bf16 rounding of the merged weights).
const reloaded = await loadPretrained(out);
const ids = tf.tensor2d([tokenizer.encode('f(x) = x + 1. f(3)?')], undefined, 'int32');
const a = model.logits(ids).dataSync();
const b = reloaded.model.logits(ids).dataSync();
let diff = 0;
let scale = 0;
for (let i = 0; i < a.length; i++) {
  diff = Math.max(diff, Math.abs(a[i] - b[i]));
  scale = Math.max(scale, Math.abs(a[i]));
}
const [greedyA] = await model.generate([Array.from(ids.dataSync())], {
  maxNewTokens: 8,
  temperature: 0,
});
const [greedyB] = await reloaded.model.generate([Array.from(ids.dataSync())], {
  maxNewTokens: 8,
  temperature: 0,
});
log('reload', {
  architecture: reloaded.info.config.architectures,
  dtype: reloaded.info.dtype,
  maxRelativeLogitDifference: +(diff / scale).toExponential(2),
  sameGreedyTokens: greedyA.tokens.join(',') === greedyB.tokens.join(','),
});
reloaded.model.dispose();
model.dispose();
await rm(work, { recursive: true, force: true });
