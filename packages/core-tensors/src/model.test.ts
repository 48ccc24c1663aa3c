import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, type BackendName } from './backend.js';
import { padBatch } from './batch.js';
import type { ModelConfig } from './config.js';
import { DecodeAttention } from './decode-attention.js';
import { CausalLM, ModelInputError } from './model.js';
import { AdamW, computeGradients } from './optimizer.js';
import { Rng } from '@codereasoner/common';
import {
  perturbWeights,
  raggedPrompts,
  rowsPerDecodeStep,
  tinyModelConfig as tiny,
} from './test-utils.js';

function logSoftmaxRow(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  const lse = max + Math.log(Array.from(row).reduce((a, x) => a + Math.exp(x - max), 0));
  return Array.from(row, (x) => x - lse);
}

/** Greedy decoding without a cache: the full sequence goes through `logits` at every step. */
function greedyWithoutCache(model: CausalLM, prompt: number[], steps: number): number[] {
  const seq = [...prompt];
  for (let s = 0; s < steps; s++) {
    const next = tf.tidy(() => {
      const logits = model.logits(tf.tensor2d([seq], [1, seq.length], 'int32'));
      return tf
        .argMax(tf.squeeze(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, -1])), -1)
        .dataSync()[0]!;
    });
    seq.push(next);
  }
  return seq.slice(prompt.length);
}

beforeAll(async () => {
  await initBackend();
});

describe('CausalLM', () => {
  it('counts parameters and FLOPs from the config', () => {
    const model = CausalLM.create(tiny);
    // embed 61·32; per layer: q 32·32, k,v 32·16 each, o 32·32, 2 norms of 32, gate/up 32·48 each, down 48·32; final norm 32
    const perLayer = 32 * 32 + 2 * 32 * 16 + 32 * 32 + 2 * 32 + 3 * 32 * 48;
    expect(model.numParameters()).toBe(61 * 32 + 2 * perLayer + 32);
    const matmul = 2 * (32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 48) + 32 * 61;
    expect(model.forwardFlopsPerToken(10)).toBe(2 * matmul + 4 * 2 * 10 * 32);
    expect(model.flopsPerToken(10)).toBe(3 * model.forwardFlopsPerToken(10));
    const untied = CausalLM.create({ ...tiny, tieWordEmbeddings: false, architecture: 'qwen2' });
    expect(untied.numParameters()).toBe(model.numParameters() + 61 * 32 + 2 * (32 + 16 + 16));
    model.dispose();
    untied.dispose();
  });

  it('tokenLogProbs are log-softmax of the logits at the next token, 0 at padding, and ignore padding of other rows', () => {
    const model = CausalLM.create(tiny, { seed: 3 });
    const short = [5, 9, 2, 7];
    const long = [1, 2, 3, 4, 5, 6, 7, 8];
    const { inputIds, attentionMask } = padBatch([short, long], 0);
    const logits = model.logits(inputIds, attentionMask);
    const { logProbs, entropy } = model.tokenLogProbs(inputIds, attentionMask, {
      entropy: true,
      temperature: 0.7,
    });
    expect(logProbs.shape).toEqual([2, 7]);
    const lp = logProbs.arraySync();
    const ent = entropy!.arraySync();
    const l = logits.arraySync();
    for (let t = 0; t < 7; t++) {
      const row = logSoftmaxRow(l[1]![t]!.map((x) => x / 0.7));
      expect(lp[1]![t]).toBeCloseTo(row[long[t + 1]!]!, 4);
      const h = -row.reduce((a, x) => a + Math.exp(x) * x, 0);
      expect(ent[1]![t]).toBeCloseTo(h, 4);
    }
    expect(lp[0]!.slice(3).every((x) => x === 0)).toBe(true);
    // the short row alone gives the same log-probs as inside the padded batch
    const alone = padBatch([short], 0);
    const solo = model.tokenLogProbs(alone.inputIds, alone.attentionMask).logProbs.arraySync()[0]!;
    const batched = model.tokenLogProbs(inputIds, attentionMask).logProbs.arraySync()[0]!;
    for (let t = 0; t < 3; t++) expect(batched[t]).toBeCloseTo(solo[t]!, 5);
    tf.dispose([
      inputIds,
      attentionMask,
      logits,
      logProbs,
      entropy!,
      alone.inputIds,
      alone.attentionMask,
    ]);
    model.dispose();
  });

  it('a mask of segment numbers keeps packed examples apart: each scores as if alone', () => {
    const model = CausalLM.create(tiny, { seed: 9 });
    const a = [3, 7, 1, 9, 4];
    const b = [8, 2, 6];
    const alone = (ids: number[]): number[] =>
      tf.tidy(() => {
        const x = tf.tensor2d([ids], [1, ids.length], 'int32');
        return Array.from(
          model.tokenLogProbs(x, tf.onesLike(x).toFloat() as tf.Tensor2D).logProbs.dataSync(),
        );
      });
    const packedIds = tf.tensor2d([[...a, ...b, 0]], [1, 9], 'int32');
    // segments 1 and 2, then one padding token
    const segments = tf.tensor2d([[1, 1, 1, 1, 1, 2, 2, 2, 0]]);
    const packed = Array.from(model.tokenLogProbs(packedIds, segments).logProbs.dataSync());
    const expectA = alone(a);
    const expectB = alone(b);
    for (let j = 0; j < a.length - 1; j++) expect(packed[j]).toBeCloseTo(expectA[j]!, 5);
    for (let j = 0; j < b.length - 1; j++) expect(packed[a.length + j]).toBeCloseTo(expectB[j]!, 5);
    // the same row read as one segment differs: b's tokens then see a's
    const oneSegment = tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 1, 0]]);
    const joined = Array.from(model.tokenLogProbs(packedIds, oneSegment).logProbs.dataSync());
    expect(Math.abs(joined[a.length]! - expectB[0]!)).toBeGreaterThan(1e-4);
    model.dispose();
  });

  it('targetMask computes only the wanted positions, with the same values and gradients', () => {
    const model = CausalLM.create(tiny, { seed: 9 });
    const { inputIds, attentionMask } = padBatch(
      [
        [3, 7, 1, 9, 4, 2],
        [8, 2, 6],
      ],
      0,
    );
    const wanted = tf.tensor2d([
      [0, 0, 1, 1, 1],
      [0, 1, 0, 0, 0],
    ]);
    // log-prob computation leaves exactly its outputs behind, on both the masked and the full path
    const baseline = tf.memory().numTensors;
    for (const opts of [{}, { targetMask: wanted, entropy: true, temperature: 0.5 }]) {
      const out = model.tokenLogProbs(inputIds, attentionMask, opts);
      tf.dispose([out.logProbs, ...(out.entropy === undefined ? [] : [out.entropy])]);
      expect(tf.memory().numTensors).toBe(baseline);
    }
    const full = model.tokenLogProbs(inputIds, attentionMask, { entropy: true });
    const part = model.tokenLogProbs(inputIds, attentionMask, {
      entropy: true,
      targetMask: wanted,
    });
    const f = full.logProbs.arraySync();
    const p = part.logProbs.arraySync();
    const w = wanted.arraySync();
    const fe = full.entropy!.arraySync();
    const pe = part.entropy!.arraySync();
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 5; j++) {
        expect(p[i]![j]).toBeCloseTo(w[i]![j]! * f[i]![j]!, 5);
        expect(pe[i]![j]).toBeCloseTo(w[i]![j]! * fe[i]![j]!, 5);
      }
    const lossWith = (opts: { targetMask?: tf.Tensor2D }) => (): tf.Scalar =>
      tf.tidy(
        () =>
          tf.neg(
            tf.sum(tf.mul(model.tokenLogProbs(inputIds, attentionMask, opts).logProbs, wanted)),
          ) as tf.Scalar,
      );
    const a = computeGradients(model, lossWith({}));
    const b = computeGradients(model, lossWith({ targetMask: wanted }));
    expect(b.loss).toBeCloseTo(a.loss, 5);
    for (const name of Object.keys(a.grads)) {
      const ga = a.grads[name]!.dataSync();
      const gb = b.grads[name]!.dataSync();
      for (let i = 0; i < ga.length; i++) expect(Math.abs(ga[i]! - gb[i]!)).toBeLessThan(1e-5);
    }
    expect(() =>
      model.tokenLogProbs(inputIds, attentionMask, { targetMask: tf.ones([2, 6]) as tf.Tensor2D }),
    ).toThrow(/targetMask shape/);
    tf.dispose([
      inputIds,
      attentionMask,
      wanted,
      full.logProbs,
      full.entropy!,
      part.logProbs,
      part.entropy!,
      ...Object.values(a.grads),
      ...Object.values(b.grads),
    ]);
    model.dispose();
  });

  it('gradients of the loss w.r.t. parameters match finite differences', () => {
    const model = CausalLM.create(
      { ...tiny, numHiddenLayers: 1, architecture: 'qwen2', tieWordEmbeddings: false },
      { seed: 4 },
    );
    // scale weights up so the loss is not flat
    for (const v of model.trainableVariables)
      if (v.rank === 2) v.assign(tf.tidy(() => tf.mul(v, 20)));
    // 10 tokens: groups·T ≥ 16 takes the sliced attention path with its custom gradient
    const { inputIds, attentionMask } = padBatch(
      [
        [3, 7, 1, 9, 4, 11, 5, 2, 8, 6],
        [8, 2, 6],
      ],
      0,
    );
    const names = [
      'model.embed_tokens.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.bias',
      'model.layers.0.mlp.down_proj.weight',
      'lm_head.weight',
    ];
    const lossOf = (): tf.Scalar =>
      tf.tidy(
        () => tf.neg(tf.mean(model.tokenLogProbs(inputIds, attentionMask).logProbs)) as tf.Scalar,
      );
    const { grads } = computeGradients(model, lossOf);
    const rng = new Rng(2);
    let worst = 0;
    for (const name of names) {
      const variable = model.parameters.get(name)!;
      const analytic = grads[variable.name]!.dataSync();
      const base = variable.dataSync().slice() as Float32Array;
      const probed = new Set<number>();
      for (let c = 0; c < 6; c++) {
        // probe the largest-gradient entries too, not only random ones (random entries of the embedding get no gradient)
        let i = rng.int(base.length);
        if (c >= 3) {
          let best = -1;
          analytic.forEach((g, j) => {
            if (Math.abs(g) > best && !probed.has(j)) [best, i] = [Math.abs(g), j];
          });
        }
        probed.add(i);
        const set = (data: Float32Array): void =>
          tf.tidy(() => variable.assign(tf.tensor(data, variable.shape)));
        const at = (delta: number): number => {
          const data = base.slice();
          data[i] = data[i]! + delta;
          set(data);
          return tf.tidy(() => lossOf().dataSync()[0]!);
        };
        const h = 1e-2;
        const numeric = (at(h) - at(-h)) / (2 * h);
        set(base);
        const error =
          Math.abs(analytic[i]! - numeric) /
          Math.max(Math.abs(analytic[i]!), Math.abs(numeric), 1e-2);
        worst = Math.max(worst, error);
      }
    }
    tf.dispose(grads);
    expect(worst).toBeLessThan(3e-2);
    tf.dispose([inputIds, attentionMask]);
    model.dispose();
  });

  it('overfits a fixed batch to near-zero loss, without leaking tensors', () => {
    const model = CausalLM.create(tiny, { seed: 1 });
    const optimizer = new AdamW({ learningRate: 1e-2, weightDecay: 0 });
    const { inputIds, attentionMask } = padBatch(
      [
        [1, 5, 9, 13, 17, 21, 25, 29],
        [2, 4, 8, 16, 32, 3, 6],
      ],
      0,
    );
    const baseline = tf.memory().numTensors;
    let first = 0;
    let loss = 0;
    for (let step = 0; step < 60; step++) {
      const result = computeGradients(model, () =>
        tf.tidy(() => {
          const { logProbs } = model.tokenLogProbs(inputIds, attentionMask);
          return tf.neg(tf.div(tf.sum(logProbs), 13)) as tf.Scalar;
        }),
      );
      optimizer.applyGradients(result.grads);
      tf.dispose(result.grads);
      if (step === 0) first = result.loss;
      loss = result.loss;
      if (step === 0)
        expect(tf.memory().numTensors - baseline).toBe(2 * model.trainableVariables.length); // AdamW moments only
    }
    expect(first).toBeGreaterThan(Math.log(61) - 0.5);
    expect(loss).toBeLessThan(0.05);
    expect(tf.memory().numTensors - baseline).toBe(2 * model.trainableVariables.length);
    optimizer.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([inputIds, attentionMask]);
    model.dispose();
  });

  it('greedy generation with the KV cache equals decoding without a cache, token for token', async () => {
    const model = CausalLM.create(tiny, { seed: 5 });
    const prompts = [
      [3, 1, 4, 1, 5],
      [9, 2],
      [6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8],
    ];
    const outputs = await model.generate(prompts, { maxNewTokens: 12, temperature: 0 });
    prompts.forEach((prompt, i) => {
      expect(outputs[i]!.tokens).toEqual(greedyWithoutCache(model, prompt, 12));
      expect(outputs[i]!.finishReason).toBe('length');
    });
    // the same prompts one at a time (no left padding) give the same tokens
    const single = await model.generate(prompts, {
      maxNewTokens: 12,
      temperature: 0,
      batchSize: 1,
    });
    expect(single.map((o) => o.tokens)).toEqual(outputs.map((o) => o.tokens));
    model.dispose();
  });

  it('sampling is reproducible per seed, reports the log-probs tokenLogProbs computes, and honours stop tokens', async () => {
    const model = CausalLM.create(tiny, { seed: 6 });
    const prompts = [[1, 2, 3], [4, 5], [6]];
    // the fused decode path keeps one set of concatenated weights per model (until the weights change)
    await model.generate(prompts, { maxNewTokens: 1 });
    const baseline = tf.memory().numTensors;
    const options = { maxNewTokens: 10, temperature: 1.3, seed: 17 };
    const a = await model.generate(prompts, options);
    const b = await model.generate(prompts, { ...options, batchSize: 2 });
    const c = await model.generate(prompts, { ...options, seed: 18 });
    expect(tf.memory().numTensors).toBe(baseline);
    expect(b.map((o) => o.tokens)).toEqual(a.map((o) => o.tokens));
    expect(c.map((o) => o.tokens)).not.toEqual(a.map((o) => o.tokens));
    for (let i = 0; i < prompts.length; i++) {
      const seq = [...prompts[i]!, ...a[i]!.tokens];
      const lp = tf.tidy(
        () =>
          model
            .tokenLogProbs(tf.tensor2d([seq], [1, seq.length], 'int32'), tf.ones([1, seq.length]), {
              temperature: 1.3,
            })
            .logProbs.arraySync()[0]!,
      );
      const tail = lp.slice(prompts[i]!.length - 1);
      a[i]!.logProbs.forEach((x, t) => expect(x).toBeCloseTo(tail[t]!, 4));
    }
    const stopAt = a[0]!.tokens[3]!;
    const stopped = await model.generate([prompts[0]!], { ...options, stopTokens: [stopAt] });
    const firstStop = a[0]!.tokens.indexOf(stopAt);
    expect(stopped[0]!.tokens).toEqual(a[0]!.tokens.slice(0, firstStop + 1));
    expect(stopped[0]!.finishReason).toBe('stop');
    const topK1 = await model.generate(prompts, {
      maxNewTokens: 6,
      temperature: 1,
      topK: 1,
      seed: 3,
    });
    const greedy = await model.generate(prompts, { maxNewTokens: 6, temperature: 0 });
    expect(topK1.map((o) => o.tokens)).toEqual(greedy.map((o) => o.tokens));
    const tinyP = await model.generate(prompts, {
      maxNewTokens: 6,
      temperature: 1,
      topP: 1e-6,
      seed: 3,
    });
    expect(tinyP.map((o) => o.tokens)).toEqual(greedy.map((o) => o.tokens));
    // per-prompt seeds: a prompt's samples do not depend on its batch
    const together = await model.generate(prompts, {
      maxNewTokens: 8,
      temperature: 1,
      seeds: [5, 6, 7],
    });
    const alone = await model.generate([prompts[1]!], {
      maxNewTokens: 8,
      temperature: 1,
      seeds: [6],
    });
    expect(alone[0]!.tokens).toEqual(together[1]!.tokens);
    alone[0]!.logProbs.forEach((x, i) => expect(x).toBeCloseTo(together[1]!.logProbs[i]!, 5)); // rounding differs with batch shape
    await expect(model.generate(prompts, { maxNewTokens: 2, seeds: [1] })).rejects.toThrow(
      /seeds has 1 entries/,
    );
    const limited = await model.generate(prompts, {
      maxNewTokens: 20,
      temperature: 2,
      vocabLimit: 5,
      seed: 1,
    });
    expect(limited.flatMap((o) => o.tokens).every((t) => t < 5)).toBe(true);
    model.dispose();
  });

  it.each(['active', 'cpu'])(
    'the fused decode path gives the reference path tokens and log-probs within 2e-6 (%s backend)',
    async (which) => {
      const before = tf.getBackend();
      if (which === 'cpu') await initBackend({ backend: 'cpu' });
      try {
        const configs: Partial<ModelConfig>[] = [
          tiny, // grouped-query (4 query / 2 key-value heads)
          { ...tiny, numKeyValueHeads: 4, numHiddenLayers: 1 },
          { ...tiny, architecture: 'qwen2', numKeyValueHeads: 1 }, // q/k/v biases
          { ...tiny, hiddenSize: 24 }, // head dim 6: not SIMD-sized, falls back to the reference path
        ];
        for (const [c, config] of configs.entries()) {
          const model = CausalLM.create(config, { seed: 20 + c });
          // non-zero biases, so the fused bias is exercised
          perturbWeights(model.parameters, {
            mode: 'replace',
            stddev: 0.5,
            seed: 3,
            skip: (name) => !name.endsWith('_proj.bias'),
          });
          // unequal lengths (left padding), a stop token, sampling and greedy
          const prompts = [
            [3, 1, 4, 1, 5],
            [9, 2],
            [6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8],
          ];
          await model.generate(prompts, { maxNewTokens: 1 }); // the fused weights, kept per model
          const baseline = tf.memory().numTensors;
          for (const [round, options] of [
            { maxNewTokens: 24, temperature: 1.1, seed: 4, stopTokens: [7] },
            { maxNewTokens: 16, temperature: 0 },
            { maxNewTokens: 16, temperature: 0.8, seed: 9 },
          ].entries()) {
            // the last round after every weight changed: the kept fused weights must follow
            if (round === 2)
              perturbWeights(model.parameters, { mode: 'add', stddev: 0.05, seed: 5 });
            const reference = await model.generate(prompts, { ...options, decode: 'reference' });
            const fused = await model.generate(prompts, { ...options, decode: 'fused' });
            expect(fused.map((o) => o.tokens)).toEqual(reference.map((o) => o.tokens));
            expect(fused.map((o) => o.finishReason)).toEqual(reference.map((o) => o.finishReason));
            fused.forEach((o, i) =>
              o.logProbs.forEach((x, t) =>
                expect(Math.abs(x - reference[i]!.logProbs[t]!)).toBeLessThan(2e-6),
              ),
            );
          }
          expect(tf.memory().numTensors).toBe(baseline);
          model.dispose();
        }
      } finally {
        if (which === 'cpu') await initBackend({ backend: before as BackendName });
      }
    },
    60_000,
  );

  it('the fused decode path drops finished rows with the same outputs per row as the reference path', async () => {
    const model = CausalLM.create({ ...tiny, maxPositionEmbeddings: 256 }, { seed: 11 });
    // far from uniform next-token distributions (weights ~N(0, 0.3)), so rows stop at many steps
    perturbWeights(model.parameters, {
      mode: 'replace',
      stddev: 0.3,
      seed: (k) => 1100 + k,
      skip: (name) => name.endsWith('norm.weight'),
    });
    // left-padded prompts of 70, 9, 40, 15, 6 and 48 tokens
    const batch = raggedPrompts();
    // rows each decode step computed: layer 0's qkv [rows, (4 + 2·2 heads)·8]
    const step = vi.spyOn(DecodeAttention.prototype, 'step');
    try {
      for (const options of [
        { temperature: 0 },
        { temperature: 1, seed: 3 },
        { temperature: 0.7, seed: 8, batchSize: 4 },
      ]) {
        const common = { ...options, maxNewTokens: 120, stopTokens: [13] };
        const reference = await model.generate(batch, { ...common, decode: 'reference' });
        const stopped = reference
          .filter((o) => o.finishReason === 'stop')
          .map((o) => o.tokens.length);
        expect(new Set(stopped).size).toBeGreaterThanOrEqual(4); // rows stop at many steps
        for (const compactAfter of [0, undefined, 2]) {
          step.mockClear();
          const fused = await model.generate(batch, {
            ...common,
            decode: 'fused',
            ...(compactAfter === undefined ? {} : { compactAfter }),
          });
          expect(fused.map((o) => o.tokens)).toEqual(reference.map((o) => o.tokens));
          expect(fused.map((o) => o.finishReason)).toEqual(reference.map((o) => o.finishReason));
          fused.forEach((o, i) =>
            o.logProbs.forEach((x, t) =>
              expect(Math.abs(x - reference[i]!.logProbs[t]!)).toBeLessThan(1e-5),
            ),
          );
          const rows = step.mock.calls
            .filter(([layer]) => layer === 0)
            .map(([, qkv]) => qkv.length / 64);
          expect(rows).toEqual(
            rowsPerDecodeStep(
              reference,
              options.batchSize ?? batch.length,
              compactAfter ?? 1,
            ).flat(),
          );
        }
      }
    } finally {
      step.mockRestore();
      model.dispose();
    }
  }, 120_000);

  it('clone is a frozen copy with identical outputs, independent of later updates', () => {
    const model = CausalLM.create(tiny, { seed: 8 });
    const reference = model.clone();
    expect(reference.trainableVariables).toHaveLength(0);
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const before = model.logits(ids);
    const frozen = reference.logits(ids);
    expect(Array.from(frozen.dataSync())).toEqual(Array.from(before.dataSync()));
    for (const v of model.trainableVariables) v.assign(tf.tidy(() => tf.add(v, 0.1)));
    const after = reference.logits(ids);
    expect(Array.from(after.dataSync())).toEqual(Array.from(before.dataSync()));
    expect(() => computeGradients(reference, () => tf.scalar(0))).toThrow(/no trainable variables/);
    tf.dispose([ids, before, frozen, after]);
    reference.dispose();
    model.dispose();
  });

  it('rejects sequences beyond the context window and bad prompts with ModelInputError', async () => {
    const model = CausalLM.create(tiny);
    const ids = tf.zeros([1, 65], 'int32') as tf.Tensor2D;
    expect(() => model.logits(ids)).toThrow(ModelInputError);
    await expect(model.generate([[]], { maxNewTokens: 2 })).rejects.toThrow(/empty/);
    await expect(model.generate([[61]], { maxNewTokens: 2 })).rejects.toThrow(
      /outside the vocabulary/,
    );
    // the window caps new tokens
    const out = await model.generate([new Array<number>(60).fill(1)], {
      maxNewTokens: 50,
      temperature: 0,
    });
    expect(out[0]!.tokens).toHaveLength(4);
    ids.dispose();
    model.dispose();
  });
});
