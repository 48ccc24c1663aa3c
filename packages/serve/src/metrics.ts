/** Latency buckets in seconds (Prometheus' defaults stretched to a minute: a batch may take that long). */
export const LATENCY_BUCKETS_SECONDS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const;

/** Window over which `cr_verifications_per_second` is computed. */
const RATE_WINDOW_MS = 10_000;

interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

export interface GaugeSource {
  queueDepth(): number;
  inFlight(): number;
  workerRestarts(): number;
  draining(): boolean;
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function labels(pairs: Record<string, string>): string {
  const entries = Object.entries(pairs);
  if (entries.length === 0) return '';
  return `{${entries.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(',')}}`;
}

/**
 * The service's counters, rendered in the Prometheus text exposition format (version 0.0.4).
 * Hand-written rather than prom-client: a dozen series, no dependency, and the format is fixed.
 */
export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();
  private readonly verifications = new Map<string, number>();
  private readonly timeouts = new Map<string, number>();
  private readonly refused = new Map<string, number>();
  /** (time, count) of recent verifications, for the windowed rate. */
  private readonly recent: { at: number; count: number }[] = [];
  private readonly startedAt = Date.now();

  constructor(private readonly gauges: GaugeSource) {}

  observeRequest(route: string, status: number, seconds: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let histogram = this.latency.get(route);
    if (!histogram) {
      histogram = { buckets: LATENCY_BUCKETS_SECONDS.map(() => 0), sum: 0, count: 0 };
      this.latency.set(route, histogram);
    }
    LATENCY_BUCKETS_SECONDS.forEach((bound, index) => {
      if (seconds <= bound) histogram.buckets[index]! += 1;
    });
    histogram.sum += seconds;
    histogram.count += 1;
  }

  /** `kind`: the endpoint family (`verify`, `get_reward`, `run_code`); `outcome`: correct, incorrect, passed, failed, error. */
  observeVerifications(kind: string, outcome: string, count: number): void {
    if (count === 0) return;
    const key = `${kind}\u0000${outcome}`;
    this.verifications.set(key, (this.verifications.get(key) ?? 0) + count);
    const now = Date.now();
    this.recent.push({ at: now, count });
    while (this.recent.length > 0 && this.recent[0]!.at < now - RATE_WINDOW_MS) this.recent.shift();
  }

  observeTimeout(kind: 'request' | 'sandbox'): void {
    this.timeouts.set(kind, (this.timeouts.get(kind) ?? 0) + 1);
  }

  observeRefusal(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  verificationsPerSecond(): number {
    const now = Date.now();
    const window = Math.min(RATE_WINDOW_MS, Math.max(1, now - this.startedAt));
    const total = this.recent
      .filter((entry) => entry.at >= now - RATE_WINDOW_MS)
      .reduce((sum, entry) => sum + entry.count, 0);
    return total / (window / 1000);
  }

  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    family(
      'cr_http_requests_total',
      'counter',
      'HTTP requests answered, by route and status code.',
    );
    for (const [key, value] of this.requests) {
      const [route, status] = key.split('\u0000') as [string, string];
      lines.push(`cr_http_requests_total${labels({ route, status })} ${value}`);
    }
    family(
      'cr_http_request_duration_seconds',
      'histogram',
      'Time from receiving a request to answering it, queue wait included.',
    );
    for (const [route, histogram] of this.latency) {
      LATENCY_BUCKETS_SECONDS.forEach((bound, index) => {
        lines.push(
          `cr_http_request_duration_seconds_bucket${labels({ route, le: String(bound) })} ${histogram.buckets[index]}`,
        );
      });
      lines.push(
        `cr_http_request_duration_seconds_bucket${labels({ route, le: '+Inf' })} ${histogram.count}`,
        `cr_http_request_duration_seconds_sum${labels({ route })} ${histogram.sum}`,
        `cr_http_request_duration_seconds_count${labels({ route })} ${histogram.count}`,
      );
    }
    family(
      'cr_verifications_total',
      'counter',
      'Completions verified or programs run, by endpoint and outcome.',
    );
    for (const [key, value] of this.verifications) {
      const [kind, outcome] = key.split('\u0000') as [string, string];
      lines.push(`cr_verifications_total${labels({ kind, outcome })} ${value}`);
    }
    family('cr_verifications_per_second', 'gauge', 'Verifications per second over the last 10 s.');
    lines.push(`cr_verifications_per_second ${this.verificationsPerSecond()}`);
    family('cr_queue_depth', 'gauge', 'Requests waiting for an execution slot.');
    lines.push(`cr_queue_depth ${this.gauges.queueDepth()}`);
    family('cr_in_flight', 'gauge', 'Requests executing now.');
    lines.push(`cr_in_flight ${this.gauges.inFlight()}`);
    family('cr_draining', 'gauge', '1 while the service drains before shutting down.');
    lines.push(`cr_draining ${this.gauges.draining() ? 1 : 0}`);
    family(
      'cr_sandbox_worker_restarts_total',
      'counter',
      'Sandbox workers replaced after a hard timeout or a crash.',
    );
    lines.push(`cr_sandbox_worker_restarts_total ${this.gauges.workerRestarts()}`);
    family('cr_timeouts_total', 'counter', 'Request timeouts (504) and sandbox task timeouts.');
    for (const kind of ['request', 'sandbox']) {
      lines.push(`cr_timeouts_total${labels({ kind })} ${this.timeouts.get(kind) ?? 0}`);
    }
    family(
      'cr_rejected_total',
      'counter',
      'Requests refused before running: queue full (429) or draining (503).',
    );
    for (const reason of ['queue_full', 'draining']) {
      lines.push(`cr_rejected_total${labels({ reason })} ${this.refused.get(reason) ?? 0}`);
    }
    family('process_resident_memory_bytes', 'gauge', 'Resident memory of the service process.');
    lines.push(`process_resident_memory_bytes ${process.memoryUsage.rss()}`);
    return `${lines.join('\n')}\n`;
  }
}
