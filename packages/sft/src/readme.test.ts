import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as coreTensors from '@codereasoner/core-tensors';
import * as data from '@codereasoner/data';
import * as protocol from '@codereasoner/protocol';
import { Sandbox, type SandboxOptions } from '@codereasoner/sandbox';
import { describe, expect, it } from 'vitest';
import { readmeBlock, runExample } from '../../../test-support/readme-example.js';
import * as sft from './index.js';

// Runs the README's example with the same calls, only smaller (each size replaced below is first
// checked to be in the README): 10 programs, a 1-layer model, 2 steps in-process, 8-token answers,
// everything under a temporary folder. It fails when a documented name, option or result shape
// stops matching the code.
const BLOCK = readmeBlock(new URL('../README.md', import.meta.url), { heading: 'Example' });

const SMALLER: [string, string][] = [
  ['count: 300 }', 'count: 10 }'],
  ['hiddenSize: 128, numHiddenLayers: 2 }', 'hiddenSize: 32, numHiddenLayers: 1 }'],
  [
    'config: { steps: 200, batchSize: 16, maxSeqLen: 512, evalEvery: 100 }',
    'config: { steps: 2, batchSize: 4, maxSeqLen: 512, evalEvery: 100, warmupSteps: 1, evalLimit: 4, evalMaxTokens: 8, workers: 0 }',
  ],
  ['maxTokens: 384,', 'maxTokens: 8,'],
];

describe('README example', () => {
  it('distils, trains and evaluates with the documented calls', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-sft-readme-'));
    const sandboxes: Sandbox[] = [];
    try {
      let code = BLOCK;
      for (const [from, to] of SMALLER) {
        expect(BLOCK).toContain(from);
        code = code.replace(from, to);
      }
      expect(BLOCK).toContain("'run/");
      code = code.replaceAll("'run/", `${JSON.stringify(dir)} + '/run/`);
      const modules: Record<string, unknown> = {
        '@codereasoner/core-tensors': coreTensors,
        '@codereasoner/data': data,
        '@codereasoner/protocol': protocol,
        '@codereasoner/sft': sft,
        '@codereasoner/sandbox': {
          Sandbox: {
            create: async (o: SandboxOptions = {}) => {
              const sandbox = await Sandbox.create({ workers: 1, ...o });
              sandboxes.push(sandbox);
              return sandbox;
            },
          },
        },
      };
      const logs = await runExample(code, modules);

      // stats.byType: { output: { total, accepted, acceptanceRate, meanAttempts }, ... }
      const byType = logs[0]![0] as Record<string, Record<string, number>>;
      expect(Object.keys(byType).sort()).toEqual(['coverage', 'input', 'output', 'path', 'state']);
      expect(Object.keys(byType.output!).sort()).toEqual(
        ['accepted', 'acceptanceRate', 'meanAttempts', 'total'].sort(),
      );
      expect(byType.output!.acceptanceRate).toBe(1);
      // onProgress: (completed, detail) for both steps, then the evaluation.
      expect(logs.slice(1, 3).map((l) => l[0])).toEqual([1, 2]);
      expect(logs[1]![1]).toMatchObject({ loss: expect.any(Number), lr: expect.any(Number) });
      // scores.accuracy: a fraction per task type present in the held-out tasks.
      const accuracy = logs.at(-1)![0] as Record<string, number>;
      expect(Object.keys(accuracy).length).toBeGreaterThan(0);
      for (const [type, value] of Object.entries(accuracy)) {
        expect(['output', 'input', 'coverage', 'state', 'path']).toContain(type);
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThanOrEqual(1);
      }
      expect((await readdir(join(dir, 'run/sft'))).sort()).toEqual(
        expect.arrayContaining(['checkpoints', 'metrics.jsonl', 'sft.jsonl', 'stats.json']),
      );
      expect(sandboxes).toHaveLength(1);
    } finally {
      await Promise.all(sandboxes.map((s) => s.close()));
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
