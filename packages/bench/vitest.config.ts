import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'bench',
    include: ['src/**/*.test.ts'],
    // the hooks start Pyodide sandboxes: seconds on an idle machine, far more on a loaded one,
    // and a test must not fail on a wall-clock bound
    hookTimeout: 180_000,
    // Tests score whole fixtures in the sandbox: a hang cap, not a speed check (5 s, vitest's
    // default, is passed under load by tests that take under a second on an idle machine).
    testTimeout: 300_000,
  },
});
