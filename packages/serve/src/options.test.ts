import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS, resolveServeOptions } from './options.js';

describe('resolveServeOptions', () => {
  it('fills in the defaults: loopback, bounded queue, limits', () => {
    expect(resolveServeOptions({})).toEqual(DEFAULT_SERVE_OPTIONS);
    expect(DEFAULT_SERVE_OPTIONS.host).toBe('127.0.0.1');
    expect(resolveServeOptions({ port: 0, maxQueue: 0 })).toMatchObject({ port: 0, maxQueue: 0 });
  });

  it('lists every invalid option as path: message', () => {
    let issues: string[] = [];
    try {
      resolveServeOptions({ port: 70000, token: 'short', maxConcurrent: 0, extra: 1 } as never);
    } catch (error) {
      issues = (error as { issues: string[] }).issues;
    }
    expect(issues).toEqual(
      expect.arrayContaining([
        '/port: must be <= 65535',
        '/token: must NOT have fewer than 16 characters',
        '/maxConcurrent: must be >= 1',
        expect.stringMatching(/^\/: unknown property 'extra'; known: /),
      ]),
    );
    expect(issues).toHaveLength(4);
  });
});
