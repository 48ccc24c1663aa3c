import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { readmeBlock, runExample } from '../../../test-support/readme-example.js';
import { resolveSandboxOptions } from './options.js';
import { Sandbox } from './sandbox.js';
import type { SandboxOptions } from './types.js';

// Runs the README's example as written (the import mapped to these sources, one worker to keep
// the test small) and checks every result against the value its comment documents, so the
// example cannot drift from the code unnoticed.
const BLOCK = readmeBlock(new URL('../README.md', import.meta.url));

describe('README example', () => {
  it('runs, and every documented result is what the sandbox returns', async () => {
    expect(BLOCK).toContain("from '@codereasoner/sandbox'");
    const calls: { method: string; result: unknown }[] = [];
    let closed = false;
    const recording = (sandbox: Sandbox): Sandbox =>
      new Proxy(sandbox, {
        get(target, key) {
          const value: unknown = Reflect.get(target, key, target);
          if (typeof value !== 'function') return value;
          return async (...args: unknown[]) => {
            const result: unknown = await (value as (...a: unknown[]) => unknown).apply(
              target,
              args,
            );
            if (key === 'close') closed = true;
            else calls.push({ method: String(key), result });
            return result;
          };
        },
      });
    const module = {
      Sandbox: {
        create: async (options: SandboxOptions = {}) =>
          recording(await Sandbox.create({ workers: 1, ...options })),
      },
    };
    await runExample(BLOCK, { '@codereasoner/sandbox': module });

    expect(closed).toBe(true);
    expect(BLOCK).toContain(
      "await Sandbox.create(); // { engine: 'pyodide', workers: <cores>, timeoutMs: 5000 }",
    );
    expect(resolveSandboxOptions({})).toMatchObject({
      engine: 'pyodide',
      workers: availableParallelism(),
      timeoutMs: 5000,
    });
    expect(calls.map((c) => c.method)).toEqual(['run', 'check', 'check', 'checkBatch', 'trace']);
    const [run1, check1, check2, batch, trace] = calls.map((c) => c.result);

    expect(BLOCK).toContain(
      "// { status: 'ok', repr: '3', json: 3, reprRoundTrips: true, stdout: '', durationMs: 0.4 }",
    );
    expect(run1).toMatchObject({
      status: 'ok',
      repr: '3',
      json: 3,
      reprRoundTrips: true,
      stdout: '',
      durationMs: expect.any(Number),
    });
    expect(BLOCK).toContain("// { status: 'passed', actualRepr: '3', ... }");
    expect(check1).toMatchObject({ status: 'passed', actualRepr: '3' });
    expect(BLOCK).toContain("// { status: 'failed', actualRepr: '1', ... }");
    expect(check2).toMatchObject({ status: 'failed', actualRepr: '1' });
    expect(BLOCK).toContain("// [{ status: 'passed', ... }, { status: 'passed', ... }]");
    expect(batch).toMatchObject([{ status: 'passed' }, { status: 'passed' }]);

    expect(BLOCK).toContain('// trace.path [2, 3, 4, 3, 5], trace.coverage [2, 3, 4, 5],');
    expect(BLOCK).toContain("// trace.states[0] { line: 2, locals: { xs: '[5]', total: '0' } }");
    expect(trace).toMatchObject({
      status: 'ok',
      path: [2, 3, 4, 3, 5],
      coverage: [2, 3, 4, 5],
    });
    expect((trace as { states: unknown[] }).states[0]).toEqual({
      line: 2,
      locals: { xs: '[5]', total: '0' },
    });
  }, 60_000);
});
