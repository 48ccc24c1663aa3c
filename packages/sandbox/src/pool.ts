import { SandboxError } from './errors.js';
import type { EngineWorker, RawResult, TaskPayload } from './protocol.js';

interface Chunk {
  tasks: TaskPayload[];
  resolve: (results: RawResult[]) => void;
  reject: (error: unknown) => void;
}

/** Largest number of tasks sent to one worker in one round trip. */
const MAX_CHUNK = 256;

/**
 * Holds one worker and keeps it alive: when a round trip ends with the worker dead (killed after
 * a timeout, crashed, out of memory) it starts a replacement and sends the unanswered tasks again.
 */
class WorkerSlot {
  worker: EngineWorker | undefined;
  restarts = 0;
  closed = false;

  constructor(
    private readonly start: () => Promise<EngineWorker>,
    private readonly onStarted: (worker: EngineWorker) => void,
  ) {}

  async ensure(): Promise<EngineWorker> {
    if (this.worker === undefined) {
      const worker = await this.start();
      this.onStarted(worker);
      this.worker = worker;
    }
    return this.worker;
  }

  async run(tasks: TaskPayload[]): Promise<RawResult[]> {
    const results: (RawResult | undefined)[] = tasks.map(() => undefined);
    let pending = tasks.map((_, index) => index);
    let fruitless = 0;
    while (pending.length > 0) {
      if (this.closed)
        throw new SandboxError('closed', 'the sandbox was closed while these tasks ran');
      const worker = await this.ensure();
      const outcome = await worker.execute(pending.map((index) => tasks[index] as TaskPayload));
      const unanswered: number[] = [];
      outcome.results.forEach((result, position) => {
        const index = pending[position] as number;
        if (result === undefined) unanswered.push(index);
        else results[index] = result;
      });
      if (outcome.dead) {
        this.worker = undefined;
        this.restarts += 1;
        await worker.terminate().catch(() => undefined);
      }
      // A worker that dies without answering anything twice in a row is not going to: blame the
      // first task so the loop always ends.
      fruitless = unanswered.length === pending.length ? fruitless + 1 : 0;
      if (fruitless >= 2 && unanswered.length > 0) {
        const index = unanswered.shift() as number;
        results[index] = {
          status: 'sandbox_error',
          stdout: '',
          detail: 'the worker died repeatedly on this task',
          durationMs: 0,
        };
        fruitless = 0;
      }
      pending = unanswered;
    }
    return results as RawResult[];
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}

/** N workers pulling chunks of tasks from one queue. */
export class WorkerPool {
  readonly startupMs: number[] = [];
  pythonVersion = '';
  private readonly slots: WorkerSlot[];
  private readonly queue: Chunk[] = [];
  private readonly idle: WorkerSlot[] = [];
  private closed = false;

  private constructor(count: number, start: () => Promise<EngineWorker>) {
    const onStarted = (worker: EngineWorker): void => {
      this.startupMs.push(Math.round(worker.startupMs));
      this.pythonVersion = worker.pythonVersion;
    };
    this.slots = Array.from({ length: count }, () => new WorkerSlot(start, onStarted));
  }

  static async create(count: number, start: () => Promise<EngineWorker>): Promise<WorkerPool> {
    const pool = new WorkerPool(count, start);
    try {
      await Promise.all(pool.slots.map((slot) => slot.ensure()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    pool.idle.push(...pool.slots);
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  /** Peak memory of each live worker in bytes (0 when the engine cannot tell). */
  get peakMemoryBytes(): number[] {
    return this.slots.map((slot) => slot.worker?.peakMemoryBytes ?? 0);
  }

  get restarts(): number {
    return this.slots.reduce((sum, slot) => sum + slot.restarts, 0);
  }

  /** Run tasks across the workers; results come back in input order. */
  async submit(tasks: TaskPayload[]): Promise<RawResult[]> {
    if (this.closed)
      throw new SandboxError(
        'closed',
        'the sandbox is closed; create a new one with Sandbox.create()',
      );
    if (tasks.length === 0) return [];
    // Several chunks per worker so a slow chunk does not leave the others idle at the end.
    const size = Math.max(
      1,
      Math.min(MAX_CHUNK, Math.ceil(tasks.length / (this.slots.length * 4))),
    );
    const chunks: Promise<RawResult[]>[] = [];
    for (let offset = 0; offset < tasks.length; offset += size) {
      const part = tasks.slice(offset, offset + size);
      chunks.push(
        new Promise<RawResult[]>((resolve, reject) =>
          this.queue.push({ tasks: part, resolve, reject }),
        ),
      );
    }
    this.dispatch();
    return (await Promise.all(chunks)).flat();
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const slot = this.idle.pop() as WorkerSlot;
      const chunk = this.queue.shift() as Chunk;
      slot
        .run(chunk.tasks)
        .then(chunk.resolve, chunk.reject)
        .finally(() => {
          if (this.closed) return;
          this.idle.push(slot);
          this.dispatch();
        });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const chunk of this.queue.splice(0)) {
      chunk.reject(new SandboxError('closed', 'the sandbox was closed before this task ran'));
    }
    await Promise.all(this.slots.map((slot) => slot.close()));
  }
}
