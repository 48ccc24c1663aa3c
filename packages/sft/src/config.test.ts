import { ConfigValidationError } from '@codereasoner/core-tensors';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SFT_CONFIG, resolveSftConfig } from './config.js';

describe('resolveSftConfig', () => {
  it('fills defaults and keeps given values', () => {
    const config = resolveSftConfig({ steps: 50, reasoning: false, warmupSteps: 5 });
    expect(config).toEqual({ ...DEFAULT_SFT_CONFIG, steps: 50, reasoning: false, warmupSteps: 5 });
  });

  it('lists every issue as path: message', () => {
    let error: unknown;
    try {
      resolveSftConfig({
        steps: 0,
        batchSize: 2.5,
        learningRate: -1,
        colour: 'red',
        workers: -2,
      } as never);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const issues = (error as ConfigValidationError).issues;
    expect(issues).toContain('/steps: must be >= 1');
    expect(issues).toContain('/batchSize: must be integer (got 2.5)');
    expect(issues).toContain('/learningRate: must be > 0');
    expect(issues.some((issue) => issue.startsWith("/: unknown property 'colour'; known: "))).toBe(
      true,
    );
    expect(issues).toContain('/workers: must be an integer >= 0 or "auto"');
    expect(issues).toHaveLength(5);
  });

  it("takes workers as a count or 'auto' (the default)", () => {
    expect(resolveSftConfig().workers).toBe('auto');
    expect(resolveSftConfig({ workers: 2 }).workers).toBe(2);
    expect(() => resolveSftConfig({ workers: 'all' as never })).toThrow(/workers: must be/);
  });

  it('shortens the default warm-up for a short run, and keeps it for a long one', () => {
    expect(resolveSftConfig({ steps: 5 }).warmupSteps).toBe(0);
    expect(resolveSftConfig({ steps: 60 }).warmupSteps).toBe(6);
    expect(resolveSftConfig({ steps: 540 }).warmupSteps).toBe(DEFAULT_SFT_CONFIG.warmupSteps);
  });

  it('rejects a warmup as long as the run', () => {
    expect(() => resolveSftConfig({ steps: 10, warmupSteps: 10 })).toThrow(
      /warmupSteps: must be below steps/,
    );
  });
});
