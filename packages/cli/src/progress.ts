import cliProgress from 'cli-progress';

/** What every library's `onProgress` callback receives (see docs/contracts.md). */
export interface ProgressEvent {
  stage: string;
  completed: number;
  total?: number;
  detail?: Record<string, number | string>;
}

export type OutputMode = 'tty' | 'plain' | 'json' | 'quiet';

export interface Reporter {
  readonly mode: OutputMode;
  /** A stage begins; `title` is what a person reads. */
  stageStart(stage: string, title: string): void;
  progress(event: ProgressEvent): void;
  stageEnd(
    stage: string,
    outcome: { status: 'done' | 'skipped' | 'failed'; seconds: number; note?: string },
  ): void;
  info(message: string): void;
  warn(message: string): void;
  /** Machine-readable result at the end of a command (only printed in json mode). */
  result(value: unknown): void;
  close(): void;
}

export interface ReporterOptions {
  json?: boolean;
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}

/**
 * Picks how to talk to the user: progress bars on a terminal, one line per stage and every few
 * seconds otherwise (CI logs), JSON lines with --json, nothing but warnings with --quiet.
 */
export function createReporter(options: ReporterOptions = {}): Reporter {
  const stream = options.stream ?? process.stderr;
  const env = options.env ?? process.env;
  if (options.json) return new JsonReporter(process.stdout);
  if (options.quiet) return new PlainReporter(stream, 'quiet');
  if (stream.isTTY && env.CI !== 'true' && env.TERM !== 'dumb') {
    return new TtyReporter(stream, colorEnabled(env));
  }
  return new PlainReporter(stream, 'plain');
}

/** NO_COLOR (https://no-color.org) wins over FORCE_COLOR. */
export function colorEnabled(env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return true;
}

function formatDetail(detail: ProgressEvent['detail']): string {
  if (!detail) return '';
  return Object.entries(detail)
    .map(([key, value]) => `${key}=${typeof value === 'number' ? formatNumber(value) : value}`)
    .join(' ');
}

export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 0.001 || abs >= 1e6)) return value.toExponential(2);
  return value.toFixed(abs < 1 ? 4 : 2);
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.round(seconds - minutes * 60)).padStart(2, '0')}s`;
}

class TtyReporter implements Reporter {
  readonly mode = 'tty';
  private bar: cliProgress.SingleBar | undefined;
  private barStage: string | undefined;
  private title = '';

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly color: boolean,
  ) {}

  private paint(code: number, text: string): string {
    return this.color ? `\u001b[${code}m${text}\u001b[0m` : text;
  }

  stageStart(stage: string, title: string): void {
    this.stopBar();
    this.title = title;
    this.stream.write(`${this.paint(1, '▶')} ${title}\n`);
    void stage;
  }

  progress(event: ProgressEvent): void {
    if (event.total === undefined) return;
    const key = `${event.stage}`;
    if (!this.bar || this.barStage !== key) {
      this.stopBar();
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.stream,
          format: `  ${event.stage.padEnd(14)} [{bar}] {value}/{total} | ETA {eta_formatted} | {detail}`,
          barsize: 28,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 20,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(event.total, event.completed, { detail: formatDetail(event.detail) });
      this.barStage = key;
      return;
    }
    this.bar.setTotal(event.total);
    this.bar.update(event.completed, { detail: formatDetail(event.detail) });
  }

  private stopBar(): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
      this.barStage = undefined;
    }
  }

  stageEnd(
    _stage: string,
    outcome: { status: 'done' | 'skipped' | 'failed'; seconds: number; note?: string },
  ): void {
    this.stopBar();
    const mark =
      outcome.status === 'done'
        ? this.paint(32, '✔')
        : outcome.status === 'skipped'
          ? this.paint(90, '↷')
          : this.paint(31, '✖');
    const note = outcome.note ? ` (${outcome.note})` : '';
    this.stream.write(
      `${mark} ${this.title} ${outcome.status} in ${formatSeconds(outcome.seconds)}${note}\n`,
    );
  }

  info(message: string): void {
    this.stopBar();
    this.stream.write(`${message}\n`);
  }

  warn(message: string): void {
    this.stopBar();
    this.stream.write(`${this.paint(33, 'warning:')} ${message}\n`);
  }

  result(): void {}

  close(): void {
    this.stopBar();
  }
}

/** Line-oriented output for logs: a line per stage and a progress line at most every 5 s. */
class PlainReporter implements Reporter {
  private lastLine = new Map<string, number>();

  constructor(
    private readonly stream: NodeJS.WriteStream,
    readonly mode: 'plain' | 'quiet',
    private readonly intervalMs = 5000,
  ) {}

  stageStart(_stage: string, title: string): void {
    if (this.mode === 'quiet') return;
    this.stream.write(`> ${title}\n`);
  }

  progress(event: ProgressEvent): void {
    if (this.mode === 'quiet') return;
    const now = Date.now();
    const last = this.lastLine.get(event.stage) ?? 0;
    const finished = event.total !== undefined && event.completed >= event.total;
    if (!finished && now - last < this.intervalMs) return;
    this.lastLine.set(event.stage, now);
    const count =
      event.total === undefined ? `${event.completed}` : `${event.completed}/${event.total}`;
    const detail = formatDetail(event.detail);
    this.stream.write(`  ${event.stage} ${count}${detail ? ` ${detail}` : ''}\n`);
  }

  stageEnd(
    stage: string,
    outcome: { status: 'done' | 'skipped' | 'failed'; seconds: number; note?: string },
  ): void {
    if (this.mode === 'quiet' && outcome.status !== 'failed') return;
    const note = outcome.note ? ` (${outcome.note})` : '';
    this.stream.write(`  ${stage} ${outcome.status} in ${formatSeconds(outcome.seconds)}${note}\n`);
  }

  info(message: string): void {
    if (this.mode === 'quiet') return;
    this.stream.write(`${message}\n`);
  }

  warn(message: string): void {
    this.stream.write(`warning: ${message}\n`);
  }

  result(): void {}

  close(): void {}
}

/** One JSON object per line on stdout: events while running, then `{"type":"result",...}`. */
class JsonReporter implements Reporter {
  readonly mode = 'json';
  private lastProgress = new Map<string, number>();

  constructor(private readonly stream: NodeJS.WritableStream) {}

  private emit(value: Record<string, unknown>): void {
    this.stream.write(`${JSON.stringify({ time: new Date().toISOString(), ...value })}\n`);
  }

  stageStart(stage: string, title: string): void {
    this.emit({ type: 'stage-start', stage, title });
  }

  progress(event: ProgressEvent): void {
    const now = Date.now();
    const finished = event.total !== undefined && event.completed >= event.total;
    if (!finished && now - (this.lastProgress.get(event.stage) ?? 0) < 1000) return;
    this.lastProgress.set(event.stage, now);
    this.emit({ type: 'progress', ...event });
  }

  stageEnd(stage: string, outcome: { status: string; seconds: number; note?: string }): void {
    this.emit({ type: 'stage-end', stage, ...outcome });
  }

  info(message: string): void {
    this.emit({ type: 'info', message });
  }

  warn(message: string): void {
    this.emit({ type: 'warning', message });
  }

  result(value: unknown): void {
    this.emit({ type: 'result', value });
  }

  close(): void {}
}
