import { initBackend, type BackendReport } from '@codereasoner/core-tensors';
import { Sandbox } from '@codereasoner/sandbox';
import type { RunConfig } from './config.js';
import type { Reporter } from './progress.js';
import { RunDirectory } from './run-dir.js';

/** What every stage receives: the run, its config, where to report, and shared resources. */
export class StageContext {
  readonly run: RunDirectory;
  private sandboxPromise: Promise<Sandbox> | undefined;
  private backendPromise: Promise<BackendReport> | undefined;

  constructor(
    readonly config: RunConfig,
    readonly reporter: Reporter,
    readonly signal: AbortSignal,
  ) {
    this.run = new RunDirectory(config.out);
  }

  /** One sandbox pool for the whole command: starting Pyodide workers costs about a second each. */
  sandbox(): Promise<Sandbox> {
    this.sandboxPromise ??= Sandbox.create(this.config.sandbox);
    return this.sandboxPromise;
  }

  backend(): Promise<BackendReport> {
    this.backendPromise ??= initBackend({ backend: this.config.backend }).then((report) => {
      const skipped = report.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ');
      this.reporter.info(
        `tensor backend: ${report.active}${skipped ? ` (skipped ${skipped})` : ''}`,
      );
      return report;
    });
    return this.backendPromise;
  }

  readonly logger = {
    debug: (_message: string) => {},
    info: (message: string) => this.reporter.info(message),
    warn: (message: string) => this.reporter.warn(message),
  };

  async close(): Promise<void> {
    if (this.sandboxPromise) await (await this.sandboxPromise).close();
  }
}
