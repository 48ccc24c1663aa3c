import { defineConfig } from 'tsup';

export default defineConfig({
  // model-worker: the entry of each worker thread of createModelWorkerPool, loaded by URL.
  entry: ['src/index.ts', 'src/model-worker.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
