import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, type SandboxOptions } from '@codereasoner/sandbox';
import { describe, expect, it } from 'vitest';
import { readmeBlock, runExample } from '../../../test-support/readme-example.js';
import * as bench from './index.js';
import { cruxEvalItems, loadCruxEval } from './cruxeval.js';
import { FIXTURES } from './test-paths.js';

// Runs the README's example with the same calls against a local OpenAI-compatible server that
// answers every CRUXEval prompt with its gold answer, on the 6-record fixture, in a temporary
// folder: the headline must then be 100 for both tasks. It fails when a documented name, option
// or result shape stops matching the code.
const BLOCK = readmeBlock(new URL('../README.md', import.meta.url), { heading: 'Example' });

async function goldServer(): Promise<{
  server: Server;
  baseURL: string;
  records: number;
  requests: () => number;
}> {
  const records = await loadCruxEval(join(FIXTURES, 'cruxeval/cruxeval.jsonl'));
  const answers = new Map<string, string>();
  for (const item of cruxEvalItems(records, {
    tasks: ['output', 'input'],
    cot: true,
    style: 'official',
  }))
    answers.set(item.messages.at(-1)!.content, item.oracle);
  let count = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      count += 1;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        model: string;
        n?: number;
        messages: { content: string }[];
      };
      const text = answers.get(body.messages.at(-1)!.content) ?? '';
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          id: 'cmpl-readme',
          object: 'chat.completion',
          created: 0,
          model: body.model,
          choices: Array.from({ length: body.n ?? 1 }, (_, index) => ({
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
  const { port } = server.address() as AddressInfo;
  return {
    server,
    baseURL: `http://127.0.0.1:${port}/v1`,
    records: records.length,
    requests: () => count,
  };
}

describe('README example', () => {
  it('scores a chat endpoint on CRUXEval with the documented options', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-bench-readme-'));
    const { server, baseURL, records, requests } = await goldServer();
    try {
      let code = BLOCK;
      for (const [from, to] of [
        ["'http://localhost:8000/v1'", JSON.stringify(baseURL)],
        ["'../shared/benchmarks'", JSON.stringify(FIXTURES)],
        ["'.cache/chat'", JSON.stringify(join(dir, '.cache/chat'))],
        ["'runs/bench/cruxeval'", JSON.stringify(join(dir, 'runs/bench/cruxeval'))],
      ] as const) {
        expect(BLOCK).toContain(from);
        code = code.replace(from, to);
      }
      const modules: Record<string, unknown> = {
        '@codereasoner/bench': bench,
        '@codereasoner/sandbox': {
          Sandbox: { create: (o: SandboxOptions = {}) => Sandbox.create({ workers: 1, ...o }) },
        },
      };
      const logs = await runExample(code, modules);

      expect(BLOCK).toContain("// { 'CRUXEval-O': …, 'CRUXEval-I': … } (pass@1 ×100)");
      expect(logs).toEqual([[{ 'CRUXEval-O': 100, 'CRUXEval-I': 100 }]]);
      expect(records).toBe(6);
      expect(requests()).toBe(2 * records); // (output, input) per record, n = 1
      expect(await readdir(join(dir, 'runs/bench/cruxeval'))).toEqual(
        expect.arrayContaining(['items.jsonl', 'summary.json', 'report.md']),
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
