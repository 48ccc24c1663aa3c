import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // hang caps, not speed checks: on a loaded 2-core machine a model-training test can take
    // minutes, and vitest's 5 s default turned that into failures that then leaked into the next test
    testTimeout: 300_000,
    hookTimeout: 300_000,
    name: 'sandbox',
    include: ['src/**/*.test.ts'],
  },
});
