// Shared by the trainers' golden-record tests (sft, grpo): run named scenarios, compare every
// logged figure and a hash of the trained weights with a committed JSON record, bit for bit, or
// re-record that file with CR_RECORD_GOLDEN=1. Test-only; no package ships it. Kept free of a
// @codereasoner import (the root has none installed): the model and the backend come in as
// arguments.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Whether this run re-records the golden files instead of checking against them. */
export const RECORD_GOLDEN = process.env['CR_RECORD_GOLDEN'] === '1';

/** What `weightHash` reads of a model (a `CausalLM`): its named base and adapter variables. */
export interface NamedWeights {
  readonly parameters: ReadonlyMap<string, { dataSync(): unknown }>;
  readonly adapterParameters: ReadonlyMap<string, { dataSync(): unknown }>;
}

/** sha256 over every (name, float32 bytes) of the model's weights, adapters included, sorted by name. */
export function weightHash(model: NamedWeights): string {
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

export interface GoldenSuite<Scenario, Recorded extends { metrics: unknown[] }> {
  /** The describe() title. */
  title: string;
  /** The committed record (`{ backend, scenarios: { [name]: Recorded } }`). */
  golden: URL;
  scenarios: Record<string, Scenario>;
  /** Runs one scenario and gives what is compared: timings already left out. */
  run: (scenario: Scenario) => Promise<Recorded>;
  /** Selects the wasm backend (the figures are per backend) and says which one is active. */
  initWasm: () => Promise<{ active: string }>;
  /** The backend now active, written into a re-recorded file. */
  backend: () => string;
}

/**
 * One test per scenario: the run must equal its record exactly (toEqual on every figure and the
 * weight hash). With CR_RECORD_GOLDEN=1 the runs are collected instead and the file is rewritten
 * after the suite.
 */
export function goldenSuite<Scenario, Recorded extends { metrics: unknown[] }>(
  suite: GoldenSuite<Scenario, Recorded>,
): void {
  const recorded: Record<string, Recorded> = {};
  let golden: { backend: string; scenarios: Record<string, Recorded> } | undefined;

  beforeAll(async () => {
    // Golden figures are per backend; wasm is always installed with core-tensors.
    const { active } = await suite.initWasm();
    expect(active, 'the golden figures were recorded on the wasm backend').toBe('wasm');
    if (!RECORD_GOLDEN) {
      expect(
        existsSync(suite.golden),
        `${suite.golden.pathname} is missing: it is committed with the test`,
      ).toBe(true);
      golden = JSON.parse(await readFile(suite.golden, 'utf8')) as typeof golden;
    }
  });

  afterAll(async () => {
    if (RECORD_GOLDEN)
      await writeFile(
        suite.golden,
        `${JSON.stringify({ backend: suite.backend(), scenarios: recorded }, null, 2)}\n`,
      );
  });

  describe(suite.title, () => {
    for (const [name, scenario] of Object.entries(suite.scenarios)) {
      it(`${name}: the same metrics and weights as the recorded run`, async () => {
        const run = await suite.run(scenario);
        expect(run.metrics.length).toBeGreaterThan(0);
        if (RECORD_GOLDEN) {
          recorded[name] = run;
          return;
        }
        const expected = golden!.scenarios[name];
        expect(expected, `no golden record for '${name}'`).toBeDefined();
        expect(run).toEqual(expected);
      }, 120_000);
    }
  });
}
