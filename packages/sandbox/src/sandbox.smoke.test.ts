import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from './sandbox.js';

describe('Sandbox (pyodide) smoke', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await Sandbox.create({ workers: 1, timeoutMs: 2000 });
  }, 60_000);
  afterAll(() => sandbox.close());

  it('runs, checks and traces', async () => {
    const code = 'def f(x):\n    y = x * 2\n    return y';
    expect(await sandbox.run({ code, call: 'f(21)' })).toMatchObject({ status: 'ok', repr: '42', json: 42 });
    expect((await sandbox.check({ code, assertion: 'assert f(2) == 4' })).status).toBe('passed');
    const trace = await sandbox.trace({ code, call: 'f(1)' });
    expect(trace.path).toEqual([2, 3]);
  });
});
