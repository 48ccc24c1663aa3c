import type { TaskRecord } from '@codereasoner/protocol';

type TaskType = TaskRecord['type'];

/** One optimizer step, as a line of metrics.jsonl and a call of `onMetrics`. */
export interface SftStepMetrics {
  kind: 'step';
  step: number;
  epoch: number;
  /** Mean loss per assistant token over the step's micro-batches. */
  loss: number;
  learningRate: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Assistant (loss) tokens in the step. */
  targetTokens: number;
  /** Real (non-padding) tokens processed per second in the step. */
  tokensPerSecond: number;
  elapsedSeconds: number;
}

/** One evaluation on the held-out tasks. */
export interface SftEvalMetrics {
  kind: 'eval';
  step: number;
  accuracy: Partial<Record<TaskType, number>>;
  overall: number;
  tasks: number;
}

export type SftMetrics = SftStepMetrics | SftEvalMetrics;

/** Metric names whose values are wall-clock measurements (they differ between identical runs). */
export function isTimingMetric(name: string): boolean {
  return name === 'tokensPerSecond' || name === 'elapsedSeconds';
}
