import { defineConfig } from 'tsup';

export default defineConfig({
  // The worker script is a second entry: Pyodide runs in worker threads started from that file.
  entry: ['src/index.ts', 'src/pyodide-worker.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
});
