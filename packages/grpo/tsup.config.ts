import { defineConfig } from 'tsup';

export default defineConfig({
  // shard-loss: imported by URL in core-tensors' model worker threads.
  entry: ['src/index.ts', 'src/shard-loss.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
