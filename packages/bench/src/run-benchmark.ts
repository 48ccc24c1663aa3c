import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BENCHMARK_NAMES,
  appendJsonLines,
  readJsonlJournal,
  schemaIssues,
  writeFileAtomic,
} from '@codereasoner/common';
import { constantBaselines } from './baselines.js';
import { loadCruxEval, cruxEvalItems, scoreCruxEval } from './cruxeval.js';
import { BenchmarkConfigError, BenchmarkDataError, BenchmarkRunError } from './errors.js';
import { resolveBenchmarkFiles, type BenchmarkFiles } from './files.js';
import { packageVersions, sha256File } from './fs-utils.js';
import {
  checkLiveCodeBenchExport,
  liveCodeBenchItems,
  loadLiveCodeBench,
  loadLiveCodeBenchIndex,
  scoreLiveCodeBench,
  type LiveCodeBenchIndexCheck,
} from './livecodebench.js';
import { isGoldAware } from './models.js';
import {
  officialCount,
  renderMarkdownReport,
  revalConsistency,
  taskMetrics,
  type BenchmarkSummary,
  type ExcludedEntry,
  type ItemRecord,
} from './report.js';
import { loadReval, type RevalGroup, type RevalProblem } from './reval/data.js';
import {
  revalGroupItems,
  scoreReval,
  type RevalItemContext,
  type RevalTask,
} from './reval/items.js';
import { computeRevalTruth } from './reval/truth.js';
import type { SandboxLike } from './types.js';
import {
  BENCHMARK_TASKS,
  type BenchItem,
  type BenchmarkName,
  type ChatModel,
  type ChatRequest,
  type Logger,
  type ProgressEvent,
  type PromptStyle,
  type SampleVerdict,
} from './types.js';

export interface RunBenchmarkOptions {
  benchmark: BenchmarkName;
  /** The data file, the benchmark's directory, or a root holding `cruxeval/`, `reval/`, `livecodebench-execution/`. */
  dataPath: string;
  model: ChatModel;
  /** A `@codereasoner/sandbox` Sandbox: every check and trace runs in it. */
  sandbox: SandboxLike;
  /** Where items.jsonl, summary.json, report.md and run.json go; a rerun with the same settings resumes. */
  outDir: string;
  /** Subset of the benchmark's tasks (default: all). CRUXEval: output, input; LCB: output; REval: coverage, state, path, output. */
  tasks?: string[];
  /** Samples per question (default 1); pass@1 is estimated from them. */
  n?: number;
  /** Sampling temperature (default 0, greedy). */
  temperature?: number;
  topP?: number;
  /** Max new tokens (default: the harness's own, e.g. 100/1000 for CRUXEval direct/CoT). */
  maxTokens?: number;
  /** Only these records: CRUXEval/LCB `sample_N` ids, REval `DREval/N` task ids (applied before `limit`). */
  ids?: string[];
  /** Only the first `limit` records (CRUXEval/LCB samples, REval problems). */
  limit?: number;
  /** Chain-of-thought prompts (default false). */
  cot?: boolean;
  promptStyle?: PromptStyle;
  /**
   * CRUXEval and LiveCodeBench: a pass whose answer is an expression rather than a literal (such
   * as `0 or True`, which the official harnesses accept) fails instead. Default false (official).
   */
  strictLiterals?: boolean;
  /**
   * CRUXEval and LiveCodeBench: how many of each task's most frequent gold answers are scored as
   * constant answers to every question (the `baselines` of the summary; default 10, 0 = none).
   */
  baselineCandidates?: number;
  seed?: number;
  /** Questions sent to the model per call (default 16). */
  batchSize?: number;
  onProgress?: (event: ProgressEvent) => void;
  logger?: Logger;
}

interface Settings {
  benchmark: BenchmarkName;
  dataPath: string;
  outDir: string;
  tasks?: string[];
  n: number;
  temperature: number;
  topP?: number;
  maxTokens?: number;
  ids?: string[];
  limit?: number;
  cot: boolean;
  promptStyle: PromptStyle;
  strictLiterals: boolean;
  baselineCandidates: number;
  seed: number;
  batchSize: number;
}

const settingsSchema = {
  type: 'object',
  required: ['benchmark', 'dataPath', 'outDir'],
  additionalProperties: false,
  properties: {
    benchmark: { enum: BENCHMARK_NAMES },
    dataPath: { type: 'string', minLength: 1 },
    outDir: { type: 'string', minLength: 1 },
    tasks: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true },
    n: { type: 'integer', minimum: 1, default: 1 },
    temperature: { type: 'number', minimum: 0, default: 0 },
    topP: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    maxTokens: { type: 'integer', minimum: 1 },
    ids: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true },
    limit: { type: 'integer', minimum: 1 },
    cot: { type: 'boolean', default: false },
    promptStyle: { enum: ['official', 'protocol'], default: 'official' },
    strictLiterals: { type: 'boolean', default: false },
    baselineCandidates: { type: 'integer', minimum: 0, default: 10 },
    seed: { type: 'integer', default: 0 },
    batchSize: { type: 'integer', minimum: 1, default: 16 },
  },
} as const;

/** Fills defaults and checks the serialisable options; lists every problem. */
export function resolveRunSettings(
  options: Omit<RunBenchmarkOptions, 'model' | 'sandbox' | 'onProgress' | 'logger'>,
): Settings {
  const plain: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && !['model', 'sandbox', 'onProgress', 'logger'].includes(key))
      plain[key] = value;
  }
  const issues = schemaIssues(settingsSchema, plain, { useDefaults: true });
  if (issues.length > 0) throw new BenchmarkConfigError('benchmark options', issues);
  const settings = plain as unknown as Settings;
  const known = BENCHMARK_TASKS[settings.benchmark] as readonly string[];
  const unknown = (settings.tasks ?? []).filter((t) => !known.includes(t));
  if (unknown.length > 0) {
    throw new BenchmarkConfigError('benchmark options', [
      `/tasks: ${unknown.join(', ')} not a task of ${settings.benchmark} (tasks: ${known.join(', ')})`,
    ]);
  }
  return settings;
}

/** The harnesses' generation budgets (CRUXEval OpenAI path, LCB runner default, REval inference). */
function defaultMaxTokens(benchmark: BenchmarkName, cot: boolean, style: PromptStyle): number {
  if (style === 'protocol') return cot ? 1024 : 256;
  if (benchmark === 'cruxeval') return cot ? 1000 : 100;
  if (benchmark === 'livecodebench') return 2000;
  return cot ? 1024 : 256;
}

/**
 * The stop words the harnesses request from a chat model: CRUXEval's `openai_run.py` and every
 * REval model class `[/ANSWER]`; LiveCodeBench's chat runner none (its `--stop` default `###` is
 * "only used for base models", `oai_runner.py`), so a CoT answer with a `###` heading is not cut.
 */
function defaultStop(benchmark: BenchmarkName, style: PromptStyle): string[] | undefined {
  if (style === 'protocol' || benchmark === 'livecodebench') return undefined;
  return ['[/ANSWER]'];
}

interface Prepared {
  files: BenchmarkFiles;
  items: BenchItem[];
  score(
    indices: readonly number[],
    completions: readonly (readonly string[])[],
  ): Promise<SampleVerdict[][]>;
  excluded: ExcludedEntry[];
  notes: string[];
  lcbIndex?: LiveCodeBenchIndexCheck & { path: string };
}

/** Applies `ids` then `limit`; an id that names no record is an error (a typo must not shrink a run silently). */
function select<T>(
  records: T[],
  idOf: (record: T) => string,
  settings: Settings,
  path: string,
): T[] {
  let out = records;
  if (settings.ids !== undefined) {
    const known = new Set(records.map(idOf));
    const missing = settings.ids.filter((id) => !known.has(id));
    if (missing.length > 0) {
      throw new BenchmarkConfigError('benchmark options', [
        `/ids: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''} not in ${path}`,
      ]);
    }
    const wanted = new Set(settings.ids);
    out = out.filter((record) => wanted.has(idOf(record)));
  }
  return settings.limit === undefined ? out : out.slice(0, settings.limit);
}

async function prepare(
  settings: Settings,
  sandbox: SandboxLike,
  files: BenchmarkFiles,
): Promise<Prepared> {
  const tasks = settings.tasks ?? [...BENCHMARK_TASKS[settings.benchmark]];
  const style = settings.promptStyle;
  const cot = settings.cot;
  const strictLiterals = settings.strictLiterals;
  const notes: string[] = [];
  if (settings.benchmark === 'cruxeval') {
    const records = select(await loadCruxEval(files.data), (r) => r.id, settings, files.data);
    const byId = new Map(records.map((r) => [r.id, r]));
    const items = cruxEvalItems(records, { tasks: tasks as ('output' | 'input')[], cot, style });
    return {
      files,
      items,
      excluded: [],
      notes,
      score: (indices, completions) =>
        scoreCruxEval(
          sandbox,
          byId,
          indices.map((i) => items[i]!),
          completions,
          { cot, style, strictLiterals },
        ),
    };
  }
  if (settings.benchmark === 'livecodebench') {
    const all = await loadLiveCodeBench(files.data);
    let lcbIndex: Prepared['lcbIndex'];
    if (files.index !== undefined) {
      lcbIndex = {
        path: files.index,
        ...checkLiveCodeBenchExport(all, await loadLiveCodeBenchIndex(files.index)),
      };
      if (!lcbIndex.complete) {
        notes.push(
          `The export at ${files.data} is not the complete set: ${lcbIndex.found} records for ${lcbIndex.expected} indexed samples; scores are not comparable with published ones.`,
        );
      }
    }
    const records = select(all, (r) => r.id, settings, files.data);
    const byId = new Map(records.map((r) => [r.id, r]));
    const items = liveCodeBenchItems(records, { cot, style });
    return {
      files,
      items,
      excluded: [],
      notes,
      ...(lcbIndex === undefined ? {} : { lcbIndex }),
      score: (indices, completions) =>
        scoreLiveCodeBench(
          sandbox,
          byId,
          indices.map((i) => items[i]!),
          completions,
          { cot, style, strictLiterals },
        ),
    };
  }
  // REval: ground truth first (one traced run per group, in the sandbox).
  const problems = select(
    await loadReval(files.data, files.tasks!),
    (p) => p.taskId,
    settings,
    files.data,
  );
  const groups: { problem: RevalProblem; group: RevalGroup }[] = problems.flatMap((problem) =>
    problem.groups.map((group) => ({ problem, group })),
  );
  const truths = await computeRevalTruth(sandbox, groups);
  const items: BenchItem[] = [];
  const contexts: RevalItemContext[] = [];
  const excluded: ExcludedEntry[] = [];
  groups.forEach(({ problem, group }, g) => {
    const truth = truths[g]!;
    if (!truth.ok) {
      const questions = tasks.includes('output')
        ? 1 + (tasks.length - 1) * group.probes.length
        : tasks.length * group.probes.length;
      excluded.push({
        id: group.key,
        tasks,
        questions,
        reason: `the program cannot be traced here (${truth.error ?? 'unknown error'})`,
      });
      return;
    }
    for (const { item, context } of revalGroupItems(problem, group, truth, tasks as RevalTask[], {
      cot,
      style,
    })) {
      items.push(item);
      contexts.push(context);
    }
  });
  notes.push(
    'REval ground truth comes from tracing each program in the sandbox with a port of the official tracer (dynamics.py), ' +
      "under the sandbox's Python (Pyodide: CPython 3.14); the official harness ran CPython 3.8-3.11. Measured on the full data " +
      '(bench:reval-versions, against CPython 3.11): coverage and path truths are identical on all 2,985 probe points both can trace; ' +
      '14 state truths (7 problems) differ because CPython 3.12+ inlines comprehensions (PEP 709): on a line holding a comprehension ' +
      "the recorded locals are the function's, where 3.11 recorded the comprehension frame's (so 3.11 answers Nil there).",
  );
  return {
    files,
    items,
    excluded,
    notes,
    score: (indices, completions) =>
      scoreReval(
        sandbox,
        indices.map((i) => items[i]!),
        indices.map((i) => contexts[i]!),
        completions,
        { cot, style, strictLiterals },
      ),
  };
}

interface ResumeState {
  records: Map<string, ItemRecord>;
  dropped: number;
}

async function readExistingItems(path: string, logger: Logger | undefined): Promise<ResumeState> {
  // A last line cut by an interrupted run is dropped (and removed from the file): that item is
  // scored again. Any other line that is not JSON means the file is not ours to resume.
  const journal = await readJsonlJournal<ItemRecord>(path, {
    onTornTail: () =>
      logger?.warn(
        `${path}: dropped a truncated last line left by an interrupted run; that item is scored again`,
      ),
    invalidLine: (line) =>
      new BenchmarkRunError(
        'BENCH_ITEMS_CORRUPT',
        `${path}:${line}: not a JSON item record; remove the line (or the file) and rerun`,
      ),
  });
  const records = new Map<string, ItemRecord>();
  for (const record of journal.values) records.set(record.key, record);
  return { records, dropped: journal.truncatedTail ? 1 : 0 };
}

/** What makes two runs comparable: a resumed run must match on all of these. */
function fingerprint(
  settings: Settings,
  modelId: string,
  dataFiles: { path: string; sha256: string }[],
) {
  return {
    benchmark: settings.benchmark,
    model: modelId,
    promptStyle: settings.promptStyle,
    cot: settings.cot,
    // only when set, so that runs made before the option existed still resume
    ...(settings.strictLiterals ? { strictLiterals: true } : {}),
    n: settings.n,
    temperature: settings.temperature,
    topP: settings.topP ?? null,
    maxTokens: settings.maxTokens ?? null,
    seed: settings.seed,
    data: dataFiles.map((f) => f.sha256),
  };
}

async function checkRunFile(path: string, expected: ReturnType<typeof fingerprint>): Promise<void> {
  let previous: Record<string, unknown>;
  try {
    previous = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      await writeFileAtomic(path, `${JSON.stringify(expected, null, 2)}\n`);
      return;
    }
    throw new BenchmarkRunError(
      'BENCH_OUTDIR_MISMATCH',
      `${path} is not readable run settings (${(error as Error).message}); use an empty output directory`,
    );
  }
  const differing = Object.keys(expected).filter(
    (key) =>
      JSON.stringify((expected as Record<string, unknown>)[key]) !== JSON.stringify(previous[key]),
  );
  if (differing.length > 0) {
    throw new BenchmarkRunError(
      'BENCH_OUTDIR_MISMATCH',
      `${path}: the output directory holds a run with other settings (${differing
        .map(
          (key) =>
            `${key}: ${JSON.stringify(previous[key])} there, ${JSON.stringify((expected as Record<string, unknown>)[key])} now`,
        )
        .join('; ')}). Use another output directory, or the same settings to resume.`,
    );
  }
}

function samplingRequest(
  item: BenchItem,
  settings: Settings,
  maxTokens: number,
  stop: string[] | undefined,
): ChatRequest {
  return {
    messages: item.messages,
    n: settings.n,
    temperature: settings.temperature,
    ...(settings.topP === undefined ? {} : { topP: settings.topP }),
    maxTokens,
    seed: settings.seed,
    ...(stop === undefined ? {} : { stop }),
  };
}

/**
 * Runs one benchmark on a model and scores it by the official rules (execution in the sandbox).
 * Each finished question is appended to `<outDir>/items.jsonl` at once, so an interrupted run
 * resumes where it stopped; malformed model output is scored as wrong and never stops a run.
 * Writes `summary.json` (settings, every package version, metrics) and `report.md` (the model
 * beside the paper's rows, per-task breakdown).
 */
export async function runBenchmark(options: RunBenchmarkOptions): Promise<BenchmarkSummary> {
  const settings = resolveRunSettings(options);
  const { model, sandbox, onProgress, logger } = options;
  const startedAt = new Date();
  const files = await resolveBenchmarkFiles(settings.benchmark, settings.dataPath);
  const dataFiles = await Promise.all(
    [files.data, files.tasks, files.index]
      .filter((p): p is string => p !== undefined)
      .map(async (path) => ({ path, ...(await sha256File(path)) })),
  );
  const maxTokens =
    settings.maxTokens ?? defaultMaxTokens(settings.benchmark, settings.cot, settings.promptStyle);
  const stop = defaultStop(settings.benchmark, settings.promptStyle);
  const stage = `bench:${settings.benchmark}`;

  onProgress?.({ stage, completed: 0, detail: { phase: 'prepare' } });
  const prepared = await prepare(settings, sandbox, files);
  const itemsPath = join(settings.outDir, 'items.jsonl');
  await checkRunFile(join(settings.outDir, 'run.json'), fingerprint(settings, model.id, dataFiles));
  const existing = await readExistingItems(itemsPath, logger);

  const pending = prepared.items
    .map((item, index) => ({ item, index }))
    .filter(({ item }) => !existing.records.has(item.key));
  const resumed = prepared.items.length - pending.length;
  if (resumed > 0)
    logger?.info(
      `${settings.benchmark}: resuming, ${resumed} of ${prepared.items.length} questions already scored`,
    );
  const total = prepared.items.length;
  let completed = resumed;
  onProgress?.({ stage, completed, total });

  if (isGoldAware(model))
    model.learnGold(
      pending.map(({ item }) => ({ messages: item.messages, completion: item.oracle })),
    );

  for (let start = 0; start < pending.length; start += settings.batchSize) {
    const batch = pending.slice(start, start + settings.batchSize);
    let responses;
    try {
      responses = await model.complete(
        batch.map(({ item }) => samplingRequest(item, settings, maxTokens, stop)),
      );
    } catch (error) {
      throw new BenchmarkRunError(
        'BENCH_MODEL_FAILED',
        `model ${model.id} failed on ${settings.benchmark} (${completed} of ${total} questions done and saved; rerun to resume): ${(error as Error).message}`,
        { cause: error },
      );
    }
    // Malformed replies (missing samples, non-string texts) become empty completions: scored wrong, never fatal.
    const completions = batch.map((_, i) => {
      const texts = Array.isArray(responses?.[i]?.texts) ? responses[i]!.texts : [];
      return Array.from({ length: settings.n }, (_, s) =>
        typeof texts[s] === 'string' ? texts[s]! : '',
      );
    });
    let verdicts: SampleVerdict[][];
    try {
      verdicts = await prepared.score(
        batch.map(({ index }) => index),
        completions,
      );
    } catch (error) {
      if (error instanceof BenchmarkRunError) throw error;
      throw new BenchmarkRunError(
        'BENCH_SCORING_FAILED',
        `scoring ${settings.benchmark} failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    for (let i = 0; i < batch.length; i += 1) {
      const { item } = batch[i]!;
      const finish = responses?.[i]?.finishReasons ?? [];
      const record: ItemRecord = {
        key: item.key,
        task: item.task,
        id: item.id,
        ...(item.group === undefined ? {} : { group: item.group }),
        answerable: item.answerable,
        prompt: item.messages,
        samples: completions[i]!.map((completion, s) => ({
          completion,
          finishReason: finish[s] === 'length' ? 'length' : 'stop',
          extracted: verdicts[i]![s]!.extracted,
          verdict: verdicts[i]![s]!.verdict,
          reason: verdicts[i]![s]!.reason,
          ...(verdicts[i]![s]!.literal === false ? { literal: false } : {}),
        })),
        ...officialCount(
          settings.benchmark,
          verdicts[i]!.map((v) => v.verdict),
        ),
      };
      await appendJsonLines(itemsPath, [record]);
      existing.records.set(record.key, record);
      completed += 1;
    }
    onProgress?.({ stage, completed, total });
  }

  // Metrics over the selected items (resumed and new).
  const selected = prepared.items.map((item) => existing.records.get(item.key)!);
  const tasks = settings.tasks ?? [...BENCHMARK_TASKS[settings.benchmark]];
  const taskOrder = (BENCHMARK_TASKS[settings.benchmark] as readonly string[]).filter((t) =>
    tasks.includes(t),
  );
  const metrics = Object.fromEntries(
    taskOrder.map((task) => [
      task,
      taskMetrics(
        settings.benchmark,
        task,
        selected.filter((r) => r.task === task),
      ),
    ]),
  );
  const headline: Record<string, number | undefined> = {};
  let reval: BenchmarkSummary['reval'];
  if (settings.benchmark === 'cruxeval') {
    if (metrics.output !== undefined) headline['CRUXEval-O'] = metrics.output.score;
    if (metrics.input !== undefined) headline['CRUXEval-I'] = metrics.input.score;
  } else if (settings.benchmark === 'livecodebench') {
    headline['LCB execution'] = metrics.output?.score;
  } else {
    const four = ['coverage', 'state', 'path', 'output'].map((t) => metrics[t]?.score);
    const average = four.every((v) => v !== undefined)
      ? four.reduce((a, b) => a! + b!, 0)! / 4
      : undefined;
    const consistency = revalConsistency(selected);
    reval = { average, consistency: consistency.score, consistencyPoints: consistency.points };
    headline['REval avg'] = average;
  }
  // The same answer to every question, scored the same way: what the score must beat to mean
  // the model read the code.
  onProgress?.({ stage, completed: total, total, detail: { phase: 'baselines' } });
  const baselines = await constantBaselines(
    prepared.items,
    taskOrder,
    prepared.score,
    settings.baselineCandidates,
  );
  const finishedAt = new Date();
  const summary: BenchmarkSummary = {
    benchmark: settings.benchmark,
    model: model.id,
    settings: {
      promptStyle: settings.promptStyle,
      cot: settings.cot,
      strictLiterals: settings.strictLiterals,
      n: settings.n,
      temperature: settings.temperature,
      topP: settings.topP,
      maxTokens,
      seed: settings.seed,
      tasks: taskOrder,
      ids: settings.ids,
      limit: settings.limit,
      stop,
    },
    dataFiles,
    packages: packageVersions(),
    runtime: { node: process.version, platform: `${process.platform}-${process.arch}` },
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
    items: { total, resumed, scoredNow: pending.length },
    tasks: metrics,
    headline,
    ...(Object.keys(baselines).length === 0 ? {} : { baselines }),
    ...(reval === undefined ? {} : { reval }),
    ...(prepared.lcbIndex === undefined
      ? {}
      : {
          livecodebenchIndex: {
            path: prepared.lcbIndex.path,
            complete: prepared.lcbIndex.complete,
            expected: prepared.lcbIndex.expected,
            found: prepared.lcbIndex.found,
            missing: prepared.lcbIndex.missing.length,
            unexpected: prepared.lcbIndex.unexpected.length,
            mismatched: prepared.lcbIndex.mismatched.length,
          },
        }),
    excluded: prepared.excluded,
    notes: prepared.notes,
    outputs: {
      items: itemsPath,
      summary: join(settings.outDir, 'summary.json'),
      report: join(settings.outDir, 'report.md'),
    },
  };
  await writeFileAtomic(summary.outputs.summary, `${JSON.stringify(summary, null, 2)}\n`);
  await writeFileAtomic(summary.outputs.report, renderMarkdownReport([summary]));
  onProgress?.({ stage, completed: total, total, detail: { phase: 'done' } });
  return summary;
}

export interface RunBenchmarksOptions extends Omit<
  RunBenchmarkOptions,
  'benchmark' | 'outDir' | 'tasks'
> {
  /** Default: all three. */
  benchmarks?: BenchmarkName[];
  /** Each benchmark writes to `<outDir>/<benchmark>/`; the combined report goes to `<outDir>/report.md`. */
  outDir: string;
  /** Tasks per benchmark (default: all of each). */
  tasks?: Partial<Record<BenchmarkName, string[]>>;
  /**
   * Record a benchmark whose data file is missing (LiveCodeBench's records are not distributed
   * with the project) as skipped instead of failing; malformed data still fails. Default false.
   */
  skipMissing?: boolean;
}

export interface RunBenchmarksResult {
  summaries: BenchmarkSummary[];
  skipped: { benchmark: BenchmarkName; reason: string }[];
  report: string;
  summary: string;
}

/**
 * Runs several benchmarks on one model (as `cr run-all --benchmarks <dir>` does), each resumable
 * in its own subdirectory, and writes a combined `report.md` (one row beside the paper's) and
 * `summary.json`.
 */
export async function runBenchmarks(options: RunBenchmarksOptions): Promise<RunBenchmarksResult> {
  const {
    benchmarks = [...BENCHMARK_NAMES],
    outDir,
    tasks,
    skipMissing = false,
    ...common
  } = options;
  const summaries: BenchmarkSummary[] = [];
  const skipped: RunBenchmarksResult['skipped'] = [];
  for (const benchmark of benchmarks) {
    if (skipMissing) {
      try {
        await resolveBenchmarkFiles(benchmark, common.dataPath);
      } catch (error) {
        if (error instanceof BenchmarkDataError && error.line === 0) {
          skipped.push({ benchmark, reason: error.message });
          common.logger?.warn(`${benchmark} skipped: ${error.message}`);
          continue;
        }
        throw error;
      }
    }
    summaries.push(
      await runBenchmark({
        ...common,
        benchmark,
        outDir: join(outDir, benchmark),
        ...(tasks?.[benchmark] === undefined ? {} : { tasks: tasks[benchmark] }),
      }),
    );
  }
  const report = join(outDir, 'report.md');
  const summary = join(outDir, 'summary.json');
  const skippedText = skipped
    .map((s) => `- ${s.benchmark} skipped: ${s.reason.split('\n')[0]}`)
    .join('\n');
  await writeFileAtomic(
    report,
    `${renderMarkdownReport(summaries)}${skippedText === '' ? '' : `\n${skippedText}\n`}`,
  );
  await writeFileAtomic(summary, `${JSON.stringify({ summaries, skipped }, null, 2)}\n`);
  return { summaries, skipped, report, summary };
}
