import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, initBackend, tf } from '@codereasoner/core-tensors';
import { goldenSuite, weightHash } from '../../../test-support/golden.js';
import type { SftConfigInput } from './config.js';
import { isTimingMetric, type SftMetrics } from './metrics.js';
import { trainSft } from './trainer.js';
import { SQUARES_MODEL_CONFIG, squareRecords, tokenizerFor } from './__fixtures__/squares.js';

/*
 * Numerics guard. `__fixtures__/golden-metrics.json` was written by `trainSft` as it was BEFORE
 * the trainers were given one shape (main at 3942a71, one 320-line function), running the
 * scenarios below on the wasm backend. Every logged figure except the timings, and a hash of
 * every trained weight, must stay bit-for-bit what that code produced.
 *
 * Re-record (CR_RECORD_GOLDEN=1) only for a change that is meant to change the numbers, and say
 * so in the commit; then `cr run-all` gives another held-out table too.
 */

// Lengths differ between records, so buckets and padding matter.
const records = squareRecords((n) => `${'step '.repeat(n % 4)}${n}*${n}`);
const tokenizer = tokenizerFor(records);
const modelConfig = SQUARES_MODEL_CONFIG;

interface Scenario {
  config: SftConfigInput;
  lora?: boolean;
}

const SCENARIOS: Record<string, Scenario> = {
  'accumulation over buckets, warm-up and cosine': {
    config: {
      steps: 6,
      batchSize: 3,
      gradientAccumulation: 2,
      bucketBatches: 2,
      learningRate: 5e-3,
      warmupSteps: 2,
      weightDecay: 0.01,
      seed: 7,
    },
  },
  'answers only, tight clipping, no bucketing': {
    config: {
      steps: 4,
      batchSize: 4,
      reasoning: false,
      maxGradNorm: 0.1,
      bucketBatches: 1,
      learningRate: 1e-2,
      seed: 3,
    },
  },
  'LoRA with dropout': {
    config: { steps: 4, batchSize: 3, learningRate: 1e-2, seed: 5 },
    lora: true,
  },
  'two worker threads': {
    config: { steps: 3, batchSize: 4, gradientAccumulation: 2, workers: 2, seed: 9 },
  },
};

interface Recorded {
  metrics: Record<string, unknown>[];
  weights: string;
  steps: number;
  finalLoss: number;
  examples: number;
  workers: number;
}

async function runScenario(scenario: Scenario): Promise<Recorded> {
  const model = CausalLM.create(modelConfig, { seed: 2 });
  // The records are bit for bit the reference attention ops' (the fused kernel agrees only within
  // float32 rounding), so this test keeps guarding the trainer, not the attention path.
  model.attention = 'reference';
  if (scenario.lora === true)
    model.addAdapters(
      { r: 4, alpha: 8, dropout: 0.1, targetModules: ['q_proj', 'v_proj', 'down_proj'] },
      { seed: 1 },
    );
  const outDir = await mkdtemp(join(tmpdir(), 'sft-golden-'));
  try {
    const result = await trainSft({
      model,
      tokenizer,
      train: records,
      outDir,
      config: { checkpointEvery: 0, ...scenario.config },
    });
    const lines = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    return {
      metrics: lines.map((line) =>
        Object.fromEntries(
          Object.entries(JSON.parse(line) as SftMetrics).filter(([k]) => !isTimingMetric(k)),
        ),
      ),
      weights: weightHash(model),
      steps: result.steps,
      finalLoss: result.finalLoss,
      examples: result.examples,
      workers: result.workers,
    };
  } finally {
    model.dispose();
    await rm(outDir, { recursive: true, force: true });
  }
}

goldenSuite({
  title: 'SFT numerics (golden record of the pre-split trainer)',
  golden: new URL('./__fixtures__/golden-metrics.json', import.meta.url),
  scenarios: SCENARIOS,
  run: runScenario,
  initWasm: () => initBackend({ backend: 'wasm' }),
  backend: () => tf.getBackend(),
});
