import { CommanderError } from 'commander';
import { describeError, errorEvent, exitCodeFor } from './errors.js';
import { InterruptedError, runningStageStopsOnSignal } from './pipeline.js';
import { createProgram } from './program.js';
import { activeReporter } from './progress.js';

/** `--json` anywhere before `--`: errors then also go to stdout as an event, like everything else. */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** Through the running command's reporter when there is one, so a progress bar does not overprint it. */
function notice(message: string): void {
  const reporter = activeReporter();
  if (reporter) reporter.notice(message);
  else process.stderr.write(`${message}\n`);
}

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
      notice('cr: stopped; run the same command again to resume from the last checkpoint');
      activeReporter()?.close();
      process.exit(130);
    }
    notice('cr: interrupting after the current step (press Ctrl-C again to stop at once)');
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
  const json = wantsJson(argv);
  const fail = (error: unknown, code: number, message: string | undefined) => {
    if (message !== undefined) process.stderr.write(`cr: ${message}\n`);
    if (json)
      process.stdout.write(
        `${JSON.stringify({ time: new Date().toISOString(), ...errorEvent(error, code) })}\n`,
      );
    return code;
  };
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander
      return error.exitCode === 0 ? 0 : fail(error, 2, undefined);
    }
    if (error instanceof InterruptedError) return fail(error, 130, error.message);
    return fail(error, exitCodeFor(error), describeError(error, env));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
