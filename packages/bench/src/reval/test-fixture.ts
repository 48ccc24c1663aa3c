// Test-only (not exported): the REval fixture traced in a sandbox, which the REval tests and
// the official-parity test all start from.
import { join } from 'node:path';
import { Sandbox, type Engine } from '@codereasoner/sandbox';
import { afterAll, beforeAll } from 'vitest';
import { FIXTURES } from '../test-paths.js';
import { loadReval, type RevalProblem } from './data.js';
import { computeRevalTruth, type RevalGroupTruth } from './truth.js';

export interface TracedRevalFixture {
  sandbox: Sandbox;
  /** src/__fixtures__/reval, loaded. */
  problems: RevalProblem[];
  /** The ground truth of every group of `problems`, in order. */
  truths: RevalGroupTruth[];
}

/**
 * Registers, in the enclosing block, the hooks that start a one-worker sandbox, load the REval
 * fixture and trace every group before its tests, and close the sandbox after them. The fields
 * are filled in by `beforeAll`: read them inside tests.
 */
export function useTracedRevalFixture(engine?: Engine): TracedRevalFixture {
  const fixture = {} as TracedRevalFixture;
  beforeAll(async () => {
    fixture.sandbox = await Sandbox.create({
      ...(engine === undefined ? {} : { engine }),
      workers: 1,
    });
    fixture.problems = await loadReval(
      join(FIXTURES, 'reval/DREval_data.jsonl'),
      join(FIXTURES, 'reval/DREval_tasks.jsonl'),
    );
    fixture.truths = await computeRevalTruth(
      fixture.sandbox,
      fixture.problems.flatMap((problem) => problem.groups.map((group) => ({ problem, group }))),
    );
  }, 120_000);
  afterAll(async () => {
    await fixture.sandbox?.close();
  });
  return fixture;
}
