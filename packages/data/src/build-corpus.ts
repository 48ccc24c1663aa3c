import { stat, mkdir, readFile, rm, truncate } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Sandbox, type RunResult, type TraceResult } from '@codereasoner/sandbox';
import packageJson from '../package.json' with { type: 'json' };
import optionsSchema from '../schemas/corpus-options.schema.json' with { type: 'json' };
import { balanceLabels, DEFAULT_LABEL_SHARES, type LabelShares } from './balance-labels.js';
import { ConfigValidationError, CorpusError } from './errors.js';
import { extractFunctions, paramInfo, type ParamInfo } from './extract.js';
import type { Difficulty } from './generator.js';
import { generateInputs, inferParamTypes } from './inputs.js';
import {
  appendJsonl,
  callRecordSchema,
  corpusManifestSchema,
  defineRecordSchema,
  programRecordSchema,
  readJsonlAll,
  TASK_TYPES,
  taskRecordSchema,
  writeJsonl,
  type CallRecord,
  type CorpusManifest,
  type ProgramRecord,
  type Split,
  type TaskRecord,
  type TaskType,
} from '@codereasoner/protocol';
import { parsePython } from './python-parser.js';
import { namedChildren } from './py-names.js';
import { renameIdentifiers } from './rename.js';
import {
  Rng,
  hashText,
  writeFileAtomic,
  type Logger,
  type ProgressEvent,
} from '@codereasoner/common';
import {
  buildContaminationIndex,
  contaminationScore,
  normalizedTreeHash,
  type ContaminationIndex,
} from './similarity.js';
import { sliceUnit } from './slice.js';
import { countSourceUnits, readSource, type CorpusSource, type SourceUnit } from './sources.js';
import { analyzeLines, planTasks, tookDecision, type LineInfo } from './tasks.js';

export type { Logger, ProgressEvent } from '@codereasoner/common';

/** Options of `buildCorpus` (schema: `schemas/corpus-options.schema.json`). */
export interface CorpusOptions {
  outDir: string;
  seed?: number;
  /** Default: `{ kind: 'generator', count: 1000, difficulty: 'mixed' }`. */
  source?: CorpusSource;
  /** Inputs generated per program (default 4). */
  inputsPerProgram?: number;
  /** Calls kept per program at most (default 2). */
  callsPerProgram?: number;
  taskTypes?: TaskType[];
  /** Coverage questions per call (default 2: one executed line and one not, when possible). */
  coveragePerCall?: number;
  /**
   * Largest share of one answer per task type, in each split (default `DEFAULT_LABEL_SHARES`:
   * coverage 0.5, path 0.15, state 0.1; `{}` keeps every task): tasks over the cap are left out
   * after the build, so no constant answer scores above it.
   */
  labelShares?: LabelShares;
  /** Share of programs in the eval split (default 0.1), decided per program. */
  evalFraction?: number;
  /** Dependency slicing (default true); clean-up (comments, docstrings, prints, …) always runs. */
  slice?: boolean;
  /** Rename identifiers generically (default false). */
  rename?: boolean;
  /** Longest accepted repr of a return value or state answer (default 80). */
  maxReprChars?: number;
  /** Traced line events a kept call needs at least (default 4) and at most (default 1000). */
  minSteps?: number;
  maxSteps?: number;
  /** Longest accepted program after slicing, in lines (default 40). */
  maxCodeLines?: number;
  /** Time limit per call (default 2000 ms). */
  timeoutMs?: number;
  /** Benchmark files or folders to decontaminate against (n-gram overlap). */
  decontaminate?: { paths: string[]; ngram?: number; threshold?: number };
  /** Source units per resumable step (default 100). */
  batchSize?: number;
  /** Engine of the sandbox created when none is given (default 'pyodide'). */
  engine?: 'pyodide' | 'cpython';
  workers?: number;
}

export interface ResolvedCorpusOptions {
  outDir: string;
  seed: number;
  source: CorpusSource;
  inputsPerProgram: number;
  callsPerProgram: number;
  taskTypes: TaskType[];
  coveragePerCall: number;
  labelShares: LabelShares;
  evalFraction: number;
  slice: boolean;
  rename: boolean;
  maxReprChars: number;
  minSteps: number;
  maxSteps: number;
  maxCodeLines: number;
  timeoutMs: number;
  decontaminate: { paths: string[]; ngram: number; threshold: number } | undefined;
  batchSize: number;
  engine: 'pyodide' | 'cpython';
  workers: number | undefined;
}

export interface CorpusHooks {
  onProgress?: (event: ProgressEvent) => void;
  logger?: Logger;
  /** Reuse a sandbox (it is not closed); otherwise one is created with `engine`/`workers` and closed. */
  sandbox?: Sandbox;
}

/** Why programs were rejected (manifest `rejections.programs`). */
export const PROGRAM_REJECTIONS = [
  'syntax_error',
  'no_function',
  'unsupported',
  'not_self_contained',
  'no_return',
  'too_long',
  'duplicate',
  'contaminated',
  'slice_mismatch',
  'no_valid_calls',
] as const;

/** Why calls were rejected (manifest `rejections.calls`). */
export const CALL_REJECTIONS = [
  'exception',
  'timeout',
  'resource_limit',
  'execution_error',
  'nondeterministic',
  'repr_not_roundtrip',
  'output_too_long',
  'too_many_steps',
  'too_few_steps',
  'trivial',
  'program_rejected',
  'surplus',
] as const;

export type ProgramRejection = (typeof PROGRAM_REJECTIONS)[number];
export type CallRejection = (typeof CALL_REJECTIONS)[number];

/** Program counts after each stage, in order. */
export const STAGES = [
  'source_units',
  'parsed_units',
  'functions',
  'self_contained',
  'sliced',
  'unique',
  'decontaminated',
  'executed',
  'slice_verified',
  'kept',
] as const;

const optionsValidator = defineRecordSchema<CorpusOptions>('CorpusOptions', optionsSchema);

export const corpusOptionsSchema = optionsValidator;

/** Validates options and fills in defaults (throws ConfigValidationError listing every issue). */
export function resolveCorpusOptions(input: CorpusOptions): ResolvedCorpusOptions {
  const issues = optionsValidator.check(input);
  if (
    input.minSteps !== undefined &&
    input.maxSteps !== undefined &&
    input.minSteps > input.maxSteps
  ) {
    issues.push('/minSteps: must not exceed maxSteps');
  }
  if (issues.length > 0) throw new ConfigValidationError('Corpus options', issues);
  return {
    outDir: input.outDir,
    seed: input.seed ?? 0,
    source: input.source ?? { kind: 'generator', count: 1000, difficulty: 'mixed' },
    inputsPerProgram: input.inputsPerProgram ?? 4,
    callsPerProgram: input.callsPerProgram ?? 2,
    taskTypes: input.taskTypes ?? [...TASK_TYPES],
    coveragePerCall: input.coveragePerCall ?? 2,
    labelShares: input.labelShares ?? { ...DEFAULT_LABEL_SHARES },
    evalFraction: input.evalFraction ?? 0.1,
    slice: input.slice ?? true,
    rename: input.rename ?? false,
    maxReprChars: input.maxReprChars ?? 80,
    minSteps: input.minSteps ?? 4,
    maxSteps: input.maxSteps ?? 1000,
    maxCodeLines: input.maxCodeLines ?? 40,
    timeoutMs: input.timeoutMs ?? 2000,
    decontaminate:
      input.decontaminate === undefined
        ? undefined
        : {
            paths: input.decontaminate.paths,
            ngram: input.decontaminate.ngram ?? 13,
            threshold: input.decontaminate.threshold ?? 0.5,
          },
    batchSize: input.batchSize ?? 100,
    engine: input.engine ?? 'pyodide',
    workers: input.workers,
  };
}

/** The options that decide the corpus's content (batch size and worker count do not). */
function contentOptions(options: ResolvedCorpusOptions, engine: string): Record<string, unknown> {
  const {
    outDir: _outDir,
    batchSize: _batchSize,
    workers: _workers,
    engine: _engine,
    ...rest
  } = options;
  return { ...rest, engine };
}

interface Counters {
  stages: Record<string, number>;
  calls: { generated: number; executed: number; kept: number };
  rejections: { programs: Record<string, number>; calls: Record<string, number> };
  programs: Record<Split, number>;
  keptCalls: Record<Split, number>;
  tasks: Record<Split, Record<TaskType, number>>;
}

interface BuildState {
  formatVersion: 1;
  options: Record<string, unknown>;
  python: string;
  nextUnit: number;
  offsets: Record<'programs' | 'calls' | 'train' | 'eval', number>;
  counters: Counters;
  hashes: string[];
}

function emptyCounters(): Counters {
  const taskCount = (): Record<TaskType, number> => ({
    output: 0,
    input: 0,
    coverage: 0,
    state: 0,
    path: 0,
  });
  return {
    stages: Object.fromEntries(STAGES.map((stage) => [stage, 0])),
    calls: { generated: 0, executed: 0, kept: 0 },
    rejections: {
      programs: Object.fromEntries(PROGRAM_REJECTIONS.map((reason) => [reason, 0])),
      calls: Object.fromEntries(CALL_REJECTIONS.map((reason) => [reason, 0])),
    },
    programs: { train: 0, eval: 0 },
    keptCalls: { train: 0, eval: 0 },
    tasks: { train: taskCount(), eval: taskCount() },
  };
}

interface Candidate {
  unit: SourceUnit;
  originalCode: string;
  originalEntry: string;
  code: string;
  entryPoint: string;
  params: ParamInfo[];
  changed: boolean;
  hash: string;
  inputs: string[];
  sliceStats: Record<string, number>;
  lines?: Map<number, LineInfo>;
}

const FILES = {
  programs: 'programs.jsonl',
  calls: 'calls.jsonl',
  train: join('tasks', 'train.jsonl'),
  eval: join('tasks', 'eval.jsonl'),
  manifest: 'manifest.json',
  progress: '.progress.json',
} as const;

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CorpusError(
      'CORPUS_STATE_UNREADABLE',
      `${path} is not valid JSON: delete the output folder and build again.`,
      {
        path,
        cause: error,
      },
    );
  }
}

function hasValuedReturn(code: string, entryPoint: string): Promise<boolean> {
  return parsePython(code).then((tree) => {
    try {
      const fn = tree.rootNode
        .descendantsOfType('function_definition')
        .findLast(
          (node) =>
            node?.childForFieldName('name')?.text === entryPoint && node.parent?.type !== 'block',
        );
      if (!fn) return false;
      const returns = fn.descendantsOfType('return_statement').filter((node) => {
        // Returns of nested functions do not count.
        let current = node?.parent ?? null;
        while (current !== null && current.type !== 'function_definition') current = current.parent;
        return current?.id === fn.id && node !== null && namedChildren(node).length > 0;
      });
      return returns.length > 0;
    } finally {
      tree.delete();
    }
  });
}

async function entryParams(code: string, entryPoint: string): Promise<ParamInfo[]> {
  const tree = await parsePython(code);
  try {
    const fn = tree.rootNode
      .descendantsOfType('function_definition')
      .findLast(
        (node) =>
          node?.childForFieldName('name')?.text === entryPoint && node.parent?.type !== 'block',
      );
    return fn ? paramInfo(fn) : [];
  } finally {
    tree.delete();
  }
}

function statusReason(status: RunResult['status']): CallRejection {
  switch (status) {
    case 'exception':
      return 'exception';
    case 'timeout':
      return 'timeout';
    case 'memory':
    case 'output_limit':
      return 'resource_limit';
    default:
      return 'execution_error';
  }
}

/**
 * Builds the corpus: reads the source, extracts self-contained functions, slices them to their
 * core logic, generates inputs, executes and traces in the sandbox, filters, deduplicates,
 * decontaminates, turns kept calls into tasks and writes `programs.jsonl`, `calls.jsonl`,
 * `tasks/{train,eval}.jsonl` and `manifest.json` under `outDir`. Resumable: a killed build
 * continues from its last finished batch (same options required); a finished one returns its
 * manifest.
 */
export async function buildCorpus(
  input: CorpusOptions,
  hooks: CorpusHooks = {},
): Promise<CorpusManifest> {
  const options = resolveCorpusOptions(input);
  const out = options.outDir;
  await mkdir(join(out, 'tasks'), { recursive: true });
  const logger = hooks.logger;
  const ownSandbox = hooks.sandbox === undefined;
  const sandbox =
    hooks.sandbox ??
    (await Sandbox.create({
      engine: options.engine,
      workers: options.workers ?? Math.max(1, Math.min(availableParallelism(), 8)),
      timeoutMs: options.timeoutMs,
    }));
  try {
    const info = sandbox.info();
    const key = contentOptions(options, info.engine);
    const existingManifest = (await readJson(join(out, FILES.manifest))) as
      CorpusManifest | undefined;
    const progress = (await readJson(join(out, FILES.progress))) as BuildState | undefined;
    if (existingManifest?.complete === true && progress === undefined) {
      if (JSON.stringify(existingManifest.options) !== JSON.stringify(key)) {
        throw new CorpusError(
          'CORPUS_OPTIONS_CHANGED',
          `${out} holds a finished corpus built with other options: choose another outDir or delete it.`,
          { path: out },
        );
      }
      logger?.info(`corpus in ${out} is already complete`);
      return existingManifest;
    }
    let state: BuildState;
    if (progress !== undefined) {
      if (JSON.stringify(progress.options) !== JSON.stringify(key)) {
        throw new CorpusError(
          'CORPUS_OPTIONS_CHANGED',
          `${out} holds an interrupted build with other options: rerun with the same options, or delete the folder.`,
          { path: out },
        );
      }
      state = progress;
      // Drop whatever was appended after the last checkpoint: that batch is redone.
      for (const name of ['programs', 'calls', 'train', 'eval'] as const) {
        const path = join(out, FILES[name]);
        if ((await fileSize(path)) > state.offsets[name]) await truncate(path, state.offsets[name]);
      }
      logger?.info(`resuming the corpus build in ${out} at source unit ${state.nextUnit}`);
    } else {
      for (const name of ['programs', 'calls', 'train', 'eval'] as const)
        await rm(join(out, FILES[name]), { force: true });
      state = {
        formatVersion: 1,
        options: key,
        python: info.pythonVersion,
        nextUnit: 0,
        offsets: { programs: 0, calls: 0, train: 0, eval: 0 },
        counters: emptyCounters(),
        hashes: [],
      };
      for (const name of ['programs', 'calls', 'train', 'eval'] as const)
        await writeFileAtomic(join(out, FILES[name]), '');
    }
    const contamination =
      options.decontaminate === undefined
        ? undefined
        : await buildContaminationIndex(options.decontaminate.paths, options.decontaminate.ngram);
    const total = await countSourceUnits(options.source).catch(() => undefined);
    const seen = new Set(state.hashes);
    const builder = new BatchBuilder(options, sandbox, state.counters, seen, contamination);

    let batch: SourceUnit[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const records = await builder.process(batch);
      await appendJsonl(join(out, FILES.programs), records.programs, programRecordSchema);
      await appendJsonl(join(out, FILES.calls), records.calls, callRecordSchema);
      await appendJsonl(join(out, FILES.train), records.tasks.train, taskRecordSchema);
      await appendJsonl(join(out, FILES.eval), records.tasks.eval, taskRecordSchema);
      state.nextUnit = batch[batch.length - 1]!.index + 1;
      for (const name of ['programs', 'calls', 'train', 'eval'] as const)
        state.offsets[name] = await fileSize(join(out, FILES[name]));
      state.hashes = [...seen];
      await writeFileAtomic(join(out, FILES.progress), JSON.stringify(state));
      await writeFileAtomic(
        join(out, FILES.manifest),
        `${JSON.stringify(manifestOf(state, info, false), null, 2)}\n`,
      );
      batch = [];
      const counters = state.counters;
      hooks.onProgress?.({
        stage: 'corpus',
        completed: state.nextUnit,
        ...(total === undefined ? {} : { total }),
        detail: {
          programs: counters.programs.train + counters.programs.eval,
          tasks: sumTasks(counters.tasks.train) + sumTasks(counters.tasks.eval),
        },
      });
    };
    for await (const unit of readSource(options.source, options.seed, state.nextUnit)) {
      if (unit.problem !== undefined) logger?.warn(`corpus: left out ${unit.ref}: ${unit.problem}`);
      batch.push(unit);
      if (batch.length >= options.batchSize) await flush();
    }
    await flush();
    await balanceSplits(out, options, state.counters);
    const manifest = manifestOf(state, info, true);
    const issues = corpusManifestSchema.check(manifest);
    if (issues.length > 0) throw new ConfigValidationError('Corpus manifest', issues);
    await writeFileAtomic(join(out, FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(join(out, FILES.progress), { force: true });
    logger?.info(
      `corpus: ${manifest.counts.programs.total} programs, ${manifest.counts.calls.total} calls, ${manifest.counts.tasks.total} tasks in ${out}`,
    );
    return manifest;
  } finally {
    if (ownSandbox) await sandbox.close();
  }
}

function sandboxVersion(): string {
  try {
    return (
      createRequire(import.meta.url)('@codereasoner/sandbox/package.json') as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Rewrites both task files with their labels balanced (`labelShares`) and recounts them. Runs
 * once every unit is built; running it again (a build killed during it and resumed) finds the
 * files balanced and removes nothing.
 */
async function balanceSplits(
  out: string,
  options: ResolvedCorpusOptions,
  counters: Counters,
): Promise<void> {
  if (Object.keys(options.labelShares).length === 0) return;
  for (const split of ['train', 'eval'] as const) {
    const path = join(out, FILES[split]);
    const tasks = await readJsonlAll(path, taskRecordSchema);
    const kept = balanceLabels(tasks, options.labelShares, options.seed);
    if (kept.length === tasks.length) continue;
    await writeJsonl(path, kept, taskRecordSchema);
    for (const type of TASK_TYPES) counters.tasks[split][type] = 0;
    for (const task of kept) counters.tasks[split][task.type] += 1;
  }
}

function sumTasks(counts: Record<TaskType, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function manifestOf(
  state: BuildState,
  info: ReturnType<Sandbox['info']>,
  complete: boolean,
): CorpusManifest {
  const counters = state.counters;
  const dependencies = packageJson.dependencies as Record<string, string>;
  return {
    formatVersion: 1,
    complete,
    seed: state.options['seed'] as number,
    source: state.options['source'] as Record<string, unknown>,
    options: state.options,
    versions: {
      data: packageJson.version,
      sandbox: sandboxVersion(),
      node: process.version,
      engine: info.engine,
      python: state.python,
      treeSitterPython: dependencies['tree-sitter-python'] ?? 'unknown',
      webTreeSitter: dependencies['web-tree-sitter'] ?? 'unknown',
    },
    stages: STAGES.map((name) => ({ name, count: counters.stages[name] ?? 0 })),
    calls: { ...counters.calls },
    rejections: {
      programs: { ...counters.rejections.programs },
      calls: { ...counters.rejections.calls },
    },
    counts: {
      programs: { ...counters.programs, total: counters.programs.train + counters.programs.eval },
      calls: { ...counters.keptCalls, total: counters.keptCalls.train + counters.keptCalls.eval },
      tasks: {
        train: { ...counters.tasks.train },
        eval: { ...counters.tasks.eval },
        total: sumTasks(counters.tasks.train) + sumTasks(counters.tasks.eval),
      },
    },
    files: {
      programs: FILES.programs,
      calls: FILES.calls,
      tasks: { train: 'tasks/train.jsonl', eval: 'tasks/eval.jsonl' },
    },
  };
}

interface BatchRecords {
  programs: ProgramRecord[];
  calls: CallRecord[];
  tasks: Record<Split, TaskRecord[]>;
}

/** One batch of source units through every stage; counters and the dedup set persist across batches. */
class BatchBuilder {
  constructor(
    private readonly options: ResolvedCorpusOptions,
    private readonly sandbox: Sandbox,
    private readonly counters: Counters,
    private readonly seen: Set<string>,
    private readonly contamination: ContaminationIndex | undefined,
  ) {}

  private rejectProgram(reason: ProgramRejection): void {
    this.counters.rejections.programs[reason] =
      (this.counters.rejections.programs[reason] ?? 0) + 1;
  }

  private rejectCall(reason: CallRejection, count = 1): void {
    this.counters.rejections.calls[reason] = (this.counters.rejections.calls[reason] ?? 0) + count;
  }

  private stage(name: (typeof STAGES)[number], count = 1): void {
    this.counters.stages[name] = (this.counters.stages[name] ?? 0) + count;
  }

  async process(units: SourceUnit[]): Promise<BatchRecords> {
    const candidates: Candidate[] = [];
    for (const unit of units) {
      for (const candidate of await this.prepare(unit)) candidates.push(candidate);
    }
    return this.execute(candidates);
  }

  /** Static stages: parse, extract, slice, rename, dedup, decontaminate, inputs. */
  private async prepare(unit: SourceUnit): Promise<Candidate[]> {
    const options = this.options;
    this.stage('source_units');
    const extracted = await extractFunctions(unit.code);
    if (extracted.status === 'syntax_error') {
      this.rejectProgram('syntax_error');
      return [];
    }
    this.stage('parsed_units');
    if (extracted.outcomes.length === 0) {
      this.rejectProgram('no_function');
      return [];
    }
    const out: Candidate[] = [];
    for (const outcome of extracted.outcomes) {
      const name = outcome.ok ? outcome.unit.entryPoint : outcome.entryPoint;
      if (unit.entryPoints !== undefined && !unit.entryPoints.includes(name)) continue;
      this.stage('functions');
      if (!outcome.ok) {
        this.rejectProgram(outcome.reason);
        continue;
      }
      this.stage('self_contained');
      const { unit: fn } = outcome;
      if (!(await hasValuedReturn(fn.code, fn.entryPoint))) {
        this.rejectProgram('no_return');
        continue;
      }
      const sliced = await sliceUnit(fn.code, fn.entryPoint, { dependencies: options.slice });
      if (!sliced.ok) {
        this.rejectProgram('slice_mismatch');
        continue;
      }
      let code = sliced.code;
      let entryPoint = fn.entryPoint;
      if (code.trimEnd().split('\n').length > options.maxCodeLines) {
        this.rejectProgram('too_long');
        continue;
      }
      this.stage('sliced');
      if (options.rename) {
        const renamed = await renameIdentifiers(code, entryPoint);
        code = renamed.code;
        entryPoint = renamed.entryPoint;
      }
      const tree = await parsePython(code);
      let hash: string;
      try {
        hash = normalizedTreeHash(tree.rootNode);
      } finally {
        tree.delete();
      }
      if (this.seen.has(hash)) {
        this.rejectProgram('duplicate');
        continue;
      }
      this.seen.add(hash);
      this.stage('unique');
      if (this.contamination !== undefined && options.decontaminate !== undefined) {
        if (contaminationScore(code, this.contamination) >= options.decontaminate.threshold) {
          this.rejectProgram('contaminated');
          continue;
        }
      }
      this.stage('decontaminated');
      const hints = unit.hints?.[fn.entryPoint];
      const candidatesByParam = await inferParamTypes(fn.code, fn.entryPoint, fn.params, hints);
      const rng = Rng.derive(options.seed, 'inputs', unit.index, fn.entryPoint);
      const inputs = generateInputs(
        rng,
        fn.params,
        candidatesByParam,
        options.inputsPerProgram,
        hints !== undefined,
      );
      const params =
        entryPoint === fn.entryPoint && !options.rename
          ? fn.params
          : await entryParams(code, entryPoint);
      out.push({
        unit,
        originalCode: fn.code,
        originalEntry: fn.entryPoint,
        code,
        entryPoint,
        params,
        changed: code !== fn.code,
        hash,
        inputs,
        sliceStats: { ...sliced.stats },
      });
    }
    return out;
  }

  /** Dynamic stages: run the original, trace and re-run the final code; filter; make tasks. */
  private async execute(candidates: Candidate[]): Promise<BatchRecords> {
    const options = this.options;
    const records: BatchRecords = { programs: [], calls: [], tasks: { train: [], eval: [] } };
    const original: { code: string; call: string; timeoutMs: number }[] = [];
    const traced: { code: string; call: string; timeoutMs: number; maxSteps: number }[] = [];
    for (const candidate of candidates) {
      for (const input of candidate.inputs) {
        original.push({
          code: candidate.originalCode,
          call: `${candidate.originalEntry}(${input})`,
          timeoutMs: options.timeoutMs,
        });
        traced.push({
          code: candidate.code,
          call: `${candidate.entryPoint}(${input})`,
          timeoutMs: options.timeoutMs,
          maxSteps: options.maxSteps + 1,
        });
      }
    }
    this.counters.calls.generated += original.length;
    // The original run and the trace are the two runs: when they agree the call is
    // deterministic and the slice faithful on it. Only where they disagree is the final code run
    // again, to tell a slice that changed the result from code that is not deterministic.
    const [originalResults, traceResults] = await Promise.all([
      original.length === 0 ? Promise.resolve([] as RunResult[]) : this.sandbox.runBatch(original),
      traced.length === 0 ? Promise.resolve([] as TraceResult[]) : this.sandbox.traceBatch(traced),
    ]);
    const resourceLimit = (status: RunResult['status']): boolean =>
      status === 'timeout' || status === 'memory' || status === 'output_limit';
    const disagree = (run: RunResult, trace: TraceResult): boolean =>
      run.status === 'ok' &&
      !resourceLimit(trace.status) &&
      (trace.status !== 'ok' || trace.repr !== run.repr);
    const rerunIndex = new Map<number, number>();
    const rerun: { code: string; call: string; timeoutMs: number }[] = [];
    {
      let index = 0;
      for (const candidate of candidates) {
        for (const input of candidate.inputs) {
          if (candidate.changed && disagree(originalResults[index]!, traceResults[index]!)) {
            rerunIndex.set(index, rerun.length);
            rerun.push({
              code: candidate.code,
              call: `${candidate.entryPoint}(${input})`,
              timeoutMs: options.timeoutMs,
            });
          }
          index += 1;
        }
      }
    }
    const rerunResults = rerun.length === 0 ? [] : await this.sandbox.runBatch(rerun);
    let at = 0;
    const pendingState: TaskRecord[] = [];
    for (const candidate of candidates) {
      const lines = await analyzeLines(candidate.code);
      const valid: { input: string; run: RunResult; trace: TraceResult }[] = [];
      let mismatch = false;
      let executed = 0;
      const rejected: CallRejection[] = [];
      for (const input of candidate.inputs) {
        const index = at;
        at += 1;
        const run = originalResults[index]!;
        const trace = traceResults[index]!;
        if (run.status !== 'ok') {
          rejected.push(statusReason(run.status));
          continue;
        }
        executed += 1;
        if (resourceLimit(trace.status)) {
          rejected.push(statusReason(trace.status));
          continue;
        }
        if (disagree(run, trace)) {
          const second = rerunIndex.has(index) ? rerunResults[rerunIndex.get(index)!] : undefined;
          // Same code twice (unchanged code, or the final code run again) disagreeing: not deterministic.
          const sameAgain =
            second !== undefined && second.status === trace.status && second.repr === trace.repr;
          if (candidate.changed && sameAgain) mismatch = true;
          else rejected.push('nondeterministic');
          continue;
        }
        if (run.reprRoundTrips !== true) rejected.push('repr_not_roundtrip');
        else if (run.reprTruncated === true || (run.repr ?? '').length > options.maxReprChars)
          rejected.push('output_too_long');
        else if (trace.truncated || trace.steps > options.maxSteps) rejected.push('too_many_steps');
        else if (trace.steps < options.minSteps) rejected.push('too_few_steps');
        else if (!tookDecision(trace, lines)) rejected.push('trivial');
        else valid.push({ input, run, trace });
      }
      this.counters.calls.executed += executed;
      if (executed > 0) this.stage('executed');
      if (mismatch) {
        this.rejectProgram('slice_mismatch');
        this.rejectCall('program_rejected', candidate.inputs.length);
        continue;
      }
      if (executed > 0) this.stage('slice_verified');
      for (const reason of rejected) this.rejectCall(reason);
      if (valid.length === 0) {
        this.rejectProgram('no_valid_calls');
        continue;
      }
      // Prefer calls with different outputs.
      const outputs = new Set<string>();
      const ordered = [
        ...valid.filter((call) => {
          const fresh = !outputs.has(call.run.repr!);
          outputs.add(call.run.repr!);
          return fresh;
        }),
      ];
      for (const call of valid) if (!ordered.includes(call)) ordered.push(call);
      const kept = ordered.slice(0, options.callsPerProgram);
      this.rejectCall('surplus', valid.length - kept.length);
      this.stage('kept');
      const programId = `p-${candidate.hash.slice(0, 12)}`;
      const split: Split =
        Number.parseInt(hashText(`${options.seed}:split:${candidate.hash}`, 8), 16) / 0x100000000 <
        options.evalFraction
          ? 'eval'
          : 'train';
      this.counters.programs[split] += 1;
      const meta: Record<string, unknown> = {
        sliced: candidate.changed,
        slice: candidate.sliceStats,
      };
      if (candidate.unit.meta !== undefined) Object.assign(meta, candidate.unit.meta);
      records.programs.push({
        id: programId,
        split,
        code: candidate.code,
        entryPoint: candidate.entryPoint,
        params: candidate.params.map((param) => param.name),
        originalCode: candidate.originalCode,
        originalEntryPoint: candidate.originalEntry,
        origin: {
          kind: candidate.unit.kind,
          ref: candidate.unit.ref,
          function: candidate.originalEntry,
        },
        hash: candidate.hash,
        meta,
      });
      const taskRng = Rng.derive(options.seed, 'tasks', candidate.hash);
      kept.forEach((call, index) => {
        const callId = `${programId}-c${index}`;
        this.counters.calls.kept += 1;
        this.counters.keptCalls[split] += 1;
        records.calls.push({
          id: callId,
          programId,
          split,
          input: call.input,
          output: call.run.repr!,
          steps: call.trace.steps,
          coverage: call.trace.coverage,
          pathLength: call.trace.path.length,
        });
        const tasks = planTasks(
          {
            programId,
            callId,
            split,
            code: candidate.code,
            entryPoint: candidate.entryPoint,
            input: call.input,
            output: call.run.repr!,
            trace: call.trace,
            meta: { source: candidate.unit.kind, ...(candidate.unit.meta ?? {}) },
          },
          lines,
          taskRng,
          {
            taskTypes: options.taskTypes,
            coveragePerCall: options.coveragePerCall,
            maxReprChars: options.maxReprChars,
          },
        );
        for (const task of tasks) {
          records.tasks[split].push(task);
          if (task.type === 'state') pendingState.push(task);
        }
      });
    }
    // State answers must pass the verifier's own judge: literals by its rule whose value equals
    // the traced repr's value, type included.
    if (pendingState.length > 0) {
      const checks = await this.sandbox.checkBatch(
        pendingState.map((task) => ({
          code: '',
          answer: task.answer,
          golds: [task.answer],
          compare: 'typed' as const,
          timeoutMs: 1000,
        })),
      );
      const failed = new Set(pendingState.filter((_, index) => checks[index]?.status !== 'passed'));
      for (const split of ['train', 'eval'] as const)
        records.tasks[split] = records.tasks[split].filter((task) => !failed.has(task));
    }
    for (const split of ['train', 'eval'] as const) {
      for (const task of records.tasks[split]) this.counters.tasks[split][task.type] += 1;
    }
    return records;
  }
}

export type { CorpusSource, Difficulty };
