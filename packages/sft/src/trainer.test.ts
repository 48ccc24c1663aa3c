import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, initBackend, tf } from '@codereasoner/core-tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SftTrainingError } from './errors.js';
import { BatchSchedule, BucketedBatchSource, encodeExamples, shardRows } from './batching.js';
import { trainingMessages } from './dataset.js';
import { isTimingMetric, type SftMetrics, type SftStepMetrics } from './metrics.js';
import { latestCheckpoint } from './run-state.js';
import { SftTrainer, trainSft } from './trainer.js';
import { SQUARES_MODEL_CONFIG, squareRecords, tokenizerFor } from './__fixtures__/squares.js';

const records = squareRecords();
const tokenizer = tokenizerFor(records);
const modelConfig = SQUARES_MODEL_CONFIG;

let root: string;
beforeAll(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), 'cr-sft-trainer-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function weights(model: CausalLM): Promise<Float32Array[]> {
  return Promise.all(
    [...model.parameters.values()].map(async (variable) => (await variable.data()) as Float32Array),
  );
}

async function metricsOf(dir: string): Promise<SftMetrics[]> {
  const text = await readFile(join(dir, 'metrics.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as SftMetrics);
}

describe('trainSft', () => {
  it('drives the loss down on a small fixed set, writes metrics and a final checkpoint, leaks no tensors', async () => {
    const model = CausalLM.create(modelConfig, { seed: 1 });
    const before = tf.memory().numTensors;
    const outDir = join(root, 'learn');
    const progress: number[] = [];
    const result = await trainSft({
      model,
      tokenizer,
      train: records,
      outDir,
      config: { steps: 40, batchSize: 4, learningRate: 1e-2, warmupSteps: 4, checkpointEvery: 0 },
      onProgress: (event) => progress.push(event.completed),
    });
    expect(tf.memory().numTensors).toBe(before);
    const steps = (await metricsOf(outDir)).filter((m): m is SftStepMetrics => m.kind === 'step');
    expect(steps.map((m) => m.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(progress.at(-1)).toBe(40);
    const first = steps.slice(0, 3).reduce((sum, m) => sum + m.loss, 0) / 3;
    const last = steps.slice(-5).reduce((sum, m) => sum + m.loss, 0) / 5;
    expect(first).toBeGreaterThan(3);
    expect(last).toBeLessThan(first * 0.4);
    expect(steps.every((m) => m.gradNorm > 0 && m.tokensPerSecond > 0 && m.learningRate > 0)).toBe(
      true,
    );
    expect(result).toMatchObject({
      steps: 40,
      completed: true,
      examples: 12,
      resumedFrom: undefined,
    });
    expect(result.checkpointDir).toBe(join(outDir, 'checkpoints', 'step-00000040'));
    expect(await latestCheckpoint(outDir)).toEqual({ dir: result.checkpointDir, step: 40 });
    model.dispose();
  });

  it('resumes an interrupted run to the same weights and metrics as an uninterrupted one', async () => {
    const config = {
      steps: 8,
      batchSize: 3,
      gradientAccumulation: 2,
      learningRate: 5e-3,
      warmupSteps: 2,
      checkpointEvery: 3,
      seed: 7,
    };
    const straight = CausalLM.create(modelConfig, { seed: 2 });
    await trainSft({
      model: straight,
      tokenizer,
      train: records,
      outDir: join(root, 'straight'),
      config,
    });

    const outDir = join(root, 'interrupted');
    const crashing = CausalLM.create(modelConfig, { seed: 2 });
    const crash = await trainSft({
      model: crashing,
      tokenizer,
      train: records,
      outDir,
      config,
      onMetrics: (metric) => {
        if (metric.step === 5) throw new Error('simulated crash');
      },
    }).catch((error: unknown) => error);
    expect((crash as Error).message).toBe('simulated crash');
    expect(await latestCheckpoint(outDir)).toMatchObject({ step: 3 });
    crashing.dispose();

    // a fresh process: another initialisation, the weights come from the checkpoint
    const resumed = CausalLM.create(modelConfig, { seed: 99 });
    const result = await trainSft({ model: resumed, tokenizer, train: records, outDir, config });
    expect(result.resumedFrom).toBe(3);
    expect(result.steps).toBe(8);

    const a = await weights(straight);
    const b = await weights(resumed);
    a.forEach((values, index) =>
      expect(Array.from(b[index] as Float32Array)).toEqual(Array.from(values)),
    );
    const lossesA = (await metricsOf(join(root, 'straight'))).map((m) =>
      m.kind === 'step' ? [m.step, m.loss] : [],
    );
    const lossesB = (await metricsOf(outDir)).map((m) =>
      m.kind === 'step' ? [m.step, m.loss] : [],
    );
    expect(lossesB).toEqual(lossesA);
    // keepCheckpoints (2): step 6 and the final step 8 remain
    expect(
      (await readdir(join(outDir, 'checkpoints')))
        .filter((name) => name.startsWith('step-'))
        .sort(),
    ).toEqual(['step-00000006', 'step-00000008']);
    straight.dispose();
    resumed.dispose();
  });

  it('trains on 2 worker threads to the same losses and weights as in-process (float32 rounding)', async () => {
    // gradientAccumulation 2 × 4 rows: each step is 4 shards of 2 rows on the threads, 2 micro-batches in-process
    const config = {
      steps: 6,
      batchSize: 4,
      gradientAccumulation: 2,
      learningRate: 5e-3,
      warmupSteps: 2,
      checkpointEvery: 0,
      seed: 5,
    };
    const run = async (workers: number) => {
      const model = CausalLM.create(modelConfig, { seed: 4 });
      const outDir = join(root, `workers-${workers}`);
      const result = await trainSft({
        model,
        tokenizer,
        train: records,
        outDir,
        config: { ...config, workers },
      });
      const steps = (await metricsOf(outDir)).filter((m): m is SftStepMetrics => m.kind === 'step');
      const values = await weights(model);
      model.dispose();
      return { result, steps, values };
    };
    const before = tf.memory().numTensors;
    const inProcess = await run(0);
    const threads = await run(2);
    expect(tf.memory().numTensors).toBe(before);
    expect(inProcess.result).toMatchObject({ workers: 1, steps: 6, stopped: 'steps' });
    expect(threads.result).toMatchObject({ workers: 2, steps: 6, stopped: 'steps' });
    // the same rows and target tokens every step; losses equal within float32 rounding (relative
    // 1e-5; measured ≤ 3e-7), and so are the weights after 6 updates (measured ≤ 5e-7)
    expect(threads.steps.map((m) => m.targetTokens)).toEqual(
      inProcess.steps.map((m) => m.targetTokens),
    );
    threads.steps.forEach((m, index) => {
      const reference = inProcess.steps[index]!.loss;
      expect(Math.abs(m.loss - reference) / reference).toBeLessThan(1e-5);
    });
    let largest = 0;
    inProcess.values.forEach((values, index) =>
      values.forEach((value, at) => {
        largest = Math.max(largest, Math.abs(value - threads.values[index]![at]!));
      }),
    );
    expect(largest).toBeLessThan(1e-5);
    // A hang cap, not a speed check: two threads start (about a second each) on a loaded machine.
  }, 120_000);

  it("trainEngine 'onnx' trains packed rows to the same losses and weights as the tfjs engine (float32 rounding)", async () => {
    // packed rows (several conversations per row, each its own segment), 2 micro-batches a step
    const config = {
      steps: 6,
      batchSize: 2,
      gradientAccumulation: 2,
      // two ~50-token conversations per row
      maxSeqLen: 128,
      packing: true,
      learningRate: 5e-3,
      warmupSteps: 2,
      checkpointEvery: 0,
      seed: 3,
      workers: 0,
    };
    const run = async (trainEngine: 'tfjs' | 'onnx') => {
      const model = CausalLM.create({ ...modelConfig, maxPositionEmbeddings: 128 }, { seed: 4 });
      const outDir = join(root, `engine-${trainEngine}`);
      await trainSft({
        model,
        tokenizer,
        train: records,
        outDir,
        config: { ...config, trainEngine },
      });
      const steps = (await metricsOf(outDir)).filter((m): m is SftStepMetrics => m.kind === 'step');
      const values = await weights(model);
      model.dispose();
      return { steps, values };
    };
    const before = tf.memory().numTensors;
    const tfjs = await run('tfjs');
    const onnx = await run('onnx');
    expect(tf.memory().numTensors).toBe(before);
    expect(onnx.steps.map((m) => m.targetTokens)).toEqual(tfjs.steps.map((m) => m.targetTokens));
    expect(onnx.steps).toHaveLength(6);
    // float32 sums in another order and other kernels: losses within 2e-6 relative (measured
    // ≤ 4.2e-7; letting packed conversations see each other moved them by 3e-5), weights within
    // 1e-5 after 6 updates (measured 1.2e-6)
    onnx.steps.forEach((m, index) => {
      const reference = tfjs.steps[index]!.loss;
      expect(Math.abs(m.loss - reference) / reference).toBeLessThan(2e-6);
    });
    let largest = 0;
    tfjs.values.forEach((values, index) =>
      values.forEach((value, at) => {
        largest = Math.max(largest, Math.abs(value - onnx.values[index]![at]!));
      }),
    );
    expect(largest).toBeLessThan(1e-5);
  });

  it("trainEngine 'onnx' on 2 threads: byte-identical weights on two runs and after a resume", async () => {
    // each micro-batch cut into 2 shards that the two sessions run at the same time; the sum in
    // shard order must make the result independent of which thread finishes first
    const config = {
      steps: 6,
      batchSize: 4,
      gradientAccumulation: 2,
      learningRate: 5e-3,
      warmupSteps: 2,
      checkpointEvery: 3,
      seed: 5,
      workers: 2,
      trainEngine: 'onnx',
    } as const;
    // `seed`: the initial weights; a resumed run starts from another, its weights from the checkpoint
    const train = async (outDir: string, seed: number, crashAt?: number) => {
      const model = CausalLM.create(modelConfig, { seed });
      const result = await trainSft({
        model,
        tokenizer,
        train: records,
        outDir: join(root, outDir),
        config,
        onMetrics: (metric) => {
          if (metric.step === crashAt) throw new Error('simulated crash');
        },
      }).catch((error: unknown) => error);
      const values = await weights(model);
      model.dispose();
      return { result, values };
    };
    const first = await train('onnx-threads-1', 2);
    expect(first.result).toMatchObject({ trainEngine: 'onnx', workers: 2, steps: 6 });
    const second = await train('onnx-threads-2', 2);
    const crashed = await train('onnx-threads-resumed', 2, 5);
    expect((crashed.result as Error).message).toBe('simulated crash');
    const resumed = await train('onnx-threads-resumed', 99);
    expect(resumed.result).toMatchObject({ resumedFrom: 3, steps: 6 });
    for (const other of [second, resumed])
      first.values.forEach((values, index) =>
        expect(Array.from(other.values[index]!)).toEqual(Array.from(values)),
      );
    const losses = async (dir: string) =>
      (await metricsOf(join(root, dir))).flatMap((m) =>
        m.kind === 'step' ? [[m.step, m.loss]] : [],
      );
    expect(await losses('onnx-threads-2')).toEqual(await losses('onnx-threads-1'));
    // A hang cap, not a speed check: four trainings start two threads each on a loaded machine.
  }, 240_000);

  it("trainEngine 'onnx' refuses a model with LoRA adapters, saying what to use", async () => {
    const model = CausalLM.create(modelConfig, { seed: 4 });
    model.addAdapters({ r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'] }, { seed: 1 });
    try {
      await expect(
        trainSft({
          model,
          tokenizer,
          train: records,
          outDir: join(root, 'engine-lora'),
          config: { steps: 2, batchSize: 2, checkpointEvery: 0, workers: 0, trainEngine: 'onnx' },
        }),
      ).rejects.toMatchObject({
        code: 'SFT_ENGINE_UNSUPPORTED',
        message: expect.stringContaining("use trainEngine 'tfjs'"),
      });
    } finally {
      model.dispose();
    }
  });

  it("trainEngine 'auto' trains on onnx where it can and falls back to tfjs with the reason where it cannot", async () => {
    const config = {
      steps: 2,
      batchSize: 2,
      checkpointEvery: 0,
      workers: 0,
      trainEngine: 'auto',
    } as const;
    const plain = CausalLM.create(modelConfig, { seed: 4 });
    const lora = CausalLM.create(modelConfig, { seed: 4 });
    lora.addAdapters({ r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'] }, { seed: 1 });
    const logged: string[] = [];
    const logger = {
      debug: () => {},
      info: (m: string) => logged.push(m),
      warn: (m: string) => logged.push(m),
    };
    try {
      const onPlain = await trainSft({
        model: plain,
        tokenizer,
        train: records,
        outDir: join(root, 'engine-auto-plain'),
        config,
        logger,
      });
      expect(onPlain).toMatchObject({ trainEngine: 'onnx', steps: 2, stopped: 'steps' });
      expect(logged.filter((m) => m.includes("trainEngine 'auto'"))).toEqual([]);
      const onLora = await trainSft({
        model: lora,
        tokenizer,
        train: records,
        outDir: join(root, 'engine-auto-lora'),
        config,
        logger,
      });
      expect(onLora).toMatchObject({ trainEngine: 'tfjs', steps: 2, stopped: 'steps' });
      expect(logged).toContain(
        "sft: trainEngine 'auto' trains on tfjs: the model has LoRA adapters",
      );
    } finally {
      plain.dispose();
      lora.dispose();
    }
  });

  it('resumes a checkpoint written before a setting existed, reading it as the default', async () => {
    const config = {
      steps: 4,
      batchSize: 3,
      learningRate: 5e-3,
      warmupSteps: 1,
      checkpointEvery: 2,
      seed: 5,
      workers: 0,
    };
    const outDir = join(root, 'older-settings');
    const first = CausalLM.create(modelConfig, { seed: 2 });
    const controller = new AbortController();
    await trainSft({
      model: first,
      tokenizer,
      train: records,
      outDir,
      config,
      signal: controller.signal,
      onMetrics: (metric) => {
        if (metric.step === 2) controller.abort();
      },
    });
    first.dispose();
    // as an older trainer wrote it: without the settings added since (packing, curriculum)
    const statePath = join(outDir, 'checkpoints', 'step-00000002', 'trainer_state.json');
    const state = JSON.parse(await readFile(statePath, 'utf8')) as {
      config: Record<string, unknown>;
    };
    delete state.config['packing'];
    delete state.config['curriculum'];
    await writeFile(statePath, JSON.stringify(state));
    const resumed = CausalLM.create(modelConfig, { seed: 2 });
    const result = await trainSft({ model: resumed, tokenizer, train: records, outDir, config });
    expect(result).toMatchObject({ resumedFrom: 2, steps: 4, completed: true });
    // a stored value that differs from the default still refuses
    resumed.dispose();
    const other = CausalLM.create(modelConfig, { seed: 2 });
    await expect(
      trainSft({
        model: other,
        tokenizer,
        train: records,
        outDir,
        config: { ...config, steps: 6, curriculum: true },
      }),
    ).rejects.toThrow(/settings differ: steps, curriculum/);
    other.dispose();
  }, 120_000);

  it('stops at the step in flight when the signal fires, with a checkpoint, and resumes exactly', async () => {
    const config = {
      steps: 7,
      batchSize: 3,
      learningRate: 5e-3,
      warmupSteps: 2,
      checkpointEvery: 0,
      seed: 3,
      workers: 0,
    };
    const straight = CausalLM.create(modelConfig, { seed: 6 });
    await trainSft({
      model: straight,
      tokenizer,
      train: records,
      outDir: join(root, 'abort-straight'),
      config,
    });

    const outDir = join(root, 'abort');
    const controller = new AbortController();
    const stopping = CausalLM.create(modelConfig, { seed: 6 });
    const stopped = await trainSft({
      model: stopping,
      tokenizer,
      train: records,
      outDir,
      config,
      signal: controller.signal,
      // Ctrl-C arrives while step 3 is being recorded
      onMetrics: (metric) => {
        if (metric.step === 3) controller.abort();
      },
    });
    expect(stopped).toMatchObject({ steps: 3, completed: false, stopped: 'aborted' });
    expect(stopped.checkpointDir).toBe(join(outDir, 'checkpoints', 'step-00000003'));
    expect(await latestCheckpoint(outDir)).toEqual({ dir: stopped.checkpointDir, step: 3 });
    stopping.dispose();

    // an already-aborted signal trains nothing and writes no checkpoint
    const idleModel = CausalLM.create(modelConfig, { seed: 8 });
    const idle = await trainSft({
      model: idleModel,
      tokenizer,
      train: records,
      outDir,
      config,
      signal: controller.signal,
    });
    expect(idle).toMatchObject({ steps: 3, stopped: 'aborted', resumedFrom: 3 });
    expect(await latestCheckpoint(outDir)).toEqual({ dir: stopped.checkpointDir, step: 3 });
    idleModel.dispose();

    const resumed = CausalLM.create(modelConfig, { seed: 42 });
    const result = await trainSft({ model: resumed, tokenizer, train: records, outDir, config });
    expect(result).toMatchObject({ resumedFrom: 3, steps: 7, completed: true, stopped: 'steps' });
    const a = await weights(straight);
    const b = await weights(resumed);
    a.forEach((values, index) =>
      expect(Array.from(b[index] as Float32Array)).toEqual(Array.from(values)),
    );
    const losses = async (dir: string) =>
      (await metricsOf(dir)).flatMap((m) => (m.kind === 'step' ? [[m.step, m.loss]] : []));
    expect(await losses(outDir)).toEqual(await losses(join(root, 'abort-straight')));
    straight.dispose();
    resumed.dispose();
  });

  it('refuses to resume a run made with other settings, and trains answers only with reasoning: false', async () => {
    const outDir = join(root, 'mismatch');
    const model = CausalLM.create(modelConfig, { seed: 3 });
    const base = { steps: 2, batchSize: 12, warmupSteps: 0, bucketBatches: 1 };
    const withChains = await trainSft({ model, tokenizer, train: records, outDir, config: base });
    const error = await trainSft({
      model,
      tokenizer,
      train: records,
      outDir,
      config: { ...base, reasoning: false },
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SftTrainingError);
    expect((error as SftTrainingError).code).toBe('SFT_RESUME_FAILED');
    expect((error as Error).message).toContain('reasoning');

    const answersDir = join(root, 'answers');
    await trainSft({
      model,
      tokenizer,
      train: records,
      outDir: answersDir,
      config: { ...base, reasoning: false },
    });
    const tokens = async (dir: string) =>
      (await metricsOf(dir)).find((m): m is SftStepMetrics => m.kind === 'step')?.targetTokens ?? 0;
    // one batch holds all 12 examples: the chain run trains on more assistant tokens
    const answerTokens = records.reduce(
      (sum, record) =>
        sum +
        tokenizer.encode(record.answer_messages[2]!.content, { specialTokens: false }).length +
        1,
      0,
    );
    expect(await tokens(answersDir)).toBe(answerTokens);
    expect(await tokens(outDir)).toBeGreaterThan(answerTokens);
    expect(withChains.steps).toBe(2);
    model.dispose();
  });

  it('with LoRA adapters trains only them, checkpoints them in PEFT format and resumes to the same adapters', async () => {
    const lora = {
      r: 4,
      alpha: 8,
      dropout: 0.1,
      targetModules: ['q_proj', 'v_proj', 'down_proj'] as const,
    };
    const config = { steps: 6, batchSize: 3, learningRate: 1e-2, checkpointEvery: 3, seed: 5 };
    const adapted = (seed: number): CausalLM => {
      const model = CausalLM.create(modelConfig, { seed: 3 });
      model.addAdapters({ ...lora, targetModules: [...lora.targetModules] }, { seed });
      return model;
    };
    const adapterValues = (model: CausalLM): number[][] =>
      [...model.adapterParameters.values()].map((v) => Array.from(v.dataSync()));

    const straight = adapted(1);
    const baseBefore = await weights(straight);
    const initialAdapters = adapterValues(straight);
    await trainSft({
      model: straight,
      tokenizer,
      train: records,
      outDir: join(root, 'lora-straight'),
      config,
    });
    expect(await weights(straight)).toEqual(baseBefore);
    expect(adapterValues(straight)).not.toEqual(initialAdapters);
    const last = await latestCheckpoint(join(root, 'lora-straight'));
    const files = await readdir(last!.dir);
    expect(files).toEqual(
      expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']),
    );

    const outDir = join(root, 'lora-interrupted');
    const crashing = adapted(1);
    await trainSft({
      model: crashing,
      tokenizer,
      train: records,
      outDir,
      config,
      onMetrics: (metric) => {
        if (metric.step === 4) throw new Error('simulated crash');
      },
    }).catch(() => undefined);
    crashing.dispose();
    const resumed = adapted(42); // other adapter values: the checkpoint's replace them
    const result = await trainSft({ model: resumed, tokenizer, train: records, outDir, config });
    expect(result.resumedFrom).toBe(3);
    expect(adapterValues(resumed)).toEqual(adapterValues(straight));
    straight.dispose();
    resumed.dispose();
  });

  it('SftTrainer: the class trainSft wraps, with the shape of GrpoTrainer (construct, train, dispose)', async () => {
    const config = { steps: 3, batchSize: 3, learningRate: 5e-3, checkpointEvery: 0, seed: 4 };
    const viaFunction = CausalLM.create(modelConfig, { seed: 6 });
    const functionResult = await trainSft({
      model: viaFunction,
      tokenizer,
      train: records,
      outDir: join(root, 'shape-function'),
      config,
    });
    const viaClass = CausalLM.create(modelConfig, { seed: 6 });
    const before = tf.memory().numTensors;
    const seen: SftMetrics[] = [];
    const trainer = new SftTrainer({
      model: viaClass,
      tokenizer,
      train: records,
      outDir: join(root, 'shape-class'),
      config,
      onMetrics: (metric) => seen.push(metric),
    });
    expect(trainer.config).toMatchObject(config);
    const running = trainer.train();
    await expect(trainer.train()).rejects.toThrow(/already running/);
    const classResult = await running;
    // A second call finds the finished run in outDir and trains no further.
    const again = await trainer.train();
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(again).toMatchObject({ steps: 3, resumedFrom: 3, completed: true });
    const withoutTiming = (metrics: SftMetrics[]) =>
      metrics.map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !isTimingMetric(k))));
    expect(withoutTiming(seen)).toEqual(
      withoutTiming(await metricsOf(join(root, 'shape-function'))),
    );
    expect(classResult.finalLoss).toBe(functionResult.finalLoss);
    expect(await weights(viaClass)).toEqual(await weights(viaFunction));
    viaFunction.dispose();
    viaClass.dispose();
  });

  it('BucketedBatchSource: each step is its micro-batches from the schedule, split into row shards', () => {
    const { examples } = encodeExamples(
      records.map((record) => trainingMessages(record, true)),
      tokenizer,
      96,
    );
    const options = { batchSize: 3, bucketBatches: 2, seed: 8 };
    const source = new BucketedBatchSource(examples, {
      ...options,
      gradientAccumulation: 2,
      padId: tokenizer.special.pad,
    });
    const schedule = new BatchSchedule(
      examples.map((example) => example.ids.length),
      options,
    );
    // 12 examples in micro-batches of 3: 4 per epoch, so step 2 (micro-batches 4 and 5) is in epoch 1.
    const step = source.step(2, 2);
    expect(step.epoch).toBe(1);
    const expected = [4, 5].flatMap((index) =>
      shardRows(
        schedule.at(index).batch.map((i) => examples[i]!),
        tokenizer.special.pad,
        2,
      ),
    );
    expect(step.shards).toEqual(expected);
    expect(step.shards).toHaveLength(4);
  });
});
