#!/usr/bin/env node
import { main } from './main.js';

// `cr … | head` closes the pipe early: stop at once and quietly, with the exit status a program
// killed by SIGPIPE has (128 + 13), instead of an unhandled 'error' event and a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(141);
    throw error;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`cr: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
