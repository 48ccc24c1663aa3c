import { defineConfig } from 'tsup';

export default defineConfig({
  // Two entries: the chat client is its own file so that importing the protocol never loads
  // `openai` (an optional peer dependency only the chat client needs).
  entry: ['src/index.ts', 'src/chat-client.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
