/** Why a request was not admitted: the queue is full (429) or the service is draining (503). */
export type Refusal = 'queue_full' | 'draining';

/**
 * Bounded admission: at most `maxConcurrent` requests run, at most `maxQueue` wait (first come,
 * first served); anything beyond is refused at once, never dropped silently. One per process:
 * the service keeps no other state, so N processes behind a load balancer scale linearly.
 */
export class Admission {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private draining = false;

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueue: number,
  ) {}

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Stop admitting; queued and running requests still finish. */
  drain(): void {
    this.draining = true;
  }

  /** A slot, or why not. Call the returned release exactly once when the work is done. */
  async acquire(): Promise<{ release: () => void } | { refused: Refusal }> {
    if (this.draining) return { refused: 'draining' };
    if (this.running < this.maxConcurrent) {
      this.running += 1;
      return { release: this.releaser() };
    }
    if (this.waiting.length >= this.maxQueue) return { refused: 'queue_full' };
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    return { release: this.releaser() };
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays the same.
      if (next) next();
      else this.running -= 1;
    };
  }
}
