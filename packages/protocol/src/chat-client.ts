import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import {
  CodeReasonerError,
  writeFileAtomic,
  type ChatMessage,
  type ChatModel,
  type ChatRequest,
  type ChatResponse,
  type Logger,
} from '@codereasoner/common';

/** One chat message (the shared `ChatMessage`; the name is kept for existing imports). */
export type ChatClientMessage = ChatMessage;

/** Where the client logs retries (the shared `Logger`; the name is kept for existing imports). */
export type ChatClientLogger = Logger;

export type { ChatModel, ChatRequest, ChatResponse } from '@codereasoner/common';

/** Information about one retry, given to `onRetry` (and logged at warn level). */
export interface ChatRetryEvent {
  /** 1 for the first retry. */
  attempt: number;
  /** How long the client waits before the retry. */
  delayMs: number;
  /** HTTP status, or undefined for a network error / timeout. */
  status: number | undefined;
  /** Whether `delayMs` came from the server's Retry-After / retry-after-ms header. */
  fromRetryAfter: boolean;
  message: string;
}

export interface ChatClientOptions {
  /** Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`, `http://localhost:8000/v1` (vLLM), `http://localhost:11434/v1` (Ollama). */
  baseURL: string;
  /** Model name sent in every request. */
  model: string;
  /**
   * Name of the environment variable holding the API key (default `OPENAI_API_KEY`). When the
   * name is given explicitly and the variable is unset, creation fails; when defaulted and
   * unset, a placeholder key is sent (local servers such as vLLM and Ollama ignore it).
   */
  apiKeyEnv?: string;
  /** Maximum requests in flight at once across all `complete` calls (default 4). */
  concurrency?: number;
  /** Retries per HTTP request on 408/409/429/5xx and network errors (default 5). */
  maxRetries?: number;
  /** Directory of the response cache; omit to disable caching. */
  cacheDir?: string;
  /** Per-request timeout (default 600 000 ms). */
  timeoutMs?: number;
  /** First backoff delay; doubles per retry (default 500 ms). */
  initialBackoffMs?: number;
  /** Largest backoff delay (default 30 000 ms). */
  maxBackoffMs?: number;
  /** Retry-After values above this are clamped to it (default 60 000 ms). */
  maxRetryAfterMs?: number;
  /** Seed of the backoff jitter (default 0): runs retry on a reproducible schedule. */
  jitterSeed?: number;
  /** Extra JSON fields merged into every request body (e.g. vLLM's `top_k`); part of the cache key. */
  extraBody?: Record<string, unknown>;
  /** The `id` of the returned model (default `openai:<model>@<baseURL>`). */
  id?: string;
  /** Where to read the API key from (default `process.env`). */
  env?: Record<string, string | undefined>;
  logger?: ChatClientLogger;
  onRetry?: (event: ChatRetryEvent) => void;
}

/** Counters since the client was created. */
export interface ChatClientStats {
  /** HTTP requests that returned a completion. */
  requests: number;
  /** Requests answered from the cache without a network call. */
  cacheHits: number;
  retries: number;
  promptTokens: number;
  completionTokens: number;
}

export interface ChatClient extends ChatModel {
  stats(): ChatClientStats;
}

/** A chat-completions request failed for good (bad request, auth, retries exhausted) or was malformed. */
export class ChatClientError extends CodeReasonerError<
  'CHAT_REQUEST_INVALID' | 'CHAT_REQUEST_FAILED' | 'CHAT_RETRIES_EXHAUSTED' | 'CHAT_CONFIG_INVALID'
> {
  readonly status: number | undefined;
  readonly baseURL: string;

  constructor(
    code:
      | 'CHAT_REQUEST_INVALID'
      | 'CHAT_REQUEST_FAILED'
      | 'CHAT_RETRIES_EXHAUSTED'
      | 'CHAT_CONFIG_INVALID',
    message: string,
    details: { status?: number; baseURL: string; cause?: unknown },
  ) {
    super(code, message, details.cause === undefined ? {} : { cause: details.cause });
    this.name = 'ChatClientError';
    this.status = details.status;
    this.baseURL = details.baseURL;
  }
}

interface CompletionBody {
  model: string;
  messages: ChatClientMessage[];
  n: number;
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  stop?: string[];
  [extra: string]: unknown;
}

interface CachedResponse {
  key: string;
  baseURL: string;
  body: CompletionBody;
  texts: string[];
  finishReasons: ('stop' | 'length')[];
}

/** Placeholder key for servers that need none; never a real secret. */
const PLACEHOLDER_KEY = 'EMPTY';

/**
 * A `ChatModel` over any OpenAI-compatible chat-completions endpoint, via the official `openai`
 * client. Requests run at most `concurrency` at a time; 408/409/429/5xx and network errors are
 * retried with exponential backoff plus jitter, honouring Retry-After; with `cacheDir`, every
 * completed response is stored under the SHA-256 of its full request so a re-run costs nothing.
 * Servers that ignore `n` are topped up with further requests (seed + 1, + 2, ...).
 */
export function createChatClient(options: ChatClientOptions): ChatClient {
  const baseURL = options.baseURL;
  if (typeof baseURL !== 'string' || !/^https?:\/\//.test(baseURL)) {
    throw new ChatClientError(
      'CHAT_CONFIG_INVALID',
      `createChatClient: baseURL must be an http(s) URL, got ${JSON.stringify(baseURL)}; pass e.g. "http://localhost:8000/v1".`,
      { baseURL: String(baseURL) },
    );
  }
  if (typeof options.model !== 'string' || options.model.length === 0) {
    throw new ChatClientError(
      'CHAT_CONFIG_INVALID',
      `createChatClient: model must be a non-empty string (endpoint ${baseURL}).`,
      {
        baseURL,
      },
    );
  }
  const concurrency = positiveInteger(options.concurrency ?? 4, 'concurrency', baseURL);
  const maxRetries = nonNegativeInteger(options.maxRetries ?? 5, 'maxRetries', baseURL);
  const initialBackoffMs = options.initialBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const env = options.env ?? process.env;
  const keyVariable = options.apiKeyEnv ?? 'OPENAI_API_KEY';
  let apiKey = env[keyVariable];
  if (apiKey === undefined || apiKey === '') {
    if (options.apiKeyEnv !== undefined) {
      throw new ChatClientError(
        'CHAT_CONFIG_INVALID',
        `createChatClient: environment variable ${keyVariable} (apiKeyEnv) is not set; export it with the API key for ${baseURL}, or omit apiKeyEnv for servers that need no key.`,
        { baseURL },
      );
    }
    apiKey = PLACEHOLDER_KEY;
  }
  const client = new OpenAI({
    baseURL,
    apiKey,
    maxRetries: 0,
    timeout: options.timeoutMs ?? 600_000,
  });
  const id = options.id ?? `openai:${options.model}@${baseURL}`;
  const limit = createLimiter(concurrency);
  const jitter = mulberry32(options.jitterSeed ?? 0);
  const stats: ChatClientStats = {
    requests: 0,
    cacheHits: 0,
    retries: 0,
    promptTokens: 0,
    completionTokens: 0,
  };

  const cachePath = (key: string): string =>
    join(options.cacheDir as string, key.slice(0, 2), `${key}.json`);

  async function readCache(key: string): Promise<CachedResponse | undefined> {
    if (options.cacheDir === undefined) return undefined;
    let text: string;
    try {
      text = await readFile(cachePath(key), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const parsed = JSON.parse(text) as CachedResponse;
      if (parsed.key === key && Array.isArray(parsed.texts) && Array.isArray(parsed.finishReasons))
        return parsed;
    } catch {
      // fall through: an unreadable entry is refetched and overwritten
    }
    options.logger?.warn(`chat cache entry ${cachePath(key)} is unreadable; fetching it again`);
    return undefined;
  }

  async function writeCache(entry: CachedResponse): Promise<void> {
    if (options.cacheDir === undefined) return;
    const path = cachePath(entry.key);
    // atomic: a reader (another run sharing the cache) never sees a half-written entry
    await writeFileAtomic(path, `${JSON.stringify(entry)}\n`);
  }

  function retryDelay(
    error: unknown,
    attempt: number,
  ): { delayMs: number; fromRetryAfter: boolean } {
    const headers = error instanceof OpenAI.APIError ? error.headers : undefined;
    const fromHeader = headers ? parseRetryAfter(headers) : undefined;
    if (fromHeader !== undefined)
      return { delayMs: Math.min(fromHeader, maxRetryAfterMs), fromRetryAfter: true };
    const base = Math.min(maxBackoffMs, initialBackoffMs * 2 ** (attempt - 1));
    // up to 25 % jitter so that many clients hit by the same 429 do not retry in lockstep
    return { delayMs: base * (1 - 0.25 * jitter()), fromRetryAfter: false };
  }

  async function send(body: CompletionBody): Promise<OpenAI.Chat.Completions.ChatCompletion> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await client.chat.completions.create(
          body as unknown as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming,
        );
      } catch (error) {
        const status = error instanceof OpenAI.APIError ? error.status : undefined;
        const retryable =
          error instanceof OpenAI.APIConnectionError ||
          (status !== undefined &&
            (status === 408 || status === 409 || status === 429 || status >= 500));
        const message = error instanceof Error ? error.message : String(error);
        if (!retryable) {
          const hint =
            status === 401 || status === 403
              ? ` Check the API key in ${keyVariable}.`
              : status === 404
                ? ` Check the base URL and that model "${options.model}" is served there.`
                : '';
          throw new ChatClientError(
            'CHAT_REQUEST_FAILED',
            `Chat completion at ${baseURL} (model ${options.model}) failed with ${status ?? 'an error'}: ${message}.${hint}`,
            { baseURL, ...(status === undefined ? {} : { status }), cause: error },
          );
        }
        if (attempt >= maxRetries) {
          throw new ChatClientError(
            'CHAT_RETRIES_EXHAUSTED',
            `Chat completion at ${baseURL} (model ${options.model}) still failing after ${maxRetries} retries (last: ${status ?? 'network error'}: ${message}). Lower concurrency, raise maxRetries, or check the server; completed responses are cached, so re-running costs nothing for them.`,
            { baseURL, ...(status === undefined ? {} : { status }), cause: error },
          );
        }
        const { delayMs, fromRetryAfter } = retryDelay(error, attempt + 1);
        stats.retries++;
        const event: ChatRetryEvent = {
          attempt: attempt + 1,
          delayMs,
          status,
          fromRetryAfter,
          message,
        };
        options.logger?.warn(
          `chat completion at ${baseURL}: ${status ?? 'network error'} (${message}); retry ${attempt + 1}/${maxRetries} in ${Math.round(delayMs)} ms`,
        );
        options.onRetry?.(event);
        await sleep(delayMs);
      }
    }
  }

  async function fetchOnce(
    body: CompletionBody,
  ): Promise<{ texts: string[]; finishReasons: ('stop' | 'length')[] }> {
    const key = createHash('sha256').update(stableStringify({ baseURL, body })).digest('hex');
    const cached = await readCache(key);
    if (cached) {
      stats.cacheHits++;
      return { texts: cached.texts, finishReasons: cached.finishReasons };
    }
    const completion = await limit(() => send(body));
    stats.requests++;
    stats.promptTokens += completion.usage?.prompt_tokens ?? 0;
    stats.completionTokens += completion.usage?.completion_tokens ?? 0;
    const choices = [...(completion.choices ?? [])].sort((a, b) => a.index - b.index);
    const texts = choices.map((choice) => choice.message?.content ?? '');
    const finishReasons = choices.map(
      (choice) => (choice.finish_reason === 'length' ? 'length' : 'stop') as 'stop' | 'length',
    );
    await writeCache({ key, baseURL, body, texts, finishReasons });
    return { texts, finishReasons };
  }

  async function completeOne(request: ChatRequest): Promise<ChatResponse> {
    validateRequest(request, baseURL);
    const n = request.n ?? 1;
    const texts: string[] = [];
    const finishReasons: ('stop' | 'length')[] = [];
    // Servers that ignore `n` (Ollama, some proxies) return one choice: ask again for the rest,
    // with a shifted seed so that seeded samples stay distinct and reproducible.
    for (let round = 0; texts.length < n; round++) {
      const body: CompletionBody = {
        ...options.extraBody,
        model: options.model,
        messages: request.messages.map((message) => ({
          role: message.role,
          content: message.content,
        })),
        n: n - texts.length,
      };
      if (request.temperature !== undefined) body.temperature = request.temperature;
      if (request.topP !== undefined) body.top_p = request.topP;
      if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
      if (request.seed !== undefined) body.seed = request.seed + round;
      if (request.stop !== undefined && request.stop.length > 0) body.stop = request.stop;
      const result = await fetchOnce(body);
      if (result.texts.length === 0) {
        throw new ChatClientError(
          'CHAT_REQUEST_FAILED',
          `Chat completion at ${baseURL} (model ${options.model}) returned no choices; check that the server speaks the chat-completions protocol.`,
          { baseURL },
        );
      }
      const take = Math.min(result.texts.length, n - texts.length);
      texts.push(...result.texts.slice(0, take));
      finishReasons.push(...result.finishReasons.slice(0, take));
    }
    return { texts, finishReasons };
  }

  return {
    id,
    complete: (requests) => Promise.all(requests.map((request) => completeOne(request))),
    stats: () => ({ ...stats }),
  };
}

function validateRequest(request: ChatRequest, baseURL: string): void {
  const issues: string[] = [];
  if (!Array.isArray(request.messages) || request.messages.length === 0)
    issues.push('messages: must be a non-empty array');
  else
    request.messages.forEach((message, index) => {
      if (!['system', 'user', 'assistant'].includes(message.role))
        issues.push(`messages[${index}].role: must be system, user or assistant`);
      if (typeof message.content !== 'string')
        issues.push(`messages[${index}].content: must be a string`);
    });
  if (request.n !== undefined && (!Number.isInteger(request.n) || request.n < 1))
    issues.push('n: must be an integer >= 1');
  if (
    request.maxTokens !== undefined &&
    (!Number.isInteger(request.maxTokens) || request.maxTokens < 1)
  )
    issues.push('maxTokens: must be an integer >= 1');
  if (request.seed !== undefined && !Number.isInteger(request.seed))
    issues.push('seed: must be an integer');
  if (issues.length > 0) {
    throw new ChatClientError(
      'CHAT_REQUEST_INVALID',
      `Chat request for ${baseURL} is invalid: ${issues.join('; ')}.`,
      { baseURL },
    );
  }
}

function positiveInteger(value: number, name: string, baseURL: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ChatClientError(
      'CHAT_CONFIG_INVALID',
      `createChatClient: ${name} must be an integer >= 1, got ${value}.`,
      { baseURL },
    );
  }
  return value;
}

function nonNegativeInteger(value: number, name: string, baseURL: string): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new ChatClientError(
      'CHAT_CONFIG_INVALID',
      `createChatClient: ${name} must be an integer >= 0, got ${value}.`,
      { baseURL },
    );
  }
  return value;
}

/** Milliseconds from `retry-after-ms`, or `retry-after` as seconds or an HTTP date. */
function parseRetryAfter(headers: Headers): number | undefined {
  const millis = headers.get('retry-after-ms');
  if (millis !== null && millis.trim() !== '' && Number.isFinite(Number(millis)))
    return Math.max(0, Number(millis));
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** JSON with object keys sorted, so that equal requests hash equally whatever the key order. */
function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${stableStringify(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function createLimiter(concurrency: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    // a released slot passes straight to the next waiter, so a newcomer cannot slip in between
    if (active < concurrency) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
