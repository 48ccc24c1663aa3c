import { CodeReasonerError } from '@codereasoner/common';

/**
 * A reward function threw, rejected, or returned something other than one finite number or
 * `null` per completion. `rewardName` names the function as it was registered with the trainer.
 */
export class RewardFunctionError extends CodeReasonerError {
  readonly rewardName: string;

  constructor(rewardName: string, message: string, options: { cause?: unknown } = {}) {
    super('GRPO_REWARD_FAILED', `Reward function '${rewardName}': ${message}`, options);
    this.name = 'RewardFunctionError';
    this.rewardName = rewardName;
  }
}

/**
 * A NaN or infinite value reached the algorithm (a reward, an advantage, a log-prob, a loss).
 * The step stops before the optimizer touches the weights; `source` says where it came from.
 */
export class NonFiniteValueError extends CodeReasonerError {
  readonly source: string;
  readonly value: number;

  constructor(source: string, value: number, hint: string) {
    super('GRPO_NON_FINITE', `${source} is ${String(value)}; ${hint}`);
    this.name = 'NonFiniteValueError';
    this.source = source;
    this.value = value;
  }
}

/** A data set row cannot be trained on (no prompt, a prompt too long for the model, ...). */
export class GrpoDatasetError extends CodeReasonerError {
  readonly row: number;

  constructor(row: number, message: string) {
    super('GRPO_DATASET_INVALID', `dataset[${row}]: ${message}`);
    this.name = 'GrpoDatasetError';
    this.row = row;
  }
}

/** Kernel inputs whose shapes or sizes disagree (a caller bug, reported before any arithmetic). */
export class GrpoShapeError extends CodeReasonerError {
  constructor(message: string) {
    super('GRPO_SHAPE_MISMATCH', message);
    this.name = 'GrpoShapeError';
  }
}

/** The output directory holds a run that cannot be resumed with this trainer (another config, a broken journal). */
export class GrpoResumeError extends CodeReasonerError {
  readonly path: string;

  constructor(path: string, message: string, options: { cause?: unknown } = {}) {
    super('GRPO_RESUME_FAILED', `${path}: ${message}`, options);
    this.name = 'GrpoResumeError';
    this.path = path;
  }
}

/** Throws `NonFiniteValueError` naming `source` when `value` is NaN or infinite. */
export function assertFinite(value: number, source: string, hint: string): void {
  if (!Number.isFinite(value)) throw new NonFiniteValueError(source, value, hint);
}

/** `trainEngine: 'onnx'` was asked for an update or a policy the ONNX training graph cannot compute. */
export class GrpoTrainEngineError extends CodeReasonerError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('GRPO_ENGINE_UNSUPPORTED', message, options);
    this.name = 'GrpoTrainEngineError';
  }
}
