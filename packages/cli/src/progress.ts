import cliProgress from 'cli-progress';

import type { ProgressEvent } from '@codereasoner/common';

/** What every library's `onProgress` callback receives (defined in @codereasoner/common). */
export type { ProgressEvent } from '@codereasoner/common';

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
  /**
   * A line that arrives from outside the stage (a Ctrl-C notice): on a terminal the bar is closed
   * first, so the line is neither overprinted by the next redraw nor cut by the bar's no-wrap mode.
   */
  notice(message: string): void;
  /** Machine-readable result at the end of a command (only printed in json mode). */
  result(value: unknown): void;
  close(): void;
}

export interface ReporterOptions {
  json?: boolean;
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
  /** Seconds on a monotonic clock (tests pass their own). */
  clock?: () => number;
}

let active: Reporter | undefined;

/** The reporter of the command running now, so that a signal handler writes through it. */
export function activeReporter(): Reporter | undefined {
  return active;
}

const monotonicSeconds = () => performance.now() / 1000;

/**
 * Time left from the rate over the last `windowSeconds` of wall time (or since the start when
 * shorter). A rate over a few events swings with every slow step and with load; a rate over
 * minutes follows a lasting change and ignores a passing one. Time since the last event counts,
 * so a stalled step raises the estimate gradually instead of freezing it.
 */
export class EtaEstimator {
  private samples: { time: number; completed: number }[] = [];

  constructor(
    private readonly clock: () => number = monotonicSeconds,
    private readonly windowSeconds = 300,
  ) {}

  /** Records progress and returns the estimated seconds left, or undefined before any rate is known. */
  update(completed: number, total: number | undefined): number | undefined {
    const now = this.clock();
    const last = this.samples.at(-1);
    // a counter that went back (a new phase under the same name) starts a new estimate
    if (last && completed < last.completed) this.samples = [];
    if (this.samples.length === 0 || completed !== this.samples.at(-1)!.completed)
      this.samples.push({ time: now, completed });
    while (this.samples.length > 2 && now - this.samples[1]!.time >= this.windowSeconds)
      this.samples.shift();
    return this.estimate(total, now);
  }

  estimate(total: number | undefined, now: number = this.clock()): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (total === undefined || !first || !last || last.completed <= first.completed)
      return undefined;
    const rate = (last.completed - first.completed) / (now - first.time);
    if (!(rate > 0)) return undefined;
    return Math.max(0, total - last.completed) / rate;
  }
}

/**
 * Picks how to talk to the user: progress bars on a terminal, one line per stage and every few
 * seconds otherwise (CI logs), JSON lines with --json, nothing but warnings with --quiet.
 */
export function createReporter(options: ReporterOptions = {}): Reporter {
  const stream = options.stream ?? process.stderr;
  const env = options.env ?? process.env;
  const clock = options.clock ?? monotonicSeconds;
  let reporter: Reporter;
  if (options.json) reporter = new JsonReporter(process.stdout);
  else if (options.quiet) reporter = new PlainReporter(stream, 'quiet', clock);
  else if (stream.isTTY && env.CI !== 'true' && env.TERM !== 'dumb')
    reporter = new TtyReporter(stream, colorEnabled(env), clock);
  else reporter = new PlainReporter(stream, 'plain', clock);
  active = reporter;
  const close = reporter.close.bind(reporter);
  reporter.close = () => {
    close();
    if (active === reporter) active = undefined;
  };
  return reporter;
}

/** One estimator per progress stage, kept when the bar of another stage comes in between (SFT and its evaluations). */
class Estimates {
  private byStage = new Map<string, EtaEstimator>();

  constructor(private readonly clock: () => number) {}

  update(event: ProgressEvent): number | undefined {
    let estimator = this.byStage.get(event.stage);
    if (!estimator) {
      estimator = new EtaEstimator(this.clock);
      this.byStage.set(event.stage, estimator);
    }
    return estimator.update(event.completed, event.total);
  }
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
  if (seconds < 59.95) return `${seconds.toFixed(1)}s`; // 59.96 would print as 60.0s
  // round once, to whole seconds, before splitting: 479.6 s is 8m00s, not 7m60s
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  return `${minutes}m${String(whole - minutes * 60).padStart(2, '0')}s`;
}

class TtyReporter implements Reporter {
  readonly mode = 'tty';
  private bar: cliProgress.SingleBar | undefined;
  private barStage: string | undefined;
  private title = '';
  private readonly estimates: Estimates;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly color: boolean,
    clock: () => number,
  ) {
    this.estimates = new Estimates(clock);
  }

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
    const left = this.estimates.update(event);
    const payload = {
      detail: formatDetail(event.detail),
      eta: left === undefined ? '–' : formatSeconds(left),
    };
    if (!this.bar || this.barStage !== key) {
      this.stopBar();
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.stream,
          format: `  ${event.stage.padEnd(14)} [{bar}] {value}/{total} | ETA {eta} | {detail}`,
          barsize: 28,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 20,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(event.total, event.completed, payload);
      this.barStage = key;
      return;
    }
    this.bar.setTotal(event.total);
    this.bar.update(event.completed, payload);
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

  notice(message: string): void {
    this.stopBar();
    this.stream.write(`${message}\n`);
  }

  result(): void {}

  close(): void {
    this.stopBar();
  }
}

/** Line-oriented output for logs: a line per stage and a progress line at most every 5 s. */
class PlainReporter implements Reporter {
  private lastLine = new Map<string, number>();
  private readonly estimates: Estimates;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    readonly mode: 'plain' | 'quiet',
    private readonly clock: () => number = monotonicSeconds,
    private readonly intervalSeconds = 5,
  ) {
    this.estimates = new Estimates(clock);
  }

  stageStart(_stage: string, title: string): void {
    if (this.mode === 'quiet') return;
    this.stream.write(`> ${title}\n`);
  }

  progress(event: ProgressEvent): void {
    if (this.mode === 'quiet') return;
    const left = this.estimates.update(event);
    const now = this.clock();
    const last = this.lastLine.get(event.stage);
    const finished = event.total !== undefined && event.completed >= event.total;
    if (!finished && last !== undefined && now - last < this.intervalSeconds) return;
    this.lastLine.set(event.stage, now);
    const count =
      event.total === undefined ? `${event.completed}` : `${event.completed}/${event.total}`;
    const detail = formatDetail(event.detail);
    const eta = finished || left === undefined ? '' : ` ETA ${formatSeconds(left)}`;
    this.stream.write(`  ${event.stage} ${count}${eta}${detail ? ` ${detail}` : ''}\n`);
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

  notice(message: string): void {
    this.stream.write(`${message}\n`);
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

  notice(message: string): void {
    this.emit({ type: 'notice', message });
  }

  result(value: unknown): void {
    this.emit({ type: 'result', value });
  }

  close(): void {}
}
