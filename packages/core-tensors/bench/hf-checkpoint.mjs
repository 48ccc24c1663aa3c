// Default backend cpu: on wasm the f32 model (~2 GB) plus the copies XNNPACK packs of every weight
// matrix it multiplies exceed the 4 GB wasm memory (measured: "memory access out of bounds" in the
// first generation); the cpu backend's plain JS arrays have no such limit but multiply slowly, hence
// the short default lengths.
//
// Benchmark of a pretrained-size checkpoint: a random model with Qwen2.5-0.5B's shape (hidden 896,
// 24 layers, 14 heads, 2 KV heads, intermediate 4864, vocab 151936, tied embeddings) in bf16,
// written to a temp directory (~1 GB, deleted afterwards). Prints one JSON object: load seconds and
// peak RSS (measured in a fresh child process that only loads), generation tokens/s at batch 1 and
// 16, LoRA SFT tokens/s. Build first (`pnpm --filter @codereasoner/core-tensors build`).
//
//   node bench/hf-checkpoint.mjs [--backend cpu|wasm] [--prompt-tokens 4] [--new-tokens 4] [--sft-steps 1] [--sft-tokens 16]
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QWEN25_05B_SETTINGS, QWEN25_05B_SIZES } from './qwen25-05b.mjs';

// The writer takes ropeTheta as given (qwen2's default all the same) and has no rmsNormEps option
// (config.json gets 1e-6, Qwen2.5-0.5B's); the key is ignored.
const QWEN25_05B = {
  family: 'qwen2',
  ...QWEN25_05B_SIZES,
  ...QWEN25_05B_SETTINGS,
  dtype: 'BF16',
  seed: 1,
};

const { values } = parseArgs({
  options: {
    phase: { type: 'string', default: 'main' },
    dir: { type: 'string' },
    backend: { type: 'string', default: 'cpu' },
    'prompt-tokens': { type: 'string', default: '4' },
    'new-tokens': { type: 'string', default: '4' },
    'sft-steps': { type: 'string', default: '1' },
    'sft-tokens': { type: 'string', default: '16' },
  },
});
const core = await import('../dist/index.js');
const seconds = (t) => +((performance.now() - t) / 1000).toFixed(2);
const maxRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

if (values.phase === 'load') {
  // Only the load, in a fresh process: its peak RSS is the load's.
  await core.initBackend({ backend: values.backend });
  const t = performance.now();
  const { model, info } = await core.loadPretrained(values.dir);
  const loadSeconds = seconds(t);
  console.log(
    JSON.stringify({
      loadSeconds,
      peakRssMb: maxRssMb(),
      parameters: model.numParameters(),
      weightFiles: info.weightFiles,
      backend: core.backendReport().active,
    }),
  );
  model.dispose();
  process.exit(0);
}

const dir = await mkdtemp(join(tmpdir(), 'cr-qwen25-05b-'));
const result = {
  shape: 'Qwen2.5-0.5B (random weights)',
  machine: { cpus: cpus().length, loadAverageAtStart: loadavg().map((l) => +l.toFixed(1)) },
};
try {
  let t = performance.now();
  const written = await core.writeRandomHfCheckpoint(dir, QWEN25_05B);
  const files = await readdir(dir);
  let bytes = 0;
  for (const f of files) bytes += (await stat(join(dir, f))).size;
  result.checkpoint = {
    parameters: written.parameters,
    files: written.files,
    bytesOnDisk: bytes,
    writeSeconds: seconds(t),
    float32ModelMb: Math.round((written.parameters * 4) / 2 ** 20),
  };

  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--phase', 'load', '--dir', dir, '--backend', values.backend],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (child.status !== 0) throw new Error(`load phase failed: ${child.stderr}`);
  result.load = JSON.parse(child.stdout.trim().split('\n').at(-1));
  result.load.boundMb = result.checkpoint.float32ModelMb + Math.round(bytes / 2 ** 20);

  await core.initBackend({ backend: values.backend });
  result.backend = core.backendReport().active;
  t = performance.now();
  const { model, tokenizer } = await core.loadPretrained(dir);
  result.loadSecondsInBenchProcess = seconds(t);
  const newTokens = Number(values['new-tokens']);
  const promptTokens = Number(values['prompt-tokens']);
  const prompt = (i, length = promptTokens) =>
    Array.from({ length }, (_, k) => (i * 31 + k * 7) % tokenizer.vocabSize);
  result.generation = {};
  for (const batch of [1, 16]) {
    const prompts = Array.from({ length: batch }, (_, i) => prompt(i));
    // One short warm-up call (kernels, packed weights), then the timed one.
    await model.generate(prompts.slice(0, 1), { maxNewTokens: 2, temperature: 0 });
    t = performance.now();
    const out = await model.generate(prompts, {
      maxNewTokens: newTokens,
      temperature: 1,
      seed: 1,
      batchSize: batch,
      vocabLimit: tokenizer.vocabSize,
    });
    const produced = out.reduce((n, o) => n + o.tokens.length, 0);
    const s = seconds(t);
    result.generation[`batch${batch}`] = {
      promptTokens,
      tokens: produced,
      seconds: s,
      tokensPerSecond: +(produced / s).toFixed(2),
    };
  }

  // LoRA SFT: rank 16 on q/k/v/o, batch 1 × sftTokens, loss on every token.
  model.addAdapters(
    core.resolveLoraConfig({
      r: 16,
      alpha: 32,
      dropout: 0.05,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    }),
    { seed: 1 },
  );
  const optimizer = new core.AdamW({ learningRate: 1e-4 });
  const length = Number(values['sft-tokens']);
  const ids = core.tf.tensor2d(
    [prompt(3).concat(prompt(4), prompt(5), prompt(6)).slice(0, length)],
    undefined,
    'int32',
  );
  const mask = core.tf.onesLike(ids).toFloat();
  const step = () => {
    const { loss, grads } = core.computeGradients(model, () =>
      core.tf.tidy(() => core.tf.neg(core.tf.mean(model.tokenLogProbs(ids, mask).logProbs))),
    );
    optimizer.applyGradients(grads);
    core.tf.dispose(Object.values(grads));
    return loss;
  };
  t = performance.now();
  step(); // warm-up step (first-call allocations)
  const warmup = seconds(t);
  const steps = Number(values['sft-steps']);
  t = performance.now();
  const losses = [];
  for (let i = 0; i < steps; i++) losses.push(+step().toFixed(4));
  const s = seconds(t);
  result.loraSft = {
    r: 16,
    targets: 'q_proj,k_proj,v_proj,o_proj',
    trainableParameters: model.trainableVariables.reduce((n, v) => n + v.size, 0),
    tokensPerStep: length,
    warmupStepSeconds: warmup,
    steps,
    seconds: s,
    tokensPerSecond: +((steps * length) / s).toFixed(2),
    losses,
  };
  result.peakRssMbBenchProcess = maxRssMb();
  model.dispose();
} finally {
  await rm(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(result, null, 2));
