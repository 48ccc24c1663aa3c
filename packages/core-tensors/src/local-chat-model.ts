import { encodeChat, type ChatMessage } from './chat.js';
import { CodeReasonerError } from './errors.js';
import type { CausalLM } from './model.js';
import type { Tokenizer } from './tokenizer.js';

export interface ChatRequest {
  messages: ChatMessage[];
  /** Samples per request (default 1). */
  n?: number;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  seed?: number;
  /** Text is cut before the first occurrence of any of these (finish reason 'stop'). */
  stop?: string[];
}

export interface ChatResponse {
  texts: string[];
  finishReasons: ('stop' | 'length')[];
}

/** Anything that answers chat requests: a local model, an OpenAI-compatible endpoint, a test oracle. */
export interface ChatModel {
  readonly id: string;
  complete(requests: ChatRequest[]): Promise<ChatResponse[]>;
}

export interface LocalChatModelOptions {
  id?: string;
  /** Default max new tokens when a request gives none (default 256). */
  maxTokens?: number;
  /** Sequences decoded together (default 16). */
  batchSize?: number;
}

/** A `ChatModel` over a local CausalLM + Tokenizer: ChatML prompts, sampling stops at `<|im_end|>`. */
export class LocalChatModel implements ChatModel {
  readonly id: string;
  private readonly model: CausalLM;
  private readonly tokenizer: Tokenizer;
  private readonly defaultMaxTokens: number;
  private readonly batchSize: number;

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
  }

  async complete(requests: ChatRequest[]): Promise<ChatResponse[]> {
    const responses: ChatResponse[] = [];
    // Requests with identical sampling settings are decoded together, n samples each.
    for (const request of requests) {
      const n = request.n ?? 1;
      if (!Number.isInteger(n) || n < 1) throw new CodeReasonerError('CHAT_REQUEST_INVALID', `n must be a positive integer, got ${n}`);
      const { ids } = encodeChat(this.tokenizer, request.messages, { addGenerationPrompt: true });
      const budget = this.model.config.maxPositionEmbeddings - 1;
      // Keep the end of an over-long prompt (the question and the generation prompt live there).
      const prompt = ids.length > budget ? ids.slice(ids.length - budget) : ids;
      const outputs = await this.model.generate(
        new Array<number[]>(n).fill(prompt),
        {
          maxNewTokens: request.maxTokens ?? this.defaultMaxTokens,
          temperature: request.temperature ?? 1,
          ...(request.topP === undefined ? {} : { topP: request.topP }),
          stopTokens: [this.tokenizer.special.imEnd, this.tokenizer.special.eos],
          seed: request.seed ?? 0,
          batchSize: this.batchSize,
        },
      );
      const texts: string[] = [];
      const finishReasons: ('stop' | 'length')[] = [];
      for (const output of outputs) {
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
      responses.push({ texts, finishReasons });
    }
    return responses;
  }
}
