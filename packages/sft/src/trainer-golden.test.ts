import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, initBackend, tf } from '@codereasoner/core-tensors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
const GOLDEN = new URL('./__fixtures__/golden-metrics.json', import.meta.url);
const RECORD = process.env['CR_RECORD_GOLDEN'] === '1';

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

function weightHash(model: CausalLM): string {
  const hash = createHash('sha256');
  const named = [...model.parameters, ...model.adapterParameters].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  for (const [name, variable] of named) {
    hash.update(name);
    hash.update(Buffer.from((variable.dataSync() as Float32Array).buffer));
  }
  return hash.digest('hex');
}

async function runScenario(scenario: Scenario): Promise<Recorded> {
  const model = CausalLM.create(modelConfig, { seed: 2 });
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

const recorded: Record<string, Recorded> = {};
let golden: { backend: string; scenarios: Record<string, Recorded> } | undefined;

beforeAll(async () => {
  // Golden figures are per backend; wasm is always installed with core-tensors.
  const { active } = await initBackend({ backend: 'wasm' });
  expect(active, 'the golden figures were recorded on the wasm backend').toBe('wasm');
  if (!RECORD) {
    expect(existsSync(GOLDEN), `${GOLDEN.pathname} is missing: it is committed with the test`).toBe(
      true,
    );
    golden = JSON.parse(await readFile(GOLDEN, 'utf8')) as typeof golden;
  }
});

afterAll(async () => {
  if (RECORD)
    await writeFile(
      GOLDEN,
      `${JSON.stringify({ backend: tf.getBackend(), scenarios: recorded }, null, 2)}\n`,
    );
});

describe('SFT numerics (golden record of the pre-split trainer)', () => {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(`${name}: the same metrics and weights as the recorded run`, async () => {
      const run = await runScenario(scenario);
      expect(run.metrics.length).toBeGreaterThan(0);
      if (RECORD) {
        recorded[name] = run;
        return;
      }
      const expected = golden!.scenarios[name];
      expect(expected, `no golden record for '${name}'`).toBeDefined();
      expect(run).toEqual(expected);
    }, 120_000);
  }
});
