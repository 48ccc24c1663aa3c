import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as protocol from '@codereasoner/protocol';
import { Sandbox, type SandboxOptions } from '@codereasoner/sandbox';
import { describe, expect, it } from 'vitest';
import { readmeBlock, runExample } from '../../../test-support/readme-example.js';
import * as data from './index.js';

// Runs the README's example with the same calls, made small: 8 programs instead of 200, one
// worker, the corpus in a temporary folder. It fails when a documented name, option or result
// shape stops matching the code.
const BLOCK = readmeBlock(new URL('../README.md', import.meta.url), { heading: 'Example' });

describe('README example', () => {
  it('builds a corpus, renders a prompt and verifies a completion as documented', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-data-readme-'));
    try {
      expect(BLOCK).toContain('count: 200 }');
      expect(BLOCK).toContain("outDir: 'corpus'");
      expect(BLOCK).toContain("'corpus/tasks/eval.jsonl'");
      const code = BLOCK.replace('count: 200 }', 'count: 8 }').replaceAll(
        "'corpus",
        `${JSON.stringify(dir)} + '/corpus`,
      );
      const modules: Record<string, unknown> = {
        '@codereasoner/data': data,
        '@codereasoner/protocol': protocol,
        '@codereasoner/sandbox': {
          Sandbox: { create: (o: SandboxOptions = {}) => Sandbox.create({ workers: 1, ...o }) },
        },
      };
      const logs = await runExample(code, modules);

      // onProgress events: (stage, completed, total), ending with every unit done.
      const progress = logs.filter((l) => l.length === 3 && typeof l[0] === 'string');
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)!.slice(1)).toEqual([8, 8]);
      // manifest.counts.tasks: per split and type, with a total.
      const counts = logs.find((l) => l.length === 1 && typeof l[0] === 'object')![0] as {
        train: Record<string, number>;
        eval: Record<string, number>;
        total: number;
      };
      expect(counts.total).toBeGreaterThan(0);
      expect(Object.keys(counts.train).sort()).toEqual(
        ['coverage', 'input', 'output', 'path', 'state'].sort(),
      );
      // The first eval task's user message and the verdict on the made-up completion.
      const [question, verdict] = logs.at(-1)! as [string, { correct: boolean; reason: string }];
      expect(question).toContain('```python\ndef ');
      expect(Object.keys(verdict).sort()).toEqual(['correct', 'reason']);
      expect(verdict.correct).toBe(false);
      expect(verdict.reason).toMatch(/^(wrong|invalid)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
