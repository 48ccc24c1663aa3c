import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigValidationError,
  onnxRuntimeStatus,
  setOnnxRuntimeLoader,
  type Logger,
} from '@codereasoner/core-tensors';
import { DEFAULT_GRPO_CONFIG, resolveGrpoConfig, type GrpoConfigInput } from './config.js';
import type { RolloutRecord } from './rollout.js';
import { GrpoTrainer } from './trainer.js';
import {
  FIRST_TOKEN_REWARD,
  TINY_CONFIG,
  TINY_DATASET,
  setUpBackend,
  tinyPolicy,
  tinyTokenizer,
} from './__fixtures__/tiny.js';

// The `engine` option reaches core-tensors' generate: which engine computed each step's rollouts is
// journaled (rollouts.jsonl), logged once per run, and a fallback's reason reaches the run's logger.
const tokenizer = tinyTokenizer();
const dirs: string[] = [];

beforeAll(setUpBackend);
afterEach(() => setOnnxRuntimeLoader(undefined));
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function recordingLogger(): Logger & { infos: string[]; warnings: string[] } {
  const infos: string[] = [];
  const warnings: string[] = [];
  return {
    infos,
    warnings,
    debug: () => {},
    info: (message) => infos.push(message),
    warn: (message) => warnings.push(message),
  };
}

async function run(config: GrpoConfigInput, existing?: string) {
  const outDir = existing ?? (await mkdtemp(join(tmpdir(), 'grpo-engine-')));
  dirs.push(outDir);
  const policy = tinyPolicy(tokenizer);
  const logger = recordingLogger();
  const trainer = new GrpoTrainer({
    policy,
    tokenizer,
    rewards: [FIRST_TOKEN_REWARD],
    dataset: TINY_DATASET,
    outDir,
    logger,
    config: { ...TINY_CONFIG, maxSteps: 2, saveSteps: 0, ...config },
  });
  const result = await trainer.train();
  trainer.dispose();
  const lastEngine = policy.lastGenerationEngine;
  policy.dispose();
  const records = (await readFile(join(outDir, 'rollouts.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as RolloutRecord);
  return { result, logger, lastEngine, outDir, engines: records.map((r) => r.engine) };
}

describe('GRPO rollouts: the engine option', () => {
  it('is tfjs by default (today’s behaviour)', async () => {
    expect(DEFAULT_GRPO_CONFIG.engine).toBe('tfjs');
    const { engines, logger } = await run({ workers: 0 });
    expect(engines).toEqual([{ engine: 'tfjs' }, { engine: 'tfjs' }]);
    expect(logger.infos).toContain('grpo: rollouts generated with tfjs (engine tfjs)');
  }, 60_000);

  it('generates on onnxruntime when asked, in-process and on worker threads', async () => {
    // onnxruntime-node is an optional dependency; the workspace installs it (a failure here, not a skip)
    expect(onnxRuntimeStatus()).toEqual({ available: true });
    for (const workers of [0, 2]) {
      const { engines, lastEngine, logger, result } = await run({ workers, engine: 'onnx' });
      expect(result.workers).toBe(Math.max(1, workers));
      expect(engines.map((e) => e?.engine)).toEqual(['onnx', 'onnx']);
      // the default weights mode ('auto') keeps a policy this small in the graph, on one thread
      expect(engines.map((e) => [e?.onnxWeights, e?.onnxThreads])).toEqual([
        ['initializers', 1],
        ['initializers', 1],
      ]);
      // the weights changed between the steps: the second step built a new session
      expect(engines[1]?.onnxBuildMs).toBeGreaterThan(0);
      expect(lastEngine?.engine).toBe('onnx');
      expect(logger.infos).toContain('grpo: rollouts generated with onnx (engine onnx)');
      expect(logger.warnings).toEqual([]);
    }
  }, 120_000);

  it('falls back to tfjs with the reason in the log and the journal when onnxruntime does not load', async () => {
    setOnnxRuntimeLoader(() => {
      throw new Error('libonnxruntime.so.1: cannot open shared object file');
    });
    const reason =
      'onnxruntime-node did not load: libonnxruntime.so.1: cannot open shared object file';
    const { engines, logger } = await run({ workers: 0, engine: 'onnx' });
    expect(engines).toEqual([
      { engine: 'tfjs', fallbackReason: reason },
      { engine: 'tfjs', fallbackReason: reason },
    ]);
    expect(logger.warnings).toEqual([
      `generation falls back from the onnx engine to tfjs: ${reason}`,
    ]);
    expect(logger.infos).toContain(
      `grpo: rollouts generated with tfjs (engine onnx; fell back: ${reason})`,
    );
    // 'auto' falls back silently, but the journal and the run log still say which engine ran
    const auto = await run({ workers: 0, engine: 'auto' });
    expect(auto.engines[0]).toEqual({ engine: 'tfjs', fallbackReason: reason });
    expect(auto.logger.warnings).toEqual([]);
  }, 60_000);

  it("passes onnxThreads and onnxWeights to the rollouts' generation", async () => {
    expect(DEFAULT_GRPO_CONFIG).toMatchObject({ onnxThreads: 1, onnxWeights: 'auto' });
    const { engines } = await run({
      workers: 0,
      engine: 'onnx',
      onnxThreads: 2,
      onnxWeights: 'inputs',
    });
    expect(engines.map((e) => [e?.engine, e?.onnxWeights, e?.onnxThreads])).toEqual([
      ['onnx', 'inputs', 2],
      ['onnx', 'inputs', 2],
    ]);
    expect(() => resolveGrpoConfig({ onnxWeights: 'graph' as never })).toThrow(/\/onnxWeights/);
    expect(() => resolveGrpoConfig({ onnxThreads: 0 })).toThrow(/\/onnxThreads/);
  }, 60_000);

  it('a run resumes on another engine (it changes only float rounding)', async () => {
    const first = await run({ workers: 0, saveSteps: 1 });
    const resumed = await run({ workers: 0, engine: 'onnx', maxSteps: 3 }, first.outDir);
    expect(resumed.result.resumedFromStep).toBe(2);
    expect(resumed.engines.map((e) => e?.engine)).toEqual(['tfjs', 'tfjs', 'onnx']);
  }, 60_000);

  it('rejects an unknown engine with the allowed values', () => {
    expect(() => resolveGrpoConfig({ engine: 'gpu' as never })).toThrow(ConfigValidationError);
    expect(() => resolveGrpoConfig({ engine: 'gpu' as never })).toThrow(/engine/);
    expect(resolveGrpoConfig({ engine: 'auto' }).engine).toBe('auto');
  });
});
