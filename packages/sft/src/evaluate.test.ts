import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  CausalLM,
  initBackend,
  LocalChatModel,
  onnxRuntimeStatus,
  setOnnxRuntimeLoader,
  Tokenizer,
  type ChatModel,
  type ChatRequest,
} from '@codereasoner/core-tensors';
import { formatCompletion, renderPrompt, type TaskRecord } from '@codereasoner/protocol';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SftAbortedError } from './errors.js';
import { evaluateModel, type EvaluationItem } from './evaluate.js';
import { pickEvalTasks } from './held-out-eval.js';
import type { SftMetrics } from './metrics.js';
import { latestCheckpoint } from './run-state.js';
import { trainSft } from './trainer.js';
import type { SftRecord } from './dataset.js';

let tasks: TaskRecord[];
let sandbox: Sandbox;

beforeAll(async () => {
  const text = await readFile(
    fileURLToPath(new URL('./__fixtures__/tasks.jsonl', import.meta.url)),
    'utf8',
  );
  tasks = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as TaskRecord);
  sandbox = await Sandbox.create({ workers: 1 });
  await initBackend();
}, 60_000);

afterAll(async () => {
  await sandbox?.close();
});

/** A 1-layer model small enough to train a few steps inside a test. */
const TINY_MODEL = {
  vocabSize: 320,
  hiddenSize: 16,
  intermediateSize: 32,
  numHiddenLayers: 1,
  numAttentionHeads: 2,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 512,
};

/** SFT records whose chains and answers are the fixture tasks' gold, and a tokenizer trained on them. */
function goldTraining(): { records: SftRecord[]; tokenizer: Tokenizer } {
  const records: SftRecord[] = tasks.map((task) => ({
    id: task.id,
    type: task.type,
    teacher: 'gold',
    messages: [
      ...renderPrompt(task),
      { role: 'assistant', content: formatCompletion(task.answer, 'x') },
    ],
    answer_messages: [
      ...renderPrompt(task, { reasoning: false }),
      { role: 'assistant', content: formatCompletion(task.answer) },
    ],
  }));
  const tokenizer = Tokenizer.train(
    records.flatMap((record) => record.messages.map((message) => message.content)),
    { vocabSize: 300 },
  );
  return { records, tokenizer };
}

/** Answers from a table keyed by the prompt's user message; `wrongTypes` get a wrong literal. */
function tableModel(wrongTypes: Set<string>, seen: ChatRequest[]): ChatModel {
  const table = new Map(tasks.map((task) => [renderPrompt(task)[1]!.content, task]));
  return {
    id: 'table',
    complete: async (requests) => {
      seen.push(...requests);
      return requests.map((request) => {
        const task = table.get(request.messages[1]!.content)!;
        const answer = wrongTypes.has(task.type) ? "'not it'" : task.answer;
        return {
          texts: [`<think>x</think>\n${formatCompletion(answer)}`],
          finishReasons: ['stop' as const],
        };
      });
    },
  };
}

describe('evaluateModel', () => {
  it('verifies every answer in the sandbox and reports accuracy per task type', async () => {
    const seen: ChatRequest[] = [];
    const result = await evaluateModel(
      tableModel(new Set(['output', 'state']), seen),
      tasks,
      sandbox,
      {
        batchSize: 4,
        maxTokens: 99,
      },
    );
    expect(result.accuracy).toEqual({ output: 0, input: 1, coverage: 1, state: 0, path: 1 });
    expect(result.counts.output).toEqual({ correct: 0, total: 2 });
    expect(result.overall).toBeCloseTo(0.6);
    expect(result.items.map((item) => item.taskId)).toEqual(tasks.map((task) => task.id));
    expect(result.items.find((item) => item.taskId === 'p1-output')?.reason).toMatch(/^wrong/);
    // the answers as the verifier read them, and how varied they are
    expect(result.items.find((item) => item.taskId === 'p2-input')?.answer).toBe("'hello world'");
    expect(result.diversity.byType.output).toEqual({
      items: 2,
      distinct: 1,
      top: { answer: "'not it'", count: 2, share: 1 },
    });
    expect(result.diversity.byType.coverage).toEqual({
      items: 2,
      distinct: 2,
      top: { answer: 'yes', count: 1, share: 0.5 },
    });
    expect(seen).toHaveLength(10);
    expect(seen[0]).toMatchObject({ maxTokens: 99, temperature: 0 });
    expect(seen[0]!.messages[0]!.content).toContain('Think step by step');
  });

  it('stops between batches when its signal fires, throwing SftAbortedError', async () => {
    const controller = new AbortController();
    const seen: ChatRequest[] = [];
    const model = tableModel(new Set(), seen);
    const error = await evaluateModel(
      { id: 'stopping', complete: (requests) => (controller.abort(), model.complete(requests)) },
      tasks,
      sandbox,
      { batchSize: 4, signal: controller.signal },
    ).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SftAbortedError);
    expect(error).toMatchObject({
      name: 'AbortError',
      code: 'SFT_ABORTED',
      operation: 'evaluate',
      completed: 4,
      total: 10,
    });
    // the first batch ran, no other
    expect(seen).toHaveLength(4);
  });

  it('hands each batch to onItems as it is scored, and asks only the tasks an earlier run left', async () => {
    const saved: EvaluationItem[][] = [];
    const controller = new AbortController();
    const first: ChatRequest[] = [];
    const model = tableModel(new Set(['output']), first);
    // interrupted after its second batch: 8 of the 10 items are saved
    await evaluateModel(
      {
        id: 'interrupted',
        complete: (requests) => {
          if (first.length >= 4) controller.abort();
          return model.complete(requests);
        },
      },
      tasks,
      sandbox,
      { batchSize: 4, signal: controller.signal, onItems: (items) => void saved.push(items) },
    ).catch(() => undefined);
    expect(saved.map((batch) => batch.length)).toEqual([4, 4]);
    const again: ChatRequest[] = [];
    const result = await evaluateModel(tableModel(new Set(['output']), again), tasks, sandbox, {
      batchSize: 4,
      previous: saved.flat(),
    });
    // only the 2 tasks not saved are asked again; the result covers all 10, in task order
    expect(again).toHaveLength(2);
    expect(result.items.map((item) => item.taskId)).toEqual(tasks.map((task) => task.id));
    expect(result.counts.output).toEqual({ correct: 0, total: 2 });
    expect(result.overall).toBeCloseTo(0.8);
  });

  it('prompts for answers only with reasoning: false, and scores an untrained local model at zero', async () => {
    const seen: ChatRequest[] = [];
    await evaluateModel(tableModel(new Set(), seen), tasks.slice(0, 1), sandbox, {
      reasoning: false,
    });
    expect(seen[0]!.messages[0]!.content).toContain('no explanation');

    const tokenizer = Tokenizer.train(['<answer>5</answer> def f(xs): return'], { vocabSize: 280 });
    const model = CausalLM.create({
      vocabSize: 288,
      hiddenSize: 16,
      intermediateSize: 32,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      numKeyValueHeads: 2,
      maxPositionEmbeddings: 512,
    });
    const local = await evaluateModel(
      new LocalChatModel(model, tokenizer),
      tasks.slice(0, 2),
      sandbox,
      { maxTokens: 6 },
    );
    expect(local.overall).toBe(0);
    expect(local.items.map((item) => item.answer)).toEqual([null, null]);
    expect(local.diversity.overall).toEqual({
      items: 2,
      distinct: 1,
      top: { answer: null, count: 2, share: 1 },
    });
    expect(
      local.items.every(
        (item) => item.finishReason === 'length' && item.reason.startsWith('no_answer'),
      ),
    ).toBe(true);
    model.dispose();
  });

  it('runs inside trainSft every evalEvery steps on a type-balanced subset, logging accuracy', async () => {
    expect(pickEvalTasks(tasks, 5).map((task) => task.type)).toEqual([
      'output',
      'input',
      'coverage',
      'state',
      'path',
    ]);
    const { records, tokenizer } = goldTraining();
    const model = CausalLM.create(TINY_MODEL);
    const outDir = await mkdtemp(join(tmpdir(), 'cr-sft-eval-'));
    const metrics: SftMetrics[] = [];
    const stages = new Set<string>();
    const result = await trainSft({
      model,
      tokenizer,
      train: records,
      eval: tasks,
      sandbox,
      outDir,
      config: {
        steps: 4,
        batchSize: 5,
        warmupSteps: 1,
        evalEvery: 2,
        evalLimit: 5,
        evalMaxTokens: 4,
        checkpointEvery: 0,
      },
      onMetrics: (metric) => metrics.push(metric),
      onProgress: (event) => stages.add(event.stage),
    });
    const evals = metrics.filter((metric) => metric.kind === 'eval');
    expect(evals.map((metric) => [metric.step, metric.tasks])).toEqual([
      [2, 5],
      [4, 5],
    ]);
    expect(Object.keys(evals[0]!.kind === 'eval' ? evals[0]!.accuracy : {}).sort()).toEqual([
      'coverage',
      'input',
      'output',
      'path',
      'state',
    ]);
    expect(result.evaluations).toHaveLength(2);
    expect([...stages].sort()).toEqual(['sft', 'sft-eval']);
    model.dispose();
    await rm(outDir, { recursive: true, force: true });
    // a hang cap on a loaded machine (worker threads start slowly), not a speed check
  }, 120_000);

  it('inside trainSft: held-out evaluations generate on the engine asked for, and a fallback is logged with its reason', async () => {
    const { records, tokenizer } = goldTraining();
    const evaluate = async (
      engine: 'onnx' | 'tfjs',
      onnx: { onnxThreads?: number; onnxWeights?: 'inputs' } = {},
    ) => {
      const model = CausalLM.create(TINY_MODEL);
      const outDir = await mkdtemp(join(tmpdir(), 'cr-sft-engine-'));
      const warnings: string[] = [];
      const infos: string[] = [];
      const logger = {
        debug: () => {},
        info: (m: string) => infos.push(m),
        warn: (m: string) => warnings.push(m),
      };
      await trainSft({
        model,
        tokenizer,
        train: records,
        eval: tasks,
        sandbox,
        outDir,
        engine,
        ...onnx,
        logger,
        config: {
          steps: 1,
          batchSize: 5,
          warmupSteps: 0,
          evalEvery: 1,
          evalLimit: 2,
          evalMaxTokens: 3,
          checkpointEvery: 0,
        },
      });
      const ran = model.lastGenerationEngine;
      model.dispose();
      await rm(outDir, { recursive: true, force: true });
      return { ran, warnings, infos };
    };
    expect(onnxRuntimeStatus()).toEqual({ available: true });
    const onnx = await evaluate('onnx');
    expect(onnx.ran).toMatchObject({ engine: 'onnx', onnxWeights: 'initializers', onnxThreads: 1 });
    // the onnx engine's options reach the evaluations' chat model
    expect((await evaluate('onnx', { onnxThreads: 2, onnxWeights: 'inputs' })).ran).toMatchObject({
      engine: 'onnx',
      onnxWeights: 'inputs',
      onnxThreads: 2,
    });
    expect(onnx.infos).toContain('sft: evaluations generated with onnx (engine onnx)');
    expect((await evaluate('tfjs')).ran).toEqual({ engine: 'tfjs' });
    setOnnxRuntimeLoader(() => {
      throw new Error('libonnxruntime.so.1: cannot open shared object file');
    });
    try {
      const reason =
        'onnxruntime-node did not load: libonnxruntime.so.1: cannot open shared object file';
      const fallback = await evaluate('onnx');
      expect(fallback.ran).toEqual({ engine: 'tfjs', fallbackReason: reason });
      expect(fallback.warnings).toContain(
        `generation falls back from the onnx engine to tfjs: ${reason}`,
      );
      expect(fallback.infos).toContain(
        `sft: evaluations generated with tfjs (engine onnx; fell back: ${reason})`,
      );
    } finally {
      setOnnxRuntimeLoader(undefined);
    }
  }, 120_000);

  it('inside trainSft: a signal during an evaluation checkpoints the step; the resumed run evaluates it first', async () => {
    const { records, tokenizer } = goldTraining();
    const outDir = await mkdtemp(join(tmpdir(), 'cr-sft-eval-abort-'));
    const config = {
      steps: 4,
      batchSize: 5,
      warmupSteps: 1,
      evalEvery: 2,
      evalLimit: 5,
      evalBatchSize: 2,
      checkpointEvery: 0,
      workers: 0,
    };
    const controller = new AbortController();
    const seen: ChatRequest[] = [];
    const table = tableModel(new Set(), seen);
    const first = CausalLM.create(TINY_MODEL, { seed: 1 });
    const stopped = await trainSft({
      model: first,
      tokenizer,
      train: records,
      eval: tasks,
      sandbox,
      outDir,
      config,
      signal: controller.signal,
      // Ctrl-C during the first batch of the step-2 evaluation
      chatModel: () => ({
        id: 'stopping',
        complete: (requests) => (controller.abort(), table.complete(requests)),
      }),
    });
    expect(stopped).toMatchObject({ steps: 2, stopped: 'aborted', completed: false });
    expect(stopped.evaluations).toEqual([]);
    expect(seen).toHaveLength(2);
    expect(await latestCheckpoint(outDir)).toMatchObject({ step: 2 });
    first.dispose();

    const second = CausalLM.create(TINY_MODEL, { seed: 1 });
    const result = await trainSft({
      model: second,
      tokenizer,
      train: records,
      eval: tasks,
      sandbox,
      outDir,
      config,
      chatModel: () => table,
    });
    expect(result).toMatchObject({ resumedFrom: 2, steps: 4, stopped: 'steps' });
    const text = await readFile(join(outDir, 'metrics.jsonl'), 'utf8');
    const metrics = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as SftMetrics);
    expect(metrics.map((metric) => `${metric.kind}${metric.step}`)).toEqual([
      'step1',
      'step2',
      'eval2',
      'step3',
      'step4',
      'eval4',
    ]);
    // the table model answers with the gold: every held-out answer verifies
    expect(result.evaluations.map((evaluation) => evaluation.overall)).toEqual([1, 1]);
    second.dispose();
    await rm(outDir, { recursive: true, force: true });
  });
});
