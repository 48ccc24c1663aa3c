import { describe, expect, it } from 'vitest';
import { CheckpointError, CodeReasonerError, ConfigValidationError } from './errors.js';

describe('CodeReasonerError', () => {
  it('carries a code and a cause and is recognised by its brand', () => {
    const cause = new Error('disk full');
    const error = new CheckpointError('/tmp/ckpt', 'truncated header', { cause });
    expect(error.code).toBe('CHECKPOINT_INVALID');
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('Checkpoint /tmp/ckpt: truncated header');
    expect(CodeReasonerError.isInstance(error)).toBe(true);
    expect(CodeReasonerError.isInstance(new Error('plain'))).toBe(false);
  });

  it('recognises a structurally branded error from another copy of the package', () => {
    const foreign = Object.assign(new Error('x'), { [Symbol.for('codereasoner.error')]: true });
    expect(CodeReasonerError.isInstance(foreign)).toBe(true);
  });

  it('lists every validation issue as path: message', () => {
    const error = new ConfigValidationError('model config', [
      '/hiddenSize: must be >= 8',
      '/numLayers: must be integer',
    ]);
    expect(error.issues).toHaveLength(2);
    expect(error.message).toContain(
      '  - /hiddenSize: must be >= 8\n  - /numLayers: must be integer',
    );
  });
});
