import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from './config.js';
import { ModelInputError, parameterSpecs } from './model.js';
import type { TrainGraphOptions } from './onnx-train-graph.js';
import { OnnxTrainStep, type OnnxTrainBatch } from './onnx-trainer.js';
import {
  ModelWorkerError,
  remoteCause,
  resolveTsxApi,
  type RemoteError,
} from './worker-protocol.js';

/*
 * Data parallelism for the ONNX training graph. onnxruntime-node's `session.run` runs the graph on
 * the calling thread (its binding's Run is synchronous; the promise only defers it with
 * setImmediate), so two sessions in one thread run one after the other. Intra-op threads split
 * each kernel instead, and at the cli default's 16 × 512 step two of them gave no more GFLOP/s
 * per CPU second than one (README, "ONNX training on two threads"). The pool instead runs whole
 * batches on worker threads, each with its own single-threaded session, and sums the results in
 * batch order, so the sum does not depend on which worker ran which batch or when it finished.
 */

/** Where each weight lies in the shared weight buffer (`parameterSpecs` order). */
export interface OnnxTrainWeightSlot {
  name: string;
  offset: number;
  size: number;
}

/** The data a training worker starts with (`workerData`). */
export interface OnnxTrainWorkerInit {
  config: ModelConfig;
  graph: TrainGraphOptions;
  /** float32 weights at `layout`'s offsets, rewritten by the main thread before each step. */
  weights: SharedArrayBuffer;
  layout: OnnxTrainWeightSlot[];
}

export type OnnxTrainWorkerRequest =
  { type: 'run'; id: number; batch: OnnxTrainBatch } | { type: 'close' };

export type OnnxTrainWorkerReply =
  | { type: 'ready' }
  | { type: 'start-failed'; error: RemoteError }
  /** `gradients` in `layout` order. */
  | {
      type: 'result';
      id: number;
      loss: number;
      gradients: Float32Array[];
      /** The graph's row outputs when it has them (`TrainGraphOptions.logProbs` / `entropy`). */
      logProbs?: Float32Array;
      entropy?: Float32Array;
    }
  | { type: 'error'; id: number; error: RemoteError };

/** One batch's loss and gradients (and its rows' log-probs and entropy when the graph outputs them). */
export interface OnnxTrainBatchResult {
  loss: number;
  gradients: Map<string, Float32Array>;
  logProbs?: Float32Array;
  entropy?: Float32Array;
}
type BatchResult = OnnxTrainBatchResult;

/**
 * Sums batches' losses and gradients in the order given, starting from the first batch's arrays
 * (they are modified): the same additions, in the same order, whichever thread computed what.
 */
export function sumInOrder(results: readonly BatchResult[]): BatchResult {
  let loss = 0;
  let gradients: Map<string, Float32Array> | undefined;
  for (const result of results) {
    loss += result.loss;
    if (gradients === undefined) {
      gradients = result.gradients;
      continue;
    }
    for (const [name, sum] of gradients) {
      const add = result.gradients.get(name)!;
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + add[i]!;
    }
  }
  return { loss, gradients: gradients ?? new Map() };
}

/** Starts a worker thread on the built entry, or on the TypeScript source through tsx when this module runs from source (tests). */
function spawnWorker(init: OnnxTrainWorkerInit): Worker {
  const here = import.meta.url;
  if (!/\.ts$/.test(new URL(here).pathname))
    return new Worker(new URL('./onnx-train-worker.js', here), { workerData: init });
  const tsx = resolveTsxApi(fileURLToPath(here));
  if (tsx === undefined)
    throw new ModelWorkerError(
      'MODEL_WORKER_START_FAILED',
      'core-tensors is running from its TypeScript sources and tsx, needed to start worker threads from them, is not installed; build the package (pnpm build) or install tsx',
    );
  const entry = new URL('./onnx-train-worker.ts', here).href;
  const source = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(source, { eval: true, workerData: init });
}

/** A training worker thread: one request at a time, answered by id. */
class TrainWorker {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (result: BatchResult) => void; reject: (error: Error) => void }
  >();
  private failure: ModelWorkerError | undefined;
  private closing = false;
  private exited = false;

  private constructor(
    private readonly worker: Worker,
    private readonly index: number,
    private readonly layout: readonly OnnxTrainWeightSlot[],
  ) {
    worker.on('message', (reply: OnnxTrainWorkerReply) => {
      if (reply.type !== 'result' && reply.type !== 'error') return;
      const waiting = this.pending.get(reply.id);
      if (waiting === undefined) return;
      this.pending.delete(reply.id);
      if (reply.type === 'error') {
        waiting.reject(
          new ModelWorkerError(
            'MODEL_WORKER_TASK_FAILED',
            `onnx training worker ${index}: ${reply.error.message}`,
            { cause: remoteCause(reply.error), workerIndex: index },
          ),
        );
        return;
      }
      const gradients = new Map<string, Float32Array>();
      layout.forEach((slot, k) => gradients.set(slot.name, reply.gradients[k]!));
      waiting.resolve({
        loss: reply.loss,
        gradients,
        ...(reply.logProbs === undefined ? {} : { logProbs: reply.logProbs }),
        ...(reply.entropy === undefined ? {} : { entropy: reply.entropy }),
      });
    });
    const fail = (error: ModelWorkerError) => {
      this.failure ??= error;
      for (const waiting of this.pending.values()) waiting.reject(this.failure);
      this.pending.clear();
    };
    worker.on('error', (error) =>
      fail(
        new ModelWorkerError(
          'MODEL_WORKER_CRASHED',
          `onnx training worker ${index} crashed: ${error.message}`,
          { cause: error, workerIndex: index },
        ),
      ),
    );
    worker.on('exit', (code) => {
      this.exited = true;
      if (!this.closing)
        fail(
          new ModelWorkerError(
            'MODEL_WORKER_CRASHED',
            `onnx training worker ${index} exited (code ${code}) while the pool was open`,
            { workerIndex: index },
          ),
        );
    });
  }

  /** Spawns the thread and waits until its session is open. */
  static async start(
    init: OnnxTrainWorkerInit,
    index: number,
    layout: readonly OnnxTrainWeightSlot[],
  ): Promise<TrainWorker> {
    const worker = spawnWorker(init);
    await new Promise<void>((resolve, reject) => {
      const startFailed = (message: string, cause?: unknown) => {
        reject(
          new ModelWorkerError(
            'MODEL_WORKER_START_FAILED',
            `onnx training worker ${index} did not start: ${message}`,
            { cause, workerIndex: index },
          ),
        );
        void worker.terminate();
      };
      const onMessage = (reply: OnnxTrainWorkerReply) => {
        if (reply.type === 'ready') {
          cleanup();
          resolve();
        } else if (reply.type === 'start-failed') {
          cleanup();
          startFailed(reply.error.message, remoteCause(reply.error));
        }
      };
      const onError = (error: Error) => {
        cleanup();
        startFailed(error.message, error);
      };
      const onExit = (code: number) => {
        cleanup();
        startFailed(`it exited with code ${code}`);
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    return new TrainWorker(worker, index, layout);
  }

  run(batch: OnnxTrainBatch): Promise<BatchResult> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'run', id, batch } satisfies OnnxTrainWorkerRequest);
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.exited) return;
    if (this.failure !== undefined) {
      await this.worker.terminate();
      return;
    }
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies OnnxTrainWorkerRequest);
    await exited;
  }
}

/**
 * Runs the ONNX training graph of one model config over several batches: each batch on one
 * single-threaded session (on a worker thread each when `workers` > 1, in-process when 1), the
 * losses and gradients summed in batch order. A batch's numbers come from the same graph on one
 * thread wherever it runs, so `run`'s result is the same bits for any number of workers and any
 * timing (tested against `OnnxTrainStep` run batch by batch).
 */
export class OnnxTrainPool {
  private released = false;
  private busy = false;

  private constructor(
    readonly config: ModelConfig,
    private readonly inProcess: OnnxTrainStep | undefined,
    private readonly workers: readonly TrainWorker[],
    private readonly shared: Float32Array | undefined,
    private readonly layout: readonly OnnxTrainWeightSlot[],
  ) {}

  /** Threads the pool computes on (1: in-process). */
  get size(): number {
    return Math.max(1, this.workers.length);
  }

  /**
   * Opens `workers` single-threaded sessions over `buildTrainGraph(config, options)`, on worker
   * threads when more than 1. Throws
   * ModelWorkerError MODEL_WORKER_START_FAILED when a thread does not start (e.g. onnxruntime-node
   * does not load there), or onnxruntime's error when the in-process session does not open.
   */
  static async create(
    config: ModelConfig,
    workers = 1,
    options: TrainGraphOptions = {},
  ): Promise<OnnxTrainPool> {
    if (!Number.isInteger(workers) || workers < 1)
      throw new ModelInputError(
        `onnx training pool: workers must be an integer ≥ 1, got ${workers}`,
      );
    const layout: OnnxTrainWeightSlot[] = [];
    let total = 0;
    for (const spec of parameterSpecs(config)) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      layout.push({ name: spec.name, offset: total, size });
      total += size;
    }
    if (workers === 1) {
      const step = await OnnxTrainStep.create(config, 1, options);
      return new OnnxTrainPool(config, step, [], undefined, layout);
    }
    const buffer = new SharedArrayBuffer(total * Float32Array.BYTES_PER_ELEMENT);
    const init: OnnxTrainWorkerInit = { config, graph: options, weights: buffer, layout };
    const started = await Promise.allSettled(
      Array.from({ length: workers }, (_, index) => TrainWorker.start(init, index, layout)),
    );
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(
        started.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)),
      );
      throw (failed as PromiseRejectedResult).reason;
    }
    const opened = started.map((s) => (s as PromiseFulfilledResult<TrainWorker>).value);
    return new OnnxTrainPool(config, undefined, opened, new Float32Array(buffer), layout);
  }

  /**
   * Loss and gradients summed over `batches` (each batch's `divisor` should be the step's, so the
   * sum is the step's loss), with the weights by Hugging Face name. Gradients as
   * `OnnxTrainStep.run` gives them; no batch: loss 0 and no gradient. One run at a time.
   */
  async run(
    weights: ReadonlyMap<string, Float32Array>,
    batches: readonly OnnxTrainBatch[],
  ): Promise<BatchResult> {
    return sumInOrder(await this.runEach(weights, batches));
  }

  /**
   * Each batch's own result, in batch order (GRPO reads each micro-batch's row log-probs and
   * entropy); the same sessions and scheduling as `run`. One run at a time.
   */
  async runEach(
    weights: ReadonlyMap<string, Float32Array>,
    batches: readonly OnnxTrainBatch[],
  ): Promise<BatchResult[]> {
    if (this.released)
      throw new ModelWorkerError('MODEL_WORKER_CLOSED', 'onnx training pool: run after release()');
    if (this.busy)
      throw new ModelWorkerError(
        'MODEL_WORKER_TASK_FAILED',
        'onnx training pool: run while another run is in flight (the weights buffer is shared); await each run',
      );
    this.busy = true;
    try {
      const results: BatchResult[] = [];
      if (this.inProcess !== undefined) {
        for (const batch of batches) results.push(await this.inProcess.run(weights, batch));
        return results;
      }
      for (const slot of this.layout) {
        const value = weights.get(slot.name);
        if (value === undefined)
          throw new ModelInputError(`onnx training step: missing weight ${slot.name}`);
        if (value.length !== slot.size)
          throw new ModelInputError(
            `onnx training step: weight ${slot.name} holds ${value.length} values, its shape needs ${slot.size}`,
          );
        this.shared!.set(value, slot.offset);
      }
      // each free worker takes the next batch; results land at their batch's index
      let next = 0;
      await Promise.all(
        this.workers.map(async (worker) => {
          while (next < batches.length) {
            const index = next++;
            results[index] = await worker.run(batches[index]!);
          }
        }),
      );
      return results;
    } finally {
      this.busy = false;
    }
  }

  /** Closes the threads or the session (once; later calls do nothing). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.inProcess?.release();
    await Promise.all(this.workers.map((worker) => worker.close()));
  }
}
