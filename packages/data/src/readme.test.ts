import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, type SandboxOptions } from '@codereasoner/sandbox';
import { describe, expect, it } from 'vitest';
import * as data from './index.js';

// Runs the README's example with the same calls, made small: 8 programs instead of 200, one
// worker, the corpus in a temporary folder. It fails when a documented name, option or result
// shape stops matching the code.
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const BLOCK = /## Example\n+```ts\n([\s\S]*?)```/.exec(README)?.[1] ?? '';

/** `import { a } from 'x';` → `const { a } = await __import('x');` (the block is an ES module). */
function importsToLookups(code: string): string {
  return code.replace(
    /import\s*\{([^}]*)\}\s*from\s*'([^']+)';/g,
    (_, names: string, spec: string) =>
      `const {${names.replace(/\bas\b/g, ':')}} = await __import(${JSON.stringify(spec)});`,
  );
}

describe('README example', () => {
  it('builds a corpus, renders a prompt and verifies a completion as documented', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-data-readme-'));
    try {
      expect(BLOCK).toContain('count: 200 }');
      expect(BLOCK).toContain("outDir: 'corpus'");
      expect(BLOCK).toContain("'corpus/tasks/eval.jsonl'");
      const code = importsToLookups(BLOCK)
        .replace('count: 200 }', 'count: 8 }')
        .replaceAll("'corpus", `${JSON.stringify(dir)} + '/corpus`);
      const logs: unknown[][] = [];
      const modules: Record<string, unknown> = {
        '@codereasoner/data': data,
        '@codereasoner/sandbox': {
          Sandbox: { create: (o: SandboxOptions = {}) => Sandbox.create({ workers: 1, ...o }) },
        },
      };
      const run = new Function('__import', 'console', `return (async () => {\n${code}\n})();`) as (
        load: (spec: string) => Promise<unknown>,
        log: { log: (...a: unknown[]) => void },
      ) => Promise<void>;
      await run(
        async (spec) => {
          if (!(spec in modules)) throw new Error(`unexpected import ${spec}`);
          return modules[spec];
        },
        { log: (...args: unknown[]) => logs.push(args) },
      );

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
