import { ConfigValidationError } from '@codereasoner/core-tensors';
import { describe, expect, it } from 'vitest';
import { describeError, errorEvent, exitCodeFor, RunStateError, UsageError } from './errors.js';

describe('describeError', () => {
  it('gives the message of an unexpected error, and its stack only with CR_DEBUG', () => {
    const error = new TypeError('cannot read properties of undefined');
    expect(describeError(error, {})).toBe(
      'cannot read properties of undefined\n  (an unexpected error; run with CR_DEBUG=1 for the stack trace)',
    );
    expect(describeError(error, { CR_DEBUG: '1' })).toContain('    at ');
  });
});

describe('exitCodeFor', () => {
  it('exits 2 for what the user must change, 1 for a failed stage', () => {
    expect(exitCodeFor(new UsageError('x'))).toBe(2);
    expect(exitCodeFor(new RunStateError('/r/sft/.done', 'x'))).toBe(2);
    expect(exitCodeFor(new ConfigValidationError('run config', ['/seed: x']))).toBe(2);
    expect(exitCodeFor(new Error('x'))).toBe(1);
  });
});

describe('errorEvent', () => {
  it('carries the code, the exit code, the message and the issues', () => {
    expect(errorEvent(new ConfigValidationError('run config', ['/seed: x']), 2)).toEqual({
      type: 'error',
      code: 'CONFIG_INVALID',
      exitCode: 2,
      message: 'run config is invalid:\n  - /seed: x',
      issues: ['/seed: x'],
    });
  });
});
