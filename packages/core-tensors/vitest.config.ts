import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'core-tensors',
    include: ['src/**/*.test.ts'],
  },
});
