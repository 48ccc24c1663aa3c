import onnxProto from 'onnx-proto';
import type { ModelConfig } from './config.js';
import { headDimOf } from './config.js';

const { onnx } = onnxProto;

/** The weights a decoder graph is built from, by Hugging Face name, in the in-memory [in, out] layout of `parameterSpecs`. */
export type DecoderWeights = ReadonlyMap<string, Float32Array>;

/**
 * The ONNX decoder graph's interface. Every call runs T new tokens per row over a KV cache of C
 * slots per row (C = 0 for the prompt's prefill; the fixed capacity during decoding, with the slots
 * not yet written masked by the bias):
 *
 * inputs
 * - `input_ids` int32 [B, T]
 * - `position_ids` int64 [B, T]: each token's position (left padding does not count)
 * - `cos_cache`, `sin_cache` float [P, hd / 2]: the rotary tables' first halves (rotate-half
 *   layout), rows for positions 0..P-1
 * - `bias` float [B, 1, 1, T, C + T]: additive attention bias over the C cached keys, then the T new ones
 * - `split_keys` int64 [2] = [C, T]
 * - `inverse_temperature` float [1] and `vocab_limit` int64 [1]: what `sampleToken` samples from
 * - `past_key.{i}` float [B, K, 1, hd, C] (keys stored transposed so q·kᵀ needs no transpose of the
 *   cache), `past_value.{i}` float [B, K, 1, C, hd], per layer i (the 1: see "attention" below)
 *
 * outputs
 * - `logits` float [B, vocab]: the last position's
 * - `sampling_weights` float [B, vocab_limit]: exp(logit / temperature - row max) over the first
 *   vocab_limit logits, the weights `sampleToken` would compute with Math.exp (one vectorised
 *   kernel instead of vocab calls of Math.exp per row in JS)
 * - `sampling_max` float [B, 1]: the row max those weights are relative to (of logit / temperature)
 * - `sampling_total` double [B, 1]: the sum of each row's `sampling_weights`, in float64
 * - `key.{i}` float [B, K, 1, hd, T] and `value.{i}` float [B, K, 1, T, hd]: the new tokens' keys
 *   (after RoPE) and values, which the caller writes into its cache
 */
export const DECODER_GRAPH_OPSET = 17;

/** onnxruntime's contrib operator domain (its CPU build registers RotaryEmbedding there). */
const CONTRIB_DOMAIN = 'com.microsoft';

type Attribute = { name: string; ints?: number[]; i?: number; f?: number; s?: string };

/** Builds an ONNX graph node by node (shared by the decoder and the training graph, onnx-train-graph.ts). */
export class GraphBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  /** Weights fed at run time instead of stored in the graph (see `DecoderGraphOptions`). */
  readonly weightInputs = new Map<string, { data: Float32Array; dims: number[] }>();
  private counter = 0;

  constructor(private readonly weightsAsInputs: boolean) {}

  /** A model weight: an initializer, or a graph input of the same name. */
  weight(name: string, values: Float32Array, dims: number[]): string {
    if (!this.weightsAsInputs) return this.floats(name, values, dims);
    this.weightInputs.set(name, { data: values, dims });
    return name;
  }

  /** Adds a node (of the ONNX domain unless `domain` is given) and returns its outputs' names. */
  op(
    opType: string,
    inputs: string[],
    attributes: Attribute[] = [],
    outputs = 1,
    domain?: string,
  ): string[] {
    const names = Array.from({ length: outputs }, () => `t${this.counter++}`);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        ...(domain !== undefined ? { domain } : {}),
        input: inputs,
        output: names,
        attribute: attributes.map((a) =>
          onnx.AttributeProto.create({
            name: a.name,
            ...(a.ints !== undefined
              ? { ints: a.ints, type: onnx.AttributeProto.AttributeType.INTS }
              : a.i !== undefined
                ? { i: a.i, type: onnx.AttributeProto.AttributeType.INT }
                : a.s !== undefined
                  ? {
                      s: new TextEncoder().encode(a.s),
                      type: onnx.AttributeProto.AttributeType.STRING,
                    }
                  : { f: a.f, type: onnx.AttributeProto.AttributeType.FLOAT }),
          }),
        ),
      }),
    );
    return names;
  }

  one(opType: string, inputs: string[], attributes: Attribute[] = []): string {
    return this.op(opType, inputs, attributes)[0]!;
  }

  /** Renames the output of the last node (graph outputs need fixed names). */
  nameLast(name: string): string {
    this.nodes[this.nodes.length - 1]!.output[0] = name;
    return name;
  }

  floats(name: string, values: Float32Array, dims: number[]): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: onnx.TensorProto.DataType.FLOAT,
        rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      }),
    );
    return name;
  }

  int64s(values: number[]): string {
    const name = `c${this.counter++}`;
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims: [values.length],
        dataType: onnx.TensorProto.DataType.INT64,
        rawData: new Uint8Array(data.buffer),
      }),
    );
    return name;
  }

  scalar(value: number): string {
    return this.floats(`c${this.counter++}`, Float32Array.of(value), []);
  }
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })),
        },
      },
    },
  });
}

/** [d, a] and [d, b] (row-major) side by side as [d, a + b + …]. */
function concatColumns(parts: Float32Array[], rows: number): Float32Array {
  const widths = parts.map((p) => p.length / rows);
  const total = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let offset = r * total;
    parts.forEach((p, i) => {
      const w = widths[i]!;
      out.set(p.subarray(r * w, (r + 1) * w), offset);
      offset += w;
    });
  }
  return out;
}

/**
 * Serialises the decoder of a Llama/Qwen2-family model (no Qwen3 q/k norms, no LoRA) as an ONNX
 * model with its weights as initializers (see `DECODER_GRAPH_OPSET`'s comment for the interface).
 * q/k/v and gate/up are concatenated into one product each.
 */
export interface DecoderGraphOptions {
  /**
   * The weights become graph inputs (fed with every run; nothing copied into the graph) instead of
   * initializers: a change of weights then needs no new session, and the graph has no size limit.
   */
  weightsAsInputs?: boolean;
}

export interface DecoderGraph {
  bytes: Uint8Array;
  /** The weight inputs' values by input name (empty with initializers). */
  weightInputs: ReadonlyMap<string, { data: Float32Array; dims: number[] }>;
}

export function buildDecoderGraph(
  config: ModelConfig,
  weights: DecoderWeights,
  options: DecoderGraphOptions = {},
): DecoderGraph {
  const get = (name: string): Float32Array => {
    const value = weights.get(name);
    if (value === undefined) throw new Error(`decoder graph: missing weight ${name}`);
    return value;
  };
  const d = config.hiddenSize;
  const hd = headDimOf(config);
  const heads = config.numAttentionHeads;
  const kvHeads = config.numKeyValueHeads;
  const inter = config.intermediateSize;
  const vocab = config.vocabSize;
  const g = new GraphBuilder(options.weightsAsInputs === true);
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const INT64 = onnx.TensorProto.DataType.INT64;
  // Attention's 1/√hd is folded into q's weights (and bias): RoPE is linear, so this equals scaling
  // the scores, and no Mul is left for onnxruntime to fuse into the q·kᵀ product as FusedMatMul's
  // alpha, which takes MLAS off its M = 1 kernel (alpha must be 1) onto packing the cache per head.
  const scale = 1 / Math.sqrt(hd);
  const groups = heads / kvHeads;

  // onnxruntime's SimplifiedLayerNormalization (RMSNorm: x / sqrt(mean(x²) + eps) · weight), a
  // contrib kernel it registers in the ONNX domain: one kernel instead of six.
  const rmsNorm = (x: string, weight: string): string =>
    g.one(
      'SimplifiedLayerNormalization',
      [x, weight],
      [
        { name: 'axis', i: -1 },
        { name: 'epsilon', f: config.rmsNormEps },
      ],
    );
  // RoPE on [B, T, n·hd] as onnxruntime's contrib RotaryEmbedding (rotate-half, positions per
  // token): one kernel instead of Split, Neg, Concat, Mul, Mul, Add.
  const rope = (x: string, n: number): string =>
    g.op(
      'RotaryEmbedding',
      [x, 'position_ids', 'cos_cache', 'sin_cache'],
      [{ name: 'num_heads', i: n }],
      1,
      CONTRIB_DOMAIN,
    )[0]!;

  // [B, T, n·hd] → [B, T, K, n / K, hd]: the axes a 5-D transpose takes straight to attention's
  const groupedQ = g.int64s([0, 0, kvHeads, groups, hd]);
  const groupedKv = g.int64s([0, 0, kvHeads, 1, hd]);
  const mergedShape = g.int64s([0, 0, heads * hd]);
  const qkvSplit = g.int64s([heads * hd, kvHeads * hd, kvHeads * hd]);
  const gateUpSplit = g.int64s([inter, inter]);

  let x = g.one('Gather', [
    g.weight('embed', get('model.embed_tokens.weight'), [vocab, d]),
    'input_ids',
  ]);
  const pastInputs: ReturnType<typeof valueInfo>[] = [];
  const cacheOutputs: ReturnType<typeof valueInfo>[] = [];
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    const w = (name: string) => get(`${p}.${name}`);
    const h = rmsNorm(x, g.weight(`norm1.${i}`, w('input_layernorm.weight'), [d]));
    const qkvWidth = (heads + 2 * kvHeads) * hd;
    let qkv = g.one('MatMul', [
      h,
      g.weight(
        `qkv.${i}`,
        concatColumns(
          [
            w('self_attn.q_proj.weight').map((x) => x * scale),
            w('self_attn.k_proj.weight'),
            w('self_attn.v_proj.weight'),
          ],
          d,
        ),
        [d, qkvWidth],
      ),
    ]);
    if (weights.has(`${p}.self_attn.q_proj.bias`)) {
      const bias = new Float32Array(qkvWidth);
      bias.set(w('self_attn.q_proj.bias').map((x) => x * scale));
      bias.set(w('self_attn.k_proj.bias'), heads * hd);
      bias.set(w('self_attn.v_proj.bias'), (heads + kvHeads) * hd);
      qkv = g.one('Add', [qkv, g.weight(`qkv_bias.${i}`, bias, [qkvWidth])]);
    }
    const [q, k, v] = g.op('Split', [qkv, qkvSplit], [{ name: 'axis', i: -1 }], 3);
    // Attention runs on 5-D tensors [B, K, G, ·, ·]: q [B, T, H·hd] → [B, K, G, T, hd] (a group's
    // G query heads), keys [B, K, 1, hd, T] and values [B, K, 1, T, hd] broadcast over the group.
    // MatMul then multiplies each query head alone (M = T, 1 when decoding: MLAS's M = 1 kernel
    // streams the cache once) and keys/values are never repeated.
    const to5d = (x: string, shape: string, perm: number[]): string =>
      g.one('Transpose', [g.one('Reshape', [x, shape])], [{ name: 'perm', ints: perm }]);
    const q5 = to5d(rope(q!, heads), groupedQ, [0, 2, 3, 1, 4]);
    to5d(rope(k!, kvHeads), groupedKv, [0, 2, 3, 4, 1]);
    const keyT = g.nameLast(`key.${i}`);
    to5d(v!, groupedKv, [0, 2, 3, 1, 4]);
    const value = g.nameLast(`value.${i}`);
    pastInputs.push(
      valueInfo(`past_key.${i}`, FLOAT, ['batch', kvHeads, 1, hd, 'cached']),
      valueInfo(`past_value.${i}`, FLOAT, ['batch', kvHeads, 1, 'cached', hd]),
    );
    cacheOutputs.push(
      valueInfo(`key.${i}`, FLOAT, ['batch', kvHeads, 1, hd, 'time']),
      valueInfo(`value.${i}`, FLOAT, ['batch', kvHeads, 1, 'time', hd]),
    );
    // scores [B, K, G, T, C + T]: the cached keys, then the new ones
    const scores = g.one(
      'Concat',
      [g.one('MatMul', [q5, `past_key.${i}`]), g.one('MatMul', [q5, keyT])],
      [{ name: 'axis', i: -1 }],
    );
    const probs = g.one('Softmax', [g.one('Add', [scores, 'bias'])], [{ name: 'axis', i: -1 }]);
    const [pPast, pNew] = g.op('Split', [probs, 'split_keys'], [{ name: 'axis', i: -1 }], 2);
    const attention = g.one('Add', [
      g.one('MatMul', [pPast!, `past_value.${i}`]),
      g.one('MatMul', [pNew!, value]),
    ]);
    // [B, K, G, T, hd] → [B, T, K, G, hd] = [B, T, H·hd] (head h = k·G + g)
    const merged = g.one('Reshape', [
      g.one('Transpose', [attention], [{ name: 'perm', ints: [0, 3, 1, 2, 4] }]),
      mergedShape,
    ]);
    x = g.one('Add', [
      x,
      g.one('MatMul', [merged, g.weight(`o.${i}`, w('self_attn.o_proj.weight'), [heads * hd, d])]),
    ]);
    const h2 = rmsNorm(x, g.weight(`norm2.${i}`, w('post_attention_layernorm.weight'), [d]));
    const gateUp = g.one('MatMul', [
      h2,
      g.weight(
        `gate_up.${i}`,
        concatColumns([w('mlp.gate_proj.weight'), w('mlp.up_proj.weight')], d),
        [d, 2 * inter],
      ),
    ]);
    const [gate, up] = g.op('Split', [gateUp, gateUpSplit], [{ name: 'axis', i: -1 }], 2);
    const act = g.one('Mul', [g.one('Mul', [gate!, g.one('Sigmoid', [gate!])]), up!]);
    x = g.one('Add', [
      x,
      g.one('MatMul', [act, g.weight(`down.${i}`, w('mlp.down_proj.weight'), [inter, d])]),
    ]);
  }
  // Only the last position's logits are used: slice before the final norm and the head.
  const last = g.one('Reshape', [
    g.one('Slice', [x, g.int64s([-1]), g.int64s([2 ** 53]), g.int64s([1])]),
    g.int64s([0, d]),
  ]);
  const normed = rmsNorm(last, g.weight('norm.final', get('model.norm.weight'), [d]));
  if (weights.has('lm_head.weight'))
    g.one('MatMul', [normed, g.weight('lm_head', get('lm_head.weight'), [d, vocab])]);
  // Tied: the embedding [vocab, d] used transposed by Gemm, no second copy.
  else g.one('Gemm', [normed, 'embed'], [{ name: 'transB', i: 1 }]);
  const logits = g.nameLast('logits');
  const scaled = g.one('Mul', [
    g.one('Slice', [logits, g.int64s([0]), 'vocab_limit', g.int64s([1])]),
    'inverse_temperature',
  ]);
  g.one('ReduceMax', [scaled], [{ name: 'axes', ints: [1] }]);
  const rowMax = g.nameLast('sampling_max');
  g.one('Exp', [g.one('Sub', [scaled, rowMax])]);
  const samplingWeights = g.nameLast('sampling_weights');
  // Each row's total weight in float64 (exact casts; summed in another order than a JS loop would,
  // which moves the total by ~1e-16 relative): with the row max, sampleToken needs no pass over the
  // row but the draw's own.
  g.one('ReduceSum', [
    g.one('Cast', [samplingWeights], [{ name: 'to', i: onnx.TensorProto.DataType.DOUBLE }]),
    g.int64s([1]),
  ]);
  g.nameLast('sampling_total');

  const graph = onnx.GraphProto.create({
    name: 'codereasoner-decoder',
    node: g.nodes,
    initializer: g.initializers,
    input: [
      valueInfo('input_ids', onnx.TensorProto.DataType.INT32, ['batch', 'time']),
      valueInfo('position_ids', INT64, ['batch', 'time']),
      valueInfo('cos_cache', FLOAT, ['positions', hd / 2]),
      valueInfo('sin_cache', FLOAT, ['positions', hd / 2]),
      valueInfo('bias', FLOAT, ['batch', 1, 1, 'time', 'keys']),
      valueInfo('split_keys', INT64, [2]),
      valueInfo('inverse_temperature', FLOAT, [1]),
      valueInfo('vocab_limit', INT64, [1]),
      ...pastInputs,
      ...[...g.weightInputs].map(([name, w]) => valueInfo(name, FLOAT, w.dims)),
    ],
    output: [
      valueInfo('logits', FLOAT, ['batch', vocab]),
      valueInfo('sampling_weights', FLOAT, ['batch', 'sampled']),
      valueInfo('sampling_max', FLOAT, ['batch', 1]),
      valueInfo('sampling_total', onnx.TensorProto.DataType.DOUBLE, ['batch', 1]),
      ...cacheOutputs,
    ],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: '@codereasoner/core-tensors',
    opsetImport: [
      { domain: '', version: DECODER_GRAPH_OPSET },
      { domain: CONTRIB_DOMAIN, version: 1 },
    ],
    graph,
  });
  return { bytes: onnx.ModelProto.encode(model).finish(), weightInputs: g.weightInputs };
}
