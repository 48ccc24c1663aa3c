import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from './backend.js';
import type { ModelConfig } from './config.js';
import type { AttentionPath } from './layers.js';
import { CodeReasonerError } from './errors.js';
import {
  ModelInputError,
  type CausalLM,
  type GenerateOptions,
  type GenerationEngineReport,
  type GenerationOutput,
} from './model.js';
import { computeGradients } from './optimizer.js';

/*
 * What the main thread and the model worker threads exchange, and the pieces both sides run
 * (loading a loss module, one shard's gradients, summing shards), so that the in-process path
 * and the threaded path compute exactly the same numbers.
 */

/** A typed array with its shape: how shard inputs and loss outputs cross threads. */
export interface ShardArray {
  values: Float32Array | Int32Array;
  shape: number[];
}

/** A shard's inputs by name (ids, masks, advantages, ...), as the loss function receives them. */
export type ShardData = Record<string, ShardArray>;

/** Where a worker loss lives: an ES module (file URL or absolute path) and the export to call (default `default`). */
export interface WorkerLossRef {
  module: string | URL;
  exportName?: string;
}

/** What a loss returns: a scalar, or a scalar plus tensors to send back per shard (e.g. log-probs for metrics). */
export type WorkerLossResult = tf.Scalar | { loss: tf.Scalar; outputs?: Record<string, tf.Tensor> };

/**
 * A loss run in a worker thread on its model replica (and in-process when the pool has no
 * threads). `options` must be structured-cloneable (plain data). Runs inside a gradient tape:
 * intermediate tensors are released by the caller.
 */
export type WorkerLoss<O = Record<string, unknown>> = (
  model: CausalLM,
  shard: ShardData,
  options: O,
) => WorkerLossResult;

/** Errors of the worker pool; `code` says which, `workerIndex` which thread when one is to blame. */
export class ModelWorkerError extends CodeReasonerError {
  readonly workerIndex: number | undefined;

  constructor(
    code:
      | 'MODEL_WORKER_START_FAILED'
      | 'MODEL_WORKER_CRASHED'
      | 'MODEL_WORKER_TASK_FAILED'
      | 'MODEL_WORKER_CLOSED'
      | 'MODEL_WORKER_LOSS_INVALID'
      | 'MODEL_WORKER_BACKEND',
    message: string,
    options: { cause?: unknown; workerIndex?: number } = {},
  ) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'ModelWorkerError';
    this.workerIndex = options.workerIndex;
  }
}

/** A tf tensor of a shard array (int32 for Int32Array, float32 otherwise). */
export function shardTensor(array: ShardArray): tf.Tensor {
  return tf.tensor(
    array.values,
    array.shape,
    array.values instanceof Int32Array ? 'int32' : 'float32',
  );
}

export function checkShardData(data: ShardData, where: string): void {
  if (typeof data !== 'object' || data === null)
    throw new ModelInputError(`${where} must be an object of { values, shape } arrays`);
  for (const [name, array] of Object.entries(data)) {
    const values = array?.values;
    if (!(values instanceof Float32Array || values instanceof Int32Array)) {
      throw new ModelInputError(`${where}.${name}.values must be a Float32Array or an Int32Array`);
    }
    if (!Array.isArray(array.shape) || !array.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ModelInputError(`${where}.${name}.shape must be an array of non-negative integers`);
    }
    const size = array.shape.reduce((a, b) => a * b, 1);
    if (size !== values.length) {
      throw new ModelInputError(
        `${where}.${name} has ${values.length} values for shape [${array.shape.join(', ')}] (${size})`,
      );
    }
  }
}

/** One parameter's place in the flat weight / gradient buffers (specs order). */
export interface LayoutEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export function weightLayout(model: CausalLM): { entries: LayoutEntry[]; total: number } {
  const entries: LayoutEntry[] = [];
  let offset = 0;
  // With LoRA only the adapters get gradients (and the pool runs in-process): lay out just those,
  // not a buffer the size of the frozen base.
  if (model.loraConfig !== undefined) {
    for (const [name, variable] of model.adapterParameters) {
      entries.push({ name, shape: [...variable.shape], offset, size: variable.size });
      offset += variable.size;
    }
    return { entries, total: offset };
  }
  for (const spec of model.specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    entries.push({ name: spec.name, shape: [...spec.shape], offset, size });
    offset += size;
  }
  return { entries, total: offset };
}

/** A weight or LoRA adapter variable by its stable name. */
export function parameterOf(model: CausalLM, name: string): tf.Variable {
  return model.parameters.get(name) ?? model.adapterParameters.get(name)!;
}

/** The module's URL as a string (file URL); throws for relative paths, which have no base in a worker. */
export function lossModuleUrl(ref: WorkerLossRef): string {
  const { module } = ref;
  if (module instanceof URL) return module.href;
  if (typeof module === 'string') {
    if (module.startsWith('file:')) return module;
    if (isAbsolute(module)) return pathToFileURL(module).href;
  }
  throw new ModelWorkerError(
    'MODEL_WORKER_LOSS_INVALID',
    `loss.module ${JSON.stringify(String(module))} must be a file URL or an absolute path (e.g. new URL('./my-loss.js', import.meta.url))`,
  );
}

/** tsx's ESM register API, resolved from `fromFile`'s location (undefined when tsx is not installed there). */
export function resolveTsxApi(fromFile: string): string | undefined {
  try {
    const require = createRequire(fromFile);
    const packagePath = require.resolve('tsx/package.json');
    const exports = (
      JSON.parse(readFileSync(packagePath, 'utf8')) as {
        exports?: Record<string, { import?: { default?: string } }>;
      }
    ).exports;
    const target = exports?.['./esm/api']?.import?.default;
    return target === undefined
      ? undefined
      : pathToFileURL(join(dirname(packagePath), target)).href;
  } catch {
    return undefined;
  }
}

const TYPESCRIPT = /\.[cm]?tsx?$/;
let tsxRegistered = false;

/**
 * Imports a loss module. In a worker thread, a TypeScript module (a source tree under test, a
 * tsx-run script: Node 20 applies neither vitest's transform nor tsx's `--import` hooks inside
 * workers) is loaded through tsx's register API when tsx is installed beside the module. The
 * hooks go in before the first attempt: Node caches a failed import of a URL for good.
 */
export async function importLossModule(
  url: string,
  options: { allowTsx: boolean },
): Promise<Record<string, unknown>> {
  const typescript = TYPESCRIPT.test(new URL(url).pathname);
  if (typescript && options.allowTsx && !tsxRegistered) {
    const api = resolveTsxApi(fileURLToPath(url));
    if (api !== undefined) {
      const { register } = (await import(api)) as { register: () => unknown };
      register();
      tsxRegistered = true;
    }
  }
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION' && typescript) {
      throw new ModelWorkerError(
        'MODEL_WORKER_LOSS_INVALID',
        `cannot import the TypeScript loss module ${url} in a worker thread: build it to JavaScript, or install tsx beside it`,
        { cause: error },
      );
    }
    throw new ModelWorkerError(
      'MODEL_WORKER_LOSS_INVALID',
      `cannot import the loss module ${url}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

export async function loadLoss(
  ref: WorkerLossRef,
  cache: Map<string, WorkerLoss<unknown>>,
  options: { allowTsx: boolean },
): Promise<WorkerLoss<unknown>> {
  const url = lossModuleUrl(ref);
  const exportName = ref.exportName ?? 'default';
  const key = `${url}#${exportName}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const namespace = await importLossModule(url, options);
  const fn = namespace[exportName];
  if (typeof fn !== 'function') {
    throw new ModelWorkerError(
      'MODEL_WORKER_LOSS_INVALID',
      `${url} has no function export '${exportName}' (exports: ${Object.keys(namespace).join(', ') || 'none'})`,
    );
  }
  cache.set(key, fn as WorkerLoss<unknown>);
  return fn as WorkerLoss<unknown>;
}

/** One shard's loss, its gradient packed in layout order (`present[i]` = parameter i got a gradient) and its outputs. */
export interface ShardGradient {
  loss: number;
  grads: Float32Array;
  present: Uint8Array;
  outputs: Record<string, ShardArray>;
}

function copyOut(t: tf.Tensor): ShardArray {
  // A copy: the cpu backend hands out its own storage, which must not be transferred or kept.
  const data = t.dataSync();
  const values =
    t.dtype === 'int32'
      ? Int32Array.from(data as Int32Array)
      : Float32Array.from(data as Float32Array);
  return { values, shape: [...t.shape] };
}

/** Gradient of `loss` on one shard for `model` (the same call in a worker and in-process). */
export function shardGradient(
  model: CausalLM,
  layout: readonly LayoutEntry[],
  total: number,
  loss: WorkerLoss<unknown>,
  data: ShardData,
  options: unknown,
): ShardGradient {
  let outputs: Record<string, tf.Tensor> | undefined;
  const result = computeGradients(model, () => {
    const value = loss(model, data, options);
    if (value instanceof tf.Tensor) return value as tf.Scalar;
    if (typeof value !== 'object' || value === null || !(value.loss instanceof tf.Tensor)) {
      throw new ModelWorkerError(
        'MODEL_WORKER_LOSS_INVALID',
        'a worker loss must return a scalar tensor or { loss: scalar, outputs? }',
      );
    }
    if (value.outputs !== undefined) {
      outputs = {};
      for (const [name, t] of Object.entries(value.outputs)) outputs[name] = tf.keep(t);
    }
    return value.loss;
  });
  try {
    const grads = new Float32Array(total);
    const present = new Uint8Array(layout.length);
    layout.forEach((entry, i) => {
      const variable = parameterOf(model, entry.name);
      const grad = result.grads[variable.name];
      if (grad === undefined) return;
      present[i] = 1;
      grads.set(grad.dataSync() as Float32Array, entry.offset);
    });
    const arrays: Record<string, ShardArray> = {};
    for (const [name, t] of Object.entries(outputs ?? {})) arrays[name] = copyOut(t);
    return { loss: result.loss, grads, present, outputs: arrays };
  } finally {
    tf.dispose(Object.values(result.grads));
    if (outputs !== undefined) tf.dispose(Object.values(outputs));
  }
}

/**
 * Σ weight·gradient over shards, added in shard order in float32 exactly as
 * `GradientAccumulator.add` does with tf ops (each product rounded to float32, then the sum), so
 * the result does not depend on which thread computed which shard, nor when it finished.
 */
export class ShardSum {
  readonly sum: Float32Array;
  readonly present: Uint8Array;
  loss = 0;
  weight = 0;
  count = 0;
  /** The only shard's gradient, when exactly one was added (a mean of one is that gradient, unscaled). */
  private single: ShardGradient | undefined;

  constructor(total: number, parameters: number) {
    this.sum = new Float32Array(total);
    this.present = new Uint8Array(parameters);
  }

  add(shard: ShardGradient, weight: number): void {
    const w = Math.fround(weight);
    const sum = this.sum;
    const g = shard.grads;
    if (w === 1) for (let i = 0; i < g.length; i++) sum[i]! += g[i]!;
    else for (let i = 0; i < g.length; i++) sum[i]! += Math.fround(w * g[i]!);
    for (let i = 0; i < shard.present.length; i++) this.present[i]! |= shard.present[i]!;
    this.loss += weight * shard.loss;
    this.weight += weight;
    this.single = this.count === 0 ? shard : undefined;
    this.count += 1;
  }

  /** Named gradients (new tensors keyed by `model`'s variable names) and the loss, summed or averaged over the weights. */
  result(
    model: CausalLM,
    layout: readonly LayoutEntry[],
    reduce: 'sum' | 'mean',
  ): { loss: number; grads: tf.NamedTensorMap } {
    let values = this.sum;
    let loss = this.loss;
    if (reduce === 'mean') {
      if (!(this.weight > 0))
        throw new ModelInputError('reduce: mean needs shards whose weights sum to more than 0');
      if (this.count === 1 && this.single !== undefined) {
        values = this.single.grads;
        loss = this.single.loss;
      } else {
        const w = Math.fround(this.weight);
        values = new Float32Array(this.sum.length);
        for (let i = 0; i < values.length; i++) values[i] = this.sum[i]! / w;
        loss = this.loss / this.weight;
      }
    }
    const grads: tf.NamedTensorMap = {};
    layout.forEach((entry, i) => {
      if (this.present[i] !== 1) return;
      const variable = parameterOf(model, entry.name);
      grads[variable.name] = tf.tensor(
        values.slice(entry.offset, entry.offset + entry.size),
        entry.shape,
        'float32',
      );
    });
    return { loss, grads };
  }
}

// ---- messages ----------------------------------------------------------------------------------

export interface WorkerInit {
  index: number;
  backend: BackendName;
  config: ModelConfig;
  /** The model's `attention` path, which the replica uses too. */
  attention: AttentionPath;
  /** SharedArrayBuffer holding every parameter, float32, in layout order. */
  weights: SharedArrayBuffer;
  layout: LayoutEntry[];
  total: number;
}

export type WorkerRequest =
  | {
      id: number;
      kind: 'gradient';
      version: number;
      loss: { module: string; exportName: string };
      data: ShardData;
      options: unknown;
    }
  | {
      id: number;
      kind: 'generate';
      version: number;
      prompts: number[][];
      options: Omit<GenerateOptions, 'onProgress' | 'logger'>;
    };

export interface RemoteError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** A worker's serialised error as an Error on this thread (the `cause` of the pool's typed error). */
export function remoteCause(error: RemoteError): Error {
  const cause = new Error(error.message);
  cause.name = error.name;
  if (error.stack !== undefined) cause.stack = error.stack;
  if (error.code !== undefined) Object.assign(cause, { code: error.code });
  return cause;
}

export type WorkerReply =
  | { type: 'ready'; backend: BackendName }
  | { type: 'start-failed'; error: RemoteError }
  | { type: 'result'; id: number; kind: 'gradient'; shard: ShardGradient }
  | {
      type: 'result';
      id: number;
      kind: 'generate';
      outputs: GenerationOutput[];
      /** The engine the thread's model generated with (the pool reports it on the main model). */
      engine?: GenerationEngineReport | undefined;
    }
  | { type: 'error'; id: number; error: RemoteError };

export function toRemoteError(error: unknown): RemoteError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  return { name: 'Error', message: String(error) };
}
