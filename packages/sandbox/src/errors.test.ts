import { CodeReasonerError as CommonError } from '@codereasoner/common';
import { describe, expect, it } from 'vitest';
import { CodeReasonerError, ConfigValidationError, SandboxError } from './errors.js';

describe('errors', () => {
  it('extend the one base of @codereasoner/common: code, cause and the shared brand', () => {
    const cause = new Error('spawn python3 ENOENT');
    const error = new SandboxError('engine_unavailable', 'no python3', { cause });
    expect(error).toMatchObject({
      name: 'SandboxError',
      code: 'SANDBOX_ENGINE_UNAVAILABLE',
      kind: 'engine_unavailable',
    });
    expect(error.cause).toBe(cause);
    expect(CodeReasonerError.isInstance(error)).toBe(true);
    expect(CodeReasonerError.isInstance(new Error('plain'))).toBe(false);
    expect(error).toBeInstanceOf(CommonError);
    // An error from a second installed copy of the base class carries the same Symbol.for brand.
    const foreign = Object.assign(new Error('x'), { [Symbol.for('codereasoner.error')]: true });
    expect(CodeReasonerError.isInstance(foreign)).toBe(true);
  });

  it('lists every validation issue as path: message', () => {
    const error = new ConfigValidationError('Sandbox options', [
      '/workers: must be >= 1',
      '/engine: must be equal to one of the allowed values',
    ]);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.issues).toHaveLength(2);
    expect(error.message).toBe(
      'Sandbox options is invalid:\n  - /workers: must be >= 1\n  - /engine: must be equal to one of the allowed values',
    );
  });
});
