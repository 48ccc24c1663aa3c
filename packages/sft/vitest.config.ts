import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'sft',
    include: ['src/**/*.test.ts'],
  },
});
