import { resolve } from 'node:path';
import { exportOpenRlhf, exportTrl, exportVerl } from '@codereasoner/data';
import { readJsonl, taskRecordSchema, type TaskRecord } from '@codereasoner/protocol';
import { Sandbox } from '@codereasoner/sandbox';
import { TaskStore, createVerificationServer, type ServeOptions } from '@codereasoner/serve';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { UsageError } from './errors.js';
import { exportModelCommand, parseShardSize, type ExportModelOptions } from './export-model.js';

// `cr serve` and `cr export`: argv parsing only; the service lives in @codereasoner/serve and
// the exports in @codereasoner/data.

function positive(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError('must be a positive integer');
  return parsed;
}

function nonNegative(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new InvalidArgumentError('must be a non-negative integer');
  return parsed;
}

function seconds(value: string): number {
  const parsed = Number(value);
  if (!(parsed > 0)) throw new InvalidArgumentError('must be a positive number of seconds');
  return parsed;
}

interface ServeCommandOptions {
  host: string;
  port: number;
  tasks?: string[];
  tokenEnv: string;
  engine: 'pyodide' | 'cpython';
  workers?: number;
  memoryMb?: number;
  maxConcurrent?: number;
  maxQueue?: number;
  requestTimeout?: number;
  maxRunTimeout?: number;
  maxBatch?: number;
  bodyLimitMb?: number;
  verifyTimeoutMs?: number;
}

interface ExportCommandOptions {
  format: 'verl' | 'openrlhf' | 'trl';
  tasks: string;
  out: string;
  kind: 'sft' | 'grpo';
  reasoning: boolean;
}

/** What these commands use of the CLI's io (program.ts' CliIo fits; not imported, to keep program.ts free of a cycle). */
interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

async function serveCommand(io: CommandIo, options: ServeCommandOptions): Promise<void> {
  const token = io.env[options.tokenEnv] || undefined;
  if (!LOOPBACK.has(options.host) && token === undefined) {
    io.stderr.write(
      `cr serve: warning: binding ${options.host} without a token: anyone who reaches this port can run code in the sandbox. Set ${options.tokenEnv}.\n`,
    );
  }
  if (options.engine === 'cpython') {
    io.stderr.write(
      'cr serve: warning: the cpython engine is for trusted code only; model outputs and /run_code programs need the default pyodide engine.\n',
    );
  }
  const tasks = await TaskStore.load((options.tasks ?? []).map((path) => resolve(path)));
  const serveOptions: ServeOptions = {
    host: options.host,
    port: options.port,
    ...(token === undefined ? {} : { token }),
    ...(options.maxConcurrent === undefined ? {} : { maxConcurrent: options.maxConcurrent }),
    ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
    ...(options.requestTimeout === undefined
      ? {}
      : { requestTimeoutMs: Math.round(options.requestTimeout * 1000) }),
    ...(options.maxRunTimeout === undefined ? {} : { maxRunTimeoutSeconds: options.maxRunTimeout }),
    ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    ...(options.bodyLimitMb === undefined
      ? {}
      : { bodyLimitBytes: options.bodyLimitMb * 1024 * 1024 }),
    ...(options.verifyTimeoutMs === undefined ? {} : { verifyTimeoutMs: options.verifyTimeoutMs }),
  };
  const sandbox = await Sandbox.create({
    engine: options.engine,
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(options.memoryMb === undefined ? {} : { memoryLimitMb: options.memoryMb }),
  });
  const log = (message: string): void => void io.stderr.write(`${message}\n`);
  try {
    const server = createVerificationServer({
      sandbox,
      tasks,
      options: serveOptions,
      logger: { debug: () => undefined, info: log, warn: log },
    });
    const { url } = await server.listen();
    io.stdout.write(`${url}\n`);
    // SIGINT/SIGTERM abort the signal (main.ts): drain, then exit 0.
    await new Promise<void>((resolvePromise) => {
      if (io.signal.aborted) resolvePromise();
      else io.signal.addEventListener('abort', () => resolvePromise(), { once: true });
    });
    await server.close();
    log('cr serve: stopped');
  } finally {
    await sandbox.close();
  }
}

async function exportCommand(io: CommandIo, options: ExportCommandOptions): Promise<void> {
  const tasks = (): AsyncIterable<TaskRecord> =>
    readJsonl(resolve(options.tasks), taskRecordSchema);
  const outPath = resolve(options.out);
  let result: { path: string; count: number };
  switch (options.format) {
    case 'verl':
      if (!outPath.endsWith('.parquet'))
        throw new UsageError(
          `--out ${options.out}: verl reads parquet; name the file <name>.parquet`,
        );
      result = await exportVerl(tasks(), { outPath, reasoning: options.reasoning });
      break;
    case 'openrlhf':
      result = await exportOpenRlhf(tasks(), { outPath, reasoning: options.reasoning });
      break;
    case 'trl':
      result = await exportTrl(tasks(), {
        outPath,
        kind: options.kind,
        reasoning: options.reasoning,
      });
      break;
  }
  io.stdout.write(`${result.path}\t${result.count} rows\n`);
}

/** Registers `cr serve` and `cr export` on the program. */
export function registerServeCommands(program: Command, io: CommandIo): void {
  program
    .command('serve')
    .description(
      'HTTP verification service: SandboxFusion POST /run_code, OpenRLHF POST /get_reward, POST /verify, GET /health, GET /metrics; SIGTERM drains',
    )
    .option('--host <host>', 'interface to bind (0.0.0.0 exposes it: set a token)', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 = any free port)', nonNegative, 8080)
    .option(
      '--tasks <files...>',
      'task JSONL files that /verify task ids and /get_reward labels name',
    )
    .option(
      '--token-env <name>',
      'environment variable holding the bearer token (unset: no token)',
      'CR_SERVE_TOKEN',
    )
    .addOption(
      new Option('--engine <engine>', 'Python engine (cpython: trusted code only)')
        .choices(['pyodide', 'cpython'])
        .default('pyodide'),
    )
    .option('--workers <n>', 'sandbox workers (default: CPU cores)', positive)
    .option('--memory-mb <n>', 'memory cap per sandbox worker in MiB (default 512)', positive)
    .option('--max-concurrent <n>', 'requests executing at once (default 32)', positive)
    .option('--max-queue <n>', 'requests waiting; beyond it 429 (default 256)', nonNegative)
    .option(
      '--request-timeout <s>',
      'limit per request in seconds, queue wait included; then 504 (default 60)',
      seconds,
    )
    .option('--max-run-timeout <s>', 'largest run_timeout /run_code accepts (default 30)', seconds)
    .option('--max-batch <n>', 'items per /verify or /get_reward request (default 4096)', positive)
    .option('--body-limit-mb <n>', 'largest request body in MiB (default 8)', positive)
    .option(
      '--verify-timeout-ms <n>',
      'sandbox limit per verification check (default 3000)',
      positive,
    )
    .action((options: ServeCommandOptions) => serveCommand(io, options));

  program
    .command('export')
    .description(
      'write tasks in the data format of verl (parquet), OpenRLHF (JSONL) or TRL (JSONL) (--format), or a trained model as a Hugging Face directory (--checkpoint)',
    )
    .addOption(
      new Option('--format <format>', 'target engine').choices(['verl', 'openrlhf', 'trl']),
    )
    .option('--tasks <file>', 'task JSONL, e.g. <run>/data/tasks/train.jsonl')
    .requiredOption(
      '--out <path>',
      'output file (.parquet for verl, .jsonl otherwise), or the model directory with --checkpoint',
    )
    .option(
      '--checkpoint <dir>',
      'model mode: a checkpoint (e.g. <run>/grpo/train/checkpoints/step-N), LoRA merged, written in its original HF layout',
    )
    .addOption(
      new Option(
        '--dtype <dtype>',
        "model mode: stored dtype (default: the original model's)",
      ).choices(['bf16', 'f16', 'f32']),
    )
    .option(
      '--max-shard-size <size>',
      'model mode: shard above this size with model.safetensors.index.json (default 5GB)',
      parseShardSize,
    )
    .addOption(
      new Option('--kind <kind>', 'trl only: sft (messages) or grpo (prompt-only)')
        .choices(['sft', 'grpo'])
        .default('grpo'),
    )
    .option('--no-reasoning', 'prompts without the <think> reasoning section')
    .action((options: Partial<ExportCommandOptions & ExportModelOptions> & { out: string }) => {
      if (options.checkpoint !== undefined) {
        if (options.format !== undefined || options.tasks !== undefined)
          throw new UsageError(
            '--checkpoint exports a model; --format and --tasks export tasks: give one or the other',
          );
        return exportModelCommand(io, { ...options, checkpoint: options.checkpoint });
      }
      if (options.dtype !== undefined || options.maxShardSize !== undefined)
        throw new UsageError('--dtype and --max-shard-size need --checkpoint <dir>');
      if (options.format === undefined || options.tasks === undefined)
        throw new UsageError(
          'cr export needs --format <verl|openrlhf|trl> --tasks <file> (tasks), or --checkpoint <dir> (a model)',
        );
      return exportCommand(io, options as ExportCommandOptions);
    });
}
