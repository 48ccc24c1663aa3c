import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from './backend.js';
import {
  ModelInputError,
  type CausalLM,
  type GenerateOptions,
  type GenerationEngineReport,
  type GenerationOutput,
} from './model.js';
import { OptimizerError } from './optimizer.js';
import {
  checkShardData,
  loadLoss,
  lossModuleUrl,
  ModelWorkerError,
  remoteCause,
  resolveTsxApi,
  shardGradient,
  ShardSum,
  weightLayout,
  type LayoutEntry,
  type RemoteError,
  type ShardArray,
  type ShardData,
  type WorkerInit,
  type WorkerLoss,
  type WorkerLossRef,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

export interface ModelWorkerPoolOptions {
  /** The model the replicas copy; its weights are re-shared before every call, so train it in place as usual. */
  model: CausalLM;
  /** Worker threads: 0 or 1 = none (every call runs in-process on `model`); `auto` (default) = `defaultWorkerCount()`. */
  workers?: number | 'auto';
}

/** One shard of a gradient call: its inputs, its weight in the sum (default 1) and options merged over the call's. */
export interface GradientShard<O> {
  data: ShardData;
  weight?: number;
  options?: Partial<O>;
}

export interface ParallelGradientRequest<O> {
  loss: WorkerLossRef;
  shards: GradientShard<O>[];
  /** Passed to every shard's loss (structured-cloneable data). */
  options?: O;
  /** `sum` (default): Σ weight·∇loss and Σ weight·loss; `mean`: both divided by Σ weight, as `GradientAccumulator.mean`. */
  reduce?: 'sum' | 'mean';
}

export interface ParallelGradients {
  /** Σ weight·loss over shards (divided by Σ weight with `reduce: 'mean'`). */
  loss: number;
  /** Keyed by the variable names of the pool's model, ready for `clipByGlobalNorm` and `AdamW`; the caller disposes them. */
  grads: tf.NamedTensorMap;
  /** Per shard, in the order given: its loss and the outputs its loss function returned. */
  shards: { loss: number; outputs: Record<string, ShardArray> }[];
}

interface Slot {
  index: number;
  worker: Worker;
  task: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;
}

/** The active backend's name, for the workers to start the same one. */
function activeBackend(): BackendName {
  return tf.getBackend() as BackendName;
}

/**
 * Worker threads `createModelWorkerPool` starts by default: every available core on the wasm and
 * cpu backends (single-threaded in Node), 1 (none) on the native tensorflow backend, which
 * already spreads each op over all cores.
 */
export function defaultWorkerCount(backend: string = activeBackend()): number {
  if (backend === 'tensorflow') return 1;
  return Math.max(1, availableParallelism());
}

/** Starts a worker thread on the built entry, or on the TypeScript source through tsx when this module itself runs from source (tests). */
function spawnWorker(init: WorkerInit): Worker {
  const here = import.meta.url;
  if (!/\.ts$/.test(new URL(here).pathname))
    return new Worker(new URL('./model-worker.js', here), { workerData: init });
  const tsx = resolveTsxApi(fileURLToPath(here));
  if (tsx === undefined) {
    throw new ModelWorkerError(
      'MODEL_WORKER_START_FAILED',
      'core-tensors is running from its TypeScript sources and tsx, needed to start worker threads from them, is not installed; build the package (pnpm build) or install tsx',
    );
  }
  const entry = new URL('./model-worker.ts', here).href;
  const source = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(source, { eval: true, workerData: init });
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/**
 * Data parallelism over Node worker threads: each thread holds a replica of one model (same
 * config, same backend), kept equal to it through a SharedArrayBuffer that is refreshed at the
 * start of every call (a compare-and-copy of the weights, ~4 MB for the default model).
 *
 * - `computeGradients` runs a loss module on shards of a batch, one shard per thread at a time,
 *   and sums the shards' gradients in shard order on the main thread, so the result does not
 *   depend on timing and equals the in-process computation.
 * - `generate` hands whole batches of a `CausalLM.generate` call to the threads, with each
 *   prompt's sampling stream, so every output is the one the model itself would produce.
 *
 * With no threads (`workers` 0 or 1) both run in-process on the model. Calls are queued (one at a
 * time). A thread that dies breaks the pool: pending and later calls reject with a
 * `ModelWorkerError` (`MODEL_WORKER_CRASHED`); `close()` always ends every thread. Idle threads
 * do not keep Node alive.
 */
export class ModelWorkerPool {
  readonly model: CausalLM;
  /** Worker threads (0: every call runs in-process). */
  readonly size: number;
  /** The backend every replica runs on (the main thread's). */
  readonly backend: BackendName;
  private readonly layout: LayoutEntry[];
  private readonly total: number;
  private readonly weights: Float32Array | undefined;
  private readonly slots: Slot[] = [];
  private readonly losses = new Map<string, WorkerLoss<unknown>>();
  private version = 0;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: ModelWorkerError | undefined;
  private closing: Promise<void> | undefined;

  private constructor(model: CausalLM, size: number, backend: BackendName) {
    this.model = model;
    this.size = size;
    this.backend = backend;
    const { entries, total } = weightLayout(model);
    this.layout = entries;
    this.total = total;
    this.weights = size > 0 ? new Float32Array(new SharedArrayBuffer(total * 4)) : undefined;
  }

  /** Starts the threads and waits until every replica is ready (about a second: each loads TensorFlow.js and its backend). */
  static async create(options: ModelWorkerPoolOptions): Promise<ModelWorkerPool> {
    const backend = activeBackend();
    const requested = options.workers ?? 'auto';
    if (requested !== 'auto' && !(Number.isInteger(requested) && requested >= 0)) {
      throw new ModelInputError(
        `workers must be a non-negative integer or 'auto', got ${String(requested)}`,
      );
    }
    const count = requested === 'auto' ? defaultWorkerCount(backend) : requested;
    if (count > 1 && options.model.loraConfig !== undefined) {
      // Replicas copy the base weights only; sharing adapters is not implemented.
      throw new ModelWorkerError(
        'MODEL_WORKER_START_FAILED',
        `workers: ${count} with a model that has LoRA adapters: worker threads replicate base weights only; use workers: 1`,
      );
    }
    if (count > 1 && backend === 'tensorflow') {
      throw new ModelWorkerError(
        'MODEL_WORKER_BACKEND',
        `workers: ${count} with the native tensorflow backend, which already spreads every op over all cores; use workers: 'auto' or 1 there`,
      );
    }
    const pool = new ModelWorkerPool(options.model, count > 1 ? count : 0, backend);
    if (pool.size > 0) await pool.start();
    return pool;
  }

  private async start(): Promise<void> {
    this.writeWeights();
    const ready: Promise<void>[] = [];
    for (let index = 0; index < this.size; index++) {
      const init: WorkerInit = {
        index,
        backend: this.backend,
        config: this.model.config,
        attention: this.model.attention,
        weights: this.weights!.buffer as SharedArrayBuffer,
        layout: this.layout,
        total: this.total,
      };
      let worker: Worker;
      try {
        worker = spawnWorker(init);
      } catch (error) {
        await this.close();
        throw error;
      }
      const slot: Slot = { index, worker, task: undefined };
      this.slots.push(slot);
      const isReady = new Promise<void>((resolve, reject) => {
        slot.task = {
          resolve: (reply) => {
            if (reply.type === 'ready') resolve();
            else if (reply.type === 'start-failed') reject(remoteCause(reply.error));
            else reject(new Error(`unexpected first message ${reply.type}`));
          },
          reject,
        };
      });
      // Settled below with allSettled; marked handled now in case a later spawn throws first.
      isReady.catch(() => undefined);
      ready.push(isReady);
      worker.on('message', (reply: WorkerReply) => {
        const task = slot.task;
        slot.task = undefined;
        task?.resolve(reply);
      });
      worker.on('error', (error) =>
        this.crash(slot, `uncaught ${error.name}: ${error.message}`, error),
      );
      worker.on('exit', (code) => this.crash(slot, `exited with code ${code}`));
    }
    const started = await Promise.allSettled(ready);
    const failed = started.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      const reason = (started[failed] as PromiseRejectedResult).reason as Error;
      await this.close();
      throw new ModelWorkerError(
        'MODEL_WORKER_START_FAILED',
        `model worker ${failed + 1} of ${this.size} did not start: ${reason.message}`,
        { cause: reason, workerIndex: failed },
      );
    }
    for (const slot of this.slots) slot.worker.unref();
  }

  private crash(slot: Slot, reason: string, cause?: unknown): void {
    if (this.closing !== undefined) return;
    this.failure ??= new ModelWorkerError(
      'MODEL_WORKER_CRASHED',
      `model worker ${slot.index + 1} of ${this.size} stopped (${reason}); the pool cannot be used any more: close it (await pool.close()) and create a new one`,
      { cause, workerIndex: slot.index },
    );
    for (const s of this.slots) {
      const task = s.task;
      s.task = undefined;
      task?.reject(this.failure);
    }
    // A pool with a missing replica cannot run anything: free the other threads now.
    for (const s of this.slots) if (s !== slot) void s.worker.terminate();
  }

  private assertUsable(): void {
    if (this.closing !== undefined)
      throw new ModelWorkerError(
        'MODEL_WORKER_CLOSED',
        'the model worker pool is closed; create a new one',
      );
    if (this.failure !== undefined) throw this.failure;
  }

  /** Runs calls one after another: the shared weights must not change while threads read them. */
  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private writeWeights(): void {
    for (const entry of this.layout) {
      this.weights!.set(
        this.model.parameters.get(entry.name)!.dataSync() as Float32Array,
        entry.offset,
      );
    }
  }

  /** Copies the model's weights into the shared buffer when any bit changed, and bumps the version the replicas check. */
  private syncWeights(): void {
    if (this.model.parameters.values().next().value?.isDisposed === true)
      throw new ModelInputError('the model was disposed');
    let changed = false;
    for (const entry of this.layout) {
      const values = this.model.parameters.get(entry.name)!.dataSync() as Float32Array;
      const target = this.weights!.subarray(entry.offset, entry.offset + entry.size);
      if (!changed) {
        const a = bitsOf(values);
        const b = bitsOf(target);
        for (let i = 0; i < a.length; i++) {
          if (a[i] !== b[i]) {
            changed = true;
            break;
          }
        }
      }
      if (changed) target.set(values);
    }
    if (changed) this.version += 1;
  }

  private send(slot: Slot, request: WorkerRequest): Promise<WorkerReply> {
    return new Promise<WorkerReply>((resolve, reject) => {
      // A thread may have died (or the pool closed) since the call began: never post to a dead thread.
      if (this.failure !== undefined) return reject(this.failure);
      if (this.closing !== undefined)
        return reject(
          new ModelWorkerError(
            'MODEL_WORKER_CLOSED',
            'the model worker pool was closed during the call',
          ),
        );
      slot.task = { resolve, reject };
      slot.worker.ref();
      slot.worker.postMessage(request);
    }).finally(() => {
      slot.worker.unref();
    });
  }

  private remoteError(error: RemoteError, slot: Slot, what: string): Error {
    const cause = remoteCause(error);
    // Bad input is the caller's to fix: the same error type as from the model itself.
    if (error.code === 'MODEL_INPUT_INVALID') return new ModelInputError(error.message);
    if (error.code === 'MODEL_WORKER_LOSS_INVALID')
      return new ModelWorkerError('MODEL_WORKER_LOSS_INVALID', error.message, {
        cause,
        workerIndex: slot.index,
      });
    return new ModelWorkerError(
      'MODEL_WORKER_TASK_FAILED',
      `${what} failed in model worker ${slot.index + 1}: ${error.name}: ${error.message}`,
      {
        cause,
        workerIndex: slot.index,
      },
    );
  }

  /**
   * Runs `count` tasks on the threads, each idle thread taking the next one (so uneven tasks
   * balance); `onResult` sees every result. The first failure stops handing out tasks.
   */
  private async dispatch(
    count: number,
    what: (index: number) => string,
    request: (index: number, id: number) => WorkerRequest,
    onResult: (index: number, reply: Extract<WorkerReply, { type: 'result' }>) => void,
  ): Promise<void> {
    let next = 0;
    let failure: Error | undefined;
    const drive = async (slot: Slot): Promise<void> => {
      while (
        failure === undefined &&
        this.failure === undefined &&
        this.closing === undefined &&
        next < count
      ) {
        const index = next++;
        const reply = await this.send(slot, request(index, this.nextId++));
        if (reply.type === 'error') {
          failure ??= this.remoteError(reply.error, slot, what(index));
          return;
        }
        if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type}`);
        onResult(index, reply);
      }
    };
    const settled = await Promise.allSettled(this.slots.map(drive));
    if (this.closing !== undefined)
      throw new ModelWorkerError(
        'MODEL_WORKER_CLOSED',
        'the model worker pool was closed during the call',
      );
    if (this.failure !== undefined) throw this.failure;
    if (failure !== undefined) throw failure;
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected !== undefined) throw rejected.reason;
  }

  /**
   * Σ weight·∇loss over the shards (or the weighted mean), each shard's loss computed by
   * `request.loss` on a replica. Shards are summed in the order given whatever thread computed
   * them, in float32 as `GradientAccumulator` does, so the result is the same run after run and
   * the same as with no threads. Give at least as many shards as threads to use them all.
   */
  async computeGradients<O = Record<string, unknown>>(
    request: ParallelGradientRequest<O>,
  ): Promise<ParallelGradients> {
    const shards = request.shards;
    if (!Array.isArray(shards) || shards.length === 0)
      throw new ModelInputError('computeGradients needs at least one shard');
    shards.forEach((shard, i) => {
      checkShardData(shard?.data, `shards[${i}].data`);
      const weight = shard.weight ?? 1;
      if (!(Number.isFinite(weight) && weight >= 0))
        throw new ModelInputError(
          `shards[${i}].weight must be a finite number >= 0, got ${weight}`,
        );
    });
    const reduce = request.reduce ?? 'sum';
    if (reduce !== 'sum' && reduce !== 'mean')
      throw new ModelInputError(`reduce must be 'sum' or 'mean', got ${String(reduce)}`);
    if (this.model.trainableVariables.length === 0)
      throw new OptimizerError("the pool's model has no trainable variables (a frozen clone?)");
    const url = lossModuleUrl(request.loss);
    const exportName = request.loss.exportName ?? 'default';
    const optionsOf = (i: number): unknown => ({
      ...(request.options ?? {}),
      ...(shards[i]!.options ?? {}),
    });
    return this.serialize(async () => {
      this.assertUsable();
      // In-process, the layout follows the model as it is now (adapters may be added after the pool).
      const { entries: layout, total } =
        this.size === 0 ? weightLayout(this.model) : { entries: this.layout, total: this.total };
      const sum = new ShardSum(total, layout.length);
      const summaries: ParallelGradients['shards'] = new Array(shards.length);
      if (this.size === 0) {
        const loss = await loadLoss({ module: url, exportName }, this.losses, { allowTsx: false });
        shards.forEach((shard, i) => {
          const result = shardGradient(this.model, layout, total, loss, shard.data, optionsOf(i));
          sum.add(result, shard.weight ?? 1);
          summaries[i] = { loss: result.loss, outputs: result.outputs };
        });
      } else {
        this.syncWeights();
        const version = this.version;
        // Results arrive in any order; they are added strictly in shard order.
        const arrived = new Map<number, Extract<WorkerReply, { kind: 'gradient' }>['shard']>();
        let nextToAdd = 0;
        await this.dispatch(
          shards.length,
          (i) => `the loss on shard ${i}`,
          (i, id) => ({
            id,
            kind: 'gradient',
            version,
            loss: { module: url, exportName },
            data: shards[i]!.data,
            options: optionsOf(i),
          }),
          (i, reply) => {
            if (reply.kind !== 'gradient') return;
            arrived.set(i, reply.shard);
            summaries[i] = { loss: reply.shard.loss, outputs: reply.shard.outputs };
            for (
              let shard = arrived.get(nextToAdd);
              shard !== undefined;
              shard = arrived.get(nextToAdd)
            ) {
              sum.add(shard, shards[nextToAdd]!.weight ?? 1);
              arrived.delete(nextToAdd);
              nextToAdd += 1;
            }
          },
        );
      }
      const { loss, grads } = sum.result(this.model, layout, reduce);
      return { loss, grads, shards: summaries };
    });
  }

  /**
   * The same outputs as `model.generate(prompts, options)`: the call's batches of `batchSize`
   * (default 16) prompts go to the threads whole, each prompt with its own sampling stream.
   * Threads only help when there are more prompts than one batch: pass many prompts (or a
   * smaller `batchSize`). `onProgress` reports after each finished batch.
   */
  async generate(prompts: number[][], options: GenerateOptions): Promise<GenerationOutput[]> {
    if (this.size === 0) {
      return this.serialize(async () => {
        this.assertUsable();
        return this.model.generate(prompts, options);
      });
    }
    this.model.checkGenerateArguments(prompts, options);
    // Functions do not cross to the threads: progress is reported here, and the engine each
    // thread used (with a fallback's reason) is recorded on the main model and logged here.
    const { onProgress, logger, ...rest } = options;
    const batchSize = options.batchSize ?? 16;
    const starts: number[] = [];
    for (let start = 0; start < prompts.length; start += batchSize) starts.push(start);
    return this.serialize(async () => {
      this.assertUsable();
      this.syncWeights();
      const version = this.version;
      const outputs = new Array<GenerationOutput>(prompts.length);
      let produced = 0;
      let engine: GenerationEngineReport | undefined;
      await this.dispatch(
        starts.length,
        (i) =>
          `generation of prompts ${starts[i]}..${Math.min(prompts.length, starts[i]! + batchSize) - 1}`,
        (i, id) => {
          const start = starts[i]!;
          const end = start + batchSize;
          return {
            id,
            kind: 'generate',
            version,
            prompts: prompts.slice(start, end),
            options: {
              ...rest,
              batchSize,
              ...(rest.seeds !== undefined
                ? { seeds: rest.seeds.slice(start, end) }
                : { streamOffset: (rest.streamOffset ?? 0) + start }),
            },
          };
        },
        (i, reply) => {
          if (reply.kind !== 'generate') return;
          // a fallback on any thread is what the call reports; build times add up
          if (reply.engine !== undefined) {
            const buildMs = (engine?.onnxBuildMs ?? 0) + (reply.engine.onnxBuildMs ?? 0);
            engine =
              engine?.fallbackReason !== undefined
                ? engine
                : { ...reply.engine, ...(buildMs > 0 ? { onnxBuildMs: buildMs } : {}) };
          }
          reply.outputs.forEach((output, k) => {
            outputs[starts[i]! + k] = output;
            produced += output.tokens.length;
          });
          onProgress?.({ stage: 'generate', completed: produced });
        },
      );
      if (engine !== undefined)
        this.model.noteGenerationEngine(engine, {
          ...(rest.engine === undefined ? {} : { engine: rest.engine }),
          ...(logger === undefined ? {} : { logger }),
        });
      return outputs;
    });
  }

  /** Ends every thread (pending calls reject with MODEL_WORKER_CLOSED). Idempotent; the model is left alone. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new ModelWorkerError(
        'MODEL_WORKER_CLOSED',
        'the model worker pool was closed during the call',
      );
      for (const slot of this.slots) {
        const task = slot.task;
        slot.task = undefined;
        task?.reject(closed);
      }
      await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
    })();
    return this.closing;
  }
}

/**
 * Starts a pool of model worker threads for `options.model` (see `ModelWorkerPool`). The
 * backend must be initialised first (`initBackend`); the threads start the same one.
 */
export function createModelWorkerPool(options: ModelWorkerPoolOptions): Promise<ModelWorkerPool> {
  return ModelWorkerPool.create(options);
}
