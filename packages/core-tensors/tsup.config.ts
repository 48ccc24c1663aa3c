import { defineConfig } from 'tsup';

export default defineConfig({
  // model-worker, onnx-train-worker: the entries of the worker threads of createModelWorkerPool
  // and OnnxTrainPool, loaded by URL.
  entry: ['src/index.ts', 'src/model-worker.ts', 'src/onnx-train-worker.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
