import { describe, expect, it } from 'vitest';
import { CodeReasonerError, ConfigValidationError } from './errors.js';
import { parseConfig, schemaIssues } from './parse-config.js';

describe('CodeReasonerError', () => {
  it('carries its code and cause, and is recognised by instanceof and by its brand', () => {
    const cause = new Error('disk full');
    const error = new CodeReasonerError('CHECKPOINT_INVALID', 'cannot write', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('CHECKPOINT_INVALID');
    expect(error.cause).toBe(cause);
    expect(CodeReasonerError.isInstance(error)).toBe(true);
    // a second installed copy of the class carries the same Symbol.for brand
    expect(CodeReasonerError.isInstance({ [Symbol.for('codereasoner.error')]: true })).toBe(true);
    expect(CodeReasonerError.isInstance(new Error('x'))).toBe(false);
  });

  it('ConfigValidationError lists every issue under what was invalid', () => {
    const error = new ConfigValidationError('SFT config', ['/lr: must be number', '/x: bad']);
    expect(error).toBeInstanceOf(CodeReasonerError);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe('SFT config is invalid:\n  - /lr: must be number\n  - /x: bad');
  });
});

const schema = {
  type: 'object',
  properties: {
    learningRate: { type: 'number', minimum: 0 },
    mode: { enum: ['fast', 'exact'] },
    workers: { anyOf: [{ type: 'integer', minimum: 0 }, { const: 'auto' }] },
    source: {
      oneOf: [
        {
          type: 'object',
          properties: { kind: { const: 'dir' }, path: { type: 'string' } },
          required: ['kind', 'path'],
        },
        {
          type: 'object',
          properties: { kind: { const: 'generator' }, count: { type: 'integer' } },
          required: ['kind'],
        },
      ],
    },
    batch: { type: 'integer', default: 8 },
  },
  additionalProperties: false,
};

describe('parseConfig', () => {
  it('returns a valid value and fills defaults only when asked', () => {
    expect(parseConfig(schema, { mode: 'fast' }, { what: 'x' })).toEqual({ mode: 'fast' });
    expect(parseConfig(schema, { mode: 'fast' }, { what: 'x', useDefaults: true })).toEqual({
      mode: 'fast',
      batch: 8,
    });
  });

  it('lists every issue as path: message, with hints', () => {
    let thrown: unknown;
    try {
      parseConfig(
        schema,
        {
          learning_rate: 1,
          mode: 'slow',
          workers: 'many',
          source: { kind: 'web' },
        },
        { what: 'run config', prefix: '/train' },
      );
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigValidationError);
    expect((thrown as ConfigValidationError).issues.sort()).toEqual(
      [
        '/train/source/kind: must be one of "dir", "generator" (got "web")',
        '/train/workers: must be an integer >= 0 or "auto"',
        "/train: unknown property 'learning_rate' (did you mean 'learningRate'?)",
        '/train/mode: must be one of "fast", "exact" (got "slow")',
      ].sort(),
    );
  });

  it('reports the branch a tagged union names, and the root as /', () => {
    expect(schemaIssues(schema, { source: { kind: 'dir' } })).toEqual([
      "/source: must have required property 'path'",
    ]);
    expect(schemaIssues(schema, 3)).toEqual(['/: must be object (got 3)']);
  });
});
