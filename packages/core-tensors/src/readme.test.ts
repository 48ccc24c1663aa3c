import * as fsPromises from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as coreTensors from './index.js';

// Runs the README's "Example" block as written (imports mapped to these sources), so the
// documented calls, option names and output cannot drift from the code unnoticed.
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

function exampleBlock(heading: string): string {
  const section = README.slice(README.indexOf(`\n## ${heading}\n`));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error(`README has no js block under "## ${heading}"`);
  return match[1]!;
}

/** `import { a, b as c } from 'x';` → `const { a, b: c } = await __import('x');` (the block is an ES module). */
function importsToLookups(code: string): string {
  return code.replace(
    /import\s*\{([^}]*)\}\s*from\s*'([^']+)';/g,
    (_, names: string, spec: string) =>
      `const {${names.replace(/\bas\b/g, ':')}} = await __import(${JSON.stringify(spec)});`,
  );
}

describe('README example', () => {
  it('trains, checkpoints, reloads and answers as documented', async () => {
    // The example writes its checkpoint under os.tmpdir(): point that at a folder removed afterwards.
    const scratch = await fsPromises.mkdtemp(path.join(os.tmpdir(), 'cr-readme-'));
    const modules: Record<string, unknown> = {
      '@codereasoner/core-tensors': coreTensors,
      'node:fs/promises': fsPromises,
      'node:os': { ...os, tmpdir: () => scratch },
      'node:path': path,
    };
    const lines: unknown[][] = [];
    const run = new Function(
      '__import',
      'console',
      `return (async () => {\n${importsToLookups(exampleBlock('Example'))}\n})();`,
    ) as (
      load: (spec: string) => Promise<unknown>,
      log: { log: (...a: unknown[]) => void },
    ) => Promise<void>;
    try {
      await run(
        async (spec) => {
          if (!(spec in modules))
            throw new Error(`README example imports unexpected module ${spec}`);
          return modules[spec];
        },
        { log: (...args: unknown[]) => lines.push(args) },
      );
    } finally {
      await fsPromises.rm(scratch, { recursive: true, force: true });
    }

    const backend = lines.find((l) => l[0] === 'backend')!;
    expect(['tensorflow', 'wasm', 'cpu']).toContain(backend[1]);
    const losses = lines.filter((l) => l[0] === 'step').map((l) => Number(l[3]));
    expect(lines.filter((l) => l[0] === 'step').map((l) => l[1])).toEqual([20, 40, 60]);
    expect(losses[2]).toBeLessThan(losses[0]!);
    // The documented outcome: the model learnt the first example's answer.
    expect(lines.find((l) => l[0] === 'answer')).toEqual(['answer', '"6"', 'stop']);
  }, 30_000);
});
