import { Sandbox, type SandboxOptions } from '@codereasoner/sandbox';
import { describe, expect, it } from 'vitest';
import { readmeBlock, runExample } from '../../../test-support/readme-example.js';
import * as protocol from './index.js';

// Runs the README's example as written (one sandbox worker). It fails when a documented name,
// option or result shape stops matching the code.
const BLOCK = readmeBlock(new URL('../README.md', import.meta.url), { heading: 'Example' });

describe('README example', () => {
  it('checks a record, renders its prompt, extracts and verifies answers as documented', async () => {
    const modules: Record<string, unknown> = {
      '@codereasoner/protocol': protocol,
      '@codereasoner/sandbox': {
        Sandbox: { create: (o: SandboxOptions = {}) => Sandbox.create({ workers: 1, ...o }) },
      },
    };
    const logs = await runExample(BLOCK, modules);
    expect(logs[0]).toEqual([[]]);
    const [question, extracted] = logs[1] as [string, unknown];
    expect(question).toContain('```python\ndef f(xs):');
    expect(question).toContain('f([1, 2])');
    expect(extracted).toEqual({ ok: true, answer: '[2, 4]' });
    expect(logs[2]).toEqual([{ correct: true, reason: 'correct' }]);
    expect(logs[3]).toEqual([
      { correct: false, reason: 'wrong: answered [2, 4.5], expected [2, 4]' },
    ]);
  }, 60_000);
});
