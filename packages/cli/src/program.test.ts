import { describe, expect, it } from 'vitest';
import { checkpointLabel } from './program.js';

describe('checkpointLabel', () => {
  it('names a trainer checkpoint by its stage and step', () => {
    expect(checkpointLabel('runs/x/grpo/train/checkpoints/step-00000080')).toBe(
      'grpo-step-00000080',
    );
    expect(checkpointLabel('/r/sft/train/checkpoints/step-00000540/')).toBe('sft-step-00000540');
  });

  it('names any other directory by its last part', () => {
    expect(checkpointLabel('/models/my-model')).toBe('my-model');
  });
});
