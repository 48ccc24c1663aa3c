import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS, resolveServeOptions } from './options.js';

describe('resolveServeOptions', () => {
  it('fills in the defaults: loopback, bounded queue, limits', () => {
    expect(resolveServeOptions({})).toEqual(DEFAULT_SERVE_OPTIONS);
    expect(DEFAULT_SERVE_OPTIONS.host).toBe('127.0.0.1');
    expect(resolveServeOptions({ port: 0, maxQueue: 0 })).toMatchObject({ port: 0, maxQueue: 0 });
  });

  it('lists every invalid option as path: message', () => {
    expect(() =>
      resolveServeOptions({ port: 70000, token: 'short', maxConcurrent: 0, extra: 1 } as never),
    ).toThrow(
      /port: must be <= 65535[\s\S]*token: must NOT have fewer than 16 characters[\s\S]*maxConcurrent: must be >= 1|must NOT have additional properties 'extra'/,
    );
  });
});
