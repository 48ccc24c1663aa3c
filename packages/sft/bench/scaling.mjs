// Short SFT runs for choosing the model size, learning rate, batch and packing: each
// configuration trains a fresh model for --steps steps on one distilled data set (a run's
// sft/distill/sft.jsonl and its tokenizer) and reports wall time, training tokens/s, the last
// steps' training loss and the loss on held-out conversations (the data set's last --heldout
// records, never trained on). Prints one JSON document.
//
// Usage (after `pnpm --filter @codereasoner/sft build`):
//   node bench/scaling.mjs --data <run>/sft/distill/sft.jsonl --tokenizer <run>/sft/tokenizer.json \
//     --configs h64l2,h128l2,h128l2:pack,h192l3 --steps 40
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CausalLM, initBackend, Tokenizer, tf } from '@codereasoner/core-tensors';
import {
  encodeExamples,
  readSftDataset,
  shardRows,
  sftShardLoss,
  trainingMessages,
  trainSft,
} from '../dist/index.js';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    data: { type: 'string' },
    tokenizer: { type: 'string' },
    configs: { type: 'string', default: 'h64l2,h128l2,h128l2:pack' },
    steps: { type: 'string', default: '40' },
    'batch-size': { type: 'string', default: '16' },
    lr: { type: 'string', default: '3e-3' },
    'max-seq-len': { type: 'string', default: '512' },
    heldout: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: 'auto' },
  },
});
if (!args.data || !args.tokenizer) {
  process.stderr.write('scaling.mjs: give --data <sft.jsonl> and --tokenizer <tokenizer.json>\n');
  process.exit(2);
}
const started = performance.now();
const log = (msg) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);

/** `h128l2:pack:lr1e-3:b8`: hidden 128, 2 layers, packing, lr 1e-3, batch 8. */
function parseConfig(text) {
  const config = {
    name: text,
    hidden: 128,
    layers: 2,
    packing: false,
    lr: Number(args.lr),
    batch: Number(args['batch-size']),
  };
  for (const part of text.split(':')) {
    const size = /^h(\d+)l(\d+)$/.exec(part);
    if (size) [config.hidden, config.layers] = [Number(size[1]), Number(size[2])];
    else if (part === 'pack') config.packing = true;
    else if (part.startsWith('lr')) config.lr = Number(part.slice(2));
    else if (part.startsWith('b')) config.batch = Number(part.slice(1));
    else throw new Error(`unknown config part ${part} in ${text}`);
  }
  return config;
}

const backend = await initBackend();
const tokenizer = await Tokenizer.load(args.tokenizer);
const records = await readSftDataset(args.data);
const heldoutCount = Number(args.heldout);
const train = records.slice(0, records.length - heldoutCount);
const heldout = encodeExamples(
  records.slice(records.length - heldoutCount).map((r) => trainingMessages(r, true)),
  tokenizer,
  Number(args['max-seq-len']),
).examples;

function heldoutLoss(model) {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < heldout.length; i += 16) {
    const [shard] = shardRows(heldout.slice(i, i + 16), tokenizer.special.pad, 1);
    const loss = tf.tidy(() => sftShardLoss(model, shard.data, { count: shard.count }));
    sum += loss.dataSync()[0] * shard.count;
    count += shard.count;
    loss.dispose();
  }
  return sum / count;
}

const results = [];
for (const text of args.configs.split(',').filter(Boolean)) {
  const config = parseConfig(text);
  const model = CausalLM.create(
    {
      vocabSize: tokenizer.vocabSize,
      hiddenSize: config.hidden,
      intermediateSize: 3 * config.hidden,
      numHiddenLayers: config.layers,
      numAttentionHeads: Math.max(2, config.hidden / 32),
      numKeyValueHeads: Math.max(2, config.hidden / 32),
      maxPositionEmbeddings: 1024,
    },
    { seed: Number(args.seed) },
  );
  const outDir = await mkdtemp(join(tmpdir(), 'sft-scaling-'));
  const load = loadavg()[0];
  const metrics = [];
  const t0 = performance.now();
  const result = await trainSft({
    model,
    tokenizer,
    train,
    outDir,
    config: {
      steps: Number(args.steps),
      batchSize: config.batch,
      learningRate: config.lr,
      warmupSteps: Math.min(12, Math.floor(Number(args.steps) / 4)),
      maxSeqLen: config.packing ? 1024 : Number(args['max-seq-len']),
      packing: config.packing,
      evalEvery: 0,
      checkpointEvery: 0,
      seed: Number(args.seed),
      workers: args.workers === 'auto' ? 'auto' : Number(args.workers),
    },
    onMetrics: (m) => metrics.push(m),
  });
  const seconds = (performance.now() - t0) / 1000;
  const steps = metrics.filter((m) => m.kind === 'step');
  const tail = steps.slice(-5);
  const tokens = steps.reduce((sum, m) => sum + (m.tokensPerSecond ?? 0), 0) / steps.length;
  const entry = {
    config: text,
    parameters: model.numParameters(),
    ...config,
    steps: result.steps,
    conversations: result.examples,
    seconds: Number(seconds.toFixed(1)),
    meanTokensPerSecond: Math.round(tokens),
    trainLossLast5: Number((tail.reduce((s, m) => s + m.loss, 0) / tail.length).toFixed(4)),
    heldoutLoss: Number(heldoutLoss(model).toFixed(4)),
    loadAverageAtStart: Number(load.toFixed(1)),
  };
  log(JSON.stringify(entry));
  results.push(entry);
  model.dispose();
  await rm(outDir, { recursive: true, force: true });
}
process.stdout.write(
  `${JSON.stringify({ backend, cpus: cpus().length, heldoutConversations: heldout.length, results }, null, 2)}\n`,
);
