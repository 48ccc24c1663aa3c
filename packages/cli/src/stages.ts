import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { runBenchmarks } from '@codereasoner/bench';
import { AUTO_WORKERS_MIN_PARAMETERS, interleave } from '@codereasoner/common';
import {
  CausalLM,
  LocalChatModel,
  Rng,
  Tokenizer,
  createModelWorkerPool,
  loadCheckpoint,
  loadPretrained,
  renderChat,
  resolveLoraConfig,
  resolveModelConfig,
  saveCheckpoint,
  type ChatFormat,
} from '@codereasoner/core-tensors';
import {
  DIFFICULTY_LEVELS,
  buildCorpus,
  resolveCorpusOptions,
  type CorpusOptions,
} from '@codereasoner/data';
import {
  TASK_TYPES,
  readJsonlAll,
  renderPrompt,
  taskRecordSchema,
  verifiedReward,
  type TaskRecord,
  type TaskType,
} from '@codereasoner/protocol';
import { GrpoTrainer, resolveGrpoConfig, type RewardFunction } from '@codereasoner/grpo';
import { resolveSandboxOptions } from '@codereasoner/sandbox';
import {
  answerDiversity,
  createChatTeacher,
  createTraceTeacher,
  distill,
  evaluateBaselines,
  evaluateModel,
  extractedAnswer,
  readSftDataset,
  resolveSftConfig,
  trainSft,
  trainingMessages,
  type BaselineResult,
  type EvaluationItem,
  type EvaluationResult,
  type TraceTeacherConfig,
  type TraceTeacherOptions,
} from '@codereasoner/sft';
import {
  generatedWithLine,
  generationOptions,
  type RunConfig,
  type SectionValidators,
} from './config.js';
import type { StageContext } from './context.js';
import { EvaluationJournal } from './eval-journal.js';
import { writeJsonAtomic, type StageMarker, type StageName } from './run-dir.js';

export interface StageOutcome {
  artifacts: Record<string, string>;
  figures: Record<string, unknown>;
}

/** `null`: the stage does not apply to this run (e.g. no benchmark files given); nothing is marked done. */
export type StageRunner = (context: StageContext) => Promise<StageOutcome | null>;

function rel(context: StageContext, path: string): string {
  return relative(context.run.root, path) || '.';
}

async function readTasks(context: StageContext, split: 'train' | 'eval'): Promise<TaskRecord[]> {
  const path = context.run.path('data', 'tasks', `${split}.jsonl`);
  return readJsonlAll(path, taskRecordSchema);
}

/**
 * Up to `perType` tasks of each type, picked with the run's seed so every model sees the same
 * set, interleaved by type so that any prefix (an evaluation limit) covers every type.
 */
export function sampleByType(
  tasks: readonly TaskRecord[],
  perType: number,
  seed: number,
): TaskRecord[] {
  const byType = TASK_TYPES.map((type) =>
    new Rng(seed).shuffle(tasks.filter((task) => task.type === type)).slice(0, perType),
  );
  return interleave(byType);
}

/** A task's difficulty rank: the generator's levels from 0 (basic); tasks without one are 0. */
export function levelRank(task: TaskRecord): number {
  const level = task.meta?.['difficulty'];
  const index = (DIFFICULTY_LEVELS as readonly unknown[]).indexOf(level);
  return index === -1 ? 0 : index;
}

// ---------------------------------------------------------------------------------------------
// data

export const dataStage: StageRunner = async (context) => {
  const { config } = context;
  const outDir = context.run.stageDir('data');
  const sandbox = await context.sandbox();
  const manifest = await buildCorpus(
    { ...(config.data as Omit<CorpusOptions, 'outDir'>), seed: config.seed, outDir },
    { sandbox, onProgress: (event) => context.reporter.progress(event), logger: context.logger },
  );
  return {
    artifacts: {
      manifest: rel(context, join(outDir, 'manifest.json')),
      train: rel(context, join(outDir, 'tasks', 'train.jsonl')),
      eval: rel(context, join(outDir, 'tasks', 'eval.jsonl')),
    },
    figures: {
      programs: manifest.counts.programs,
      tasks: manifest.counts.tasks,
      stages: manifest.stages,
    },
  };
};

// ---------------------------------------------------------------------------------------------
// sft: distil → tokenizer → base model → train

async function trainOrLoadTokenizer(
  context: StageContext,
  datasetPath: string,
): Promise<Tokenizer> {
  const path = context.run.path('sft', 'tokenizer.json');
  if (existsSync(path)) return Tokenizer.load(path);
  const records = await readSftDataset(datasetPath);
  const texts = records.map((record) => renderChat(trainingMessages(record, true)));
  // the answers-only ablation and the benchmark prompts use the same tokenizer
  const tokenizer = Tokenizer.train(texts, { vocabSize: context.config.tokenizer.vocabSize });
  await tokenizer.save(path);
  return tokenizer;
}

/** The trace teacher's options from the run config's `teacher` section (checked by its schema). */
function traceTeacherOptions(section: TraceTeacherConfig): TraceTeacherOptions {
  const { kind: _kind, ...options } = section;
  return options;
}

export const sftStage: StageRunner = async (context) => {
  const { config } = context;
  await context.backend();
  const sandbox = await context.sandbox();
  const train = await readTasks(context, 'train');
  const evalTasks = sampleByType(
    await readTasks(context, 'eval'),
    config.eval.tasksPerType,
    config.seed,
  );

  context.reporter.info(`distilling ${train.length} training tasks`);
  const teacherKind = (config.teacher.kind as string | undefined) ?? 'trace';
  const teacher =
    teacherKind === 'trace'
      ? createTraceTeacher(
          sandbox,
          traceTeacherOptions(config.teacher as unknown as TraceTeacherConfig),
        )
      : createChatTeacher({
          ...(config.teacher as object),
          model: config.teacher.model as never,
          sandbox,
        });
  const distillDir = context.run.path('sft', 'distill');
  const stats = await distill(train, teacher, {
    outDir: distillDir,
    signal: context.signal,
    onProgress: (event) => context.reporter.progress(event),
    logger: context.logger,
  });

  const pretrained = config.model.pretrained;
  let tokenizer: Tokenizer;
  // A pretrained model trains, evaluates and stops in its own chat format; from scratch: ChatML.
  let chat: ChatFormat | undefined;
  let baseDir = context.run.path('sft', 'base');
  let model: CausalLM;
  if (pretrained !== undefined) {
    // The pretrained directory itself is the base model (and its tokenizer the run's); eval reads it there.
    ({ model, tokenizer, chat } = await loadPretrained(pretrained, { trainable: true }));
    baseDir = pretrained;
  } else if (existsSync(join(baseDir, 'model.safetensors'))) {
    tokenizer = await trainOrLoadTokenizer(context, stats.datasetPath);
    model = (await loadCheckpoint(baseDir, { trainable: true })).model;
  } else {
    tokenizer = await trainOrLoadTokenizer(context, stats.datasetPath);
    model = CausalLM.create(
      { ...config.model, vocabSize: tokenizer.vocabSize },
      { seed: config.seed },
    );
    await saveCheckpoint(baseDir, { model, tokenizer });
  }
  if (config.lora !== undefined)
    model.addAdapters(resolveLoraConfig(config.lora), { seed: config.seed });
  context.reporter.info(
    `model: ${(model.numParameters() / 1e6).toFixed(2)}M parameters, ${model.config.numHiddenLayers} layers, hidden ${model.config.hiddenSize}, vocab ${model.config.vocabSize}${model.loraConfig === undefined ? '' : `, LoRA r ${model.loraConfig.r} on ${model.loraConfig.targetModules.join(', ')}`}`,
  );
  // the generator's level of each training task, for sft.curriculum (other sources: level 0)
  const levelOf = new Map(train.map((task) => [task.id, levelRank(task)]));
  const result = await trainSft({
    model,
    tokenizer,
    ...(chat === undefined ? {} : { chat }),
    train: stats.datasetPath,
    levels: (record) => levelOf.get(record.id) ?? 0,
    eval: evalTasks,
    sandbox,
    config: {
      workers: workerCount(config, model.numParameters()),
      ...config.sft,
      seed: config.seed,
    },
    outDir: context.run.path('sft', 'train'),
    ...generationOptions(config),
    signal: context.signal,
    onProgress: (event) => context.reporter.progress(event),
    logger: context.logger,
  });
  const parameters = model.numParameters();
  model.dispose();
  context.reporter.info(`sft gradients computed with ${result.trainEngine}`);
  if (result.stopped === 'aborted')
    throw new Error('SFT interrupted; re-run to resume from its last checkpoint');
  return {
    artifacts: {
      dataset: rel(context, stats.datasetPath),
      tokenizer: rel(
        context,
        pretrained === undefined
          ? context.run.path('sft', 'tokenizer.json')
          : join(pretrained, 'tokenizer.json'),
      ),
      baseCheckpoint: rel(context, baseDir),
      checkpoint: rel(context, result.checkpointDir),
      metrics: rel(context, result.metricsPath),
    },
    figures: {
      distilled: stats.accepted,
      distillTotal: stats.total,
      acceptanceRate: stats.acceptanceRate,
      steps: result.steps,
      finalLoss: result.finalLoss,
      examples: result.examples,
      parameters,
      trainEngine: result.trainEngine,
    },
  };
};

// ---------------------------------------------------------------------------------------------
// grpo: reward = the task protocol's execution-based verification (protocol's verifiedReward)

/** The reward `cr grpo` trains with: protocol's `verifiedReward` on the run's own sandbox. */
export function runReward(context: StageContext): RewardFunction {
  return verifiedReward(() => context.sandbox());
}

export const grpoStage: StageRunner = async (context) => {
  const { config } = context;
  await context.backend();
  const sftMarker = await context.run.marker('sft');
  if (!sftMarker) throw new Error('the sft stage has not finished; run it first');
  const { model, tokenizer, chat } = await loadCheckpoint(
    context.run.path(sftMarker.artifacts.checkpoint!),
    { trainable: true },
  );
  const reasoning = (config.sft.reasoning as boolean | undefined) ?? true;
  const train = await readTasks(context, 'train');
  const maxCompletion = resolveGrpoConfig({
    ...config.grpo,
    seed: config.seed,
  }).maxCompletionLength;
  const room = model.config.maxPositionEmbeddings - maxCompletion;
  const rows = train.map((task) => ({ prompt: renderPrompt(task, { reasoning }), task }));
  const dataset = new Rng(config.seed).shuffle(
    rows.filter((row) => chat.encode(row.prompt, { addGenerationPrompt: true }).ids.length <= room),
  );
  if (dataset.length < rows.length) {
    context.reporter.warn(
      `grpo: left out ${rows.length - dataset.length} of ${rows.length} prompts longer than ${room} tokens (context ${model.config.maxPositionEmbeddings} minus maxCompletionLength ${maxCompletion})`,
    );
  }
  if (dataset.length === 0)
    throw new Error(
      'grpo: no training prompt fits the model context; raise model.maxPositionEmbeddings or lower grpo.maxCompletionLength',
    );
  const outDir = context.run.path('grpo', 'train');
  const trainer = new GrpoTrainer({
    policy: model,
    tokenizer,
    chat,
    config: {
      workers: workerCount(config, model.numParameters()),
      // the run's engine and onnx options, unless the grpo section names its own
      ...generationOptions(config),
      ...config.grpo,
      seed: config.seed,
    },
    rewards: [{ name: 'verified', fn: runReward(context) }],
    dataset,
    outDir,
    onProgress: (event) => context.reporter.progress(event),
    logger: context.logger,
    signal: context.signal,
  });
  const result = await trainer.train();
  model.dispose();
  context.reporter.info(`grpo gradients computed with ${result.trainEngine}`);
  if (result.stopped === 'aborted')
    throw new Error('GRPO interrupted; re-run to resume from its last checkpoint');
  const rewards = result.metrics.map((m) => m.reward);
  return {
    artifacts: {
      checkpoint: rel(context, result.checkpoint ?? outDir),
      metrics: rel(context, join(outDir, 'metrics.jsonl')),
    },
    figures: {
      steps: result.steps,
      firstReward: rewards[0],
      lastReward: rewards.at(-1),
      trainEngine: result.trainEngine,
    },
  };
};

/**
 * Threads for models big enough to gain from them: starting a thread costs about a second, more
 * than a whole evaluation of a tiny model (the same rule as grpo's `workers: 'auto'`).
 */
export function workerCount(config: RunConfig, parameters: number): number | 'auto' {
  if (config.workers !== 'auto') return config.workers;
  return parameters >= AUTO_WORKERS_MIN_PARAMETERS ? 'auto' : 0;
}

/** Loads a checkpoint as a chat model generating on every core, runs `use`, then frees it all. */
async function withChatModel<T>(
  context: StageContext,
  checkpointDir: string,
  id: string,
  use: (chat: LocalChatModel) => Promise<T>,
): Promise<T> {
  const { model, tokenizer, chat } = await loadCheckpoint(checkpointDir);
  const pool = await createModelWorkerPool({
    model,
    workers: workerCount(context.config, model.numParameters()),
  });
  const generation = generationOptions(context.config);
  try {
    const result = await use(
      new LocalChatModel(model, tokenizer, {
        id,
        workers: pool,
        chat,
        ...generation,
        logger: context.logger,
      }),
    );
    const ran = model.lastGenerationEngine;
    if (ran !== undefined) context.reporter.info(generatedWithLine(id, ran, generation.engine));
    return result;
  } finally {
    await pool.close();
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// eval: base, SFT and GRPO models on the same held-out tasks

export interface ModelEvaluation {
  model: string;
  checkpoint: string;
  accuracy: Partial<Record<TaskType, number>>;
  counts: EvaluationResult['counts'];
  overall: number;
  /** Distinct answers and the share of the most frequent one, per type and overall. */
  diversity: EvaluationResult['diversity'];
  seconds: number;
}

/** What `eval/baselines.json` holds: the trivial baselines on the same held-out tasks. */
export type BaselineRecord = Omit<BaselineResult, 'items'> & {
  /** Training tasks the majority and random answers come from. */
  trainTasks: number;
  seconds: number;
};

/**
 * A record written before answer diversity was recorded: computed from its items (each answer
 * extracted from its completion as the verifier does).
 */
export function withDiversity(
  record: Omit<ModelEvaluation, 'diversity'> & {
    diversity?: ModelEvaluation['diversity'];
    items: Pick<EvaluationItem, 'type' | 'completion'>[];
  },
): ModelEvaluation {
  if (record.diversity !== undefined) return record as ModelEvaluation;
  return {
    ...record,
    diversity: answerDiversity(
      record.items.map((item) => ({
        type: item.type,
        answer: extractedAnswer(item.completion, item.type),
      })),
    ),
  };
}

export const evalStage: StageRunner = async (context) => {
  const { config } = context;
  const split = await readTasks(context, 'eval');
  if (split.length === 0) {
    // every model would score 0.0 on nothing, which reads as a result
    context.reporter.warn(
      `eval: the held-out split ${rel(context, context.run.path('data', 'tasks', 'eval.jsonl'))} has no tasks, so no model is evaluated; ` +
        'build a larger corpus (data.source) or raise data.evalFraction, then run `cr data build --force`',
    );
    return { artifacts: {}, figures: { tasks: 0, models: [], warning: 'empty eval split' } };
  }
  await context.backend();
  const sandbox = await context.sandbox();
  const tasks = sampleByType(split, config.eval.tasksPerType, config.seed);
  const reasoning = (config.sft.reasoning as boolean | undefined) ?? true;
  const sftMarker = await context.run.marker('sft');
  const grpoMarker = await context.run.marker('grpo');
  const models: [string, string | undefined][] = [
    ['base', sftMarker?.artifacts.baseCheckpoint],
    ['sft', sftMarker?.artifacts.checkpoint],
    ['grpo', grpoMarker?.artifacts.checkpoint],
  ];
  const results: ModelEvaluation[] = [];
  for (const [name, checkpoint] of models) {
    if (!checkpoint) continue;
    const path = context.run.path('eval', `${name}.json`);
    const done = existsSync(path)
      ? (JSON.parse(await readFile(path, 'utf8')) as Parameters<typeof withDiversity>[0])
      : undefined;
    if (done) {
      const { items: _items, ...record } = withDiversity(done) as ModelEvaluation & {
        items: unknown[];
      };
      results.push(record);
      continue;
    }
    const started = performance.now();
    // each scored item is appended at once, so an interrupted evaluation resumes where it stopped
    const journal = new EvaluationJournal(context.run.path('eval', `${name}.items.jsonl`));
    const previous = await journal.read(context.logger);
    if (previous.length > 0)
      context.reporter.info(`eval ${name}: resuming with ${previous.length} items scored earlier`);
    const evaluation = await withChatModel(context, context.run.path(checkpoint), name, (chat) =>
      evaluateModel(chat, tasks, sandbox, {
        reasoning,
        maxTokens: config.eval.maxNewTokens,
        temperature: config.eval.temperature,
        seed: config.seed,
        batchSize: config.eval.batchSize,
        signal: context.signal,
        previous,
        onItems: (items) => journal.append(items),
        onProgress: (event) => context.reporter.progress({ ...event, stage: `eval ${name}` }),
      }),
    );
    const record: ModelEvaluation = {
      model: name,
      checkpoint,
      accuracy: evaluation.accuracy,
      counts: evaluation.counts,
      overall: evaluation.overall,
      diversity: evaluation.diversity,
      seconds: (performance.now() - started) / 1000,
    };
    await writeJsonAtomic(path, { ...record, items: evaluation.items });
    await journal.remove();
    results.push(record);
  }

  // The trivial baselines on the same tasks, scored by the same verifier: what a model that
  // ignores the code would get (majority / best constant / random training answer per type).
  const baselinesPath = context.run.path('eval', 'baselines.json');
  let baselines = existsSync(baselinesPath)
    ? (JSON.parse(await readFile(baselinesPath, 'utf8')) as BaselineRecord)
    : undefined;
  if (baselines === undefined) {
    const started = performance.now();
    const train = await readTasks(context, 'train');
    const { items, ...result } = await evaluateBaselines(train, tasks, sandbox, {
      seed: config.seed,
      signal: context.signal,
      onProgress: (event) => context.reporter.progress({ ...event, stage: 'eval baselines' }),
    });
    baselines = {
      ...result,
      trainTasks: train.length,
      seconds: (performance.now() - started) / 1000,
    };
    await writeJsonAtomic(baselinesPath, { ...baselines, items });
  }
  return {
    artifacts: {
      ...Object.fromEntries(
        results.map((r) => [r.model, rel(context, context.run.path('eval', `${r.model}.json`))]),
      ),
      baselines: rel(context, baselinesPath),
    },
    figures: {
      tasks: tasks.length,
      models: results.map(({ model, accuracy, overall }) => ({ model, accuracy, overall })),
      baselines: baselines.overall,
    },
  };
};

// ---------------------------------------------------------------------------------------------
// bench: the final model on CRUXEval / LiveCodeBench / REval when their files are given

export const benchStage: StageRunner = async (context) => {
  const { config } = context;
  const dir = config.bench.dir;
  if (!dir) return null;
  await context.backend();
  const sandbox = await context.sandbox();
  const grpo = await context.run.marker('grpo');
  const sft = await context.run.marker('sft');
  const checkpoint = grpo?.artifacts.checkpoint ?? sft?.artifacts.checkpoint;
  if (!checkpoint) throw new Error('no trained checkpoint in this run; run the sft stage first');
  const id = grpo ? 'codereasoner-ts-grpo' : 'codereasoner-ts-sft';
  return withChatModel(context, context.run.path(checkpoint), id, async (chat) => {
    // benchmarks named in the config must be there; otherwise those whose files are present run
    const result = await runBenchmarks({
      benchmarks: config.bench.benchmarks,
      skipMissing: config.bench.benchmarks === undefined,
      dataPath: dir,
      model: chat,
      sandbox,
      outDir: context.run.stageDir('bench'),
      limit: config.bench.limit,
      maxTokens: config.bench.maxNewTokens,
      promptStyle: 'protocol',
      seed: config.seed,
      onProgress: (event) => context.reporter.progress(event),
      logger: context.logger,
    });
    const artifacts: Record<string, string> = { report: rel(context, result.report) };
    const figures: Record<string, unknown> = { skipped: result.skipped };
    for (const summary of result.summaries) {
      artifacts[summary.benchmark] = rel(context, context.run.path('bench', summary.benchmark));
      figures[summary.benchmark] = summary;
    }
    return { artifacts, figures };
  });
};

export const STAGE_RUNNERS: Record<StageName, { title: string; run: StageRunner }> = {
  data: { title: 'Building the sliced Python corpus', run: dataStage },
  sft: { title: 'Distilling reasoning chains and training with SFT', run: sftStage },
  grpo: { title: 'Reinforcement learning with GRPO', run: grpoStage },
  eval: { title: 'Evaluating base, SFT and GRPO models on held-out tasks', run: evalStage },
  bench: { title: 'Benchmarks (CRUXEval, LiveCodeBench, REval)', run: benchStage },
};

/** Each package's own validator of its config section (see `checkSections`). */
export const SECTION_VALIDATORS: SectionValidators = {
  sandbox: (section) => resolveSandboxOptions(section),
  data: (section) => resolveCorpusOptions(section as unknown as CorpusOptions),
  model: (section) => resolveModelConfig(section),
  lora: (section) => resolveLoraConfig(section),
  sft: (section) => resolveSftConfig(section),
  grpo: (section) => resolveGrpoConfig(section),
};

export type { StageMarker };
