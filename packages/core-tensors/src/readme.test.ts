import * as fsPromises from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readmeBlock, runExample } from '../../../test-support/readme-example.js';
import * as coreTensors from './index.js';

// Runs the README's "Example" block as written (imports mapped to these sources), so the
// documented calls, option names and output cannot drift from the code unnoticed.

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
    let lines: unknown[][];
    try {
      lines = await runExample(
        readmeBlock(new URL('../README.md', import.meta.url), { heading: 'Example', lang: 'js' }),
        modules,
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
