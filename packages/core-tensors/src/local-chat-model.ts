import type { ChatModel, ChatRequest, ChatResponse } from '@codereasoner/common';
import { chatMLFormat, type ChatFormat } from './chat-template.js';
import { CodeReasonerError } from './errors.js';
import type {
  CausalLM,
  GenerateOptions,
  GenerationEngineReport,
  GenerationOutput,
} from './model.js';
import type { ModelWorkerPool } from './model-worker-pool.js';
import { Rng } from '@codereasoner/common';
import type { Tokenizer } from './tokenizer.js';

export type { ChatModel, ChatRequest, ChatResponse } from '@codereasoner/common';

export interface LocalChatModelOptions {
  id?: string;
  /** Default max new tokens when a request gives none (default 256). */
  maxTokens?: number;
  /** Sequences decoded together (default 16). */
  batchSize?: number;
  /**
   * A worker pool of this same model: batches are then decoded in parallel on its threads, with
   * exactly the texts the model gives alone. The caller creates and closes the pool.
   */
  workers?: ModelWorkerPool;
  /**
   * The chat layout: a pretrained model's `ChatTemplate` (its template renders the prompt,
   * generation stops at its eos ids). Default: ChatML, stopping at `<|im_end|>` or `<|endoftext|>`.
   */
  chat?: ChatFormat;
  /** `generate`'s engine, onnxruntime threads and weights mode, and fallback logger (see `GenerateOptions.engine`; default tfjs). */
  engine?: GenerateOptions['engine'];
  onnxThreads?: number;
  onnxWeights?: GenerateOptions['onnxWeights'];
  logger?: GenerateOptions['logger'];
}

/** A `ChatModel` over a local CausalLM + Tokenizer: prompts in the chat layout, sampling stops at its stop ids. */
export class LocalChatModel implements ChatModel {
  readonly id: string;
  private readonly model: CausalLM;
  private readonly tokenizer: Tokenizer;
  private readonly defaultMaxTokens: number;
  private readonly batchSize: number;
  private readonly workers: ModelWorkerPool | undefined;
  private readonly chat: ChatFormat;
  private readonly engineOptions: Pick<
    GenerateOptions,
    'engine' | 'onnxThreads' | 'onnxWeights' | 'logger'
  >;

  /** The engine this model's last generation ran on, and why it fell back to tfjs if it did. */
  get lastGenerationEngine(): GenerationEngineReport | undefined {
    return this.model.lastGenerationEngine;
  }

  constructor(model: CausalLM, tokenizer: Tokenizer, options: LocalChatModelOptions = {}) {
    if (tokenizer.vocabSize > model.config.vocabSize) {
      throw new CodeReasonerError(
        'MODEL_TOKENIZER_MISMATCH',
        `tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.config.vocabSize}; use the tokenizer the model was trained with`,
      );
    }
    this.model = model;
    this.tokenizer = tokenizer;
    this.id = options.id ?? 'local';
    this.defaultMaxTokens = options.maxTokens ?? 256;
    this.batchSize = options.batchSize ?? 16;
    if (options.workers !== undefined && options.workers.model !== model) {
      throw new CodeReasonerError(
        'CHAT_WORKERS_INVALID',
        'options.workers is a worker pool of another model; create it with createModelWorkerPool({ model })',
      );
    }
    this.workers = options.workers;
    this.chat = options.chat ?? chatMLFormat(tokenizer);
    this.engineOptions = {
      ...(options.engine === undefined ? {} : { engine: options.engine }),
      ...(options.onnxThreads === undefined ? {} : { onnxThreads: options.onnxThreads }),
      ...(options.onnxWeights === undefined ? {} : { onnxWeights: options.onnxWeights }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    };
  }

  /**
   * All samples of all requests with the same sampling settings are decoded together, in batches
   * of `batchSize`, shortest prompts first (least padding). Each sample draws from its own stream
   * derived from its request's seed, so a request's texts do not depend on what else is batched.
   */
  async complete(requests: ChatRequest[]): Promise<ChatResponse[]> {
    interface Job {
      request: number;
      sample: number;
      prompt: number[];
      seed: number;
    }
    const groups = new Map<string, { request: ChatRequest; jobs: Job[] }>();
    const outputs: GenerationOutput[][] = requests.map(
      (r) => new Array<GenerationOutput>(r.n ?? 1),
    );
    const budget = this.model.config.maxPositionEmbeddings - 1;
    requests.forEach((request, index) => {
      const n = request.n ?? 1;
      if (!Number.isInteger(n) || n < 1)
        throw new CodeReasonerError(
          'CHAT_REQUEST_INVALID',
          `requests[${index}].n must be a positive integer, got ${n}`,
        );
      const { ids } = this.chat.encode(request.messages, { addGenerationPrompt: true });
      // Keep the end of an over-long prompt (the question and the generation prompt live there).
      const prompt = ids.length > budget ? ids.slice(ids.length - budget) : ids;
      const key = JSON.stringify([
        request.temperature ?? 1,
        request.topP ?? 1,
        request.maxTokens ?? this.defaultMaxTokens,
      ]);
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { request, jobs: [] }));
      const seeds = new Rng(request.seed ?? 0);
      for (let sample = 0; sample < n; sample++)
        group.jobs.push({ request: index, sample, prompt, seed: seeds.nextUint32() });
    });
    for (const { request, jobs } of groups.values()) {
      jobs.sort((a, b) => a.prompt.length - b.prompt.length);
      const generated = await (this.workers ?? this.model).generate(
        jobs.map((j) => j.prompt),
        {
          maxNewTokens: request.maxTokens ?? this.defaultMaxTokens,
          temperature: request.temperature ?? 1,
          ...(request.topP === undefined ? {} : { topP: request.topP }),
          stopTokens: [...this.chat.stopTokenIds],
          seeds: jobs.map((j) => j.seed),
          vocabLimit: this.tokenizer.vocabSize,
          batchSize: this.batchSize,
          ...this.engineOptions,
        },
      );
      jobs.forEach((job, i) => {
        outputs[job.request]![job.sample] = generated[i]!;
      });
    }
    return requests.map((request, index) => {
      const texts: string[] = [];
      const finishReasons: ('stop' | 'length')[] = [];
      for (const output of outputs[index]!) {
        let text = this.tokenizer.decode(output.tokens, { skipSpecialTokens: true });
        let reason = output.finishReason;
        for (const s of request.stop ?? []) {
          const at = s === '' ? -1 : text.indexOf(s);
          if (at >= 0) {
            text = text.slice(0, at);
            reason = 'stop';
          }
        }
        texts.push(text);
        finishReasons.push(reason);
      }
      return { texts, finishReasons };
    });
  }
}
