// Generation on a real GRPO workload, with and without dropping finished rows. Prints JSON.
//   node bench/generate-rollouts.mjs --run <cr run dir> [--checkpoint <dir>] [--prompts 8]
//     [--generations 8] [--batch-size 16] [--max-new-tokens 384] [--temperature 0.7]
//     [--compact-after 0,1] [--rounds 3] [--engine onnx] [--decode fused] [--seed 1]
// The workload of `cr run-all`'s GRPO rollouts: the run's SFT model (its last checkpoint under
// <run>/sft/train/checkpoints, or --checkpoint), prompts rendered as the run rendered them (the
// system and user turns of <run>/sft/distill/sft.jsonl, which are the GRPO prompts' layout: the
// GRPO stage reads the same task files; prompts that leave no room for --max-new-tokens are left
// out, as GRPO does), each prompt --generations times in batches of --batch-size (the rollout's
// 2 prompts × 8 generations per worker thread), sampled at the GRPO temperature with the chat's
// stop tokens, so rows stop at the lengths the model gives them.
// Each round generates the same prompts with the same seeds once per --compact-after value
// (`GenerateOptions.compactAfter`; 0 = every row decodes until the batch's last one stops,
// the behaviour before), rotating the order every round so load drifts hit every mode; the first
// round is a warm-up, reported but left out of the ranges. Tokens per CPU second use the process's
// CPU time (every thread), the figure that compares modes on a machine shared with other jobs.
// Also reports the run's own rollout journal (<run>/grpo/train/rollouts.jsonl, if present):
// real tokens against decoded row-steps when every row of a 16-row batch decodes to the longest.
// Run after `pnpm build`. CR_BENCH_DIST points at another build to compare before/after.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { initBackend, loadCheckpoint, Rng } = await import(
  process.env.CR_BENCH_DIST ?? '../dist/index.js'
);

const { values: args } = parseArgs({
  options: {
    run: { type: 'string' },
    checkpoint: { type: 'string' },
    prompts: { type: 'string', default: '8' },
    generations: { type: 'string', default: '8' },
    'batch-size': { type: 'string', default: '16' },
    'max-new-tokens': { type: 'string', default: '384' },
    temperature: { type: 'string', default: '0.7' },
    'compact-after': { type: 'string', default: '0,1' },
    rounds: { type: 'string', default: '3' },
    engine: { type: 'string', default: 'onnx' },
    // tfjs only: 'reference' runs the ops `logits` uses (the path before the fused decode)
    decode: { type: 'string', default: 'fused' },
    seed: { type: 'string', default: '1' },
  },
});

function fail(message) {
  console.error(`generate-rollouts: ${message}`);
  process.exit(2);
}
const positive = (name) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1)
    fail(`--${name} must be a positive integer, got ${args[name]}`);
  return n;
};
if (args.run === undefined)
  fail(
    'give --run <dir>: a `cr run-all` run directory with sft/distill/sft.jsonl and sft/train/checkpoints (e.g. /tmp/ra13/runs/default)',
  );
const distill = join(args.run, 'sft', 'distill', 'sft.jsonl');
if (!existsSync(distill))
  fail(`${distill} does not exist: is ${args.run} a cr run whose sft stage finished?`);
let checkpoint = args.checkpoint;
if (checkpoint === undefined) {
  const dir = join(args.run, 'sft', 'train', 'checkpoints');
  const steps = existsSync(dir)
    ? readdirSync(dir)
        .filter((d) => /^step-\d+$/.test(d))
        .sort()
    : [];
  if (steps.length === 0) fail(`no step-* checkpoint in ${dir}; pass --checkpoint <dir>`);
  checkpoint = join(dir, steps.at(-1));
}
const promptCount = positive('prompts');
const generations = positive('generations');
const batchSize = positive('batch-size');
const maxNewTokens = positive('max-new-tokens');
const rounds = positive('rounds');
const seed = Number(args.seed);
const temperature = Number(args.temperature);
if (!(temperature >= 0)) fail(`--temperature must be >= 0, got ${args.temperature}`);
const modes = args['compact-after'].split(',').map((x) => {
  const n = Number(x);
  if (!Number.isInteger(n) || n < 0) fail(`--compact-after takes non-negative integers, got ${x}`);
  return n;
});
if (!['onnx', 'tfjs', 'auto'].includes(args.engine))
  fail(`--engine must be onnx, tfjs or auto, got ${args.engine}`);
if (!['fused', 'reference'].includes(args.decode))
  fail(`--decode must be fused or reference, got ${args.decode}`);

const backend = await initBackend();
const { model, tokenizer, chat } = await loadCheckpoint(checkpoint, { trainable: false });
const room = model.config.maxPositionEmbeddings - maxNewTokens;
const all = readFileSync(distill, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line).messages.filter((m) => m.role !== 'assistant'))
  .map((messages) => chat.encode(messages, { addGenerationPrompt: true }).ids)
  .filter((ids) => ids.length <= room);
if (all.length < promptCount) fail(`only ${all.length} prompts fit ${room} tokens`);
const chosen = new Rng(seed).shuffle(all).slice(0, promptCount);
const prompts = chosen.flatMap((ids) => new Array(generations).fill(ids));
const options = {
  maxNewTokens,
  temperature,
  stopTokens: [...chat.stopTokenIds],
  vocabLimit: tokenizer.vocabSize,
  batchSize,
  seed,
  engine: args.engine,
  decode: args.decode,
};

/** Row-steps each batch decodes when every row runs until the batch's last one stops. */
function rowSteps(lengths) {
  let steps = 0;
  for (let start = 0; start < lengths.length; start += batchSize) {
    const part = lengths.slice(start, start + batchSize);
    steps += part.length * Math.max(...part);
  }
  return steps;
}

function journal() {
  const path = join(args.run, 'grpo', 'train', 'rollouts.jsonl');
  if (!existsSync(path)) return undefined;
  let real = 0;
  let steps = 0;
  let batches = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const record = JSON.parse(line);
    const lengths = record.groups.flatMap((g) => g.completions.map((c) => c.ids.length));
    real += lengths.reduce((a, b) => a + b, 0);
    for (let start = 0; start < lengths.length; start += batchSize) {
      const part = lengths.slice(start, start + batchSize);
      steps += part.length * Math.max(...part);
      batches++;
    }
  }
  return { path, realTokens: real, rowSteps: steps, batches, realShare: round(real / steps, 3) };
}

const round = (x, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
const results = [];
let reference;
for (let r = 0; r < rounds; r++) {
  const order = modes.map((_, i) => modes[(i + r) % modes.length]);
  for (const compactAfter of order) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const outputs = await model.generate(prompts, { ...options, compactAfter: compactAfter });
    const wall = (performance.now() - t0) / 1000;
    const { user, system } = process.cpuUsage(c0);
    const cpu = (user + system) / 1e6;
    const lengths = outputs.map((o) => o.tokens.length);
    const tokens = lengths.reduce((a, b) => a + b, 0);
    // every mode must give the same rows: the measurement compares like with like
    const signature = outputs.map((o) => o.tokens.join(',')).join('|');
    reference ??= { signature, logProbs: outputs.map((o) => o.logProbs) };
    if (signature !== reference.signature)
      fail(`compactAfter ${compactAfter} gave other tokens than the first mode of round 1`);
    let logProbDifference = 0;
    outputs.forEach((o, i) =>
      o.logProbs.forEach((x, t) => {
        logProbDifference = Math.max(logProbDifference, Math.abs(x - reference.logProbs[i][t]));
      }),
    );
    results.push({
      round: r,
      warmUp: r === 0,
      compactAfter,
      engine: model.lastGenerationEngine?.engine,
      tokens,
      rowSteps: rowSteps(lengths),
      stopped: outputs.filter((o) => o.finishReason === 'stop').length,
      // against the first mode of round 1 (0: bit-equal)
      logProbDifference,
      wallSeconds: round(wall, 3),
      cpuSeconds: round(cpu, 3),
      tokensPerCpuSecond: round(tokens / cpu),
      tokensPerWallSecond: round(tokens / wall),
      loadAverage: round(loadavg()[0], 2),
    });
  }
}

const summary = {};
for (const compactAfter of modes) {
  const rows = results.filter((x) => x.compactAfter === compactAfter && !x.warmUp);
  const span = (key) => {
    const v = rows.map((x) => x[key]).sort((a, b) => a - b);
    return v.length === 0
      ? null
      : { min: v[0], median: v[Math.floor(v.length / 2)], max: v.at(-1) };
  };
  summary[compactAfter] = {
    tokensPerCpuSecond: span('tokensPerCpuSecond'),
    tokensPerWallSecond: span('tokensPerWallSecond'),
    cpuSeconds: span('cpuSeconds'),
  };
}
const first = results[0];
console.log(
  JSON.stringify(
    {
      bench: 'generate-rollouts',
      dist: process.env.CR_BENCH_DIST ?? 'this build',
      backend,
      checkpoint,
      engine: args.engine,
      decode: args.decode,
      workload: {
        prompts: promptCount,
        generations,
        batchSize,
        maxNewTokens,
        temperature,
        seed,
        promptTokens: chosen.map((p) => p.length),
        realTokens: first.tokens,
        rowStepsWithoutDropping: first.rowSteps,
        realShare: round(first.tokens / first.rowSteps, 3),
        stopped: `${first.stopped} of ${prompts.length}`,
      },
      journal: journal(),
      summary,
      results,
    },
    null,
    1,
  ),
);
model.dispose();
