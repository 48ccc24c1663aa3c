import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cruxEvalItems, loadCruxEval } from './cruxeval.js';
import { createEndpointModel } from './models.js';
import { runBenchmark } from './run-benchmark.js';
import { FIXTURES } from './test-paths.js';

// A local OpenAI-compatible chat-completions server stands in for a remote model: the real
// `openai` client (through @codereasoner/protocol/chat-client's createChatClient) talks HTTP to it. It answers
// CRUXEval-O prompts with the gold assertion, except for two records it gets wrong or garbles.

const requests: { body: Record<string, unknown>; authorization: string | undefined }[] = [];
const answers = new Map<string, string>();
let failNext = 1;
let server: Server;
let baseURL: string;
let sandbox: Sandbox;
let root: string;

beforeAll(async () => {
  const records = await loadCruxEval(join(FIXTURES, 'cruxeval/cruxeval.jsonl'));
  for (const item of cruxEvalItems(records, { tasks: ['output'], cot: false, style: 'official' })) {
    let text = item.oracle;
    if (item.id === 'sample_1') text = 'assert f(...) == "nope"\n'; // wrong
    if (item.id === 'sample_2') text = '\u0000 ]]] not python'; // malformed
    answers.set(item.messages[1]!.content, text);
  }
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      requests.push({ body, authorization: request.headers.authorization });
      if (failNext > 0) {
        failNext -= 1;
        response.writeHead(503, { 'content-type': 'application/json', 'retry-after-ms': '10' });
        response.end(JSON.stringify({ error: { message: 'busy', type: 'test' } }));
        return;
      }
      const messages = body.messages as { role: string; content: string }[];
      const text = answers.get(messages[messages.length - 1]!.content) ?? '';
      const n = (body.n as number | undefined) ?? 1;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          id: 'cmpl-test',
          object: 'chat.completion',
          created: 0,
          model: body.model,
          choices: Array.from({ length: n }, (_, index) => ({
            index,
            message: { role: 'assistant', content: text },
            finish_reason: 'stop',
          })),
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  sandbox = await Sandbox.create({ workers: 1 });
  root = await mkdtemp(join(tmpdir(), 'bench-endpoint-'));
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await sandbox?.close();
  await rm(root, { recursive: true, force: true });
});

describe('OpenAI-compatible endpoint model', () => {
  it('runs CRUXEval-O through the openai client with the official request settings', async () => {
    process.env.BENCH_TEST_KEY = 'sk-local-test';
    const model = createEndpointModel({
      baseURL,
      model: 'test-model',
      apiKeyEnv: 'BENCH_TEST_KEY',
      concurrency: 2,
      maxRetries: 2,
      initialBackoffMs: 1,
      cacheDir: join(root, 'cache'),
    });
    const summary = await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: FIXTURES,
      tasks: ['output'],
      model,
      sandbox,
      outDir: join(root, 'run'),
      n: 3,
      temperature: 0.2,
      topP: 0.95,
    });
    // 4 of 6 right; the wrong and the malformed answers score 0 and the run goes on.
    expect(summary.tasks.output!.score).toBeCloseTo((4 / 6) * 100, 10);
    expect(summary.tasks.output!.passedSamples).toBe(12);
    expect(summary.model).toBe(model.id);

    const ok = requests.filter((_, i) => i > 0);
    expect(ok).toHaveLength(6);
    const body = ok[0]!.body;
    expect(body).toMatchObject({
      model: 'test-model',
      n: 3,
      temperature: 0.2,
      top_p: 0.95,
      max_tokens: 100,
      stop: ['[/ANSWER]'],
    });
    expect((body.messages as { role: string; content: string }[])[0]).toEqual({
      role: 'system',
      content:
        'You are an expert at Python programming, code execution, test case generation, and fuzzing.',
    });
    expect(ok[0]!.authorization).toBe('Bearer sk-local-test');
    // The 503 was retried, and every response went to the on-disk cache.
    expect(requests).toHaveLength(7);
    expect((await readdir(join(root, 'cache'))).length).toBeGreaterThan(0);
  });
});
