// The "with vs without reasoning chains" measurement: a small model trained from scratch on the
// embedded default data (data's program generator + the execution-trace teacher), evaluated on
// held-out tasks by execution. Per seed: the untrained model, SFT on chains, and SFT on answers
// only with the same number of training tokens (same compute). Prints one JSON document.
//
// Usage (after `pnpm --filter @codereasoner/sft build`):
//   node bench/ablation.mjs --work /tmp/sft-ablation --programs 600 --seeds 1,2 --steps 150
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CausalLM, initBackend, LocalChatModel, Tokenizer, tf } from '@codereasoner/core-tensors';
import { buildCorpus } from '@codereasoner/data';
import { readJsonlAll, taskRecordSchema } from '@codereasoner/protocol';
import { Sandbox } from '@codereasoner/sandbox';
import {
  createTraceTeacher,
  distill,
  encodeExamples,
  evaluateModel,
  readSftDataset,
  trainSft,
} from '../dist/index.js';

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    work: { type: 'string', default: '/tmp/sft-ablation' },
    programs: { type: 'string', default: '600' },
    difficulty: { type: 'string', default: 'mixed' },
    'corpus-seed': { type: 'string', default: '1' },
    seeds: { type: 'string', default: '1,2' },
    steps: { type: 'string', default: '150' },
    'batch-size': { type: 'string', default: '16' },
    'max-seq-len': { type: 'string', default: '512' },
    lr: { type: 'string', default: '3e-3' },
    hidden: { type: 'string', default: '128' },
    layers: { type: 'string', default: '4' },
    heads: { type: 'string', default: '4' },
    vocab: { type: 'string', default: '2048' },
    'train-types': { type: 'string', default: 'output,input,coverage,state,path' },
    'eval-types': { type: 'string', default: 'output,input,coverage,state,path' },
    'eval-per-type': { type: 'string', default: '60' },
    'eval-max-tokens': { type: 'string', default: '448' },
    'chain-max-steps': { type: 'string', default: '40' },
    modes: { type: 'string', default: 'untrained,chains,answers' },
    'answers-steps': { type: 'string' },
    'eval-every': { type: 'string', default: '0' },
  },
});
const num = (name) => Number(args[name]);
const list = (name) => String(args[name]).split(',').filter(Boolean);
const started = performance.now();
const log = (msg) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);

const backend = await initBackend();
const sandbox = await Sandbox.create({ workers: 2 });
const corpusDir = join(
  args.work,
  `corpus-${args.programs}-s${args['corpus-seed']}${args.difficulty === 'mixed' ? '' : `-${args.difficulty}`}`,
);
const manifest = await buildCorpus(
  {
    outDir: corpusDir,
    seed: num('corpus-seed'),
    source: { kind: 'generator', count: num('programs'), difficulty: args.difficulty },
  },
  { sandbox },
);
log(`corpus: ${JSON.stringify(manifest.counts.tasks)}`);
const trainTypes = new Set(list('train-types'));
const evalTypes = list('eval-types');
const trainTasks = (
  await readJsonlAll(join(corpusDir, 'tasks/train.jsonl'), taskRecordSchema)
).filter((t) => trainTypes.has(t.type));
const allEval = await readJsonlAll(join(corpusDir, 'tasks/eval.jsonl'), taskRecordSchema);
const evalTasks = evalTypes.flatMap((type) =>
  allEval.filter((t) => t.type === type).slice(0, num('eval-per-type')),
);

const distillDir = join(
  corpusDir,
  `sft-trace-m${args['chain-max-steps']}-${[...trainTypes].join('+')}`,
);
const stats = await distill(
  trainTasks,
  createTraceTeacher(sandbox, { chain: { maxSteps: num('chain-max-steps') } }),
  {
    outDir: distillDir,
  },
);
const records = await readSftDataset(stats.datasetPath);
log(`distilled ${stats.accepted}/${stats.total}`);

// one tokenizer for every run: trained on the training conversations of both forms
const tokenizerPath = join(distillDir, `tokenizer-${args.vocab}.json`);
let tokenizer;
try {
  tokenizer = await Tokenizer.load(tokenizerPath);
} catch {
  const texts = records.flatMap((r) => [...r.messages, r.answer_messages[2]].map((m) => m.content));
  tokenizer = Tokenizer.train(texts, { vocabSize: num('vocab') });
  await tokenizer.save(tokenizerPath);
}
const lengths = (reasoning) => {
  const { examples, droppedTooLong } = encodeExamples(
    records.map((r) => (reasoning ? r.messages : r.answer_messages)),
    tokenizer,
    num('max-seq-len'),
  );
  const sorted = examples.map((e) => e.ids.length).sort((a, b) => a - b);
  return {
    kept: examples.length,
    droppedTooLong,
    meanTokens: Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    p50: sorted[sorted.length >> 1],
    p90: sorted[Math.floor(sorted.length * 0.9)],
  };
};
const chainLengths = lengths(true);
const answerLengths = lengths(false);
log(`lengths chains ${JSON.stringify(chainLengths)} answers ${JSON.stringify(answerLengths)}`);

const modelConfig = {
  vocabSize: Math.ceil(tokenizer.vocabSize / 64) * 64,
  hiddenSize: num('hidden'),
  intermediateSize: num('hidden') * 3,
  numHiddenLayers: num('layers'),
  numAttentionHeads: num('heads'),
  numKeyValueHeads: num('heads'),
  maxPositionEmbeddings: Math.max(1024, num('max-seq-len') + num('eval-max-tokens')),
};

async function evaluate(model, reasoning, maxTokens, name) {
  const t0 = performance.now();
  const result = await evaluateModel(
    new LocalChatModel(model, tokenizer, { batchSize: 32 }),
    evalTasks,
    sandbox,
    {
      reasoning,
      maxTokens,
      batchSize: 1000,
    },
  );
  await mkdir(join(args.work, 'evals'), { recursive: true });
  await writeFile(
    join(args.work, 'evals', `${name}.jsonl`),
    result.items.map((i) => JSON.stringify(i)).join('\n'),
  );
  return {
    accuracy: result.accuracy,
    overall: Number(result.overall.toFixed(4)),
    seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
    noAnswer: result.items.filter((i) => i.reason.startsWith('no_answer')).length,
    sample: result.items.slice(0, 2).map((i) => i.completion.slice(-160)),
  };
}

const runs = [];
let parameters = 0;
const steps = num('steps');
// compute-matched: the answers-only run gets as many training tokens as the chains run
const answersSteps = args['answers-steps']
  ? Number(args['answers-steps'])
  : Math.round((steps * chainLengths.meanTokens) / answerLengths.meanTokens);
for (const seed of list('seeds').map(Number)) {
  for (const mode of list('modes')) {
    if (!['untrained', 'chains', 'answers'].includes(mode)) throw new Error(`unknown mode ${mode}`);
    const model = CausalLM.create(modelConfig, { seed });
    parameters = model.numParameters();
    const row = { seed, mode };
    if (mode !== 'untrained') {
      const reasoning = mode === 'chains';
      const outDir = join(args.work, 'runs', `${mode}-s${seed}-${Date.now()}`);
      const t0 = performance.now();
      const result = await trainSft({
        model,
        tokenizer,
        train: records,
        outDir,
        config: {
          seed,
          reasoning,
          steps: reasoning ? steps : answersSteps,
          batchSize: num('batch-size'),
          maxSeqLen: num('max-seq-len'),
          learningRate: num('lr'),
          warmupSteps: Math.max(1, Math.round((reasoning ? steps : answersSteps) * 0.05)),
          checkpointEvery: 0,
          evalEvery: num('eval-every'),
          evalLimit: 0,
          evalMaxTokens: reasoning ? num('eval-max-tokens') : 64,
        },
        ...(num('eval-every') > 0
          ? {
              eval: evalTasks,
              sandbox,
              chatModel: (m, tok) => new LocalChatModel(m, tok, { batchSize: 32 }),
            }
          : {}),
        onMetrics: (m) => {
          if (m.kind === 'eval')
            log(`${mode} s${seed} eval at ${m.step}: ${JSON.stringify(m.accuracy)}`);
          if (m.kind === 'step' && m.step % 25 === 0) {
            log(
              `${mode} s${seed} step ${m.step} loss ${m.loss.toFixed(3)} ${Math.round(m.tokensPerSecond)} tok/s`,
            );
          }
        },
      });
      const metrics = (await readFile(result.metricsPath, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((m) => m.kind === 'step');
      Object.assign(row, {
        steps: result.steps,
        trainSeconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
        finalLoss: Number(
          (
            metrics.slice(-10).reduce((s, m) => s + m.loss, 0) / Math.min(10, metrics.length)
          ).toFixed(4),
        ),
        trainedTargetTokens: metrics.reduce((s, m) => s + m.targetTokens, 0),
        meanTokensPerSecond: Math.round(
          metrics.reduce((s, m) => s + m.tokensPerSecond, 0) / metrics.length,
        ),
      });
      row.eval = await evaluate(
        model,
        reasoning,
        reasoning ? num('eval-max-tokens') : 64,
        `${mode}-s${seed}`,
      );
      await rm(outDir, { recursive: true, force: true });
    } else {
      row.eval = await evaluate(model, false, 64, `${mode}-s${seed}`);
    }
    log(`${mode} s${seed}: ${JSON.stringify(row.eval.accuracy)}`);
    runs.push(row);
    model.dispose();
    await mkdir(args.work, { recursive: true });
    await writeFile(join(args.work, 'partial.json'), JSON.stringify(runs, null, 1));
  }
}
await sandbox.close();
console.log(
  JSON.stringify(
    {
      backend: backend.active,
      cpus: cpus().length,
      loadAverageAtEnd: loadavg().map((x) => Number(x.toFixed(2))),
      settings: { ...args, answersSteps, modelConfig, parameters },
      corpus: manifest.counts.tasks,
      distill: { accepted: stats.accepted, total: stats.total },
      evalTasks: Object.fromEntries(
        evalTypes.map((t) => [t, evalTasks.filter((x) => x.type === t).length]),
      ),
      lengths: { chains: chainLengths, answers: answerLengths },
      runs,
      tensorsLeft: tf.memory().numTensors,
    },
    null,
    1,
  ),
);
