import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  createEndpointModel,
  loadLocalModel,
  runBenchmarks,
  type BenchmarkName,
} from '@codereasoner/bench';
import { initBackend } from '@codereasoner/core-tensors';
import { Sandbox } from '@codereasoner/sandbox';
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkSections, readConfigFile, resolveRunConfig, type RunConfigInput } from './config.js';
import { SECTION_VALIDATORS } from './stages.js';
import { StageContext } from './context.js';
import { UsageError } from './errors.js';
import { runPipeline } from './pipeline.js';
import { createReporter, type Reporter } from './progress.js';
import { writeReport } from './report.js';
import { STAGES, type StageName } from './run-dir.js';
import { collectSummary, renderTerminalSummary } from './summary.js';

interface CommonOptions {
  config?: string;
  out?: string;
  seed?: number;
  preset?: 'default' | 'tiny';
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  workers?: number | 'auto';
  benchmarks?: string;
  /** `cr bench` on the run's own model: flags that override the config's bench section. */
  bench?: { benchmarks?: BenchmarkName[]; limit?: number; maxNewTokens?: number };
  force?: string[];
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

function integer(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new InvalidArgumentError('must be a non-negative integer');
  return parsed;
}

function workersValue(value: string): number | 'auto' {
  return value === 'auto' ? 'auto' : integer(value);
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
      new Option('--preset <name>', 'embedded defaults to start from').choices(['default', 'tiny']),
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
    .option('-q, --quiet', 'print only warnings, errors and the final summary')
    .option('--json', 'machine-readable output: one JSON object per line on stdout');
}

async function resolveConfig(options: CommonOptions) {
  const file = options.config
    ? await readConfigFile(options.config)
    : await storedRunConfig(options);
  const flags: RunConfigInput = {
    preset: options.preset,
    seed: options.seed,
    out: options.out,
    backend: options.backend,
    workers: options.workers,
  };
  if (options.pretrained) flags.model = { pretrained: resolve(options.pretrained) };
  if (options.benchmarks) flags.bench = { dir: options.benchmarks };
  if (options.bench) flags.bench = { ...flags.bench, ...options.bench };
  const source = options.config
    ? `config file ${options.config}`
    : file
      ? `${(file as RunConfigInput).out}/config.json`
      : 'run config';
  const config = resolveRunConfig(file, flags, source);
  // a preset's default run directory follows the preset unless one was given
  if (!options.out && !(file as RunConfigInput | undefined)?.out)
    config.out = `runs/${config.preset}`;
  config.out = resolve(config.out);
  if (config.bench.dir && !existsSync(config.bench.dir)) {
    throw new UsageError(`benchmark directory ${config.bench.dir} does not exist`);
  }
  if (config.bench.dir) config.bench.dir = resolve(config.bench.dir);
  checkSections(config, SECTION_VALIDATORS);
  return config;
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
  const reporter = createReporter({
    json: options.json,
    quiet: options.quiet,
    stream: io.stderr,
    env: io.env,
  });
  const config = await resolveConfig(options);
  const context = new StageContext(config, reporter, io.signal);
  try {
    reporter.info(`run directory: ${config.out}`);
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

export function createProgram(io: CliIo): Command {
  const program = new Command('cr')
    .description(
      'CodeReasoner: sliced Python corpus, SFT on verified reasoning chains, GRPO with execution rewards, and code-reasoning benchmarks.',
    )
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride();

  addCommonOptions(
    program
      .command('run-all')
      .description(
        'run every stage: corpus, distillation + SFT, GRPO, held-out evaluation, benchmarks; re-running resumes',
      )
      .option(
        '--benchmarks <dir>',
        'directory with cruxeval/, reval/, livecodebench-execution/ files to benchmark the final model on',
      )
      .option(
        '--force <stages...>',
        `run these stages again from scratch, deleting their outputs and those of every later stage: ${STAGES.join(', ')}`,
      )
      .option('--model <dir>', MODEL_FLAG_HELP),
  ).action((options: CommonOptions & { model?: string }) =>
    runStagesCommand(io, { ...options, pretrained: options.model }, undefined),
  );

  const data = program.command('data').description('the sliced Python corpus');
  addCommonOptions(data.command('build').description('build the corpus and tasks into <run>/data'))
    .option('--force', 'rebuild from scratch even if finished (later stages start again too)')
    .action((options: CommonOptions & { force?: boolean }) =>
      runStagesCommand(io, { ...options, force: options.force ? ['data'] : [] }, ['data']),
    );

  for (const [name, description] of [
    [
      'sft',
      'distil reasoning chains with the teacher and train the model with SFT (needs the data stage)',
    ],
    ['grpo', 'GRPO from the SFT checkpoint with execution-verified rewards (needs sft)'],
    ['eval', 'evaluate the base, SFT and GRPO models on held-out tasks of every type'],
  ] as const) {
    const command = addCommonOptions(program.command(name).description(description)).option(
      '--force',
      'run again from scratch even if finished (later stages start again too)',
    );
    if (name === 'sft') command.option('--model <dir>', MODEL_FLAG_HELP);
    command.action((options: CommonOptions & { force?: boolean; model?: string }) =>
      runStagesCommand(
        io,
        { ...options, pretrained: options.model, force: options.force ? [name] : [] },
        [name],
      ),
    );
  }

  addCommonOptions(
    program
      .command('bench')
      .description(
        "score a model on CRUXEval, LiveCodeBench execution and REval; without --checkpoint/--endpoint, the run directory's final model",
      )
      .requiredOption(
        '--benchmarks <dir>',
        "directory with the benchmark files (or one benchmark's file)",
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
    await runStagesCommand(io, { ...options, bench, force: options.force ? ['bench'] : [] }, [
      'bench',
    ]);
    return;
  }
  if (options.endpoint && !options.model) throw new UsageError('--endpoint needs --model <name>');
  if (options.tasks && options.only?.length !== 1)
    throw new UsageError('--tasks needs exactly one benchmark in --only');
  if (!existsSync(options.benchmarks!))
    throw new UsageError(`benchmark path ${options.benchmarks} does not exist`);
  const reporter: Reporter = createReporter({
    json: options.json,
    quiet: options.quiet,
    stream: io.stderr,
    env: io.env,
  });
  const config = await resolveConfig({ ...options, benchmarks: undefined });
  const outRoot = options.out ? resolve(options.out) : resolve('runs', 'bench');
  const sandbox = await Sandbox.create(config.sandbox);
  try {
    let model;
    if (options.checkpoint) {
      await initBackend({ backend: config.backend });
      model = await loadLocalModel(options.checkpoint, {
        id: options.name ?? checkpointLabel(options.checkpoint),
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
      dataPath: options.benchmarks!,
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
      logger: { debug: () => {}, info: (m) => reporter.info(m), warn: (m) => reporter.warn(m) },
    });
    reporter.stageEnd('bench', { status: 'done', seconds: (performance.now() - started) / 1000 });
    if (reporter.mode === 'json') reporter.result(summaries);
    else {
      for (const summary of summaries) {
        const scores = Object.entries(summary.headline)
          .map(([name, value]) => `${name} ${value === undefined ? '–' : value.toFixed(1)}`)
          .join(', ');
        io.stdout.write(`${summary.benchmark}: ${scores}  (${summary.outputs.report})\n`);
      }
    }
  } finally {
    reporter.close();
    await sandbox.close();
  }
}
