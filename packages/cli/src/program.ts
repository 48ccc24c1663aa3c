import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import {
  BUNDLED_BENCHMARKS_DIR,
  BenchmarkDataError,
  loadCruxEval,
  loadLiveCodeBench,
  loadReval,
  resolveBenchmarkFiles,
  createEndpointModel,
  loadLocalModel,
  runBenchmarks,
  type BenchmarkName,
} from '@codereasoner/bench';
import { BENCHMARK_NAMES, writeFileAtomic } from '@codereasoner/common';
import {
  initBackend,
  LocalChatModel,
  ONNX_WEIGHTS_MODES,
  type OnnxWeightsMode,
} from '@codereasoner/core-tensors';
import { Sandbox } from '@codereasoner/sandbox';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  generatedWithLine,
  generationEngine,
  generationOptions,
  mergeConfig,
  readConfigFile,
  resolveRunConfig,
  type RunConfigInput,
} from './config.js';
import { PRESETS } from './presets.js';
import { SECTION_VALIDATORS } from './stages.js';
import { StageContext } from './context.js';
import { UsageError } from './errors.js';
import {
  GRPO_BATCH_FLAG,
  GRPO_PRESET_CHOICES,
  GRPO_SETTINGS,
  SFT_SETTINGS,
  attributeOf,
  flagOf,
  type TrlSetting,
} from './trl-flags.js';
import { DEFAULT_GRPO_CONFIG, GRPO_PRESETS, type GrpoPresetName } from '@codereasoner/grpo';
import { COMPARE_VARIANTS, renderComparison, type CompareRun } from './compare.js';
import { runPipeline } from './pipeline.js';
import {
  DEFAULT_BUDGETS,
  budgetDirName,
  budgetList,
  budgetLabel,
  renderScale,
  renderScaleHtml,
  scaleChart,
  scaledSections,
  shareFinished,
  trainingTokens,
  type BudgetRun,
  type ScaleRun,
} from './scale.js';
import { registerServeCommands } from './serve-command.js';
import { createReporter, type Reporter } from './progress.js';
import { writeReport } from './report.js';
import { RunDirectory, STAGES, type StageName } from './run-dir.js';
import { benchmarkLine, collectSummary, renderTerminalSummary } from './summary.js';

interface CommonOptions {
  config?: string;
  out?: string;
  seed?: number;
  preset?: 'default' | 'tiny';
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  workers?: number | 'auto';
  engine?: 'auto' | 'onnx' | 'tfjs';
  onnxThreads?: number;
  onnxWeights?: OnnxWeightsMode;
  /** A directory, or `true` for `--benchmarks` without one: the data the bench package ships. */
  benchmarks?: string | true;
  /** `cr sft` / `cr grpo`: TRL-named flags, by commander attribute (see trl-flags.ts). */
  training?: {
    section: 'sft' | 'grpo';
    values: Record<string, unknown>;
    /** GRPO only: TRL's per-update batch, turned into generationBatchSize once stepsPerGeneration is known. */
    perDeviceTrainBatchSize?: number;
  };
  grpoPreset?: GrpoPresetName;
  /** `cr bench` on the run's model: without --benchmarks and a stored bench.dir, the shipped data. */
  defaultBenchmarks?: boolean;
  /** `cr bench` on the run's own model: flags that override the config's bench section. */
  bench?: { benchmarks?: BenchmarkName[]; limit?: number; maxNewTokens?: number };
  force?: string[];
  /** Print the resolved config and stop. */
  printConfig?: boolean;
  /** `cr scale`: a budget's sft and grpo settings, over the config file and the preset. */
  sections?: Pick<RunConfigInput, 'sft' | 'grpo'>;
  /** `--model <dir>` of the stage commands: a local Hugging Face model to start from. */
  pretrained?: string;
  quiet?: boolean;
  json?: boolean;
}

export interface CliIo {
  /** Where summaries go (stdout); progress goes to stderr. */
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

/** The progress reporter a command's --json / --quiet flags and the terminal ask for (progress on stderr). */
function commandReporter(io: CliIo, options: { json?: boolean; quiet?: boolean }): Reporter {
  return createReporter({
    json: options.json,
    quiet: options.quiet,
    stream: io.stderr,
    env: io.env,
  });
}

function integer(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new InvalidArgumentError('must be a non-negative integer');
  return parsed;
}

function seedList(value: string): number[] {
  const seeds = value.split(',').map((part) => integer(part.trim()));
  if (seeds.length === 0 || new Set(seeds).size !== seeds.length)
    throw new InvalidArgumentError('must be distinct non-negative integers, e.g. 1,2');
  return seeds;
}

function workersValue(value: string): number | 'auto' {
  return value === 'auto' ? 'auto' : integer(value);
}

function numberValue(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed))
    throw new InvalidArgumentError('must be a number');
  return parsed;
}

const RUN_PRESETS = ['default', 'tiny'] as const;

/** `--preset` sizes the run; GRPO's paper presets have their own flag, and are named as such when given here. */
function presetValue(value: string): 'default' | 'tiny' {
  if ((RUN_PRESETS as readonly string[]).includes(value)) return value as 'default' | 'tiny';
  if (GRPO_PRESET_CHOICES.includes(value)) {
    throw new InvalidArgumentError(
      `'${value}' is a GRPO preset: use --grpo-preset ${value} (or "grpo": { "preset": "${value}" } in a config file); --preset picks the run's size: ${RUN_PRESETS.join(', ')}`,
    );
  }
  throw new InvalidArgumentError(`must be one of ${RUN_PRESETS.join(', ')}`);
}

/** The config sections each command reads, for its help. */
const SECTIONS_READ: Record<string, string> = {
  'run-all':
    'all: seed, data, teacher, tokenizer, model, sft, grpo, eval, bench, sandbox, backend, workers, engine, onnx',
  'data build': 'seed, data, sandbox',
  sft: 'seed, teacher, tokenizer, model, sft, eval (tasksPerType: its held-out tasks), sandbox, backend, workers, engine, onnx',
  grpo: 'seed, grpo, sft (reasoning: the prompt style), sandbox, backend, workers, engine, onnx',
  eval: 'seed, eval, sft (reasoning), sandbox, backend, workers, engine, onnx',
  bench: "seed, bench (with the run's own model), sandbox, backend, workers, engine, onnx",
};

/** The --out help of a command whose directory holds several runs. */
function outHelp(command: Command, text: string): Command {
  const out = command.options.find((option) => option.long === '--out');
  if (out !== undefined) out.description = text;
  return command;
}

function sectionsHelp(command: Command, name: string): Command {
  return command.addHelpText(
    'after',
    `\nConfig sections read (from --config, else <out>/config.json, over the preset): ${SECTIONS_READ[name]}\n`,
  );
}

function addTrainingOptions(command: Command, settings: readonly TrlSetting[]): Command {
  for (const setting of settings) {
    const flag = flagOf(setting.trl);
    if (setting.kind === 'boolean') {
      command.option(flag, `${setting.help} (${setting.key}; TRL ${setting.trl})`);
      continue;
    }
    const option = new Option(
      `${flag} <${setting.kind === 'choice' ? 'name' : 'n'}>`,
      `${setting.help} (${setting.key}; TRL ${setting.trl})`,
    );
    if (setting.kind === 'choice') option.choices([...(setting.choices ?? [])]);
    else option.argParser(setting.kind === 'integer' ? integer : numberValue);
    command.addOption(option);
  }
  return command;
}

/** The config values the TRL-named flags of a command set. */
function trainingValues(
  settings: readonly TrlSetting[],
  options: Record<string, unknown>,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const setting of settings) {
    const value = options[attributeOf(setting.trl)];
    if (value !== undefined) values[setting.key] = value;
  }
  return values;
}

const MODEL_FLAG_HELP =
  'start from a local Hugging Face model directory (Llama/Qwen2/Qwen3; sets model.pretrained)';

function addCommonOptions(command: Command): Command {
  return command
    .option(
      '-c, --config <file>',
      'JSON config file (schema: @codereasoner/cli/schemas/run-config.schema.json)',
    )
    .option('-o, --out <dir>', 'run directory (default: runs/<preset>)')
    .option('-s, --seed <n>', 'seed of every stage', integer)
    .addOption(
      new Option(
        '--preset <name>',
        `the run's size: embedded defaults to start from (${RUN_PRESETS.join(', ')})`,
      ).argParser(presetValue),
    )
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend').choices([
        'auto',
        'tensorflow',
        'wasm',
        'cpu',
      ]),
    )
    .option(
      '--workers <n>',
      "threads for training and generation: 'auto' or a number (0: none)",
      workersValue,
    )
    .addOption(
      new Option(
        '--engine <name>',
        'what computes the logits when generating (rollouts, evaluation, benchmarks): onnx (onnxruntime-node, falling back to tfjs with a warning), tfjs, or auto (onnx where it loads and supports the model); default auto',
      ).choices(['auto', 'onnx', 'tfjs']),
    )
    .option(
      '--onnx-threads <n>',
      "onnxruntime's intra-op threads per generating thread when generating on onnx (config onnx.threads; default 1)",
      integer,
    )
    .addOption(
      new Option(
        '--onnx-weights <mode>',
        "how the onnx engine's graph holds the weights (config onnx.weights): auto (inside the graph up to 2 GiB - 64 MiB of weights, graph inputs above), initializers, or inputs; default auto",
      ).choices(ONNX_WEIGHTS_MODES),
    )
    .option(
      '--print-config',
      'print the config this command would run with (preset, config file, flags) and exit without running',
    )
    .option('-q, --quiet', 'print only warnings, errors and the final summary')
    .option('--json', 'machine-readable output: one JSON object per line on stdout');
}

async function resolveConfig(options: CommonOptions) {
  if (options.out !== undefined) checkRunDirectoryPath(resolve(options.out));
  const file = options.config
    ? await readConfigFile(options.config)
    : await storedRunConfig(options);
  const flags: RunConfigInput = {
    preset: options.preset,
    seed: options.seed,
    out: options.out,
    backend: options.backend,
    workers: options.workers,
    engine: options.engine,
  };
  if (options.onnxThreads !== undefined || options.onnxWeights !== undefined)
    flags.onnx = {
      ...(options.onnxThreads === undefined ? {} : { threads: options.onnxThreads }),
      ...(options.onnxWeights === undefined ? {} : { weights: options.onnxWeights }),
    };
  const benchDir = options.benchmarks === true ? BUNDLED_BENCHMARKS_DIR : options.benchmarks;
  if (benchDir) flags.bench = { dir: benchDir };
  if (options.pretrained) flags.model = { pretrained: resolve(options.pretrained) };
  if (options.bench) flags.bench = { ...flags.bench, ...options.bench };
  if (options.training) flags[options.training.section] = { ...options.training.values };
  if (options.grpoPreset) flags.grpo = { ...flags.grpo, preset: options.grpoPreset };
  if (options.sections?.sft) flags.sft = { ...flags.sft, ...options.sections.sft };
  if (options.sections?.grpo) flags.grpo = { ...flags.grpo, ...options.sections.grpo };
  const perUpdate = options.training?.perDeviceTrainBatchSize;
  if (perUpdate !== undefined) {
    flags.grpo = {
      ...flags.grpo,
      generationBatchSize:
        perUpdate * stepsPerGeneration(file as RunConfigInput | undefined, flags),
    };
  }
  const source = options.config
    ? `config file ${options.config}`
    : file
      ? `${(file as RunConfigInput).out}/config.json`
      : 'run config';
  const config = resolveRunConfig(file, flags, source, SECTION_VALIDATORS);
  // a preset's default run directory follows the preset unless one was given
  if (!options.out && !(file as RunConfigInput | undefined)?.out)
    config.out = `runs/${config.preset}`;
  config.out = resolve(config.out);
  checkRunDirectoryPath(config.out);
  if (!config.bench.dir && options.defaultBenchmarks) config.bench.dir = BUNDLED_BENCHMARKS_DIR;
  if (config.bench.dir) {
    if (!existsSync(config.bench.dir))
      throw new UsageError(`benchmark directory ${config.bench.dir} does not exist`);
    config.bench.dir = resolve(config.bench.dir);
    // checked before anything is written: a bad directory must not end up in the stored config
    await checkBenchmarkData(config.bench.dir, config.bench.benchmarks);
  }
  return config;
}

/** GRPO's optimizer updates per generation batch as the flags, the file, the GRPO preset and the run preset resolve it. */
function stepsPerGeneration(file: RunConfigInput | undefined, flags: RunConfigInput): number {
  const runPreset = flags.preset ?? file?.preset ?? 'default';
  const grpo = mergeConfig(
    mergeConfig(PRESETS[runPreset in PRESETS ? runPreset : 'default'].grpo, file?.grpo ?? {}),
    flags.grpo ?? {},
  ) as { preset?: GrpoPresetName; stepsPerGeneration?: number };
  const fromPreset =
    grpo.preset && grpo.preset in GRPO_PRESETS
      ? GRPO_PRESETS[grpo.preset].options.stepsPerGeneration
      : undefined;
  return grpo.stepsPerGeneration ?? fromPreset ?? DEFAULT_GRPO_CONFIG.stepsPerGeneration;
}

/** The run directory must be a directory, or a path where one can be made. */
function checkRunDirectoryPath(out: string): void {
  for (let path = out; ; path = dirname(path)) {
    let stats;
    try {
      stats = statSync(path);
    } catch {
      if (dirname(path) === path) return;
      continue;
    }
    if (stats.isDirectory()) return;
    throw new UsageError(
      path === out
        ? `--out ${out} is a file, not a directory: give the path of a run directory (new or existing)`
        : `--out ${out} cannot be made: ${path} is a file, not a directory`,
    );
  }
}

/**
 * The benchmarks a run would score must have their files: every one the config names, or at least
 * one of them when none is named (those missing are then skipped, as LiveCodeBench usually is).
 */
async function checkBenchmarkData(
  dir: string,
  named: readonly BenchmarkName[] | undefined,
): Promise<void> {
  const all = BENCHMARK_NAMES;
  const problems: string[] = [];
  let found = 0;
  for (const benchmark of named ?? all) {
    let files;
    try {
      files = await resolveBenchmarkFiles(benchmark, dir);
    } catch (error) {
      if (!(error instanceof BenchmarkDataError)) throw error;
      problems.push(`${benchmark}: ${error.issues.join('; ')}`);
      continue;
    }
    found += 1;
    // a malformed file is found now, not after the earlier stages have run and the config was stored
    try {
      if (benchmark === 'cruxeval') await loadCruxEval(files.data);
      else if (benchmark === 'livecodebench') await loadLiveCodeBench(files.data);
      else await loadReval(files.data, files.tasks!);
    } catch (error) {
      if (!(error instanceof BenchmarkDataError)) throw error;
      throw new UsageError(error.message);
    }
  }
  if (named ? problems.length > 0 : found === 0) {
    throw new UsageError(
      `no usable benchmark data in ${dir}:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        `Give a directory with cruxeval/, reval/ or livecodebench-execution/ files, or --benchmarks alone for the CRUXEval copy that ships with @codereasoner/bench.`,
    );
  }
}

/**
 * The configuration a run directory was made with (its `config.json`), so that a later command on
 * the same directory (`cr bench --out runs/x`, a resume) continues with the same settings; flags
 * still override it. A different --preset is refused rather than silently mixed in.
 */
async function storedRunConfig(options: CommonOptions): Promise<unknown> {
  const out = resolve(options.out ?? `runs/${options.preset ?? 'default'}`);
  const path = join(out, 'config.json');
  if (!existsSync(path)) return undefined;
  const stored = (await readConfigFile(path)) as RunConfigInput;
  if (options.preset && stored.preset && options.preset !== stored.preset) {
    throw new UsageError(
      `run directory ${out} was made with --preset ${stored.preset}; use --preset ${stored.preset} to continue it, or another --out`,
    );
  }
  return stored;
}

function parseStages(values: string[] | undefined): StageName[] {
  const stages: StageName[] = [];
  for (const value of values ?? []) {
    for (const name of value.split(',')) {
      if (!(STAGES as readonly string[]).includes(name)) {
        throw new UsageError(
          `unknown stage '${name}' for --force; stages are ${STAGES.join(', ')}`,
        );
      }
      stages.push(name as StageName);
    }
  }
  return stages;
}

async function runStagesCommand(
  io: CliIo,
  options: CommonOptions,
  stages: readonly StageName[] | undefined,
): Promise<void> {
  const config = await resolveConfig(options);
  if (options.printConfig) {
    // the config this command would run with, every flag and check applied; nothing is written
    io.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return;
  }
  const reporter = commandReporter(io, options);
  const context = new StageContext(config, reporter, io.signal);
  try {
    await runPipeline(context, { stages, force: parseStages(options.force) });
    const files = await writeReport(config.out);
    const summary = await collectSummary(context.run);
    if (reporter.mode === 'json') reporter.result({ ...summary, report: files });
    else io.stdout.write(`\n${renderTerminalSummary(summary, files.html)}\n`);
  } finally {
    reporter.close();
    await context.close();
  }
}

/**
 * `cr compare`: for each seed, the `chains` run (SFT on chains, GRPO, eval) and the `answers` run
 * (SFT on answers only, eval) under `<out>/seed-<n>/<variant>`, then one table. Re-running
 * resumes each run where it stopped.
 */
async function runCompareCommand(
  io: CliIo,
  options: CommonOptions & { seeds: number[] },
): Promise<void> {
  const base = await resolveConfig(options);
  const out = options.out === undefined ? resolve(`runs/compare-${base.preset}`) : base.out;
  const runs: CompareRun[] = [];
  for (const seed of options.seeds) {
    for (const variant of ['chains', 'answers'] as const) {
      const plan = COMPARE_VARIANTS[variant];
      const config = await resolveConfig({
        ...options,
        seed,
        out: join(out, `seed-${seed}`, variant),
        training: { section: 'sft', values: { ...plan.sft } },
      });
      if (options.printConfig) {
        io.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
        continue;
      }
      const reporter = commandReporter(io, options);
      const context = new StageContext(config, reporter, io.signal);
      try {
        reporter.info(`compare: seed ${seed}, ${variant} (${config.out})`);
        await runPipeline(context, { stages: plan.stages, force: [] });
        await writeReport(config.out);
        runs.push({ seed, variant, summary: await collectSummary(context.run) });
      } finally {
        reporter.close();
        await context.close();
      }
    }
  }
  if (options.printConfig) return;
  const markdown = renderComparison(runs, true);
  await writeFileAtomic(join(out, 'compare.md'), `# cr compare: ${out}\n\n${markdown}\n`);
  if (options.json)
    io.stdout.write(
      `${JSON.stringify({ type: 'result', compare: join(out, 'compare.md'), runs: runs.map((r) => ({ seed: r.seed, variant: r.variant, run: r.summary.run, evaluation: r.summary.evaluation, baselines: r.summary.baselines?.overall })) })}\n`,
    );
  else
    io.stdout.write(`\n${renderComparison(runs, false)}\n\nWritten: ${join(out, 'compare.md')}\n`);
}

/**
 * `cr scale`: one ordinary run (data, SFT, GRPO, eval) per budget under `<out>/budget-<k>`, each
 * with the preset's SFT and GRPO steps times k, sharing what they compute alike; then a table and
 * a chart of held-out accuracy per budget. Re-running resumes each run where it stopped.
 */
async function runScaleCommand(
  io: CliIo,
  options: CommonOptions & { budgets: number[] },
): Promise<void> {
  // the preset names the default directory; resolving against runs/<preset> would read a
  // default run's stored config as the base of every budget
  const preset =
    options.preset ??
    (options.config
      ? ((await readConfigFile(options.config)) as RunConfigInput).preset
      : undefined) ??
    'default';
  const out = resolve(options.out ?? `runs/scale-${preset}`);
  const base = await resolveConfig({ ...options, out });
  // every budget's config before anything runs: a budget that cannot run is refused first
  const plans: BudgetRun[] = [];
  for (const budget of options.budgets) {
    const config = await resolveConfig({
      ...options,
      out: join(out, budgetDirName(budget)),
      sections: scaledSections(base, budget),
    });
    plans.push({ budget, config, run: new RunDirectory(config.out) });
  }
  if (options.printConfig) {
    for (const plan of plans) io.stdout.write(`${JSON.stringify(plan.config, null, 2)}\n`);
    return;
  }
  const runs: ScaleRun[] = [];
  for (const plan of plans) {
    const reporter = commandReporter(io, options);
    const context = new StageContext(plan.config, reporter, io.signal);
    try {
      reporter.info(
        `scale: budget ${budgetLabel(plan.budget)}: ${String(plan.config.sft.steps)} SFT steps, ${String(plan.config.grpo.maxSteps)} GRPO steps (${plan.config.out})`,
      );
      if (!io.signal.aborted)
        for (const copied of await shareFinished(plan, plans))
          reporter.info(`scale: shared ${copied}`);
      await runPipeline(context, { stages: ['data', 'sft', 'grpo', 'eval'], force: [] });
      await writeReport(plan.config.out);
      const summary = await collectSummary(context.run);
      runs.push({
        budget: plan.budget,
        summary,
        ...(await trainingTokens(context.run, summary)),
      });
    } finally {
      reporter.close();
      await context.close();
    }
  }
  const files = {
    markdown: join(out, 'scale.md'),
    svg: join(out, 'scale.svg'),
    html: join(out, 'scale.html'),
  };
  await writeFileAtomic(
    files.markdown,
    `# cr scale: ${out}\n\n![accuracy per budget](scale.svg)\n\n${renderScale(runs, true)}\n`,
  );
  await writeFileAtomic(files.svg, `${scaleChart(runs)}\n`);
  await writeFileAtomic(files.html, renderScaleHtml(out, runs));
  if (options.json)
    io.stdout.write(
      `${JSON.stringify({
        type: 'result',
        scale: files,
        runs: runs.map((r) => ({
          budget: r.budget,
          run: r.summary.run,
          sftSteps: r.summary.figures.sft?.steps,
          grpoSteps: r.summary.figures.grpo?.steps,
          sftTokens: r.sftTokens,
          grpoTokens: r.grpoTokens,
          stages: r.summary.stages,
          evaluation: r.summary.evaluation,
          baselines: r.summary.baselines?.overall,
        })),
      })}\n`,
    );
  else
    io.stdout.write(
      `\n${renderScale(runs, false)}\n\nWritten: ${files.markdown}, ${files.svg}, ${files.html}\n`,
    );
}

const require = createRequire(import.meta.url);

/** `cr --version`: this package's version and those of the packages that decide results. */
export function versionText(): string {
  const version = (name: string) => {
    try {
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  const own = (require('../package.json') as { version: string }).version;
  const parts = ['core-tensors', 'sandbox', 'data', 'sft', 'grpo', 'bench'].map(
    (name) => `${name} ${version(`@codereasoner/${name}`)}`,
  );
  return `cr ${own} (@codereasoner/cli; ${parts.join(', ')}; node ${process.version})`;
}

export function createProgram(io: CliIo): Command {
  const program = new Command('cr')
    .description(
      'CodeReasoner: sliced Python corpus, SFT on verified reasoning chains, GRPO with execution rewards, and code-reasoning benchmarks.',
    )
    .version(versionText(), '-V, --version', 'print the versions of cr and its packages')
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride();

  sectionsHelp(
    addCommonOptions(
      program
        .command('run-all')
        .description(
          'run every stage: corpus, distillation + SFT, GRPO, held-out evaluation, benchmarks; re-running resumes',
        )
        .option(
          '--benchmarks [dir]',
          'benchmark the final model: a directory with cruxeval/, reval/, livecodebench-execution/ files, or none for the CRUXEval copy shipped with @codereasoner/bench',
        )
        .addOption(
          new Option('--grpo-preset <name>', 'GRPO from a paper (grpo.preset)').choices([
            ...GRPO_PRESET_CHOICES,
          ]),
        )
        .option(
          '--force <stages...>',
          `run these stages again from scratch, deleting their outputs and those of every later stage: ${STAGES.join(', ')}`,
        )
        .option('--model <dir>', MODEL_FLAG_HELP),
    ),
    'run-all',
  ).action((options: CommonOptions & { model?: string }) =>
    runStagesCommand(io, { ...options, pretrained: options.model }, undefined),
  );

  sectionsHelp(
    addCommonOptions(
      program
        .command('compare')
        .description(
          "the paper's two claims on one table: per seed, SFT on reasoning chains then GRPO, and SFT on answers only, on the same held-out tasks with baselines, per task type and difficulty level (runs under <out>/seed-<n>/{chains,answers}; re-running resumes)",
        )
        .option('--seeds <list>', 'comma-separated seeds (default 1,2)', seedList, [1, 2]),
    ),
    'run-all',
  ).action((options: CommonOptions & { seeds: number[] }) => runCompareCommand(io, options));

  const scale = sectionsHelp(
    addCommonOptions(
      program
        .command('scale')
        .description(
          "how held-out accuracy grows with training compute: one run per budget (the preset's SFT and GRPO steps times each budget, same corpus and held-out tasks) under <out>/budget-<k>, then a table and a chart in <out>/scale.{md,svg,html}; re-running resumes",
        )
        .addOption(
          new Option(
            '--budgets <list>',
            "comma-separated multiples of the preset's SFT and GRPO steps, at least two; the default (0.5,1,1.5) takes about 25-40 min for the default preset on 2 cores",
          )
            .argParser(budgetList)
            .default([...DEFAULT_BUDGETS], DEFAULT_BUDGETS.join(',')),
        ),
    ),
    'run-all',
  );
  outHelp(scale, 'directory of the runs, one per budget (default: runs/scale-<preset>)').action(
    (options: CommonOptions & { budgets: number[] }) => runScaleCommand(io, options),
  );

  const data = program.command('data').description('the sliced Python corpus');
  sectionsHelp(
    addCommonOptions(
      data.command('build').description('build the corpus and tasks into <run>/data'),
    ),
    'data build',
  )
    .option('--force', 'rebuild from scratch even if finished (later stages start again too)')
    .action((options: CommonOptions & { force?: boolean }) =>
      runStagesCommand(io, { ...options, force: options.force ? ['data'] : [] }, ['data']),
    );

  for (const [name, description, settings] of [
    [
      'sft',
      "distil reasoning chains with the teacher and train the model with SFT (needs the data stage); flags named as in TRL's SFTConfig",
      SFT_SETTINGS,
    ],
    [
      'grpo',
      "GRPO from the SFT checkpoint with execution-verified rewards (needs sft); flags named as in TRL's GRPOConfig",
      GRPO_SETTINGS,
    ],
    [
      'eval',
      'evaluate the base, SFT and GRPO models on held-out tasks of every type (needs sft)',
      [],
    ],
  ] as const) {
    const command = addTrainingOptions(
      sectionsHelp(addCommonOptions(program.command(name).description(description)), name),
      settings,
    );
    if (name === 'grpo') {
      command
        .option(`${flagOf(GRPO_BATCH_FLAG.trl)} <n>`, GRPO_BATCH_FLAG.help, integer)
        .addOption(
          new Option(
            '--grpo-preset <name>',
            "start from a paper's GRPO settings (grpo.preset); other flags override it",
          ).choices([...GRPO_PRESET_CHOICES]),
        );
    }
    if (name === 'sft') command.option('--model <dir>', MODEL_FLAG_HELP);
    command
      .option('--force', 'run again from scratch even if finished (later stages start again too)')
      .action(
        (
          options: CommonOptions & { force?: boolean; model?: string } & Record<string, unknown>,
        ) => {
          const values = trainingValues(settings, options);
          return runStagesCommand(
            io,
            {
              ...options,
              pretrained: options.model,
              training:
                name === 'eval'
                  ? undefined
                  : {
                      section: name,
                      values,
                      // TRL's GRPO batch is per optimizer update; SFT's maps onto batchSize directly
                      perDeviceTrainBatchSize:
                        name === 'grpo'
                          ? (options.perDeviceTrainBatchSize as number | undefined)
                          : undefined,
                    },
              force: options.force ? [name] : [],
            },
            [name],
          );
        },
      );
  }

  addCommonOptions(
    program
      .command('bench')
      .description(
        "score a model on CRUXEval, LiveCodeBench execution and REval; without --checkpoint/--endpoint, the run directory's final model",
      )
      .option(
        '--benchmarks <dir>',
        "directory with the benchmark files (or one benchmark's file); default: the CRUXEval copy shipped with @codereasoner/bench",
      )
      .option('--checkpoint <dir>', 'a core-tensors checkpoint directory to evaluate')
      .option('--endpoint <url>', 'an OpenAI-compatible base URL (e.g. http://localhost:8000/v1)')
      .option('--model <name>', 'model name at the endpoint')
      .option(
        '--name <label>',
        'with --checkpoint: its name in reports (default: <stage>-<step directory>)',
      )
      .option(
        '--api-key-env <name>',
        'environment variable holding the API key (default: OPENAI_API_KEY when it is set)',
      )
      .addOption(
        new Option('--only <benchmarks...>', 'benchmarks to run').choices([
          'cruxeval',
          'livecodebench',
          'reval',
        ]),
      )
      .option(
        '--tasks <tasks...>',
        'subset of tasks, with a single --only benchmark (cruxeval: output input; reval: coverage state path output)',
      )
      .option('--limit <n>', 'only the first n records of each benchmark', integer)
      .option('-n, --samples <n>', 'samples per question (pass@1 from n)', integer)
      .option('--temperature <t>', 'sampling temperature', Number.parseFloat)
      .option('--max-tokens <n>', 'max new tokens per answer', integer)
      .option('--cot', 'chain-of-thought prompts')
      .option(
        '--strict-literals',
        'CRUXEval/LiveCodeBench: an answer that is an expression, not a literal, fails (the official harnesses accept e.g. `0 or True`)',
      )
      .addOption(
        new Option(
          '--prompt-style <style>',
          "official harness prompts, or the project's task protocol",
        ).choices(['official', 'protocol']),
      )
      .option('--concurrency <n>', 'parallel requests to an endpoint', integer)
      .option('--force', 'score again from scratch even if finished'),
  );
  sectionsHelp(
    program.commands.find((c) => c.name() === 'bench')!,
    'bench',
  ).action((options: CommonOptions & BenchOptions) => benchCommand(io, options));

  program
    .command('report')
    .description('write report.html (charts) and summary.md for a run directory')
    .argument('<run-dir>', 'the run directory')
    .action(async (runDir: string) => {
      if (!existsSync(runDir)) throw new UsageError(`run directory ${runDir} does not exist`);
      const files = await writeReport(resolve(runDir));
      io.stdout.write(`${files.html}\n${files.markdown}\n`);
    });

  registerServeCommands(program, io);

  return program;
}

interface BenchOptions {
  checkpoint?: string;
  name?: string;
  endpoint?: string;
  model?: string;
  apiKeyEnv?: string;
  only?: BenchmarkName[];
  tasks?: string[];
  limit?: number;
  samples?: number;
  temperature?: number;
  maxTokens?: number;
  cot?: boolean;
  strictLiterals?: boolean;
  promptStyle?: 'official' | 'protocol';
  concurrency?: number;
  force?: boolean;
}

/** `runs/x/grpo/train/checkpoints/step-00000080` → `grpo-step-00000080`; other paths: their last part. */
export function checkpointLabel(path: string): string {
  const dir = resolve(path);
  const parent = dirname(dir);
  if (basename(parent) !== 'checkpoints') return basename(dir);
  return `${basename(dirname(dirname(parent)))}-${basename(dir)}`;
}

/** `cr bench` options the run-directory bench stage has no config field for. */
const RUN_BENCH_UNSUPPORTED = [
  'tasks',
  'samples',
  'temperature',
  'cot',
  'strictLiterals',
  'promptStyle',
  'concurrency',
  'model',
  'apiKeyEnv',
  'name',
] as const;

function flagName(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

async function benchCommand(io: CliIo, options: CommonOptions & BenchOptions): Promise<void> {
  if (!options.checkpoint && !options.endpoint) {
    // the run's own final model, as a stage of the run: its settings live in the config's bench section
    const unsupported = RUN_BENCH_UNSUPPORTED.filter((name) => options[name] !== undefined);
    if (unsupported.length > 0) {
      throw new UsageError(
        `${unsupported.map(flagName).join(', ')} cannot be used when scoring the run's own model; ` +
          'pass --checkpoint <run dir>/grpo/train/checkpoints/<step> to score a checkpoint with these settings',
      );
    }
    const bench = {
      benchmarks: options.only,
      limit: options.limit,
      maxNewTokens: options.maxTokens,
    };
    await runStagesCommand(
      io,
      { ...options, bench, defaultBenchmarks: true, force: options.force ? ['bench'] : [] },
      ['bench'],
    );
    return;
  }
  if (options.endpoint && !options.model) throw new UsageError('--endpoint needs --model <name>');
  if (options.tasks && options.only?.length !== 1)
    throw new UsageError('--tasks needs exactly one benchmark in --only');
  const dataPath =
    typeof options.benchmarks === 'string' ? options.benchmarks : BUNDLED_BENCHMARKS_DIR;
  if (!existsSync(dataPath)) throw new UsageError(`benchmark path ${dataPath} does not exist`);
  const reporter = commandReporter(io, options);
  const config = await resolveConfig({ ...options, benchmarks: undefined });
  const outRoot = options.out ? resolve(options.out) : resolve('runs', 'bench');
  const sandbox = await Sandbox.create(config.sandbox);
  const benchLogger = {
    debug: () => {},
    info: (m: string) => reporter.info(m),
    warn: (m: string) => reporter.warn(m),
  };
  try {
    let model;
    if (options.checkpoint) {
      await initBackend({ backend: config.backend });
      model = await loadLocalModel(options.checkpoint, {
        id: options.name ?? checkpointLabel(options.checkpoint),
        ...generationOptions(config),
        logger: benchLogger,
      });
    } else {
      model = createEndpointModel({
        baseURL: options.endpoint!,
        model: options.model!,
        apiKeyEnv: options.apiKeyEnv ?? (io.env.OPENAI_API_KEY ? 'OPENAI_API_KEY' : undefined),
        concurrency: options.concurrency,
        cacheDir: resolve(outRoot, '.cache'),
      });
    }
    reporter.stageStart('bench', 'Benchmarks');
    const started = performance.now();
    const { summaries } = await runBenchmarks({
      benchmarks: options.only,
      skipMissing: options.only === undefined,
      dataPath,
      model,
      sandbox,
      outDir: outRoot,
      tasks:
        options.tasks && options.only?.length === 1
          ? { [options.only[0]!]: options.tasks }
          : undefined,
      n: options.samples,
      temperature: options.temperature,
      maxTokens: options.maxTokens,
      limit: options.limit,
      cot: options.cot,
      strictLiterals: options.strictLiterals,
      promptStyle: options.promptStyle ?? (options.checkpoint ? 'protocol' : 'official'),
      seed: config.seed,
      onProgress: (event) => reporter.progress(event),
      logger: benchLogger,
    });
    const ran = model instanceof LocalChatModel ? model.lastGenerationEngine : undefined;
    if (ran !== undefined)
      reporter.info(generatedWithLine(model.id, ran, generationEngine(config)));
    reporter.stageEnd('bench', { status: 'done', seconds: (performance.now() - started) / 1000 });
    if (reporter.mode === 'json') reporter.result(summaries);
    else {
      for (const summary of summaries)
        io.stdout.write(`${benchmarkLine(summary)}  (${summary.outputs.report})\n`);
    }
  } finally {
    reporter.close();
    await sandbox.close();
  }
}
