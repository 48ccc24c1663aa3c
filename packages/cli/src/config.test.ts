import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigValidationError } from '@codereasoner/core-tensors';
import { describe, expect, it } from 'vitest';
import {
  checkSections,
  collectSectionIssues,
  generatedWithLine,
  generationEngine,
  generationOptions,
  mergeConfig,
  readConfigFile,
  resolveRunConfig,
} from './config.js';
import { exitCodeFor } from './errors.js';
import { suggestKey } from '@codereasoner/common';
import { PRESETS } from './presets.js';
import { GRPO_SETTINGS, SCHEMA_KEYS, SFT_SETTINGS, TRL_ALIASES } from './trl-flags.js';
import { SECTION_VALIDATORS } from './stages.js';

describe('resolveRunConfig', () => {
  it('takes the generation engine from the file or --engine, rejects others, and defaults to auto', () => {
    expect(resolveRunConfig({ engine: 'onnx' }).engine).toBe('onnx');
    expect(resolveRunConfig({ engine: 'onnx' }, { engine: 'tfjs' }).engine).toBe('tfjs');
    expect(() => resolveRunConfig({ engine: 'gpu' })).toThrow(ConfigValidationError);
    let error: unknown;
    try {
      resolveRunConfig({ engine: 'gpu' }, { engine: 'cuda' as never });
    } catch (caught) {
      error = caught;
    }
    expect((error as ConfigValidationError).issues).toEqual([
      '/engine: must be one of "auto", "onnx", "tfjs" (got "gpu")',
      '(flags)/engine: must be one of "auto", "onnx", "tfjs" (got "cuda")',
    ]);
    // grpo's own section is checked by its package's schema
    expect(() =>
      resolveRunConfig({ grpo: { engine: 'fast' } }, {}, 'run config', SECTION_VALIDATORS),
    ).toThrow(/\/grpo\/engine/);
    expect(generationEngine(resolveRunConfig({}))).toBe('auto');
    expect(generationEngine(resolveRunConfig({ preset: 'tiny' }, { engine: 'tfjs' }))).toBe('tfjs');
  });

  it("takes the onnx engine's threads and weights mode from the file or flags, checks them, and passes them with the engine", () => {
    // the presets' values: 1 thread, weights chosen by size
    expect(resolveRunConfig({}).onnx).toEqual({ threads: 1, weights: 'auto' });
    expect(generationOptions(resolveRunConfig({ preset: 'tiny' }))).toEqual({
      engine: 'auto',
      onnxThreads: 1,
      onnxWeights: 'auto',
    });
    const fromFile = resolveRunConfig({ engine: 'onnx', onnx: { threads: 2 } });
    expect(fromFile.onnx).toEqual({ threads: 2, weights: 'auto' });
    // a flag overrides its own field and keeps the file's other one
    const both = resolveRunConfig(
      { onnx: { threads: 2, weights: 'initializers' } },
      { onnx: { weights: 'inputs' } },
    );
    expect(generationOptions(both)).toEqual({
      engine: 'auto',
      onnxThreads: 2,
      onnxWeights: 'inputs',
    });
    let error: unknown;
    try {
      resolveRunConfig(
        { onnx: { threads: 0, weights: 'graph', spin: true } },
        { onnx: { threads: 1.5, weights: 'outputs' as never } },
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    expect((error as ConfigValidationError).issues).toEqual([
      "/onnx: unknown property 'spin'; known: threads, weights",
      '/onnx/threads: must be >= 1',
      '/onnx/weights: must be one of "auto", "initializers", "inputs" (got "graph")',
      '(flags)/onnx/threads: must be integer (got 1.5)',
      '(flags)/onnx/weights: must be one of "auto", "initializers", "inputs" (got "outputs")',
    ]);
    expect(exitCodeFor(error)).toBe(2);
    // the grpo section may name its own (checked by grpo's schema)
    expect(() =>
      resolveRunConfig({ grpo: { onnxWeights: 'graph' } }, {}, 'run config', SECTION_VALIDATORS),
    ).toThrow(/\/grpo\/onnxWeights/);
  });

  it("says in the run log which engine generated, with the onnx engine's threads and weights mode", () => {
    expect(
      generatedWithLine(
        'sft',
        { engine: 'onnx', onnxBuildMs: 3, onnxThreads: 1, onnxWeights: 'initializers' },
        'auto',
      ),
    ).toBe(
      'sft: generated with onnx (engine auto), onnxruntime: 1 thread, weights as initializers',
    );
    expect(
      generatedWithLine('m', { engine: 'onnx', onnxThreads: 2, onnxWeights: 'inputs' }, 'onnx'),
    ).toBe('m: generated with onnx (engine onnx), onnxruntime: 2 threads, weights as inputs');
    expect(
      generatedWithLine('m', { engine: 'tfjs', fallbackReason: 'active LoRA adapters' }, 'onnx'),
    ).toBe('m: generated with tfjs (engine onnx; fell back: active LoRA adapters)');
    expect(generatedWithLine('m', { engine: 'tfjs' }, 'tfjs')).toBe(
      'm: generated with tfjs (engine tfjs)',
    );
  });

  it('layers preset < file < flags', () => {
    const config = resolveRunConfig({ preset: 'tiny', seed: 7, sft: { steps: 9 } }, { seed: 11 });
    expect(config.preset).toBe('tiny');
    expect(config.seed).toBe(11);
    expect(config.sft.steps).toBe(9);
    // untouched values come from the tiny preset
    expect(config.sft.batchSize).toBe(PRESETS.tiny.sft.batchSize);
    expect(config.model).toEqual(PRESETS.tiny.model);
  });

  it('lists every problem of a bad config at once, each with its path', () => {
    let error: unknown;
    try {
      resolveRunConfig({
        seed: -1,
        preset: 'huge',
        eval: { tasksPerType: 0, colour: 'red' },
        extra: true,
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const issues = (error as ConfigValidationError).issues;
    expect(issues).toEqual(
      expect.arrayContaining([
        "/: unknown property 'extra'; known: preset, seed, out, backend, workers, engine, onnx, sandbox, data, tokenizer, model, lora, teacher, sft, grpo, eval, bench",
        '/preset: must be one of "default", "tiny" (got "huge")',
        '/seed: must be >= 0',
        '/eval/tasksPerType: must be >= 1',
        "/eval: unknown property 'colour'; known: tasksPerType, maxNewTokens, temperature, samples, batchSize",
      ]),
    );
    expect(issues).toHaveLength(5);
    expect(exitCodeFor(error)).toBe(2);
  });

  it('reports a file that is not JSON with its path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-config-'));
    const path = join(dir, 'bad.json');
    await writeFile(path, '{ "seed": 1, }');
    await expect(readConfigFile(path)).rejects.toThrow(
      /bad\.json is invalid:\n {2}- \/: not valid JSON/,
    );
    await expect(readConfigFile(join(dir, 'missing.json'))).rejects.toThrow(
      /Cannot read config file .*missing\.json/,
    );
  });
});

describe('one round of config errors', () => {
  it('reports the sections beside a top-level mistake, each issue once', () => {
    const error = (() => {
      try {
        resolveRunConfig(
          {
            seed: 'one',
            workers: 'many',
            sft: { max_seq_length: 3, steps: 0 },
            model: { hiddenSize: 3 },
            data: { source: { kind: 'directory' } },
          },
          {},
          'run config',
          SECTION_VALIDATORS,
        );
      } catch (caught) {
        return caught as ConfigValidationError;
      }
      return undefined;
    })();
    expect(error?.issues).toEqual([
      '/workers: must be "auto" or an integer from 0 to 64',
      '/seed: must be integer (got "one")',
      "/data/source: must have required property 'path'",
      "/sft: unknown property 'max_seq_length' (did you mean 'maxSeqLen'?)",
      '/sft/steps: must be >= 1',
      '/model/hiddenSize: must be divisible by numAttentionHeads (3 % 4 != 0)',
    ]);
    expect(exitCodeFor(error)).toBe(2);
  });
});

describe('the teacher section', () => {
  const issuesOf = (teacher: Record<string, unknown>): string[] => {
    try {
      resolveRunConfig({ teacher }, {}, 'run config', SECTION_VALIDATORS);
    } catch (caught) {
      return (caught as ConfigValidationError).issues;
    }
    return [];
  };

  it("accepts the trace teacher's chain formats", () => {
    expect(issuesOf({ kind: 'trace', format: 'compact' })).toEqual([]);
    expect(issuesOf({ kind: 'trace', format: 'full', batchSize: 8 })).toEqual([]);
    expect(resolveRunConfig({ teacher: { format: 'full' } }).teacher).toEqual({
      kind: 'trace',
      format: 'full',
    });
  });

  it('refuses an unknown format or key of the trace teacher, naming the choices', () => {
    expect(issuesOf({ kind: 'trace', format: 'short', batchsize: 8 })).toEqual([
      "/teacher: unknown property 'batchsize' (did you mean 'batchSize'?)",
      '/teacher/format: must be one of "full", "compact" (got "short")',
    ]);
  });
});

describe('suggestKey', () => {
  it('maps TRL names and other spellings onto our keys', () => {
    const grpo = SCHEMA_KEYS.grpo;
    expect(suggestKey('num_generations', grpo, TRL_ALIASES.grpo)).toBe('numGenerations');
    expect(suggestKey('NumGenerations', grpo)).toBe('numGenerations');
    expect(suggestKey('lostType', grpo)).toBe('lossType');
    expect(suggestKey('max_length', SCHEMA_KEYS.sft, TRL_ALIASES.sft)).toBe('maxSeqLen');
    expect(suggestKey('colour', grpo)).toBeUndefined();
  });

  it('every TRL-named flag sets a key its package knows', () => {
    for (const setting of SFT_SETTINGS) expect(SCHEMA_KEYS.sft).toContain(setting.key);
    for (const setting of GRPO_SETTINGS) expect(SCHEMA_KEYS.grpo).toContain(setting.key);
    for (const section of ['sft', 'grpo'] as const)
      for (const key of Object.values(TRL_ALIASES[section]))
        expect(SCHEMA_KEYS[section]).toContain(key);
  });
});

describe('mergeConfig', () => {
  it('merges objects deeply and replaces arrays and scalars', () => {
    expect(mergeConfig({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: undefined })).toEqual({
      a: { b: 1, c: [3] },
      d: 1,
    });
  });

  it('replaces a tagged object whose kind changes, and merges one whose kind stays', () => {
    const base = { source: { kind: 'generator', count: 1000 } };
    expect(mergeConfig(base, { source: { kind: 'directory', path: 'src' } })).toEqual({
      source: { kind: 'directory', path: 'src' },
    });
    expect(mergeConfig(base, { source: { kind: 'generator', difficulty: 'hard' } })).toEqual({
      source: { kind: 'generator', count: 1000, difficulty: 'hard' },
    });
  });

  it('resolves the README example: a directory source over the default preset', () => {
    const config = resolveRunConfig({ data: { source: { kind: 'directory', path: './repo' } } });
    expect(config.data.source).toEqual({ kind: 'directory', path: './repo' });
  });
});

describe('collectSectionIssues', () => {
  it('prefixes each package validator issue with its section', () => {
    const issues = collectSectionIssues([
      {
        section: 'model',
        check: () => {
          throw new ConfigValidationError('model config', [
            '/hiddenSize: must be >= 8',
            '/numHiddenLayers: must be integer',
          ]);
        },
      },
      { section: 'sft', check: () => undefined },
      {
        section: 'grpo',
        check: () => {
          throw new Error('generationBatchSize must be a multiple of numGenerations');
        },
      },
    ]);
    expect(issues).toEqual([
      '/model/hiddenSize: must be >= 8',
      '/model/numHiddenLayers: must be integer',
      '/grpo: generationBatchSize must be a multiple of numGenerations',
    ]);
  });
});

describe('the README', () => {
  it("documents a config example that every package's validator accepts", async () => {
    const readme = await readFile(
      join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'),
      'utf8',
    );
    const example = /## Configuration[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const file = { $schema: './run-config.schema.json', ...JSON.parse(example!) };
    const config = resolveRunConfig(file);
    expect(() => checkSections(config, SECTION_VALIDATORS)).not.toThrow();
    expect(config.data.source).toEqual({ kind: 'directory', path: './my-python-repo' });
    expect(config.teacher.kind).toBe('chat');
  });
});

describe('pretrained models and LoRA', () => {
  it('skips the architecture check for a pretrained model and validates the lora section', () => {
    const config = resolveRunConfig({
      model: { pretrained: '/models/qwen3-tiny' },
      lora: { r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'] },
    });
    expect(config.model.pretrained).toBe('/models/qwen3-tiny');
    expect(() => checkSections(config, SECTION_VALIDATORS)).not.toThrow();
    const bad = resolveRunConfig({ lora: { r: 0, targetModules: ['qkv'] } });
    expect(() => checkSections(bad, SECTION_VALIDATORS)).toThrow(/\/lora\/r: must be >= 1/);
    expect(() => checkSections(bad, SECTION_VALIDATORS)).toThrow(/\/lora\/targetModules\/0/);
  });
});
