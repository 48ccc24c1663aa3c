import { defineConfig } from 'tsup';

export default defineConfig({
  // sft-loss: imported by URL in core-tensors' model worker threads.
  entry: ['src/index.ts', 'src/sft-loss.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
