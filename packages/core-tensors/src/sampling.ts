import type { Rng } from '@codereasoner/common';

export interface SamplingOptions {
  /** 0 (or below) = greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or undefined = all). */
  topP?: number;
}

/**
 * The exp weights of the last call, reused: a fresh array per token (16 KB at vocab 2048) was most
 * of generation's garbage. Calls are synchronous, so one buffer per thread suffices.
 */
let scratch = new Float64Array(0);

/**
 * Picks one token from `logits[offset .. offset + vocab)`. The returned log-probability is that of
 * the temperature-scaled full distribution (before top-k/top-p truncation), i.e. exactly what
 * `CausalLM.tokenLogProbs` with the same temperature computes, which is what policy-gradient
 * trainers need as "old" log-probs. Greedy decoding reports the log-probability at temperature 1.
 */
export function sampleToken(
  logits: Float32Array,
  offset: number,
  vocab: number,
  options: SamplingOptions,
  rng: Rng,
  /**
   * exp(logit / temperature − row max) of this row's `vocab` entries, computed elsewhere (the onnx
   * engine's graph, as float32); without it they are computed here with Math.exp.
   */
  given?: {
    weights: Float32Array;
    offset: number;
    /**
     * The max of the row's logit / temperature the weights are relative to, and the weights' sum
     * (computed with them): sampling then makes no pass over the row but the draw's own (greedy
     * still looks for the argmax).
     */
    max?: number;
    total?: number;
  },
): { token: number; logProb: number } {
  const greedy = !(options.temperature > 0);
  const invT = greedy ? 1 : 1 / options.temperature;
  const known = given?.max !== undefined && given.total !== undefined && !greedy;
  let max = known ? given!.max! : -Infinity;
  let argmax = 0;
  if (!known)
    for (let i = 0; i < vocab; i++) {
      const z = logits[offset + i]! * invT;
      if (z > max) {
        max = z;
        argmax = i;
      }
    }
  let weights: Float32Array | Float64Array;
  let total = 0;
  if (given !== undefined) {
    weights = given.weights.subarray(given.offset, given.offset + vocab);
    if (given.total !== undefined) total = given.total;
    else for (let i = 0; i < vocab; i++) total += weights[i]!;
  } else {
    if (scratch.length < vocab) scratch = new Float64Array(vocab);
    weights = scratch;
    for (let i = 0; i < vocab; i++) {
      const w = Math.exp(logits[offset + i]! * invT - max);
      weights[i] = w;
      total += w;
    }
  }
  const logTotal = Math.log(total);
  const logProbOf = (token: number): number => logits[offset + token]! * invT - max - logTotal;
  if (greedy) return { token: argmax, logProb: logProbOf(argmax) };

  const topK =
    options.topK !== undefined && options.topK > 0 && options.topK < vocab
      ? Math.floor(options.topK)
      : 0;
  const topP = options.topP !== undefined && options.topP < 1 ? Math.max(options.topP, 0) : 1;
  if (topK === 0 && topP === 1) {
    // Plain sampling: one uniform draw against the running sum, O(vocab).
    let u = rng.next() * total;
    for (let i = 0; i < vocab; i++) {
      u -= weights[i]!;
      if (u < 0) return { token: i, logProb: logProbOf(i) };
    }
    // the draw reached the total (rounding): the argmax, looked for now if the max was given
    if (known)
      for (let i = 1; i < vocab; i++)
        if (logits[offset + i]! > logits[offset + argmax]!) argmax = i;
    return { token: argmax, logProb: logProbOf(argmax) };
  }
  // Candidates ordered by probability (ties by id so the order is deterministic).
  let candidates = Array.from({ length: vocab }, (_, i) => i);
  candidates.sort((a, b) => weights[b]! - weights[a]! || a - b);
  if (topK > 0) candidates = candidates.slice(0, topK);
  if (topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < candidates.length) {
      cumulative += weights[candidates[keep]!]! / total;
      keep++;
      if (cumulative >= topP) break;
    }
    candidates = candidates.slice(0, Math.max(keep, 1));
  }
  let kept = 0;
  for (const c of candidates) kept += weights[c]!;
  let u = rng.next() * kept;
  for (const c of candidates) {
    u -= weights[c]!;
    if (u < 0) return { token: c, logProb: logProbOf(c) };
  }
  const last = candidates[candidates.length - 1]!;
  return { token: last, logProb: logProbOf(last) };
}
