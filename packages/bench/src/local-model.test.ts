import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CausalLM,
  Tokenizer,
  initBackend,
  saveCheckpoint,
  writeRandomHfCheckpoint,
} from '@codereasoner/core-tensors';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLocalModel } from './models.js';
import type { ItemRecord } from './report.js';
import { runBenchmark } from './run-benchmark.js';
import { FIXTURES } from './test-paths.js';

let sandbox: Sandbox;
let root: string;

beforeAll(async () => {
  await initBackend();
  sandbox = await Sandbox.create({ workers: 1 });
  root = await mkdtemp(join(tmpdir(), 'bench-local-'));
});

afterAll(async () => {
  await sandbox?.close();
  await rm(root, { recursive: true, force: true });
});

describe('local checkpoint model', () => {
  it('loads a core-tensors checkpoint and runs a benchmark in protocol style', async () => {
    const tokenizer = Tokenizer.train(
      ['<answer>[1, 2]</answer> def f(x): return x + 1\n'.repeat(20)],
      { vocabSize: 300 },
    );
    const model = CausalLM.create(
      {
        vocabSize: tokenizer.vocabSize,
        hiddenSize: 32,
        intermediateSize: 32,
        numHiddenLayers: 1,
        numAttentionHeads: 2,
        numKeyValueHeads: 1,
        maxPositionEmbeddings: 128,
      },
      { seed: 1 },
    );
    const dir = join(root, 'tiny-checkpoint');
    await saveCheckpoint(dir, { model, tokenizer });
    model.dispose();

    const local = await loadLocalModel(dir, { batchSize: 4 });
    expect(local.id).toBe('tiny-checkpoint');
    const summary = await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: FIXTURES,
      model: local,
      sandbox,
      outDir: join(root, 'run'),
      promptStyle: 'protocol',
      limit: 2,
      maxTokens: 6,
      temperature: 1,
      seed: 3,
    });
    expect(summary.items.total).toBe(4);
    expect(summary.settings).toMatchObject({
      promptStyle: 'protocol',
      maxTokens: 6,
      stop: undefined,
    });
    const records = (await readFile(join(root, 'run/items.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ItemRecord);
    expect(records).toHaveLength(4);
    // An untrained model writes noise: every sample is recorded and scored (wrong), none crashes the run.
    for (const r of records) {
      expect(typeof r.samples[0]!.completion).toBe('string');
      expect(r.samples[0]!.reason.length).toBeGreaterThan(0);
      expect(r.prompt[1]!.content).toContain('```python');
    }
    expect(summary.headline['CRUXEval-O']).toBe(0);
  }, 60_000);

  it('loads a Hugging Face directory (Qwen3 layout, bf16, sharded, padded vocabulary) as --checkpoint', async () => {
    const dir = join(root, 'qwen3-hf');
    await writeRandomHfCheckpoint(dir, {
      family: 'qwen3',
      vocabSize: 384,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      headDim: 16,
      maxPositionEmbeddings: 512,
      tieWordEmbeddings: true,
      dtype: 'BF16',
      maxShardBytes: 40_000,
      seed: 2,
    });
    const local = await loadLocalModel(dir, { batchSize: 4 });
    expect(local.id).toBe('qwen3-hf');
    const summary = await runBenchmark({
      benchmark: 'cruxeval',
      dataPath: FIXTURES,
      model: local,
      sandbox,
      outDir: join(root, 'run-hf'),
      promptStyle: 'protocol',
      limit: 2,
      maxTokens: 6,
      temperature: 1,
      seed: 3,
    });
    expect(summary.items.total).toBe(4);
    const records = (await readFile(join(root, 'run-hf/items.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ItemRecord);
    // The tokenizer has fewer ids than the model: no sample decodes a padded id (U+FFFD).
    for (const r of records) expect(r.samples[0]!.completion).not.toContain('\uFFFD');
  }, 60_000);
});
