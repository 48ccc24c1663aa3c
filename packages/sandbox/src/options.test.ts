import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigValidationError } from './errors.js';
import { resolveSandboxOptions } from './options.js';

describe('resolveSandboxOptions', () => {
  it('fills in the defaults in one place', () => {
    expect(resolveSandboxOptions()).toEqual({
      engine: 'pyodide',
      workers: Math.max(1, availableParallelism()),
      timeoutMs: 5000,
      memoryLimitMb: 512,
      maxOutputChars: 10_000,
      maxReprChars: 10_000,
      pythonPath: 'python3',
    });
    expect(resolveSandboxOptions({ engine: 'cpython', workers: 3, timeoutMs: 100 })).toMatchObject({
      engine: 'cpython',
      workers: 3,
      timeoutMs: 100,
    });
  });

  it('rejects unknown keys and bad values with every issue', () => {
    let caught: unknown;
    try {
      resolveSandboxOptions({ workers: 1.5, memoryLimitMb: 1, timeout: 5 } as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigValidationError);
    expect((caught as ConfigValidationError).issues).toEqual([
      expect.stringMatching(/^\/: unknown property 'timeout'; known: .*\btimeoutMs\b/),
      '/workers: must be integer (got 1.5)',
      '/memoryLimitMb: must be >= 64',
    ]);
  });
});
