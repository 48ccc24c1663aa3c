import onnxProto from 'onnx-proto';
import type { ModelConfig } from './config.js';
import { headDimOf } from './config.js';
import { parameterSpecs } from './model.js';
import { DECODER_GRAPH_OPSET, GraphBuilder, valueInfo } from './onnx-graph.js';

const { onnx } = onnxProto;

/**
 * The ONNX training graph's interface: one SFT/LM step's forward pass and its hand-written
 * backward, so onnxruntime (an inference engine) computes the loss and every weight's gradient.
 *
 * inputs
 * - every weight of `parameterSpecs(config)`, by its Hugging Face name, in the in-memory [in, out]
 *   layout (graph inputs: a new step's weights need no new session)
 * - `input_ids` int32 [B, T]
 * - `cos`, `sin` float [B, T, 1, hd]: rotary tables at each token's position (rotate-half layout;
 *   packed examples restart at 0)
 * - `bias` float [B, 1, 1, T, T]: additive attention bias (causal, padding and packed segments;
 *   `attentionBiasValues`)
 * - `rows` int64 [M]: the flat positions b·T + t whose next token counts in the loss
 * - `targets` int64 [M, 1]: the token each of those rows predicts
 * - `loss_weights` float [M, 1]: each row's weight; loss = −Σ weight · log p(target)
 *
 * outputs
 * - `loss` float []: the weighted loss
 * - `log_probs` float [M] (`TrainGraphOptions.logProbs`): each row's log p(target)
 * - `entropy` float [M] (`TrainGraphOptions.entropy`): each row's next-token distribution's entropy
 * - `grad.<name>` float, the weight's shape: d loss / d weight, for every weight, except that the
 *   embedding's lacks its rows' part (with a tied head it is the head's gradient, else zeros)
 * - `token_gradients` float [batch · time, hidden]: d loss / d each token's embedding, which
 *   `OnnxTrainStep.run` adds into its id's row of the embedding's gradient
 *
 * `TrainGraphOptions.temperature` and `vocabLimit` (GRPO's log-probs) make p the softmax of
 * logits / temperature over the ids [0, vocabLimit) only, as `CausalLM.tokenLogProbs`; the
 * head's gradient is 0 on the ids past the limit. Without them the graph is the SFT one, node for node.
 *
 * Forward activations stay in the graph (nothing is recomputed); the only contrib-free choices are
 * standard opset-17 ops, with ScatterND/ScatterElements' reduction 'add' (opset 16) for the
 * softmax's target entries (one per row, so no two updates meet).
 */
export const TRAIN_GRAPH_OPSET = DECODER_GRAPH_OPSET;

/** The training graph's output of the gradient at each token's embedding (see `buildTrainGraph`). */
export const TOKEN_GRADIENTS = 'token_gradients';

/** The training graph's output name of a weight's gradient. */
export function gradientOutputName(weightName: string): string {
  return `grad.${weightName}`;
}

/**
 * Query chunks of causal attention in the training graph: chunk c of n (query positions
 * [c·T/n, (c+1)·T/n)) only scores keys before its end, so the [T, T] products and elementwise
 * passes cover (n + 1) / 2n of the square (62.5 % at 4) instead of all of it; what is cut is
 * the bias's −∞ (causal) part, whose probabilities are exactly 0.
 */
export const TRAIN_ATTENTION_CHUNKS = 4;

/** The training graph's output of each row's target log-prob (`TrainGraphOptions.logProbs`). */
export const ROW_LOG_PROBS = 'log_probs';

/** The training graph's output of each row's entropy (`TrainGraphOptions.entropy`). */
export const ROW_ENTROPY = 'entropy';

/** What the training graph's distribution is and what it outputs besides the loss and gradients. */
export interface TrainGraphOptions {
  /** Query chunks of attention (default `TRAIN_ATTENTION_CHUNKS`; 1 = the whole [T, T] square). */
  attentionChunks?: number;
  /** p = softmax(logits / temperature) (default 1, SFT's). */
  temperature?: number;
  /** The softmax runs over ids [0, vocabLimit) only (default: the whole vocabulary). */
  vocabLimit?: number;
  /** Output `log_probs` [M]: each row's log p(target). */
  logProbs?: boolean;
  /** Output `entropy` [M]: each row's entropy −Σ p·log p (a figure: no gradient flows from it). */
  entropy?: boolean;
}

/** Throws for a temperature or vocabulary limit the graph cannot use; returns them resolved. */
export function resolveTrainGraphOptions(
  config: ModelConfig,
  options: TrainGraphOptions = {},
): { temperature: number; vocabLimit: number } {
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature))
    throw new Error(`training graph: temperature must be a finite number > 0, got ${temperature}`);
  const vocabLimit = options.vocabLimit ?? config.vocabSize;
  if (!Number.isInteger(vocabLimit) || vocabLimit < 1 || vocabLimit > config.vocabSize)
    throw new Error(
      `training graph: vocabLimit must be an integer in [1, ${config.vocabSize}], got ${vocabLimit}`,
    );
  return { temperature, vocabLimit };
}

/** Serialises one training step of a Llama/Qwen2-family model (no Qwen3 q/k norms, no LoRA) as an ONNX model (see `TRAIN_GRAPH_OPSET`). */
export function buildTrainGraph(config: ModelConfig, options: TrainGraphOptions = {}): Uint8Array {
  const chunks = options.attentionChunks ?? TRAIN_ATTENTION_CHUNKS;
  if (!Number.isInteger(chunks) || chunks < 1)
    throw new Error(`training graph: attentionChunks must be an integer ≥ 1, got ${chunks}`);
  if (config.architecture === 'qwen3')
    throw new Error('training graph: per-head q/k norms (Qwen3) are not supported');
  const { temperature, vocabLimit } = resolveTrainGraphOptions(config, options);
  const limited = vocabLimit < config.vocabSize;
  const hd = headDimOf(config);
  if (hd % 2 !== 0)
    throw new Error('training graph: the head dimension is odd (RoPE rotates halves)');
  const heads = config.numAttentionHeads;
  const kvHeads = config.numKeyValueHeads;
  const group = heads / kvHeads;
  const specs = parameterSpecs(config);
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const INT64 = onnx.TensorProto.DataType.INT64;
  const INT32 = onnx.TensorProto.DataType.INT32;
  const g = new GraphBuilder(true);
  const op = (
    type: string,
    inputs: string[],
    attributes: Parameters<GraphBuilder['one']>[2] = [],
  ) => g.one(type, inputs, attributes);
  const mul = (a: string, b: string) => op('Mul', [a, b]);
  const add = (a: string, b: string) => op('Add', [a, b]);
  const sub = (a: string, b: string) => op('Sub', [a, b]);
  const matMul = (a: string, b: string) => op('MatMul', [a, b]);
  /** a·bᵀ, aᵀ·b for 2-D operands (Gemm's transposes cost no copy). */
  const matMulBt = (a: string, b: string) => op('Gemm', [a, b], [{ name: 'transB', i: 1 }]);
  const matMulAt = (a: string, b: string) => op('Gemm', [a, b], [{ name: 'transA', i: 1 }]);
  const transpose = (x: string, perm: number[]) =>
    op('Transpose', [x], [{ name: 'perm', ints: perm }]);
  const reshape = (x: string, shape: string) => op('Reshape', [x, shape]);
  const axisLast = g.int64s([-1]);
  const axisRows = g.int64s([0]);
  const sumRows = (x: string) => op('ReduceSum', [x, axisRows], [{ name: 'keepdims', i: 0 }]);
  const sumLast = (x: string) => op('ReduceSum', [x, axisLast], [{ name: 'keepdims', i: 1 }]);
  const meanLast = (x: string) =>
    op(
      'ReduceMean',
      [x],
      [
        { name: 'axes', ints: [-1] },
        { name: 'keepdims', i: 1 },
      ],
    );

  // Shapes that depend on B and T, from the ids' shape.
  const bt = op('Shape', ['input_ids']);
  const batchDim = op('Slice', [bt, g.int64s([0]), g.int64s([1])]);
  const timeDim = op('Slice', [bt, g.int64s([1]), g.int64s([2])]);
  const concat = (parts: string[]) => op('Concat', parts, [{ name: 'axis', i: 0 }]);
  // chunk c's query rows [bounds[c], bounds[c + 1]): ⌊c·T / n⌋ (int64 division floors)
  const bounds = Array.from({ length: chunks + 1 }, (_, c) =>
    c === 0
      ? g.int64s([0])
      : c === chunks
        ? timeDim
        : op('Div', [op('Mul', [timeDim, g.int64s([c])]), g.int64s([chunks])]),
  );
  const slice = (x: string, starts: string, ends: string, axes: number[]) =>
    op('Slice', [x, starts, ends, g.int64s(axes)]);
  const byGroups = g.int64s([0, kvHeads, group, -1, hd]);
  const tokensByHeads = concat([bt, g.int64s([heads, hd])]);
  const tokensByKvHeads = concat([bt, g.int64s([kvHeads, hd])]);
  const groupedShape = g.int64s([0, kvHeads, -1, hd]);
  const headsShape = g.int64s([0, heads, -1, hd]);
  const flatQ = g.int64s([-1, heads * hd]);
  const flatKv = g.int64s([-1, kvHeads * hd]);
  const flatTokens = g.int64s([-1]);
  const scale = g.scalar(1 / Math.sqrt(hd));
  const one = g.scalar(1);
  const eps = g.scalar(config.rmsNormEps);
  const half = g.int64s([hd / 2, hd / 2]);
  const qkvSplit = g.int64s([heads * hd, kvHeads * hd, kvHeads * hd]);
  const gateUpSplit = g.int64s([config.intermediateSize, config.intermediateSize]);

  /** rotate_half: concat(−x2, x1) over the last axis. */
  const rotateHalf = (x: string): string => {
    const [x1, x2] = g.op('Split', [x, half], [{ name: 'axis', i: -1 }], 2);
    return op('Concat', [op('Neg', [x2!]), x1!], [{ name: 'axis', i: -1 }]);
  };
  const rope = (x: string) => add(mul(x, 'cos'), mul(rotateHalf(x), 'sin'));
  // The rotation's transpose (the tables repeat over the halves): dx = dy·cos − rotate_half(dy)·sin.
  const ropeBackward = (dy: string) => sub(mul(dy, 'cos'), mul(rotateHalf(dy), 'sin'));

  interface Norm {
    normalized: string;
    inverseRms: string;
    out: string;
  }
  const rmsNorm = (x: string, weight: string): Norm => {
    const inverseRms = op('Reciprocal', [op('Sqrt', [add(meanLast(mul(x, x)), eps)])]);
    const normalized = mul(x, inverseRms);
    return { normalized, inverseRms, out: mul(normalized, weight) };
  };
  /** Gradients of the norm's weight and input from the gradient of its output. */
  const rmsNormBackward = (n: Norm, weight: string, dOut: string) => {
    const dWeight = sumRows(mul(dOut, n.normalized));
    const dNormalized = mul(dOut, weight);
    const dx = mul(
      n.inverseRms,
      sub(dNormalized, mul(n.normalized, meanLast(mul(dNormalized, n.normalized)))),
    );
    return { dWeight, dx };
  };

  const gradients = new Map<string, string>();
  const ids = reshape('input_ids', flatTokens);
  const embed = 'model.embed_tokens.weight';
  let x = op('Gather', [embed, ids]);

  interface LayerState {
    p: string;
    input: string;
    norm1: Norm;
    qkvWeight: string;
    gateUpWeight: string;
    kr: string;
    v4: string;
    /** per query chunk: its queries [B, K, G·t, hd], keys and values up to its end, probabilities, output */
    parts: { qs: string; keys: string; values: string; probs: string; out: string }[];
    merged: string;
    mid: string;
    norm2: Norm;
    gate: string;
    up: string;
    sigmoid: string;
    silu: string;
    act: string;
  }
  const layers: LayerState[] = [];
  const hasBias = config.architecture === 'qwen2';
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    const input = x;
    const norm1 = rmsNorm(x, `${p}.input_layernorm.weight`);
    // q, k and v (and gate and up below) as one product each: one pass over the normalised input
    // and longer rows for the kernel; the concatenated weight is a copy of [d, (H + 2K)·hd] floats.
    const qkvWeight = op(
      'Concat',
      ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}.weight`),
      [{ name: 'axis', i: 1 }],
    );
    let qkv = matMul(norm1.out, qkvWeight);
    if (hasBias)
      qkv = add(
        qkv,
        op(
          'Concat',
          ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}.self_attn.${n}.bias`),
          [{ name: 'axis', i: 0 }],
        ),
      );
    const [qFlat, kFlat, vFlat] = g.op('Split', [qkv, qkvSplit], [{ name: 'axis', i: -1 }], 3);
    // q [N, H·hd] → [B, T, H, hd] → RoPE → [B, H, T, hd] → [B, K, G·T, hd]: a group's query
    // heads stacked along time, so one product per key/value head serves its whole group.
    const qs = mul(
      reshape(transpose(rope(reshape(qFlat!, tokensByHeads)), [0, 2, 1, 3]), groupedShape),
      scale,
    );
    const kr = transpose(rope(reshape(kFlat!, tokensByKvHeads)), [0, 2, 1, 3]);
    const v4 = transpose(reshape(vFlat!, tokensByKvHeads), [0, 2, 1, 3]);
    // per query chunk: the keys up to its end (the rest are causally masked: exactly 0)
    const qs5 = reshape(qs, byGroups);
    const krT = transpose(kr, [0, 1, 3, 2]);
    const parts: LayerState['parts'] = [];
    for (let c = 0; c < chunks; c++) {
      const [from, to] = [bounds[c]!, bounds[c + 1]!];
      const chunkQs = reshape(slice(qs5, from, to, [3]), groupedShape);
      const keys = slice(kr, g.int64s([0]), to, [2]);
      const values = slice(v4, g.int64s([0]), to, [2]);
      const scores = reshape(
        matMul(chunkQs, slice(krT, g.int64s([0]), to, [3])),
        concat([batchDim, g.int64s([kvHeads, group, -1]), to]),
      );
      const bias = slice('bias', concat([from, g.int64s([0])]), concat([to, to]), [3, 4]);
      const probs = reshape(
        op('Softmax', [add(scores, bias)], [{ name: 'axis', i: -1 }]),
        concat([batchDim, g.int64s([kvHeads, -1]), to]),
      );
      parts.push({ qs: chunkQs, keys, values, probs, out: matMul(probs, values) });
    }
    const attention =
      chunks === 1
        ? parts[0]!.out
        : reshape(
            op(
              'Concat',
              parts.map((part) => reshape(part.out, byGroups)),
              [{ name: 'axis', i: 3 }],
            ),
            groupedShape,
          );
    const merged = reshape(transpose(reshape(attention, headsShape), [0, 2, 1, 3]), flatQ);
    const mid = add(x, matMul(merged, `${p}.self_attn.o_proj.weight`));
    const norm2 = rmsNorm(mid, `${p}.post_attention_layernorm.weight`);
    const gateUpWeight = op(
      'Concat',
      [`${p}.mlp.gate_proj.weight`, `${p}.mlp.up_proj.weight`],
      [{ name: 'axis', i: 1 }],
    );
    const [gate, up] = g.op(
      'Split',
      [matMul(norm2.out, gateUpWeight), gateUpSplit],
      [{ name: 'axis', i: -1 }],
      2,
    );
    const sigmoid = op('Sigmoid', [gate!]);
    const silu = mul(gate!, sigmoid);
    const act = mul(silu, up!);
    x = add(mid, matMul(act, `${p}.mlp.down_proj.weight`));
    layers.push({
      p,
      input,
      norm1,
      qkvWeight,
      gateUpWeight,
      kr,
      v4,
      parts,
      merged,
      mid,
      norm2,
      gate: gate!,
      up: up!,
      sigmoid,
      silu,
      act,
    });
  }
  const finalNorm = rmsNorm(x, 'model.norm.weight');

  // Only the rows whose next token counts go through the LM head and the softmax over the vocabulary.
  const selected = op('Gather', [finalNorm.out, 'rows']);
  const tied = config.tieWordEmbeddings;
  const head = tied ? embed : 'lm_head.weight';
  // the head's first vocabLimit ids: rows of a tied embedding, columns of an untied head
  const limitedHead = !limited
    ? head
    : op('Slice', [head, g.int64s([0]), g.int64s([vocabLimit]), g.int64s([tied ? 0 : 1])]);
  let logits = tied ? matMulBt(selected, limitedHead) : matMul(selected, limitedHead);
  // Div as tokenLogProbs' tf.div(z, temperature), not a product with 1 / T (the same rounding)
  if (temperature !== 1) logits = op('Div', [logits, g.scalar(temperature)]);
  const logProbs = op('LogSoftmax', [logits], [{ name: 'axis', i: -1 }]);
  const picked = op('GatherElements', [logProbs, 'targets'], [{ name: 'axis', i: 1 }]);
  op('Neg', [op('ReduceSum', [mul(picked, 'loss_weights')], [{ name: 'keepdims', i: 0 }])]);
  g.nameLast('loss');
  const rowOutputs = [];
  if (options.logProbs === true) {
    op('Reshape', [picked, flatTokens]);
    g.nameLast(ROW_LOG_PROBS);
    rowOutputs.push(valueInfo(ROW_LOG_PROBS, FLOAT, ['rows']));
  }

  // d loss / d logits = weight · (softmax − one-hot(target)). The row weights multiply the [M, d]
  // operands of the products instead of the [M, vocab] matrix (a pass over M·vocab floats less),
  // and Softmax is onnxruntime's vectorised kernel (Exp of the log-probabilities is a slow one).
  const softmax = op('Softmax', [logits], [{ name: 'axis', i: -1 }]);
  const oneHotLess = op(
    'ScatterElements',
    [softmax, 'targets', op('Expand', [g.scalar(-1), op('Shape', ['targets'])])],
    [
      { name: 'axis', i: 1 },
      { name: 'reduction', s: 'add' },
    ],
  );
  if (options.entropy === true) {
    // −Σ p·log p over the same (tempered, limited) distribution
    op('Neg', [op('ReduceSum', [mul(softmax, logProbs), axisLast], [{ name: 'keepdims', i: 0 }])]);
    g.nameLast(ROW_ENTROPY);
    rowOutputs.push(valueInfo(ROW_ENTROPY, FLOAT, ['rows']));
  }
  // d logits / d (logits / T) = 1 / T: folded into the row weights of the [M, d] operands
  const rowWeights =
    temperature === 1 ? 'loss_weights' : op('Div', ['loss_weights', g.scalar(temperature)]);
  const weightedSelected = mul(selected, rowWeights);
  const dSelected = mul(
    tied ? matMul(oneHotLess, limitedHead) : matMulBt(oneHotLess, limitedHead),
    rowWeights,
  );
  const limitedHeadGradient = tied
    ? matMulAt(oneHotLess, weightedSelected)
    : matMulAt(weightedSelected, oneHotLess);
  // ids past the limit get no gradient from the head: zero rows (tied) or columns (untied)
  const headGradient = !limited
    ? limitedHeadGradient
    : op(
        'Concat',
        [
          limitedHeadGradient,
          op(
            'ConstantOfShape',
            [
              g.int64s(
                tied
                  ? [config.vocabSize - vocabLimit, config.hiddenSize]
                  : [config.hiddenSize, config.vocabSize - vocabLimit],
              ),
            ],
            [],
          ),
        ],
        [{ name: 'axis', i: tied ? 0 : 1 }],
      );
  if (!tied) gradients.set('lm_head.weight', headGradient);
  const zerosLike = (t: string) => op('ConstantOfShape', [op('Shape', [t])], []);
  const dFinal = op('ScatterND', [
    zerosLike(finalNorm.out),
    op('Unsqueeze', ['rows', axisLast]),
    dSelected,
  ]);
  const finalBack = rmsNormBackward(finalNorm, 'model.norm.weight', dFinal);
  gradients.set('model.norm.weight', finalBack.dWeight);
  let dx = finalBack.dx;

  for (let i = config.numHiddenLayers - 1; i >= 0; i--) {
    const s = layers[i]!;
    const p = s.p;
    const w = (name: string) => `${p}.${name}`;
    // MLP
    gradients.set(w('mlp.down_proj.weight'), matMulAt(s.act, dx));
    const dAct = matMulBt(dx, w('mlp.down_proj.weight'));
    const dUp = mul(dAct, s.silu);
    // silu'(g) = σ(g)·(1 + g·(1 − σ(g)))
    const dGate = mul(mul(mul(dAct, s.up), s.sigmoid), add(one, mul(s.gate, sub(one, s.sigmoid))));
    const dGateUp = op('Concat', [dGate, dUp], [{ name: 'axis', i: 1 }]);
    const [dGateWeight, dUpWeight] = g.op(
      'Split',
      [matMulAt(s.norm2.out, dGateUp), gateUpSplit],
      [{ name: 'axis', i: 1 }],
      2,
    );
    gradients.set(w('mlp.gate_proj.weight'), dGateWeight!);
    gradients.set(w('mlp.up_proj.weight'), dUpWeight!);
    const dNorm2 = matMulBt(dGateUp, s.gateUpWeight);
    const norm2Back = rmsNormBackward(s.norm2, w('post_attention_layernorm.weight'), dNorm2);
    gradients.set(w('post_attention_layernorm.weight'), norm2Back.dWeight);
    const dMid = add(dx, norm2Back.dx);
    // attention output projection
    gradients.set(w('self_attn.o_proj.weight'), matMulAt(s.merged, dMid));
    const dMerged = matMulBt(dMid, w('self_attn.o_proj.weight'));
    const dOut = reshape(transpose(reshape(dMerged, tokensByHeads), [0, 2, 1, 3]), groupedShape);
    // attention: dV = Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQs = dS K, dK = dSᵀ Qs
    // dVᵀ = dOᵀ P and dKᵀ = Qsᵀ dS, computed transposed: onnxruntime's product with the large
    // [T, T] operand transposed (dV = Pᵀ dO) ran about 4× slower per FLOP (profiled).
    // per query chunk; its dVᵀ and dKᵀ cover the keys up to its end, zero-padded to T and summed
    const dOut5 = reshape(dOut, byGroups);
    const dQChunks: string[] = [];
    const dVtChunks: string[] = [];
    const dKtChunks: string[] = [];
    s.parts.forEach((part, c) => {
      const [from, to] = [bounds[c]!, bounds[c + 1]!];
      const dO = chunks === 1 ? dOut : reshape(slice(dOut5, from, to, [3]), groupedShape);
      const dProbs = matMul(dO, transpose(part.values, [0, 1, 3, 2]));
      // rowsum(dP ⊙ P) = rowsum(dO ⊙ O): over head-dim columns instead of T keys (FlashAttention's D)
      const dScores = mul(part.probs, sub(dProbs, sumLast(mul(dO, part.out))));
      dQChunks.push(matMul(dScores, part.keys));
      const padToTime = (x: string) =>
        c === chunks - 1
          ? x
          : op('Pad', [x, concat([g.int64s([0, 0, 0, 0, 0, 0, 0]), sub(timeDim, to)])]);
      dVtChunks.push(padToTime(matMul(transpose(dO, [0, 1, 3, 2]), part.probs)));
      dKtChunks.push(padToTime(matMul(transpose(part.qs, [0, 1, 3, 2]), dScores)));
    });
    const dV4t = chunks === 1 ? dVtChunks[0]! : op('Sum', dVtChunks);
    const dK4t = chunks === 1 ? dKtChunks[0]! : op('Sum', dKtChunks);
    const dQ4 = mul(
      chunks === 1
        ? dQChunks[0]!
        : reshape(
            op(
              'Concat',
              dQChunks.map((d) => reshape(d, byGroups)),
              [{ name: 'axis', i: 3 }],
            ),
            groupedShape,
          ),
      scale,
    );
    const dQ = reshape(ropeBackward(transpose(reshape(dQ4, headsShape), [0, 2, 1, 3])), flatQ);
    const dK = reshape(ropeBackward(transpose(dK4t, [0, 3, 1, 2])), flatKv);
    const dV = reshape(transpose(dV4t, [0, 3, 1, 2]), flatKv);
    const dQkv = op('Concat', [dQ, dK, dV], [{ name: 'axis', i: 1 }]);
    const names = ['q_proj', 'k_proj', 'v_proj'];
    const weightGrads = g.op(
      'Split',
      [matMulAt(s.norm1.out, dQkv), qkvSplit],
      [{ name: 'axis', i: 1 }],
      3,
    );
    names.forEach((n, k) => gradients.set(w(`self_attn.${n}.weight`), weightGrads[k]!));
    if (hasBias) {
      const biasGrads = g.op('Split', [sumRows(dQkv), qkvSplit], [{ name: 'axis', i: 0 }], 3);
      names.forEach((n, k) => gradients.set(w(`self_attn.${n}.bias`), biasGrads[k]!));
    }
    const norm1Back = rmsNormBackward(
      s.norm1,
      w('input_layernorm.weight'),
      matMulBt(dQkv, s.qkvWeight),
    );
    gradients.set(w('input_layernorm.weight'), norm1Back.dWeight);
    dx = add(dMid, norm1Back.dx);
  }
  // The embedding's rows: each token's gradient is added into its id's row by `OnnxTrainStep.run`
  // after the run, from the `token_gradients` output. Not in the graph: onnxruntime's ScatterND
  // with reduction 'add' splits the updates over its threads without ordering writes to the same
  // row, so with 2 threads repeated ids lost updates (the gradient off by 4-8 % of its largest
  // entry at 16 × 512, a different result every run); in JS it is N·hidden adds (~2 ms here).
  gradients.set(embed, tied ? headGradient : zerosLike(embed));
  op('Identity', [dx]);
  g.nameLast(TOKEN_GRADIENTS);

  // Graph outputs need their own names: an Identity per gradient.
  const outputs = [
    valueInfo('loss', FLOAT, []),
    valueInfo(TOKEN_GRADIENTS, FLOAT, ['tokens', config.hiddenSize]),
    ...rowOutputs,
  ];
  for (const spec of specs) {
    const source = gradients.get(spec.name);
    if (source === undefined) throw new Error(`training graph: no gradient for ${spec.name}`);
    op('Identity', [source]);
    g.nameLast(gradientOutputName(spec.name));
    outputs.push(valueInfo(gradientOutputName(spec.name), FLOAT, spec.shape));
  }
  const graph = onnx.GraphProto.create({
    name: 'codereasoner-train-step',
    node: g.nodes,
    initializer: g.initializers,
    input: [
      valueInfo('input_ids', INT32, ['batch', 'time']),
      valueInfo('cos', FLOAT, ['batch', 'time', 1, hd]),
      valueInfo('sin', FLOAT, ['batch', 'time', 1, hd]),
      valueInfo('bias', FLOAT, ['batch', 1, 1, 'time', 'time']),
      valueInfo('rows', INT64, ['rows']),
      valueInfo('targets', INT64, ['rows', 1]),
      valueInfo('loss_weights', FLOAT, ['rows', 1]),
      ...specs.map((spec) => valueInfo(spec.name, FLOAT, spec.shape)),
    ],
    output: outputs,
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: '@codereasoner/core-tensors',
    opsetImport: [{ domain: '', version: TRAIN_GRAPH_OPSET }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
