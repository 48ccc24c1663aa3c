import type * as Ort from 'onnxruntime-node';
import type { ModelConfig } from './config.js';
import { headDimOf } from './config.js';
import { attentionBiasValues, ropeTables } from './layers.js';
import { CausalLM, ModelInputError, parameterSpecs } from './model.js';
import { loadRuntime, onnxRuntimeStatus, type OnnxRuntimeModule } from './onnx-engine.js';
import {
  ROW_ENTROPY,
  ROW_LOG_PROBS,
  TOKEN_GRADIENTS,
  TRAIN_ATTENTION_CHUNKS,
  buildTrainGraph,
  gradientOutputName,
  resolveTrainGraphOptions,
  type TrainGraphOptions,
} from './onnx-train-graph.js';

/** One batch of a training step, as plain arrays. */
export interface OnnxTrainBatch {
  /** Token ids, row-major [batch, time]. */
  inputIds: Int32Array;
  /** [batch, time]: 0 = padding, values above 0 name packed segments (see `attentionBias`). */
  attentionMask: Float32Array;
  batch: number;
  time: number;
  /** [batch, time − 1]: the weight of the token each position predicts (default 1 everywhere); positions whose target is padding never count. */
  targetWeights?: Float32Array;
  /** loss = −Σ weight · log p(target) / divisor; default: the sum of the counted weights (a weighted mean). */
  divisor?: number;
  /**
   * [batch, time − 1]: when given, exactly these positions (with a real target) are the rows,
   * weight 0 included, so their log-probs and entropy come out (GRPO's figures); without it the
   * rows are the positions whose weight is not 0.
   */
  targetMask?: Float32Array;
}

/** The graph inputs of a batch other than the weights (see `buildTrainGraph`). */
export interface OnnxTrainFeeds {
  inputIds: Int32Array;
  cos: Float32Array;
  sin: Float32Array;
  bias: Float32Array;
  rows: BigInt64Array;
  targets: BigInt64Array;
  lossWeights: Float32Array;
  batch: number;
  time: number;
}

/**
 * The graph's non-weight inputs for a batch: rotary tables at each token's position (packed
 * segments restart at 0, as `CausalLM` does), the attention bias, and the rows whose target
 * counts with their targets and weights (weight / divisor), in the order `tokenLogProbs` keeps.
 */
export function onnxTrainFeeds(config: ModelConfig, batch: OnnxTrainBatch): OnnxTrainFeeds {
  const { batch: b, time: t, inputIds, attentionMask: mask } = batch;
  if (inputIds.length !== b * t || mask.length !== b * t)
    throw new ModelInputError(
      `onnx training batch: inputIds and attentionMask must hold batch·time = ${b * t} entries, got ${inputIds.length} and ${mask.length}`,
    );
  if (t < 2) throw new ModelInputError('onnx training batch: sequences need at least 2 tokens');
  if (batch.targetMask !== undefined && batch.targetMask.length !== b * (t - 1))
    throw new ModelInputError(
      `onnx training batch: targetMask must hold batch·(time − 1) = ${b * (t - 1)} entries, got ${batch.targetMask.length}`,
    );
  if (batch.targetWeights !== undefined && batch.targetWeights.length !== b * (t - 1))
    throw new ModelInputError(
      `onnx training batch: targetWeights must hold batch·(time − 1) = ${b * (t - 1)} entries, got ${batch.targetWeights.length}`,
    );
  const hd = headDimOf(config);
  const positions = CausalLM.positionsFromMask(mask, b, t);
  let maxPosition = 0;
  for (const p of positions) if (p > maxPosition) maxPosition = p;
  const tables = ropeTables(maxPosition + 1, hd, config.ropeTheta, config.ropeScaling);
  const cos = new Float32Array(b * t * hd);
  const sin = new Float32Array(b * t * hd);
  positions.forEach((p, i) => {
    cos.set(tables.cos.subarray(p * hd, (p + 1) * hd), i * hd);
    sin.set(tables.sin.subarray(p * hd, (p + 1) * hd), i * hd);
  });
  const rows: number[] = [];
  const targets: number[] = [];
  const weights: number[] = [];
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < t - 1; j++) {
      const w = batch.targetWeights === undefined ? 1 : batch.targetWeights[i * (t - 1) + j]!;
      if (!(mask[i * t + j + 1]! > 0)) continue;
      if (batch.targetMask === undefined ? w === 0 : !(batch.targetMask[i * (t - 1) + j]! > 0))
        continue;
      const target = inputIds[i * t + j + 1]!;
      if (target < 0 || target >= config.vocabSize)
        throw new ModelInputError(
          `token id ${target} at [${i}, ${j + 1}] is outside the vocabulary [0, ${config.vocabSize})`,
        );
      rows.push(i * t + j);
      targets.push(target);
      weights.push(w);
    }
  }
  const divisor = batch.divisor ?? weights.reduce((a, w) => a + w, 0);
  if (!(divisor > 0))
    throw new ModelInputError(
      `onnx training batch: the loss divisor must be > 0, got ${divisor} (no counted target?)`,
    );
  return {
    inputIds,
    cos,
    sin,
    bias: attentionBiasValues(mask, b, t, t),
    rows: BigInt64Array.from(rows, (r) => BigInt(r)),
    targets: BigInt64Array.from(targets, (r) => BigInt(r)),
    lossWeights: Float32Array.from(weights, (w) => w / divisor),
    batch: b,
    time: t,
  };
}

/**
 * Why the ONNX training graph cannot train `model` here (undefined: it can, as far as can be told
 * before opening a session): LoRA adapters, Qwen3's per-head q/k norms, or onnxruntime-node not
 * loading. SFT and GRPO check this before choosing their gradient engine.
 */
export function onnxTrainUnsupported(model: CausalLM): string | undefined {
  if (model.loraConfig !== undefined) return 'the model has LoRA adapters';
  if (model.config.architecture === 'qwen3')
    return "Qwen3's per-head q/k norms are not in the ONNX training graph";
  const status = onnxRuntimeStatus();
  return status.available ? undefined : status.reason;
}

/**
 * An onnxruntime session over the training graph of one model config: `run` takes the weights
 * (by Hugging Face name, in-memory layout) and a batch, and returns the loss and every weight's
 * gradient. The weights are graph inputs, so an optimizer may change them between runs.
 */
export class OnnxTrainStep {
  private released = false;
  /** The unchunked graph's step, opened for the first batch shorter than the chunk count. */
  private whole: Promise<OnnxTrainStep> | undefined;

  private constructor(
    readonly session: Ort.InferenceSession,
    private readonly runtime: OnnxRuntimeModule,
    readonly config: ModelConfig,
    readonly threads: number,
    /** The graph's distribution and extra outputs (see `TrainGraphOptions`). */
    readonly graphOptions: TrainGraphOptions = {},
  ) {}

  /** Builds the graph and opens a session with `threads` intra-op threads (throws where onnxruntime-node does not load). */
  static async create(
    config: ModelConfig,
    threads = 1,
    graphOptions: TrainGraphOptions = {},
  ): Promise<OnnxTrainStep> {
    const result = loadRuntime();
    if (!('runtime' in result)) throw new Error(result.reason);
    const session = await result.runtime.InferenceSession.create(
      buildTrainGraph(config, graphOptions),
      {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        // Threads that spin between kernels take CPU from the other processes of a shared machine.
        ...(threads > 1 ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
      },
    );
    return new OnnxTrainStep(session, result.runtime, config, threads, graphOptions);
  }

  async run(
    weights: ReadonlyMap<string, Float32Array>,
    batch: OnnxTrainBatch | OnnxTrainFeeds,
  ): Promise<{
    loss: number;
    gradients: Map<string, Float32Array>;
    /** [M], the feeds' rows in order: log p(target) (`TrainGraphOptions.logProbs`). */
    logProbs?: Float32Array;
    /** [M]: each row's entropy (`TrainGraphOptions.entropy`). */
    entropy?: Float32Array;
  }> {
    const feeds = 'cos' in batch ? batch : onnxTrainFeeds(this.config, batch);
    const { vocabLimit } = resolveTrainGraphOptions(this.config, this.graphOptions);
    if (vocabLimit < this.config.vocabSize)
      for (const target of feeds.targets)
        if (target >= vocabLimit)
          throw new ModelInputError(
            `onnx training step: target token id ${target} is outside vocabLimit ${vocabLimit}`,
          );
    // fewer positions than query chunks would leave a chunk empty, which the graph's reshapes
    // cannot express: such (rare, tiny) batches run on the unchunked graph
    if (feeds.time < (this.graphOptions.attentionChunks ?? TRAIN_ATTENTION_CHUNKS)) {
      this.whole ??= OnnxTrainStep.create(this.config, this.threads, {
        ...this.graphOptions,
        attentionChunks: 1,
      });
      return (await this.whole).run(weights, feeds);
    }
    const { Tensor } = this.runtime;
    const hd = headDimOf(this.config);
    const b = feeds.batch;
    const t = feeds.time;
    const m = feeds.rows.length;
    const inputs: Record<string, Ort.Tensor> = {
      input_ids: new Tensor('int32', feeds.inputIds, [b, t]),
      cos: new Tensor('float32', feeds.cos, [b, t, 1, hd]),
      sin: new Tensor('float32', feeds.sin, [b, t, 1, hd]),
      bias: new Tensor('float32', feeds.bias, [b, 1, 1, t, t]),
      rows: new Tensor('int64', feeds.rows, [m]),
      targets: new Tensor('int64', feeds.targets, [m, 1]),
      loss_weights: new Tensor('float32', feeds.lossWeights, [m, 1]),
    };
    const specs = parameterSpecs(this.config);
    for (const spec of specs) {
      const value = weights.get(spec.name);
      if (value === undefined)
        throw new ModelInputError(`onnx training step: missing weight ${spec.name}`);
      inputs[spec.name] = new Tensor('float32', value, spec.shape);
    }
    const out = await this.session.run(inputs);
    const gradients = new Map<string, Float32Array>();
    for (const spec of specs)
      gradients.set(spec.name, out[gradientOutputName(spec.name)]!.data as Float32Array);
    // each token's gradient into its id's row, in token order (deterministic; see TOKEN_GRADIENTS)
    const embed = gradients.get('model.embed_tokens.weight')!;
    const tokens = out[TOKEN_GRADIENTS]!.data as Float32Array;
    const h = this.config.hiddenSize;
    for (let i = 0; i < feeds.inputIds.length; i++) {
      const row = feeds.inputIds[i]! * h;
      for (let j = 0; j < h; j++) embed[row + j]! += tokens[i * h + j]!;
    }
    const logProbs = out[ROW_LOG_PROBS]?.data as Float32Array | undefined;
    const entropy = out[ROW_ENTROPY]?.data as Float32Array | undefined;
    return {
      loss: (out['loss']!.data as Float32Array)[0]!,
      gradients,
      ...(logProbs === undefined ? {} : { logProbs }),
      ...(entropy === undefined ? {} : { entropy }),
    };
  }

  /** Frees the session's native memory (once; later calls do nothing). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
    if (this.whole !== undefined) await (await this.whole).release();
  }
}
