import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChatClientError, createChatClient, type ChatRetryEvent } from './chat-client.js';

// A local chat-completions server: the real `openai` client code talks HTTP to it. `plan` holds
// what the next requests get ('ok' once it is empty); every request is recorded.
type Step = 'ok' | 'drop' | { status: number; headers?: Record<string, string> };

interface Recorded {
  body: Record<string, unknown>;
  authorization: string | undefined;
}

const state = {
  plan: [] as Step[],
  requests: [] as Recorded[],
  ignoreN: false,
  delayMs: 0,
  inFlight: 0,
  maxInFlight: 0,
};

function reply(body: Record<string, unknown>): Record<string, unknown> {
  const messages = body.messages as { role: string; content: string }[];
  const last = messages[messages.length - 1]?.content ?? '';
  const n = state.ignoreN ? 1 : ((body.n as number | undefined) ?? 1);
  const choices = Array.from({ length: n }, (_, index) => {
    const text = `${last}|seed=${String(body.seed)}|${index}|t=${String(body.temperature)}`;
    const maxTokens = body.max_tokens as number | undefined;
    const truncated = maxTokens !== undefined && maxTokens < 5;
    return {
      index,
      message: { role: 'assistant', content: truncated ? text.slice(0, maxTokens) : text },
      finish_reason: truncated ? 'length' : 'stop',
    };
  });
  // choices deliberately out of order: the client must sort by index
  choices.reverse();
  return {
    id: 'cmpl-test',
    object: 'chat.completion',
    created: 0,
    model: body.model,
    choices,
    usage: { prompt_tokens: 7, completion_tokens: 3 * n, total_tokens: 7 + 3 * n },
  };
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  state.requests.push({ body, authorization: request.headers.authorization });
  const step = state.plan.shift() ?? 'ok';
  if (step === 'drop') {
    request.socket.destroy();
    return;
  }
  if (step !== 'ok') {
    response.writeHead(step.status, { 'content-type': 'application/json', ...step.headers });
    response.end(JSON.stringify({ error: { message: `planned ${step.status}`, type: 'test' } }));
    return;
  }
  state.inFlight++;
  state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
  if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
  state.inFlight--;
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify(reply(body)));
}

let server: Server;
let baseURL: string;
let cacheRoot: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(599);
      response.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  baseURL = `http://127.0.0.1:${address.port}/v1`;
  cacheRoot = await mkdtemp(join(tmpdir(), 'cr-chat-client-'));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(cacheRoot, { recursive: true, force: true });
});

beforeEach(() => {
  state.plan = [];
  state.requests = [];
  state.ignoreN = false;
  state.delayMs = 0;
  state.inFlight = 0;
  state.maxInFlight = 0;
});

const user = (content: string) => [{ role: 'user' as const, content }];

describe('createChatClient', () => {
  it('sends the request fields, returns n samples in index order and reads the key from the named variable', async () => {
    const client = createChatClient({
      baseURL,
      model: 'teacher-1',
      apiKeyEnv: 'CR_TEST_KEY',
      env: { CR_TEST_KEY: 'sk-local' },
    });
    const [first, second] = await client.complete([
      {
        messages: user('a'),
        n: 3,
        temperature: 0.7,
        topP: 0.9,
        maxTokens: 64,
        seed: 11,
        stop: ['<END>'],
      },
      { messages: user('b'), maxTokens: 3 },
    ]);
    expect(first).toEqual({
      texts: ['a|seed=11|0|t=0.7', 'a|seed=11|1|t=0.7', 'a|seed=11|2|t=0.7'],
      finishReasons: ['stop', 'stop', 'stop'],
    });
    expect(second).toEqual({ texts: ['b|s'], finishReasons: ['length'] });
    const sent = state.requests.find(
      (r) => (r.body.messages as { content: string }[])[0]?.content === 'a',
    );
    expect(sent?.body).toEqual({
      model: 'teacher-1',
      messages: [{ role: 'user', content: 'a' }],
      n: 3,
      temperature: 0.7,
      top_p: 0.9,
      max_tokens: 64,
      seed: 11,
      stop: ['<END>'],
    });
    expect(sent?.authorization).toBe('Bearer sk-local');
    expect(client.id).toBe(`openai:teacher-1@${baseURL}`);
    expect(client.stats()).toMatchObject({
      requests: 2,
      cacheHits: 0,
      retries: 0,
      promptTokens: 14,
      completionTokens: 12,
    });
  });

  it('retries 429 and 500 with backoff, honouring retry-after-ms and Retry-After seconds', async () => {
    state.plan = [
      { status: 429, headers: { 'retry-after-ms': '40' } },
      { status: 503, headers: { 'retry-after': '0' } },
      { status: 500 },
    ];
    const events: ChatRetryEvent[] = [];
    const client = createChatClient({
      baseURL,
      model: 'm',
      initialBackoffMs: 8,
      onRetry: (event) => events.push(event),
    });
    const [response] = await client.complete([{ messages: user('x'), seed: 1 }]);
    expect(response?.texts).toEqual(['x|seed=1|0|t=undefined']);
    expect(state.requests).toHaveLength(4);
    expect(events.map((e) => [e.attempt, e.status, e.fromRetryAfter])).toEqual([
      [1, 429, true],
      [2, 503, true],
      [3, 500, false],
    ]);
    expect(events[0]?.delayMs).toBe(40);
    expect(events[1]?.delayMs).toBe(0);
    // third retry: 8 * 2^2 = 32 ms, minus at most 25 % jitter
    expect(events[2]?.delayMs).toBeGreaterThan(24);
    expect(events[2]?.delayMs).toBeLessThanOrEqual(32);
    expect(client.stats().retries).toBe(3);
  });

  it('retries a dropped connection', async () => {
    state.plan = ['drop'];
    const events: ChatRetryEvent[] = [];
    const client = createChatClient({
      baseURL,
      model: 'm',
      initialBackoffMs: 1,
      onRetry: (event) => events.push(event),
    });
    const [response] = await client.complete([{ messages: user('y') }]);
    expect(response?.texts).toEqual(['y|seed=undefined|0|t=undefined']);
    expect(events).toHaveLength(1);
    expect(events[0]?.status).toBeUndefined();
  });

  it('gives up after maxRetries with a typed error, and does not retry a 400', async () => {
    state.plan = [{ status: 500 }, { status: 500 }, { status: 500 }];
    const client = createChatClient({ baseURL, model: 'm', maxRetries: 2, initialBackoffMs: 1 });
    const failure = await client
      .complete([{ messages: user('z') }])
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ChatClientError);
    expect((failure as ChatClientError).code).toBe('CHAT_RETRIES_EXHAUSTED');
    expect((failure as ChatClientError).status).toBe(500);
    expect(state.requests).toHaveLength(3);

    state.requests = [];
    state.plan = [{ status: 400 }];
    const bad = await client.complete([{ messages: user('z') }]).catch((error: unknown) => error);
    expect((bad as ChatClientError).code).toBe('CHAT_REQUEST_FAILED');
    expect((bad as ChatClientError).message).toContain('400');
    expect(state.requests).toHaveLength(1);
  });

  it('answers a repeated request from the on-disk cache, keyed by the full request', async () => {
    const cacheDir = join(cacheRoot, 'cache-a');
    const request = { messages: user('cached'), n: 2, temperature: 1, seed: 5 };
    const first = await createChatClient({ baseURL, model: 'm', cacheDir }).complete([request]);
    expect(state.requests).toHaveLength(1);

    const again = createChatClient({ baseURL, model: 'm', cacheDir });
    expect(await again.complete([request])).toEqual(first);
    expect(state.requests).toHaveLength(1);
    expect(again.stats()).toMatchObject({ requests: 0, cacheHits: 1 });

    // any change to the request (here the seed, then the model) is a different key
    await again.complete([{ ...request, seed: 6 }]);
    await createChatClient({ baseURL, model: 'other', cacheDir }).complete([request]);
    expect(state.requests).toHaveLength(3);

    // entries are whole JSON files, no temp files left behind
    const shards = await readdir(cacheDir);
    const files = (await Promise.all(shards.map((shard) => readdir(join(cacheDir, shard))))).flat();
    expect(files).toHaveLength(3);
    expect(files.every((file) => /^[0-9a-f]{64}\.json$/.test(file))).toBe(true);

    // a corrupted entry is refetched and rewritten
    const shard = shards[0] as string;
    const [file] = await readdir(join(cacheDir, shard));
    const path = join(cacheDir, shard, file as string);
    const original = JSON.parse(await readFile(path, 'utf8')) as { body: Record<string, unknown> };
    await writeFile(path, '{"key": "trunc');
    const fresh = createChatClient({ baseURL, model: original.body.model as string, cacheDir });
    await fresh.complete([
      {
        messages: original.body.messages as { role: 'user'; content: string }[],
        n: original.body.n as number,
        temperature: original.body.temperature as number,
        seed: original.body.seed as number,
      },
    ]);
    expect(fresh.stats()).toMatchObject({ requests: 1, cacheHits: 0 });
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ body: original.body });
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    state.delayMs = 25;
    const client = createChatClient({ baseURL, model: 'm', concurrency: 3 });
    const responses = await client.complete(
      Array.from({ length: 10 }, (_, i) => ({ messages: user(`q${i}`) })),
    );
    expect(responses.map((r) => r.texts[0]?.split('|')[0])).toEqual(
      Array.from({ length: 10 }, (_, i) => `q${i}`),
    );
    expect(state.maxInFlight).toBe(3);
  });

  it('tops up servers that ignore n with shifted seeds', async () => {
    state.ignoreN = true;
    const client = createChatClient({ baseURL, model: 'm' });
    const [response] = await client.complete([{ messages: user('k'), n: 3, seed: 40 }]);
    expect(response?.texts).toEqual([
      'k|seed=40|0|t=undefined',
      'k|seed=41|0|t=undefined',
      'k|seed=42|0|t=undefined',
    ]);
    expect(state.requests.map((r) => r.body.n)).toEqual([3, 2, 1]);
  });

  it('rejects bad configuration and requests with typed errors', async () => {
    expect(() =>
      createChatClient({ baseURL, model: 'm', apiKeyEnv: 'CR_MISSING_KEY', env: {} }),
    ).toThrow(/CR_MISSING_KEY/);
    expect(() => createChatClient({ baseURL: 'localhost:8000', model: 'm' })).toThrow(
      ChatClientError,
    );
    const client = createChatClient({ baseURL, model: 'm' });
    const error = await client.complete([{ messages: [], n: 0 }]).catch((e: unknown) => e);
    expect((error as ChatClientError).code).toBe('CHAT_REQUEST_INVALID');
    expect((error as ChatClientError).message).toContain('n: must be an integer >= 1');
    expect(state.requests).toHaveLength(0);
  });
});
