import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import type { ModelConfig } from './config.js';
import { headDimOf } from './config.js';
import { attentionBiasValues } from './layers.js';
import { buildDecoderGraph, type DecoderWeights } from './onnx-graph.js';
import { moveRows } from './row-compaction.js';

/** Which code runs `generate`: tfjs ops ('tfjs'), onnxruntime-node's CPU kernels ('onnx'), or 'onnx' where it loads and supports the model, silently ('auto'). */
export type GenerationEngine = 'onnx' | 'tfjs' | 'auto';

export type OnnxRuntimeModule = typeof Ort;

/** Loads onnxruntime-node (an optional dependency); replaceable for tests that simulate a machine where it does not load. */
export type OnnxRuntimeLoader = () => OnnxRuntimeModule;

const defaultLoader: OnnxRuntimeLoader = () => {
  // createRequire keeps the native addon out of the bundle and turns its load failure into a catchable throw.
  const require = createRequire(import.meta.url);
  return require('onnxruntime-node') as OnnxRuntimeModule;
};

let loader: OnnxRuntimeLoader = defaultLoader;
let loaded: { runtime: OnnxRuntimeModule } | { reason: string } | undefined;

/**
 * Replaces how onnxruntime-node is loaded (undefined restores the default) and forgets the result
 * of an earlier load. Tests use it to check the fallback on a machine without the native module.
 */
export function setOnnxRuntimeLoader(next: OnnxRuntimeLoader | undefined): void {
  loader = next ?? defaultLoader;
  loaded = undefined;
}

/** Whether onnxruntime-node loaded in this process, or why not (loaded once, on first use). */
export function onnxRuntimeStatus(): { available: true } | { available: false; reason: string } {
  const result = loadRuntime();
  return 'runtime' in result ? { available: true } : { available: false, reason: result.reason };
}

/** onnxruntime-node's module, or why it did not load (also used by the training graph's runner, onnx-trainer.ts). */
export function loadRuntime(): { runtime: OnnxRuntimeModule } | { reason: string } {
  if (loaded !== undefined) return loaded;
  try {
    const runtime = loader();
    if (typeof runtime?.InferenceSession?.create !== 'function')
      throw new Error('the module has no InferenceSession.create');
    loaded = { runtime };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    loaded = { reason: `onnxruntime-node did not load: ${message.split('\n')[0]!.trim()}` };
  }
  return loaded;
}

/**
 * How the ONNX decoder graph holds the model's weights: 'initializers' inside the graph (faster
 * decoding: onnxruntime optimises and pre-packs them), 'inputs' fed with every run (no size limit;
 * a weight change costs a copy instead of a new session), or 'auto' (default): initializers up to
 * `ONNX_INITIALIZER_WEIGHTS_MAX_BYTES` of weights, inputs above (see `onnxWeightsModeFor`).
 */
export type OnnxWeightsMode = 'auto' | 'initializers' | 'inputs';

export const ONNX_WEIGHTS_MODES: readonly OnnxWeightsMode[] = ['auto', 'initializers', 'inputs'];

/**
 * The largest serialised ONNX model onnxruntime opens: protobuf parses one message of at most
 * 2^31 - 1 bytes (measured with onnxruntime-node 1.30.0: a 2,146,998,889-byte model opened, a
 * 2,147,597,417-byte one was refused with "Model data size exceeds maximum supported size (2GB)").
 */
export const ONNX_MODEL_MAX_BYTES = 2 ** 31 - 1;

/**
 * The most weight bytes (float32) kept as graph initializers: 2 GiB less 64 MiB. The serialised
 * graph is the weights plus its structure (nodes, names, shapes, small constants): 51.6 KB for
 * Qwen2.5-0.5B's 24 layers (about 2 KB a layer), so 64 MiB leaves room for far more layers than
 * any model has while wasting under 3% of the limit. Qwen2.5-0.5B's 494,032,768 weights (1.98 GB
 * = 1.84 GiB) stay under it: its graph opened with initializers (measured, random weights).
 */
export const ONNX_INITIALIZER_WEIGHTS_MAX_BYTES = 2 ** 31 - 64 * 2 ** 20;

/**
 * The mode an `onnxWeights` request resolves to for a model of `weightBytes` bytes of float32
 * weights: 'auto' (or nothing) picks initializers while the graph stays under the protobuf limit
 * with room to spare (`ONNX_INITIALIZER_WEIGHTS_MAX_BYTES`), else inputs; an explicit mode is kept
 * (an explicit 'initializers' above the limit is refused by `onnxUnsupportedReason`).
 */
export function onnxWeightsModeFor(
  weightBytes: number,
  requested: OnnxWeightsMode = 'auto',
): 'initializers' | 'inputs' {
  if (requested !== 'auto') return requested;
  return weightBytes <= ONNX_INITIALIZER_WEIGHTS_MAX_BYTES ? 'initializers' : 'inputs';
}

/** Why the ONNX decoder cannot run a model of this config (undefined when it can); `weightFloats`: the floats stored in the graph. */
export function onnxUnsupportedReason(
  config: ModelConfig,
  weightFloats: number,
): string | undefined {
  if (config.architecture === 'qwen3')
    return 'per-head q/k norms (Qwen3) are not in the ONNX decoder graph';
  if (headDimOf(config) % 2 !== 0) return 'the head dimension is odd (RoPE rotates halves)';
  if (weightFloats * 4 > ONNX_INITIALIZER_WEIGHTS_MAX_BYTES)
    return `the weights (${((weightFloats * 4) / 1024 ** 3).toFixed(2)} GiB) exceed a protobuf message's 2 GiB as initializers (onnxWeights 'auto' or 'inputs' feeds them as inputs)`;
  return undefined;
}

/** An InferenceSession over one set of a model's weights (rebuilt when the weights change). */
export class OnnxDecoder {
  /** The weights fed with every run when they are graph inputs (replaced whole by `updateWeights`). */
  weightFeeds: Readonly<Record<string, Ort.Tensor>> = {};

  private constructor(
    readonly session: Ort.InferenceSession,
    private readonly runtime: OnnxRuntimeModule,
    readonly config: ModelConfig,
    readonly threads: number,
    readonly weightsAsInputs: boolean,
    /** Milliseconds spent building the graph and creating the session. */
    readonly buildMs: number,
  ) {}

  /** New weights for a session whose weights are inputs (no new session); returns the milliseconds it took. */
  updateWeights(weights: DecoderWeights): number {
    if (!this.weightsAsInputs) throw new Error('the weights of this session are in its graph');
    const start = performance.now();
    const { weightInputs } = buildDecoderGraph(this.config, weights, { weightsAsInputs: true });
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [name, w] of weightInputs) feeds[name] = this.tensor('float32', w.data, w.dims);
    this.weightFeeds = feeds;
    return performance.now() - start;
  }

  /** Builds the graph from `weights` and opens a session with `threads` intra-op threads. */
  static async create(
    config: ModelConfig,
    weights: DecoderWeights,
    threads: number,
    weightsAsInputs: boolean,
  ): Promise<OnnxDecoder> {
    const result = loadRuntime();
    if (!('runtime' in result)) throw new Error(result.reason);
    const start = performance.now();
    const { bytes } = buildDecoderGraph(config, weights, { weightsAsInputs });
    const session = await result.runtime.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Threads that spin between kernels take CPU from the other processes of a shared machine.
      ...(threads > 1 ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    });
    const decoder = new OnnxDecoder(
      session,
      result.runtime,
      config,
      threads,
      weightsAsInputs,
      performance.now() - start,
    );
    if (weightsAsInputs) decoder.updateWeights(weights);
    return decoder;
  }

  /**
   * A generation of `batch` rows with room for `capacity` tokens per row, whose runs also return
   * `sampleToken`'s weights for `sampling` (temperature ≤ 0: greedy, weights at temperature 1).
   */
  begin(
    batch: number,
    capacity: number,
    sampling: { temperature: number; vocabLimit: number },
  ): OnnxGeneration {
    return new OnnxGeneration(this, batch, capacity, this.weightFeeds, sampling);
  }

  tensor(type: 'float32', data: Float32Array, dims: number[]): Ort.Tensor;
  tensor(type: 'int32', data: Int32Array, dims: number[]): Ort.Tensor;
  tensor(type: 'int64', data: BigInt64Array, dims: number[]): Ort.Tensor;
  tensor(
    type: 'float32' | 'int32' | 'int64',
    data: Float32Array | Int32Array | BigInt64Array,
    dims: number[],
  ): Ort.Tensor {
    return new this.runtime.Tensor(type, data as Float32Array, dims);
  }

  private released = false;

  /** Frees the session's native memory (once; later calls do nothing). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/** What a run returns: the last position's logits [B, vocab], `sampleToken`'s weights [B, vocabLimit], and per row their max and total. */
export interface OnnxStepOutput {
  logits: Float32Array;
  samplingWeights: Float32Array;
  samplingMax: Float32Array;
  samplingTotal: Float64Array;
}

/** The KV cache grows by this many slots per row at a time (see `OnnxGeneration`). */
const CACHE_CHUNK = 64;

/**
 * One batch's KV cache, kept in JS arrays the session reads in place: keys [B, K, hd, C]
 * (transposed, see the graph), values [B, K, C, hd]. Each call writes the new tokens' keys and
 * values into their slots; decoding feeds all C slots with the unwritten ones masked. C grows in
 * chunks of CACHE_CHUNK up to the capacity (a copy every CACHE_CHUNK tokens), so attention reads
 * at most CACHE_CHUNK - 1 unwritten slots instead of the whole remaining capacity.
 */
export class OnnxGeneration {
  /** Rows the batch holds now: `begin`'s batch, fewer after `compact`. */
  private rows: number;
  private keys: Float32Array[];
  private values: Float32Array[];
  /** Slots per row in `keys`/`values` now (C). */
  private allocated: number;
  private readonly kvHeads: number;
  private readonly headDim: number;
  private filled = 0;
  private rope: { source: Float32Array; cos: Ort.Tensor; sin: Ort.Tensor } | undefined;
  private readonly samplingFeeds: Record<string, Ort.Tensor>;

  constructor(
    private readonly decoder: OnnxDecoder,
    batch: number,
    private readonly capacity: number,
    private readonly weightFeeds: Readonly<Record<string, Ort.Tensor>>,
    sampling: { temperature: number; vocabLimit: number },
  ) {
    const c = decoder.config;
    this.rows = batch;
    this.samplingFeeds = {
      inverse_temperature: decoder.tensor(
        'float32',
        Float32Array.of(sampling.temperature > 0 ? 1 / sampling.temperature : 1),
        [1],
      ),
      vocab_limit: decoder.tensor('int64', BigInt64Array.of(BigInt(sampling.vocabLimit)), [1]),
    };
    this.kvHeads = c.numKeyValueHeads;
    this.headDim = headDimOf(c);
    this.allocated = 0;
    this.keys = [];
    this.values = [];
    this.grow(Math.min(capacity, CACHE_CHUNK));
  }

  /** Re-lays the cache out with `slots` slots per row, keeping the written ones. */
  private grow(slots: number): void {
    const old = this.allocated;
    const rows = this.rows * this.kvHeads;
    const hd = this.headDim;
    const layers = this.decoder.config.numHiddenLayers;
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let i = 0; i < layers; i++) {
      const k = new Float32Array(rows * hd * slots);
      const v = new Float32Array(rows * hd * slots);
      if (old > 0) {
        const oldK = this.keys[i]!;
        const oldV = this.values[i]!;
        for (let r = 0; r < rows * hd; r++)
          k.set(oldK.subarray(r * old, r * old + this.filled), r * slots);
        for (let r = 0; r < rows; r++)
          v.set(oldV.subarray(r * old * hd, (r * old + this.filled) * hd), r * slots * hd);
      }
      keys.push(k);
      values.push(v);
    }
    this.keys = keys;
    this.values = values;
    this.allocated = slots;
  }

  /**
   * Keeps `keep.length` rows for the following steps: new row j is the current row keep[j]. Rows
   * are moved in place inside the same arrays (fed as their leading part), so keep[j] must be j
   * (the row stays) or a row at or past keep.length (its slot is freed): each moved row is one
   * copy of its keys and values, and the rows that stay are not touched. Generation drops
   * finished rows this way so that decode steps no longer compute them.
   */
  compact(keep: readonly number[]): void {
    const caches = [...this.keys, ...this.values].map((array) => ({ array, base: 0 }));
    // one row's keys [K, hd, C] or values [K, C, hd]: the same number of floats
    moveRows(caches, keep, this.rows, this.kvHeads * this.headDim * this.allocated);
    this.rows = keep.length;
  }

  /**
   * Runs the prompt (ids [B·T], left-padded; keyMask rows of T entries; positions [B·T]) and
   * returns the last position's logits [B·vocab] and sampling weights (see `OnnxStepOutput`).
   */
  async prefill(
    ids: Int32Array,
    time: number,
    keyMask: number[][],
    positions: Int32Array,
    rope: { cos: Float32Array; sin: Float32Array },
  ): Promise<OnnxStepOutput> {
    if (this.filled !== 0) throw new Error('prefill runs once per generation');
    if (time > this.capacity)
      throw new Error(`${time} tokens exceed the capacity ${this.capacity}`);
    if (time >= this.allocated)
      this.grow(Math.min(this.capacity, Math.ceil((time + 1) / CACHE_CHUNK) * CACHE_CHUNK));
    const bias = attentionBiasValues(keyMask.flat(), this.rows, time, time);
    return this.run(ids, time, positions, rope, bias, 0);
  }

  /** Runs one token per row; keyMask rows hold every key so far including this token's. */
  async step(
    ids: Int32Array,
    keyMask: number[][],
    positions: Int32Array,
    rope: { cos: Float32Array; sin: Float32Array },
  ): Promise<OnnxStepOutput> {
    const slot = this.filled;
    if (slot >= this.capacity) throw new Error(`the KV cache's ${this.capacity} slots are full`);
    if (slot >= this.allocated) this.grow(Math.min(this.capacity, this.allocated + CACHE_CHUNK));
    const c = this.allocated;
    if (ids.length !== this.rows || keyMask.length !== this.rows)
      throw new Error(
        `step got ${ids.length} ids and ${keyMask.length} key mask rows for a batch of ${this.rows}`,
      );
    const bias = new Float32Array(this.rows * (c + 1)).fill(-1e9);
    for (let b = 0; b < this.rows; b++) {
      const row = keyMask[b]!;
      if (row.length !== slot + 1)
        throw new Error(`key mask row ${b} has ${row.length} entries, expected ${slot + 1}`);
      for (let s = 0; s < slot; s++) if (row[s]! > 0) bias[b * (c + 1) + s] = 0;
      if (row[slot]! > 0) bias[b * (c + 1) + c] = 0;
    }
    return this.run(ids, 1, positions, rope, bias, c);
  }

  /** The rotary tables' first halves as RotaryEmbedding's caches, made again only when the model's tables grew. */
  private ropeCaches(rope: { cos: Float32Array; sin: Float32Array }): {
    cos: Ort.Tensor;
    sin: Ort.Tensor;
  } {
    if (this.rope?.source !== rope.cos) {
      const hd = this.headDim;
      const half = hd / 2;
      const rows = rope.cos.length / hd;
      // rotate-half tables repeat each row's first half in its second
      const firstHalves = (table: Float32Array): Ort.Tensor => {
        const out = new Float32Array(rows * half);
        for (let p = 0; p < rows; p++) out.set(table.subarray(p * hd, p * hd + half), p * half);
        return this.decoder.tensor('float32', out, [rows, half]);
      };
      this.rope = { source: rope.cos, cos: firstHalves(rope.cos), sin: firstHalves(rope.sin) };
    }
    return this.rope;
  }

  private async run(
    ids: Int32Array,
    time: number,
    positions: Int32Array,
    rope: { cos: Float32Array; sin: Float32Array },
    bias: Float32Array,
    cached: number,
  ): Promise<OnnxStepOutput> {
    const d = this.decoder;
    const config = d.config;
    const b = this.rows;
    const kv = this.kvHeads;
    const hd = this.headDim;
    const tables = this.ropeCaches(rope);
    const int64 = (values: number[]) =>
      d.tensor(
        'int64',
        BigInt64Array.from(values, (v) => BigInt(v)),
        [values.length],
      );
    const keys = cached + time;
    const feeds: Record<string, Ort.Tensor> = {
      ...this.weightFeeds,
      ...this.samplingFeeds,
      input_ids: d.tensor('int32', ids, [b, time]),
      position_ids: d.tensor('int64', BigInt64Array.from(positions, BigInt), [b, time]),
      cos_cache: tables.cos,
      sin_cache: tables.sin,
      bias: d.tensor('float32', bias, [b, 1, 1, time, keys]),
      split_keys: int64([cached, time]),
    };
    const empty = new Float32Array(0);
    // after `compact` the arrays hold more rows than the batch: feed the leading ones
    const used = b * kv * hd * cached;
    const lead = (cache: Float32Array) =>
      cached === 0 ? empty : cache.length === used ? cache : cache.subarray(0, used);
    for (let i = 0; i < config.numHiddenLayers; i++) {
      feeds[`past_key.${i}`] = d.tensor('float32', lead(this.keys[i]!), [b, kv, 1, hd, cached]);
      feeds[`past_value.${i}`] = d.tensor('float32', lead(this.values[i]!), [b, kv, 1, cached, hd]);
    }
    const out = await d.session.run(feeds);
    const c = this.allocated;
    const slot = this.filled;
    if (slot + time > c) throw new Error(`the KV cache's ${c} slots are full`);
    for (let i = 0; i < config.numHiddenLayers; i++) {
      const newKeys = out[`key.${i}`]!.data as Float32Array;
      const newValues = out[`value.${i}`]!.data as Float32Array;
      const keyCache = this.keys[i]!;
      const valueCache = this.values[i]!;
      for (let r = 0; r < b * kv; r++) {
        // keys [B, K, (1,) hd, T] → cache [B, K, (1,) hd, C] at columns slot..slot+T-1
        if (time === 1)
          for (let e = 0; e < hd; e++) keyCache[(r * hd + e) * c + slot] = newKeys[r * hd + e]!;
        else
          for (let e = 0; e < hd; e++) {
            const from = (r * hd + e) * time;
            keyCache.set(newKeys.subarray(from, from + time), (r * hd + e) * c + slot);
          }
        // values [B, K, (1,) T, hd] → cache [B, K, (1,) C, hd] at rows slot..slot+T-1
        valueCache.set(newValues.subarray(r * time * hd, (r + 1) * time * hd), (r * c + slot) * hd);
      }
    }
    this.filled = slot + time;
    return {
      logits: out['logits']!.data as Float32Array,
      samplingWeights: out['sampling_weights']!.data as Float32Array,
      samplingMax: out['sampling_max']!.data as Float32Array,
      samplingTotal: out['sampling_total']!.data as Float64Array,
    };
  }
}
