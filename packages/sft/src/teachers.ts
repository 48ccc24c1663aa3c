import { LINE_TASK_TYPES } from '@codereasoner/common';
import type { ChatModel } from '@codereasoner/core-tensors';
import {
  extractAnswer,
  formatCompletion,
  renderPrompt,
  verifyBatch,
  type TaskRecord,
} from '@codereasoner/protocol';
import { createChatClient, type ChatClientOptions } from '@codereasoner/protocol/chat-client';
import type { Sandbox } from '@codereasoner/sandbox';
import { TeacherError } from './errors.js';
import {
  CHAIN_FORMATS,
  CHAIN_STOPS,
  parameterNames,
  traceChain,
  type ChainFormat,
  type ChainStop,
  type ChainTrace,
  type TraceChainOptions,
} from './trace-chain.js';

/** One task's outcome: the completion kept (or the last one tried) and whether the sandbox verified it. */
export interface TeacherResult {
  task: TaskRecord;
  completion: string;
  correct: boolean;
  reason: string;
  /** Completions tried for this task (1 for the trace teacher). */
  attempts: number;
}

/** Produces verified reasoning chains for tasks, in the order given. */
export interface Teacher {
  readonly id: string;
  teach(tasks: TaskRecord[]): AsyncIterable<TeacherResult>;
}

export interface TraceTeacherOptions {
  /** Tasks traced and verified per sandbox batch (default 64). */
  batchSize?: number;
  /** Chain settings; the teacher's default `maxSteps` is 16 (chains of a default corpus then fit 512 tokens in 85 % of tasks). */
  chain?: TraceChainOptions;
  /** Trace step limit passed to the sandbox (default 2000). */
  maxTraceSteps?: number;
  /**
   * Chain format (default `full`): `full` repeats each executed line's source, `compact` keeps
   * only the line number and what changed there. Shorthand for `chain.format`.
   */
  format?: ChainFormat;
  /**
   * Where the chains of coverage, state and path tasks end (default `end`): `end` traces every
   * call to its result, then adds the line that answers the question; `answer` stops at the step
   * that decides the answer (`deciderStep`), so the answer follows the step it is read from
   * instead of a whole trace later, in fewer tokens. Output and input chains always run to the end.
   */
  stopAt?: ChainStop;
}

const NUMBERED_TYPES: ReadonlySet<string> = new Set(LINE_TASK_TYPES);

/**
 * The trace teacher's chain for one task: the trace (line numbers where the prompt numbers the
 * code), preceded by "Try f(x)" for input prediction, and closed by the line that turns the
 * trace into the answer for coverage, state and path questions.
 */
export function traceTeacherChain(
  task: TaskRecord,
  trace: ChainTrace,
  chain: TraceChainOptions = {},
  stopAt: ChainStop = 'end',
): string {
  const lines = [
    traceChain(task.code, trace, {
      lineNumbers: NUMBERED_TYPES.has(task.type),
      known: parameterNames(task.code, task.entryPoint),
      ...chain,
      lastStep: stopAt === 'answer' ? deciderStep(task, trace) : undefined,
    }),
  ];
  if (task.type === 'input') lines.unshift(`Try ${taskCall(task)}`);
  else if (task.type === 'coverage')
    lines.push(`L${task.line} ${task.answer.trim() === 'yes' ? 'runs' : 'never runs'}`);
  else if (task.type === 'state')
    lines.push(`After L${task.line}: ${task.variable}=${task.answer.trim()}`);
  else if (task.type === 'path') {
    lines.push(
      `After L${task.line}: ${task.answer.trim() === '-1' ? 'end' : `L${task.answer.trim()}`}`,
    );
  }
  return lines.join('\n');
}

/**
 * Where a chain with `stopAt: 'answer'` ends: the step that decides a line task's answer (the
 * first execution of the asked line for coverage and state, the step after it for path), or
 * undefined (the whole trace) for output and input prediction, a line that never runs (coverage
 * `no` needs the whole path) and a path answer of `-1` (nothing runs after the line).
 */
export function deciderStep(task: TaskRecord, trace: ChainTrace): number | undefined {
  if (task.line === undefined || !NUMBERED_TYPES.has(task.type)) return undefined;
  const first = trace.path.indexOf(task.line);
  if (first === -1) return undefined;
  if (task.type === 'path') return first + 1 < trace.path.length ? first + 1 : undefined;
  return first;
}

/**
 * Why a trace chain cannot stand for `task` (undefined when it can): the traced call must have
 * returned, within the step limit, the task's recorded output. A chain that ends in anything
 * else would teach a result the answer contradicts, so the teacher rejects it.
 */
export function chainDisagreement(
  task: TaskRecord,
  trace: ChainTrace | undefined,
): string | undefined {
  if (trace === undefined) return 'no trace';
  if (trace.truncated) return 'the trace hit its step limit';
  if (trace.status !== 'ok') return `the traced call ended with ${trace.status}`;
  if ((trace.repr ?? 'None') !== task.output.trim())
    return `the chain's result ${trace.repr ?? 'None'} is not the task's output ${task.output}`;
  return undefined;
}

/** The call a task asks about: `entryPoint(input)`. */
export function taskCall(task: TaskRecord): string {
  return `${task.entryPoint}(${task.input})`;
}

/**
 * The embedded default teacher: runs each task's call under the sandbox tracer and writes the
 * chain of `traceChain` followed by the gold answer in the protocol's format. No network,
 * deterministic. For input prediction the chain checks the gold input ("Try f(...)" then its
 * trace), since a trace can only run forwards.
 */
export function createTraceTeacher(sandbox: Sandbox, options: TraceTeacherOptions = {}): Teacher {
  const batchSize = options.batchSize ?? 64;
  const format = options.format ?? options.chain?.format ?? 'full';
  if (!CHAIN_FORMATS.includes(format)) {
    throw new TeacherError(
      'trace',
      `format must be one of ${CHAIN_FORMATS.map((f) => `"${f}"`).join(', ')}, got ${JSON.stringify(format)}`,
    );
  }
  const stopAt = options.stopAt ?? 'end';
  if (!CHAIN_STOPS.includes(stopAt)) {
    throw new TeacherError(
      'trace',
      `stopAt must be one of ${CHAIN_STOPS.map((s) => `"${s}"`).join(', ')}, got ${JSON.stringify(stopAt)}`,
    );
  }
  // the id is each SFT record's provenance: a compact or answer-stopped chain says so
  const id = [
    'trace',
    ...(format === 'full' ? [] : [format]),
    ...(stopAt === 'end' ? [] : ['to-answer']),
  ].join('-');
  return {
    id,
    async *teach(tasks) {
      for (let start = 0; start < tasks.length; start += batchSize) {
        const batch = tasks.slice(start, start + batchSize);
        // several task types share one call: trace each distinct (code, call) once
        const keys = batch.map((task) => `${task.code}\u0000${taskCall(task)}`);
        const unique = [...new Set(keys)];
        let traces;
        try {
          traces = await sandbox.traceBatch(
            unique.map((key) => {
              const [code, call] = key.split('\u0000') as [string, string];
              return { code, call, maxSteps: options.maxTraceSteps ?? 2000 };
            }),
          );
        } catch (error) {
          throw new TeacherError(id, `tracing ${unique.length} calls failed: ${String(error)}`, {
            cause: error,
          });
        }
        const byKey = new Map(unique.map((key, index) => [key, traces[index]]));
        const completions = batch.map((task, index) => {
          const trace = byKey.get(keys[index] as string);
          if (trace === undefined) return formatCompletion(task.answer, 'No trace.');
          return formatCompletion(
            task.answer,
            traceTeacherChain(task, trace, { maxSteps: 16, ...options.chain, format }, stopAt),
          );
        });
        const verdicts = await verifyBatch(
          sandbox,
          batch.map((task, index) => ({ task, completion: completions[index] as string })),
        );
        for (let i = 0; i < batch.length; i++) {
          const task = batch[i] as TaskRecord;
          const verdict = verdicts[i] as { correct: boolean; reason: string };
          // the sandbox verifies the answer; the chain must also end in the executed result
          const disagrees = chainDisagreement(task, byKey.get(keys[i] as string));
          yield {
            task,
            completion: completions[i] as string,
            correct: verdict.correct && disagrees === undefined,
            reason: verdict.correct ? (disagrees ?? verdict.reason) : verdict.reason,
            attempts: 1,
          };
        }
      }
    },
  };
}

export interface ChatTeacherOptions {
  /** A chat model (e.g. core-tensors' LocalChatModel), or the endpoint to build one with protocol's `createChatClient`. */
  model: ChatModel | ChatClientOptions;
  sandbox: Sandbox;
  /** Completions tried per task before it is rejected (default 4). */
  attempts?: number;
  /** Completions requested per try (default 1): all are verified, the first correct one is kept. */
  samplesPerAttempt?: number;
  /** Sampling temperature (default 0.7). */
  temperature?: number;
  topP?: number;
  /** Tokens per completion (default 1024). */
  maxTokens?: number;
  /** Base seed; try `a` uses `seed + a`, so each try is a distinct (and separately cached) request (default 0). */
  seed?: number;
  /** Tasks sent together per round (default 32); the client bounds what is actually in flight. */
  batchSize?: number;
}

function isChatModel(value: ChatModel | ChatClientOptions): value is ChatModel {
  return typeof (value as ChatModel).complete === 'function';
}

/**
 * A teacher over any chat model with rejection sampling: each task gets up to `attempts` tries of
 * `samplesPerAttempt` samples; the first whose answer the sandbox verifies is kept, otherwise the
 * task is rejected (reported with the last completion and the reason).
 */
export function createChatTeacher(options: ChatTeacherOptions): Teacher {
  const model = isChatModel(options.model) ? options.model : createChatClient(options.model);
  const attempts = options.attempts ?? 4;
  const samples = options.samplesPerAttempt ?? 1;
  const batchSize = options.batchSize ?? 32;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(attempts) || attempts < 1)
    throw new TeacherError(model.id, `attempts must be an integer >= 1, got ${attempts}`);
  if (!Number.isInteger(samples) || samples < 1) {
    throw new TeacherError(model.id, `samplesPerAttempt must be an integer >= 1, got ${samples}`);
  }
  return {
    id: model.id,
    async *teach(tasks) {
      for (let start = 0; start < tasks.length; start += batchSize) {
        const batch = tasks.slice(start, start + batchSize);
        const results: (TeacherResult | undefined)[] = batch.map(() => undefined);
        const last: { completion: string; reason: string }[] = batch.map(() => ({
          completion: '',
          reason: 'not tried',
        }));
        for (let attempt = 0; attempt < attempts; attempt++) {
          const pending = batch
            .map((_, index) => index)
            .filter((index) => results[index] === undefined);
          if (pending.length === 0) break;
          const responses = await model.complete(
            pending.map((index) => ({
              messages: renderPrompt(batch[index] as TaskRecord, { reasoning: true }),
              n: samples,
              temperature: options.temperature ?? 0.7,
              ...(options.topP === undefined ? {} : { topP: options.topP }),
              maxTokens: options.maxTokens ?? 1024,
              seed: seed + attempt,
            })),
          );
          const items = pending.flatMap((index, p) =>
            (responses[p]?.texts ?? []).map((completion) => ({ index, completion })),
          );
          const verdicts = await verifyBatch(
            options.sandbox,
            items.map(({ index, completion }) => ({
              task: batch[index] as TaskRecord,
              completion,
            })),
          );
          items.forEach(({ index, completion }, i) => {
            const verdict = verdicts[i] as { correct: boolean; reason: string };
            if (results[index] !== undefined) return;
            if (verdict.correct) {
              results[index] = {
                task: batch[index] as TaskRecord,
                completion,
                correct: true,
                reason: verdict.reason,
                attempts: attempt + 1,
              };
            } else {
              last[index] = { completion, reason: verdict.reason };
            }
          });
        }
        for (let i = 0; i < batch.length; i++) {
          yield (
            results[i] ?? {
              task: batch[i] as TaskRecord,
              completion: last[i]?.completion ?? '',
              correct: false,
              reason: last[i]?.reason ?? 'not tried',
              attempts,
            }
          );
        }
      }
    },
  };
}

/** The answer-only completion for a verified completion: the same answer, no chain. */
export function answerOnlyCompletion(task: TaskRecord, completion: string): string {
  const extracted = extractAnswer(completion, task.type);
  return formatCompletion(extracted.ok ? extracted.answer : task.answer);
}
