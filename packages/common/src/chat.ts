/** One chat message (ChatML roles). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A chat-completions request as every `ChatModel` takes it. */
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

/** `texts[i]` is the i-th sample; `finishReasons[i]` says whether it stopped or hit `maxTokens`. */
export interface ChatResponse {
  texts: string[];
  finishReasons: ('stop' | 'length')[];
}

/** Anything that answers chat requests: a local model, an OpenAI-compatible endpoint, a test oracle. */
export interface ChatModel {
  readonly id: string;
  complete(requests: ChatRequest[]): Promise<ChatResponse[]>;
}
