import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'serve',
    include: ['src/**/*.test.ts'],
    // Sandbox start-up and hostile programs take seconds on a loaded 2-core machine: a hang
    // guard, not a speed assertion.
    testTimeout: 120_000,
  },
});
