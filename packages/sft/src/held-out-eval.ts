import { roundRobin } from '@codereasoner/common';
/*
 * Evaluation during training: the held-out tasks a run scores every `evalEvery` steps and at the
 * end, generated with the model being trained (on the run's worker pool) and verified by execution.
 */
import {
  LocalChatModel,
  type CausalLM,
  type ChatFormat,
  type ChatModel,
  type GenerationEngine,
  type OnnxWeightsMode,
  type Logger,
  type ModelWorkerPool,
  type ProgressEvent,
  type Tokenizer,
} from '@codereasoner/core-tensors';
import type { TaskRecord } from '@codereasoner/protocol';
import type { Sandbox } from '@codereasoner/sandbox';
import type { SftConfig } from './config.js';
import { SftAbortedError } from './errors.js';
import { evaluateModel, type EvaluationResult } from './evaluate.js';
import type { SftEvalMetrics } from './metrics.js';

/** At most `limit` tasks (0 = all), taken round-robin over task types so every type is represented. */
export function pickEvalTasks(tasks: readonly TaskRecord[], limit: number): TaskRecord[] {
  return roundRobin(tasks, (task) => task.type, limit);
}

export interface HeldOutEvalOptions {
  model: CausalLM;
  tokenizer: Tokenizer;
  tasks: readonly TaskRecord[] | undefined;
  sandbox: Sandbox | undefined;
  config: SftConfig;
  /** The model's chat layout: prompts and stop ids of the default LocalChatModel (default ChatML). */
  chat?: ChatFormat | undefined;
  /** The chat model evaluations generate with (default: core-tensors' LocalChatModel). */
  chatModel?: ((model: CausalLM, tokenizer: Tokenizer) => ChatModel) | undefined;
  /** The default chat model's `generate` engine (default tfjs; see `SftTrainerOptions.engine`). */
  engine?: GenerationEngine | undefined;
  /** The onnx engine's intra-op threads and weights mode (see `SftTrainerOptions.onnxThreads`). */
  onnxThreads?: number | undefined;
  onnxWeights?: OnnxWeightsMode | undefined;
  onProgress?: ((event: ProgressEvent) => void) | undefined;
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The held-out evaluation of a run: `evalLimit` tasks picked once, scored at the steps the trainer
 * asks for. Without tasks or without a sandbox it records nothing.
 */
export class HeldOutEval {
  private readonly options: HeldOutEvalOptions;
  private readonly tasks: TaskRecord[];
  private engineNoted = false;

  constructor(options: HeldOutEvalOptions) {
    this.options = options;
    this.tasks = pickEvalTasks(options.tasks ?? [], options.config.evalLimit);
  }

  /**
   * Evaluates the model at `step`: its metrics, `undefined` when there is nothing to evaluate, or
   * `'aborted'` when `signal` stopped it (nothing is recorded then).
   */
  async run(
    step: number,
    pool: ModelWorkerPool | undefined,
  ): Promise<SftEvalMetrics | 'aborted' | undefined> {
    const { model, tokenizer, config, sandbox, signal, onProgress } = this.options;
    if (this.tasks.length === 0) return undefined;
    if (sandbox === undefined) {
      this.options.logger?.warn('sft: eval tasks given without a sandbox; skipping evaluation');
      return undefined;
    }
    const threads = Math.max(1, pool?.size ?? 0);
    const chat =
      this.options.chatModel?.(model, tokenizer) ??
      // one generation batch per thread in every evaluation batch; tokens do not depend on batchSize
      new LocalChatModel(model, tokenizer, {
        ...(this.options.chat === undefined ? {} : { chat: this.options.chat }),
        batchSize: Math.ceil(config.evalBatchSize / threads),
        ...(pool === undefined ? {} : { workers: pool }),
        ...(this.options.engine === undefined ? {} : { engine: this.options.engine }),
        ...(this.options.onnxThreads === undefined
          ? {}
          : { onnxThreads: this.options.onnxThreads }),
        ...(this.options.onnxWeights === undefined
          ? {}
          : { onnxWeights: this.options.onnxWeights }),
        ...(this.options.logger === undefined ? {} : { logger: this.options.logger }),
      });
    let result: EvaluationResult;
    try {
      result = await evaluateModel(chat, this.tasks, sandbox, {
        reasoning: config.reasoning,
        maxTokens: config.evalMaxTokens,
        batchSize: config.evalBatchSize,
        ...(signal === undefined ? {} : { signal }),
        ...(onProgress === undefined
          ? {}
          : { onProgress: (event: ProgressEvent) => onProgress({ ...event, stage: 'sft-eval' }) }),
      });
    } catch (error) {
      if (error instanceof SftAbortedError) return 'aborted';
      throw error;
    }
    const ran = model.lastGenerationEngine;
    if (!this.engineNoted && ran !== undefined && this.options.chatModel === undefined) {
      // once per run: which code generated the evaluations (a fallback from 'onnx' is also warned by core-tensors)
      this.engineNoted = true;
      this.options.logger?.info(
        `sft: evaluations generated with ${ran.engine} (engine ${this.options.engine ?? 'tfjs'}${ran.fallbackReason === undefined ? '' : `; fell back: ${ran.fallbackReason}`})`,
      );
    }
    return {
      kind: 'eval',
      step,
      accuracy: result.accuracy,
      overall: result.overall,
      tasks: this.tasks.length,
    };
  }
}
