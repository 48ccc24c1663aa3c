import type { ChatModel } from '@codereasoner/core-tensors';
import { renderPrompt, verifyBatch, type TaskRecord } from '@codereasoner/protocol';
import type { Sandbox } from '@codereasoner/sandbox';
import type { ProgressEvent } from '@codereasoner/core-tensors';
import { answerDiversity, extractedAnswer, type AnswerDiversity } from './baselines.js';
import { SftAbortedError } from './errors.js';

type TaskType = TaskRecord['type'];

export interface EvaluateOptions {
  /** Prompt with the reasoning instruction (default true); answers-only models are evaluated with `false`. */
  reasoning?: boolean;
  /** Tokens generated per answer (default 448: room for a default trace chain). */
  maxTokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  seed?: number;
  /** Requests per `complete` call (default 32). */
  batchSize?: number;
  onProgress?: (event: ProgressEvent) => void;
  /** Checked before every batch: when it has fired, `evaluateModel` throws `SftAbortedError` (name `AbortError`) instead of returning partial accuracies. */
  signal?: AbortSignal;
  /**
   * Items scored by an earlier, interrupted evaluation of the same model on the same tasks: tasks
   * they cover (by `taskId`) are not asked again, and the result includes them in task order.
   */
  previous?: readonly EvaluationItem[];
  /** Called with each batch's new items as soon as they are scored (and awaited), to save them. */
  onItems?: (items: EvaluationItem[]) => void | Promise<void>;
}

export interface EvaluationItem {
  taskId: string;
  type: TaskType;
  completion: string;
  /** The answer as the verifier extracts it from the completion; `null` when there is none. */
  answer: string | null;
  finishReason: 'stop' | 'length';
  correct: boolean;
  reason: string;
}

export interface EvaluationResult {
  /** Fraction verified correct per task type present in `tasks`. */
  accuracy: Partial<Record<TaskType, number>>;
  counts: Partial<Record<TaskType, { correct: number; total: number }>>;
  /** Over all tasks. */
  overall: number;
  /** How varied the answers are (distinct answers, share of the most frequent), per type and overall. */
  diversity: {
    byType: Partial<Record<TaskType, AnswerDiversity>>;
    overall: AnswerDiversity;
  };
  items: EvaluationItem[];
}

/**
 * Held-out accuracy of any chat model (base, SFT, GRPO, a remote endpoint): prompt each task with
 * the data protocol, generate, then extract and verify every answer by execution in the sandbox.
 */
export async function evaluateModel(
  model: ChatModel,
  tasks: readonly TaskRecord[],
  sandbox: Sandbox,
  options: EvaluateOptions = {},
): Promise<EvaluationResult> {
  const batchSize = options.batchSize ?? 32;
  const wanted = new Set(tasks.map((task) => task.id));
  const done = new Map(
    (options.previous ?? []).filter((item) => wanted.has(item.taskId)).map((i) => [i.taskId, i]),
  );
  const scored: EvaluationItem[] = [...done.values()];
  const todo = tasks.filter((task) => !done.has(task.id));
  options.onProgress?.({ stage: 'evaluate', completed: scored.length, total: tasks.length });
  for (let start = 0; start < todo.length; start += batchSize) {
    if (options.signal?.aborted === true)
      throw new SftAbortedError('evaluate', scored.length, tasks.length, {
        cause: options.signal.reason,
      });
    const batch = todo.slice(start, start + batchSize);
    const responses = await model.complete(
      batch.map((task) => ({
        messages: renderPrompt(task, { reasoning: options.reasoning ?? true }),
        maxTokens: options.maxTokens ?? 448,
        temperature: options.temperature ?? 0,
        seed: options.seed ?? 0,
      })),
    );
    const completions = responses.map((response) => response.texts[0] ?? '');
    const verdicts = await verifyBatch(
      sandbox,
      batch.map((task, index) => ({ task, completion: completions[index] as string })),
    );
    const fresh = batch.map((task, index): EvaluationItem => {
      const verdict = verdicts[index] as { correct: boolean; reason: string };
      return {
        taskId: task.id,
        type: task.type,
        completion: completions[index] as string,
        answer: extractedAnswer(completions[index] as string, task.type),
        finishReason: responses[index]?.finishReasons[0] ?? 'length',
        correct: verdict.correct,
        reason: verdict.reason,
      };
    });
    await options.onItems?.(fresh);
    for (const item of fresh) done.set(item.taskId, item);
    scored.push(...fresh);
    options.onProgress?.({ stage: 'evaluate', completed: scored.length, total: tasks.length });
  }
  const items = tasks.map((task) => done.get(task.id)!);
  const counts: Partial<Record<TaskType, { correct: number; total: number }>> = {};
  for (const item of items) {
    const entry = (counts[item.type] ??= { correct: 0, total: 0 });
    entry.total++;
    if (item.correct) entry.correct++;
  }
  const accuracy: Partial<Record<TaskType, number>> = {};
  for (const [type, entry] of Object.entries(counts) as [
    TaskType,
    { correct: number; total: number },
  ][]) {
    accuracy[type] = entry.correct / entry.total;
  }
  const overall =
    items.length === 0 ? 0 : items.filter((item) => item.correct).length / items.length;
  return { accuracy, counts, overall, diversity: answerDiversity(items), items };
}
