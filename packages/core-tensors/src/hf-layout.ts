import type { ParameterSpec } from './model.js';

/** Matrices of linear layers are kept [in, out] in memory (fast matmul on every backend) and [out, in] in files (Hugging Face / PyTorch). */
export function isTransposedInFile(spec: ParameterSpec): boolean {
  return spec.shape.length === 2 && spec.name !== 'model.embed_tokens.weight';
}

export function fileShape(spec: ParameterSpec): number[] {
  return isTransposedInFile(spec) ? [spec.shape[1]!, spec.shape[0]!] : [...spec.shape];
}

export function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  // Blocked so both sides stay in cache for large matrices.
  const block = 64;
  for (let r0 = 0; r0 < rows; r0 += block) {
    for (let c0 = 0; c0 < cols; c0 += block) {
      const r1 = Math.min(rows, r0 + block);
      const c1 = Math.min(cols, c0 + block);
      for (let r = r0; r < r1; r++)
        for (let c = c0; c < c1; c++) out[c * rows + r] = values[r * cols + c]!;
    }
  }
  return out;
}
