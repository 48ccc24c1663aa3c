import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import {
  CodeReasonerError,
  ConfigValidationError,
  DEFAULT_LORA_CONFIG,
  DEFAULT_MODEL_CONFIG,
  loraConfigSchema,
  type GenerationEngine,
  type GenerationEngineReport,
  modelConfigSchema,
  type OnnxWeightsMode,
} from '@codereasoner/core-tensors';
import { corpusOptionsSchema } from '@codereasoner/data';
import { grpoConfigInputSchema } from '@codereasoner/grpo';
import { sandboxOptionsSchema } from '@codereasoner/sandbox';
import { DEFAULT_SFT_CONFIG, sftConfigSchema, traceTeacherConfigSchema } from '@codereasoner/sft';
import { schemaIssues, type BenchmarkName } from '@codereasoner/common';
import { PRESETS, type PresetName } from './presets.js';
import { TRL_ALIASES } from './trl-flags.js';

const require = createRequire(import.meta.url);
const schema = require('../schemas/run-config.schema.json') as Record<string, unknown>;

/** The run configuration: a preset's values, overridden by a config file, overridden by flags. */
export interface RunConfig {
  preset: PresetName;
  seed: number;
  out: string;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  /** Threads for training and generation: 'auto' = one per core for models of 200k parameters or more. */
  workers: number | 'auto';
  /** What computes the logits when a stage generates (rollouts, evaluations, benchmarks); absent: 'auto' (see `generationEngine`). */
  engine?: GenerationEngine;
  /** The onnx engine's options wherever a stage generates on it (see `generationOptions`). */
  onnx: {
    /** onnxruntime's intra-op threads per generating thread. */
    threads: number;
    /** How its graph holds the weights: 'auto' (in the graph up to 2 GiB - 64 MiB, inputs above), 'initializers' or 'inputs'. */
    weights: OnnxWeightsMode;
  };
  sandbox: Record<string, unknown>;
  data: Record<string, unknown>;
  tokenizer: { vocabSize: number };
  /** Architecture fields of a from-scratch model, or `pretrained`: a local Hugging Face model directory. */
  model: Record<string, unknown> & { pretrained?: string };
  /** LoRA adapters (SFT and GRPO train only them); absent: every weight trains. */
  lora?: Record<string, unknown>;
  teacher: Record<string, unknown>;
  sft: Record<string, unknown>;
  grpo: Record<string, unknown>;
  eval: {
    tasksPerType: number;
    maxNewTokens: number;
    temperature: number;
    samples: number;
    /** Prompts generated together; the items of a batch are saved when it is scored. */
    batchSize?: number;
  };
  bench: {
    dir?: string;
    benchmarks?: BenchmarkName[];
    limit?: number;
    maxNewTokens?: number;
  };
}

/**
 * The generation engine of a run's stages: the config's `engine`, else 'auto' (onnxruntime-node
 * where it loads and supports the model, else tfjs). Measured on the default preset's SFT model,
 * GRPO steps took 20-24% less CPU with it, its session rebuild after every step included (cli README).
 */
export function generationEngine(config: Pick<RunConfig, 'engine'>): GenerationEngine {
  return config.engine ?? 'auto';
}

/**
 * What every generating stage passes to core-tensors (GRPO rollouts, SFT's held-out evaluations,
 * `cr eval`, `cr bench`): the engine and the onnx engine's threads and weights mode.
 */
export function generationOptions(config: Pick<RunConfig, 'engine' | 'onnx'>): {
  engine: GenerationEngine;
  onnxThreads: number;
  onnxWeights: OnnxWeightsMode;
} {
  return {
    engine: generationEngine(config),
    onnxThreads: config.onnx.threads,
    onnxWeights: config.onnx.weights,
  };
}

/**
 * The run log's line after a model generated: the engine that ran, the one asked for, a fallback's
 * reason, and on onnx its threads and how the graph held the weights ('auto' resolved).
 */
export function generatedWithLine(
  id: string,
  ran: GenerationEngineReport,
  requested: GenerationEngine,
): string {
  const fallback = ran.fallbackReason === undefined ? '' : `; fell back: ${ran.fallbackReason}`;
  const onnx =
    ran.engine === 'onnx' && ran.onnxThreads !== undefined && ran.onnxWeights !== undefined
      ? `, onnxruntime: ${ran.onnxThreads} thread${ran.onnxThreads === 1 ? '' : 's'}, weights as ${ran.onnxWeights}`
      : '';
  return `${id}: generated with ${ran.engine} (engine ${requested}${fallback})${onnx}`;
}

export type RunConfigInput = Partial<{
  [K in keyof RunConfig]: RunConfig[K] extends object ? Partial<RunConfig[K]> : RunConfig[K];
}>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Deep merge of plain objects; arrays and scalars from `override` replace. A tagged object (one
 * with `kind`, such as `data.source` or `teacher`) whose kind changes is replaced whole: a preset's
 * generator `count` must not leak into a directory source.
 */
export function mergeConfig<T>(base: T, override: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(override))
    return (override === undefined ? base : override) as T;
  if ('kind' in override && override.kind !== base.kind) return override as T;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue;
    out[key] =
      isPlainObject(out[key]) && isPlainObject(value) ? mergeConfig(out[key], value) : value;
  }
  return out as T;
}

export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CodeReasonerError(
      'CONFIG_UNREADABLE',
      code === 'ENOENT'
        ? `Cannot read config file ${path}: it does not exist; check the path given to --config`
        : `Cannot read config file ${path}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigValidationError(`Config file ${path}`, [
      `/: not valid JSON (${(error as Error).message})`,
    ]);
  }
}

/**
 * Resolves preset + file + flags into a RunConfig and reports every problem in one round: the
 * run config's own schema, then (with `validators`) every section's schema and its package's
 * cross-field rules, also for sections beside a top-level mistake.
 */
export function resolveRunConfig(
  fileConfig: unknown,
  flags: RunConfigInput = {},
  source = 'run config',
  validators?: SectionValidators,
): RunConfig {
  const issues: string[] = [];
  if (fileConfig !== undefined) issues.push(...schemaIssues(schema, fileConfig));
  issues.push(...schemaIssues(schema, stripUndefined(flags), { prefix: '(flags)' }));
  const file = (isPlainObject(fileConfig) ? fileConfig : {}) as RunConfigInput;
  const presetName = [flags.preset, file.preset].find(
    (name): name is PresetName => typeof name === 'string' && name in PRESETS,
  );
  // what the schema rejected is left out, so the rest is still checked without repeating it
  const reported = new Set(issues.map((issue) => /^(?:\(flags\))?\/([^/:]+)/.exec(issue)?.[1]));
  const usable = Object.fromEntries(Object.entries(file).filter(([key]) => !reported.has(key)));
  const merged = mergeConfig(
    mergeConfig(PRESETS[presetName ?? 'default'], usable),
    stripUndefined(flags),
  );
  const config = { ...merged, preset: presetName ?? 'default' } as RunConfig;
  if (validators) {
    issues.push(...sectionIssues(config, validators, reported));
  }
  if (issues.length > 0) throw new ConfigValidationError(source, issues);
  return config;
}

function stripUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

/**
 * Runs each package's own validator over its section and reports every problem at once, with the
 * section's path in front, so a user fixes a config file in one pass.
 */
export function collectSectionIssues(checks: { section: string; check: () => void }[]): string[] {
  const issues: string[] = [];
  for (const { section, check } of checks) {
    try {
      check();
    } catch (error) {
      if (
        CodeReasonerError.isInstance(error) &&
        Array.isArray((error as unknown as { issues?: unknown }).issues)
      ) {
        for (const issue of (error as unknown as { issues: string[] }).issues) {
          issues.push(issue.startsWith('/') ? `/${section}${issue}` : `/${section}: ${issue}`);
        }
      } else {
        issues.push(`/${section}: ${(error as Error).message}`);
      }
    }
  }
  return issues;
}

interface SectionSpec {
  /** The package's own JSON Schema (validated with verbose errors for the hints). */
  schema: object;
  /** The value the package validates: the section with what the run fills in, and defaults where the package's schema requires every field. */
  value: (config: RunConfig) => unknown;
  aliases?: Readonly<Record<string, string>>;
  /** Whether the section is checked for this config (default: always). */
  applies?: (config: RunConfig) => boolean;
}

let sectionSpecs: Record<keyof SectionValidators, SectionSpec> | undefined;

/** Each section is checked against its package's own JSON Schema. */
function specs(): Record<keyof SectionValidators, SectionSpec> {
  sectionSpecs ??= {
    sandbox: { schema: sandboxOptionsSchema, value: (c) => c.sandbox },
    data: {
      schema: corpusOptionsSchema.json,
      value: (c) => ({ ...c.data, outDir: c.out, seed: c.seed }),
    },
    model: {
      schema: modelConfigSchema,
      value: (c) => ({ ...DEFAULT_MODEL_CONFIG, ...c.model, vocabSize: c.tokenizer.vocabSize }),
      // A pretrained model's architecture comes from its config.json (checked when it loads).
      applies: (c) => c.model.pretrained === undefined,
    },
    lora: {
      schema: loraConfigSchema,
      value: (c) => ({ ...DEFAULT_LORA_CONFIG, ...c.lora }),
      applies: (c) => c.lora !== undefined,
    },
    sft: {
      schema: sftConfigSchema,
      value: (c) => ({ ...DEFAULT_SFT_CONFIG, ...c.sft, seed: c.seed }),
      aliases: TRL_ALIASES.sft,
    },
    grpo: {
      schema: grpoConfigInputSchema,
      value: (c) => ({ ...c.grpo, seed: c.seed }),
      aliases: TRL_ALIASES.grpo,
    },
  };
  return sectionSpecs;
}

/**
 * Every issue of every section: its package's schema first (unknown keys with a did-you-mean,
 * enumerations listed, the named branch of a tagged union), then, for a section the schema
 * accepts, the package's own validator for the rules a schema cannot state.
 */
function sectionIssues(
  config: RunConfig,
  validators: SectionValidators,
  skip: ReadonlySet<string | undefined> = new Set(),
): string[] {
  const issues: string[] = [];
  const checks: { section: string; check: () => void }[] = [];
  for (const [section, spec] of Object.entries(specs()) as [
    keyof SectionValidators,
    SectionSpec,
  ][]) {
    if (skip.has(section) || spec.applies?.(config) === false) continue;
    const value = spec.value(config);
    const problems = schemaIssues(spec.schema, value, {
      prefix: `/${section}`,
      ...(spec.aliases === undefined ? {} : { aliases: spec.aliases }),
    });
    if (problems.length > 0) {
      issues.push(...problems);
      continue;
    }
    checks.push({ section, check: () => validators[section](value as Record<string, unknown>) });
  }
  issues.push(...collectSectionIssues(checks));
  const teacherKind = config.teacher.kind;
  if (teacherKind !== 'trace' && teacherKind !== 'chat')
    issues.push(`/teacher/kind: must be one of "trace", "chat"`);
  if (teacherKind === 'trace')
    issues.push(...schemaIssues(traceTeacherConfigSchema, config.teacher, { prefix: '/teacher' }));
  if (teacherKind === 'chat' && typeof config.teacher.model !== 'object') {
    issues.push('/teacher/model: the chat teacher needs { baseURL, model, apiKeyEnv }');
  }
  return issues;
}

/** Section validators of the packages that own them; every issue of every section is reported together. */
export function checkSections(config: RunConfig, validators: SectionValidators): void {
  const issues = sectionIssues(config, validators);
  if (issues.length > 0) throw new ConfigValidationError('run config', issues);
}

export interface SectionValidators {
  sandbox: (section: Record<string, unknown>) => unknown;
  data: (section: Record<string, unknown>) => unknown;
  model: (section: Record<string, unknown>) => unknown;
  lora: (section: Record<string, unknown>) => unknown;
  sft: (section: Record<string, unknown>) => unknown;
  grpo: (section: Record<string, unknown>) => unknown;
}
