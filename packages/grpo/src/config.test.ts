import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ConfigValidationError } from '@codereasoner/core-tensors';
import {
  DEFAULT_GRPO_CONFIG,
  GRPO_PRESETS,
  grpoConfigInputSchema,
  grpoConfigSchema,
  grpoConfigWarnings,
  resolveGrpoConfig,
} from './config.js';

const schemaFiles = [
  { path: new URL('../schemas/grpo-config.json', import.meta.url), schema: grpoConfigSchema },
  {
    path: new URL('../schemas/grpo-config-input.json', import.meta.url),
    schema: grpoConfigInputSchema,
  },
];

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValidationError);
    return (error as ConfigValidationError).issues;
  }
  throw new Error('expected a ConfigValidationError');
}

describe('resolveGrpoConfig', () => {
  it('fills the TRL defaults, with epsilonHigh = epsilon', () => {
    const c = resolveGrpoConfig();
    expect(c).toEqual({ ...DEFAULT_GRPO_CONFIG, epsilonHigh: 0.2 });
    expect(c.lossType).toBe('dapo');
    expect(c.beta).toBe(0);
    expect(resolveGrpoConfig({ epsilon: 0.1 }).epsilonHigh).toBe(0.1);
    expect(resolveGrpoConfig({ epsilon: undefined }).epsilon).toBe(0.2);
  });

  it('applies a preset under the user options', () => {
    const dapo = resolveGrpoConfig({ generationBatchSize: 32, stepsPerGeneration: 2 }, 'dapo');
    expect(dapo).toMatchObject({
      epsilon: 0.2,
      epsilonHigh: 0.28,
      dynamicSampling: true,
      lossType: 'dapo',
      numGenerations: 16,
      generationBatchSize: 32,
    });
    expect(resolveGrpoConfig({ preset: 'gspo' })).toMatchObject({
      importanceSamplingLevel: 'sequence',
      lossType: 'grpo',
      epsilon: 3e-4,
      epsilonHigh: 4e-4,
    });
    expect(resolveGrpoConfig({ preset: 'dr_grpo' })).toMatchObject({
      lossType: 'dr_grpo',
      scaleRewards: 'none',
      beta: 0,
    });
    expect(resolveGrpoConfig({}, 'deepseekmath')).toMatchObject({
      beta: 0.04,
      numGenerations: 64,
      lossType: 'grpo',
      generationBatchSize: 1024,
    });
    // A preset's epsilonHigh survives a user epsilon (the user did not ask to change epsilonHigh).
    expect(resolveGrpoConfig({ epsilon: 0.1 }, 'dapo').epsilonHigh).toBe(0.28);
  });

  it('every preset resolves and names its paper', () => {
    for (const preset of Object.values(GRPO_PRESETS)) {
      expect(() => resolveGrpoConfig({}, preset.name)).not.toThrow();
      expect(preset.url).toMatch(/^https:\/\/arxiv\.org\/abs\/\d{4}\.\d{5}$/);
      expect(preset.paper).toContain(preset.url.slice(-10));
    }
  });

  it('rejects a generation batch that splits a group, and says what to use', () => {
    expect(
      issuesOf(() => resolveGrpoConfig({ numGenerations: 8, generationBatchSize: 20 })),
    ).toEqual([
      '/generationBatchSize: 20 does not hold whole groups of numGenerations = 8; use a multiple of 8 (e.g. 16 or 24).',
    ]);
  });

  it('lists every schema issue at once', () => {
    const issues = issuesOf(() =>
      resolveGrpoConfig({
        numGenerations: 1,
        temperature: 0,
        lossType: 'ppo' as never,
        bogus: 1,
      } as never),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        '/numGenerations: must be >= 2',
        '/temperature: must be > 0',
        expect.stringMatching(/^\/lossType: must be one of "grpo", .*\(got "ppo"\)$/),
        expect.stringMatching(/^\/: unknown property 'bogus'; known: /),
      ]),
    );
    expect(issues).toHaveLength(4);
  });

  it('rejects unequal optimizer slices and unknown or conflicting presets', () => {
    expect(
      issuesOf(() => resolveGrpoConfig({ generationBatchSize: 32, stepsPerGeneration: 3 }))[0],
    ).toMatch(/^\/stepsPerGeneration: 3 does not divide/);
    expect(issuesOf(() => resolveGrpoConfig({ preset: 'ppo' as never }))[0]).toMatch(
      /^\/preset: must be one of/,
    );
    expect(issuesOf(() => resolveGrpoConfig({ preset: 'dapo' }, 'gspo'))[0]).toMatch(/conflicts/);
  });

  it('warns about sequence-level ratios with token-sum losses', () => {
    expect(
      grpoConfigWarnings(resolveGrpoConfig({ importanceSamplingLevel: 'sequence' }))[0],
    ).toMatch(/weights each completion by its length/);
    expect(grpoConfigWarnings(resolveGrpoConfig({ preset: 'gspo' }))).toEqual([]);
  });
});

describe('schemas/*.json', () => {
  it('are the schemas the code uses (UPDATE_SCHEMAS=1 rewrites them)', async () => {
    for (const { path, schema } of schemaFiles) {
      if (process.env['UPDATE_SCHEMAS'] === '1')
        await writeFile(path, `${JSON.stringify(schema, null, 2)}\n`);
      expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(schema);
    }
  });

  it('the input schema accepts a config file with a preset, and every option name is in both', () => {
    const ajv = new Ajv({ strict: true });
    const validate = ajv.compile(grpoConfigInputSchema);
    expect(validate({ preset: 'dapo', maxSteps: 10 })).toBe(true);
    expect(validate({ preset: 'ppo' })).toBe(false);
    expect(Object.keys(grpoConfigInputSchema.properties).sort()).toEqual(
      ['preset', ...Object.keys(grpoConfigSchema.properties)].sort(),
    );
  });
});
