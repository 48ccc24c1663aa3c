import { basename, resolve } from 'node:path';
import { createChatClient, type ChatClientOptions } from '@codereasoner/protocol/chat-client';
import type { GenerateOptions } from '@codereasoner/core-tensors';
import type { ChatMessage, ChatModel, ChatRequest, ChatResponse, Logger } from './types.js';

/** A model that can be told the gold completion of each prompt before it is asked (the oracle). */
export interface GoldAwareModel extends ChatModel {
  learnGold(entries: readonly { messages: readonly ChatMessage[]; completion: string }[]): void;
}

export function isGoldAware(model: ChatModel): model is GoldAwareModel {
  return typeof (model as Partial<GoldAwareModel>).learnGold === 'function';
}

function promptKey(messages: readonly ChatMessage[]): string {
  return JSON.stringify(messages.map((m) => [m.role, m.content]));
}

function checkRequest(request: ChatRequest): number {
  const n = request.n ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  return n;
}

/**
 * The oracle adapter: answers every prompt with the gold completion `runBenchmark` registers for
 * it (the benchmark's gold answer, formatted as the prompt style asks). It must score 100% on
 * every answerable item: the end-to-end check of loaders, prompts, extraction and scoring.
 * A prompt it was not told about gets an empty answer. Two questions can share one prompt with
 * different golds (REval path questions cite a line by its text, and some lines repeat): golds of
 * one prompt are handed out in the order they were registered, the order `runBenchmark` asks.
 */
export function createOracleModel(options: { id?: string } = {}): GoldAwareModel {
  const table = new Map<string, string[]>();
  return {
    id: options.id ?? 'oracle',
    learnGold(entries) {
      for (const { messages, completion } of entries) {
        const key = promptKey(messages);
        const queue = table.get(key);
        if (queue === undefined) table.set(key, [completion]);
        else queue.push(completion);
      }
    },
    async complete(requests: ChatRequest[]): Promise<ChatResponse[]> {
      return requests.map((request) => {
        const n = checkRequest(request);
        const queue = table.get(promptKey(request.messages));
        const text = queue === undefined ? '' : queue.length > 1 ? queue.shift()! : queue[0]!;
        return {
          texts: new Array<string>(n).fill(text),
          finishReasons: new Array<'stop'>(n).fill('stop'),
        };
      });
    },
  };
}

/** The null adapter: answers nothing (an empty completion for every sample). It must score 0. */
export function createNullModel(options: { id?: string } = {}): ChatModel {
  return {
    id: options.id ?? 'null',
    async complete(requests: ChatRequest[]): Promise<ChatResponse[]> {
      return requests.map((request) => {
        const n = checkRequest(request);
        return {
          texts: new Array<string>(n).fill(''),
          finishReasons: new Array<'stop'>(n).fill('stop'),
        };
      });
    },
  };
}

/**
 * Any OpenAI-compatible chat endpoint through `@codereasoner/protocol/chat-client` (the official `openai`
 * package): base URL, model, API key from an environment variable, concurrency limit, retries and
 * an on-disk response cache.
 */
export function createEndpointModel(options: ChatClientOptions): ChatModel {
  return createChatClient(options);
}

export interface LocalModelOptions {
  /** Model id in reports (default: the checkpoint directory's name). */
  id?: string;
  /** Default max new tokens when a request gives none. */
  maxTokens?: number;
  /** Sequences decoded together. */
  batchSize?: number;
  /**
   * What computes the logits (core-tensors' `generate` engine): 'tfjs' (default), 'onnx'
   * (onnxruntime-node; falls back to tfjs with a warning on `logger`) or 'auto' (the same, silent).
   */
  engine?: GenerateOptions['engine'];
  /** onnxruntime's intra-op threads for the onnx engine (core-tensors' default: 1). */
  onnxThreads?: number;
  /** How the onnx engine's graph holds the weights (core-tensors' default 'auto': in the graph up to 2 GiB - 64 MiB, inputs above). */
  onnxWeights?: GenerateOptions['onnxWeights'];
  /** Where an 'onnx' engine that falls back to tfjs says why. */
  logger?: Logger;
}

/**
 * A checkpoint written by `@codereasoner/core-tensors` (`saveCheckpoint`) as a ChatModel.
 * core-tensors (and TensorFlow.js) is imported only here, so scoring remote models never loads it.
 */
export async function loadLocalModel(
  checkpointDir: string,
  options: LocalModelOptions = {},
): Promise<ChatModel> {
  const core = await import('@codereasoner/core-tensors');
  await core.initBackend();
  const { model, tokenizer, chat } = await core.loadCheckpoint(checkpointDir);
  // The checkpoint's own chat template and eos ids (a Llama-3 stops at <|eot_id|>), else ChatML.
  return new core.LocalChatModel(model, tokenizer, {
    chat,
    id: options.id ?? basename(resolve(checkpointDir)),
    ...(options.maxTokens === undefined ? {} : { maxTokens: options.maxTokens }),
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.engine === undefined ? {} : { engine: options.engine }),
    ...(options.onnxThreads === undefined ? {} : { onnxThreads: options.onnxThreads }),
    ...(options.onnxWeights === undefined ? {} : { onnxWeights: options.onnxWeights }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
}
