import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** Path of python/harness.py: one level above both src/ (tests) and dist/ (published). */
export function harnessPath(): string {
  return fileURLToPath(new URL('../python/harness.py', import.meta.url));
}

export function harnessSource(): string {
  cached ??= readFileSync(harnessPath(), 'utf8');
  return cached;
}

/** The Pyodide worker script: dist/pyodide-worker.js next to dist/index.js, or from src/ in tests. */
export function pyodideWorkerUrl(): URL {
  const beside = new URL('./pyodide-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL('../dist/pyodide-worker.js', import.meta.url);
}
