import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { CodeReasonerError, ConfigValidationError } from '@codereasoner/core-tensors';
import { Ajv, type ErrorObject } from 'ajv';
import { PRESETS, type PresetName } from './presets.js';

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
  eval: { tasksPerType: number; maxNewTokens: number; temperature: number; samples: number };
  bench: {
    dir?: string;
    benchmarks?: ('cruxeval' | 'livecodebench' | 'reval')[];
    limit?: number;
    maxNewTokens?: number;
  };
}

export type RunConfigInput = Partial<{
  [K in keyof RunConfig]: RunConfig[K] extends object ? Partial<RunConfig[K]> : RunConfig[K];
}>;

const ajv = new Ajv({ allErrors: true, strict: false });
const validateSchema = ajv.compile(schema);

export function formatAjvErrors(errors: ErrorObject[] | null | undefined, prefix = ''): string[] {
  return (errors ?? []).map((error) => {
    const path = `${prefix}${error.instancePath}` || '/';
    if (error.keyword === 'additionalProperties') {
      return `${path}: unknown property '${String(error.params.additionalProperty)}'`;
    }
    if (error.keyword === 'enum') {
      return `${path}: must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return `${path}: ${error.message ?? 'is invalid'}`;
  });
}

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
    throw new CodeReasonerError(
      'CONFIG_UNREADABLE',
      `Cannot read config file ${path}: ${(error as Error).message}`,
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

/** Validates the structure (every issue at once) and resolves preset + file + flags into a RunConfig. */
export function resolveRunConfig(
  fileConfig: unknown,
  flags: RunConfigInput = {},
  source = 'run config',
): RunConfig {
  const issues: string[] = [];
  if (fileConfig !== undefined && !validateSchema(fileConfig))
    issues.push(...formatAjvErrors(validateSchema.errors));
  if (!validateSchema(stripUndefined(flags)))
    issues.push(...formatAjvErrors(validateSchema.errors, '(flags)'));
  if (issues.length > 0) throw new ConfigValidationError(source, issues);
  const file = (fileConfig ?? {}) as RunConfigInput;
  const presetName = flags.preset ?? file.preset ?? 'default';
  const merged = mergeConfig(mergeConfig(PRESETS[presetName], file), stripUndefined(flags));
  return { ...merged, preset: presetName };
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

/** Section validators of the packages that own them; every issue of every section is reported together. */
export function checkSections(config: RunConfig, validators: SectionValidators): void {
  const issues = collectSectionIssues([
    { section: 'sandbox', check: () => validators.sandbox(config.sandbox) },
    {
      section: 'data',
      check: () => validators.data({ ...config.data, outDir: config.out, seed: config.seed }),
    },
    {
      section: 'model',
      // A pretrained model's architecture comes from its config.json (checked when it loads).
      check: () =>
        config.model.pretrained === undefined
          ? validators.model({ ...config.model, vocabSize: config.tokenizer.vocabSize })
          : undefined,
    },
    ...(config.lora === undefined
      ? []
      : [{ section: 'lora', check: () => validators.lora(config.lora!) }]),
    { section: 'sft', check: () => validators.sft({ ...config.sft, seed: config.seed }) },
    { section: 'grpo', check: () => validators.grpo({ ...config.grpo, seed: config.seed }) },
  ]);
  const teacherKind = config.teacher.kind;
  if (teacherKind !== 'trace' && teacherKind !== 'chat')
    issues.push(`/teacher/kind: must be "trace" or "chat"`);
  if (teacherKind === 'chat' && typeof config.teacher.model !== 'object') {
    issues.push('/teacher/model: the chat teacher needs { baseURL, model, apiKeyEnv }');
  }
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
