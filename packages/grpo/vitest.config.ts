import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'grpo',
    include: ['src/**/*.test.ts'],
  },
});
