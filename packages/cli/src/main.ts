import { CommanderError } from 'commander';
import { describeError, exitCodeFor } from './errors.js';
import { InterruptedError, runningStageStopsOnSignal } from './pipeline.js';
import { createProgram } from './program.js';

/**
 * Runs `cr` with the given arguments and returns the exit code: 0 success, 1 failure, 2 bad usage
 * or config, 130 interrupted (Ctrl-C; a second Ctrl-C exits at once).
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts += 1;
    if (interrupts > 1 || !runningStageStopsOnSignal()) {
      process.stderr.write(
        '\ncr: stopped; run the same command again to resume from the last checkpoint\n',
      );
      process.exit(130);
    }
    process.stderr.write(
      '\ncr: interrupting after the current step (press Ctrl-C again to stop at once)\n',
    );
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const program = createProgram({
    stdout: process.stdout,
    stderr: process.stderr,
    env,
    signal: controller.signal,
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof InterruptedError) {
      process.stderr.write(`cr: ${error.message}\n`);
      return 130;
    }
    process.stderr.write(`cr: ${describeError(error)}\n`);
    return exitCodeFor(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
