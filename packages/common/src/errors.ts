const brand = Symbol.for('codereasoner.error');

/**
 * Every code a `@codereasoner/*` package throws, in one union so a consumer can `switch` on
 * `error.code` and the compiler lists the cases. A package that adds an error adds its code here.
 */
export type CodeReasonerErrorCode =
  // shared
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'RNG_SEED_INVALID'
  | 'RNG_RANGE_INVALID'
  | 'RNG_STATE_INVALID'
  | 'JSONL_INVALID'
  // core-tensors
  | 'BACKEND_UNAVAILABLE'
  | 'BATCH_EMPTY'
  | 'BATCH_INVALID'
  | 'CHAT_CONFIG_INVALID'
  | 'CHAT_MESSAGE_INVALID'
  | 'CHAT_REQUEST_INVALID'
  | 'CHAT_TEMPLATE_INVALID'
  | 'CHAT_WORKERS_INVALID'
  | 'CHECKPOINT_INVALID'
  | 'MODEL_INPUT_INVALID'
  | 'MODEL_TOKENIZER_MISMATCH'
  | 'MODEL_WORKER_BACKEND'
  | 'MODEL_WORKER_CLOSED'
  | 'MODEL_WORKER_CRASHED'
  | 'MODEL_WORKER_LOSS_INVALID'
  | 'MODEL_WORKER_START_FAILED'
  | 'MODEL_WORKER_TASK_FAILED'
  | 'OPTIMIZER_INVALID'
  | 'TOKENIZER_INVALID'
  | 'TOKENIZER_NO_CHATML'
  // sandbox
  | 'SANDBOX_ENGINE_UNAVAILABLE'
  | 'SANDBOX_WORKER_START'
  | 'SANDBOX_CLOSED'
  // data
  | 'CHAT_REQUEST_FAILED'
  | 'CHAT_RETRIES_EXHAUSTED'
  | 'CORPUS_OPTIONS_CHANGED'
  | 'CORPUS_STATE_UNREADABLE'
  | 'DATASET_FORMAT'
  | 'DECONTAMINATION_PATH'
  | 'EXPORT_EMPTY'
  | 'SOURCE_UNREADABLE'
  // sft
  | 'SFT_ABORTED'
  | 'SFT_DATASET_INVALID'
  | 'SFT_ENGINE_UNSUPPORTED'
  | 'SFT_NO_EXAMPLES'
  | 'SFT_NON_FINITE'
  | 'SFT_RESUME_FAILED'
  | 'SFT_TEACHER_FAILED'
  // grpo
  | 'GRPO_DATASET_INVALID'
  | 'GRPO_ENGINE_UNSUPPORTED'
  | 'GRPO_NON_FINITE'
  | 'GRPO_RESUME_FAILED'
  | 'GRPO_REWARD_FAILED'
  | 'GRPO_SHAPE_MISMATCH'
  // bench
  | 'BENCH_ASSET_MISSING'
  | 'BENCH_DATA_INVALID'
  | 'BENCH_ITEMS_CORRUPT'
  | 'BENCH_MODEL_FAILED'
  | 'BENCH_OUTDIR_MISMATCH'
  | 'BENCH_SANDBOX_FAILED'
  | 'BENCH_SCORING_FAILED'
  // serve
  | 'SERVE_CLOSED'
  | 'SERVE_LISTEN_FAILED'
  | 'SERVE_TASKS_DUPLICATE'
  | 'SERVE_TASKS_UNREADABLE'
  // cli
  | 'RUN_STATE'
  | 'USAGE';

export interface CodeReasonerErrorOptions {
  cause?: unknown;
}

/**
 * Base of every error thrown by `@codereasoner/*` packages. There is one copy of this class (in
 * this leaf package), so `instanceof` works across packages; `isInstance` also checks a
 * `Symbol.for` brand, so it recognises errors from a second installed version of this package.
 */
export class CodeReasonerError<
  Code extends CodeReasonerErrorCode = CodeReasonerErrorCode,
> extends Error {
  readonly code: Code;
  readonly [brand] = true;

  constructor(code: Code, message: string, options: CodeReasonerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CodeReasonerError';
    this.code = code;
  }

  static isInstance(value: unknown): value is CodeReasonerError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[brand] === true
    );
  }
}

/**
 * A config, options object or record failed its JSON Schema or a cross-field rule; `issues` lists
 * each problem as `path: message` (the format `parseConfig` produces).
 */
export class ConfigValidationError extends CodeReasonerError<'CONFIG_INVALID'> {
  readonly issues: string[];

  constructor(what: string, issues: string[], options: CodeReasonerErrorOptions = {}) {
    super(
      'CONFIG_INVALID',
      `${what} is invalid:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`,
      options,
    );
    this.name = 'ConfigValidationError';
    this.issues = issues;
  }
}
