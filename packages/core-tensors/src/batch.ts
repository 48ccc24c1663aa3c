import * as tf from '@tensorflow/tfjs';
import { CodeReasonerError } from './errors.js';

/** Right-pads `sequences` with `padId` into int32 ids [B, T] and a float mask [B, T] (1 = real token). */
export function padBatch(
  sequences: readonly (readonly number[])[],
  padId: number,
): { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D } {
  if (sequences.length === 0)
    throw new CodeReasonerError('BATCH_EMPTY', 'padBatch needs at least one sequence');
  const time = Math.max(1, ...sequences.map((s) => s.length));
  const ids = new Int32Array(sequences.length * time).fill(padId);
  const mask = new Float32Array(sequences.length * time);
  sequences.forEach((s, b) => {
    for (let t = 0; t < s.length; t++) {
      const id = s[t]!;
      if (!Number.isInteger(id) || id < 0)
        throw new CodeReasonerError(
          'BATCH_INVALID',
          `sequence ${b} holds invalid token id ${id} at ${t}`,
        );
      ids[b * time + t] = id;
      mask[b * time + t] = 1;
    }
  });
  return {
    inputIds: tf.tensor2d(ids, [sequences.length, time], 'int32'),
    attentionMask: tf.tensor2d(mask, [sequences.length, time], 'float32'),
  };
}
