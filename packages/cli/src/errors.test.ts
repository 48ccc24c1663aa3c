import { BenchmarkDataError, resolveBenchmarkFiles } from '@codereasoner/bench';
import {
  CodeReasonerError,
  ConfigValidationError as CommonConfigValidationError,
} from '@codereasoner/common';
import { ConfigValidationError, resolveModelConfig } from '@codereasoner/core-tensors';
import { resolveCorpusOptions } from '@codereasoner/data';
import { resolveGrpoConfig } from '@codereasoner/grpo';
import { resolveSandboxOptions } from '@codereasoner/sandbox';
import { resolveServeOptions } from '@codereasoner/serve';
import { resolveSftConfig } from '@codereasoner/sft';
import { describe, expect, it } from 'vitest';
import { describeError, errorEvent, exitCodeFor, RunStateError, UsageError } from './errors.js';

describe('describeError', () => {
  it('gives the message of an unexpected error, and its stack only with CR_DEBUG', () => {
    const error = new TypeError('cannot read properties of undefined');
    expect(describeError(error, {})).toBe(
      'cannot read properties of undefined\n  (an unexpected error; run with CR_DEBUG=1 for the stack trace)',
    );
    expect(describeError(error, { CR_DEBUG: '1' })).toContain('    at ');
  });
});

describe('exitCodeFor', () => {
  it('exits 2 for what the user must change, 1 for a failed stage', () => {
    expect(exitCodeFor(new UsageError('x'))).toBe(2);
    expect(exitCodeFor(new RunStateError('/r/sft/.done', 'x'))).toBe(2);
    expect(exitCodeFor(new ConfigValidationError('run config', ['/seed: x']))).toBe(2);
    expect(exitCodeFor(new Error('x'))).toBe(1);
  });
});

describe('one error vocabulary across packages', () => {
  it('errors thrown by every package are instances of the one CodeReasonerError', async () => {
    // real errors from real calls, each package's own entry point
    const thrown = [
      catchError(() => resolveModelConfig({ hiddenSize: 0 })), // core-tensors
      catchError(() => resolveSandboxOptions({ workers: 0 })), // sandbox
      catchError(() => resolveCorpusOptions({ outDir: 'x', evalFraction: 2 })), // data
      catchError(() => resolveSftConfig({ steps: 0 })), // sft
      catchError(() => resolveGrpoConfig({ numGenerations: 1 })), // grpo
      catchError(() => resolveServeOptions({ port: -1 })), // serve
      await resolveBenchmarkFiles('cruxeval', '/nonexistent/benchmarks').catch((e: unknown) => e), // bench
    ];
    for (const error of thrown) {
      expect(error).toBeInstanceOf(CodeReasonerError);
      expect(CodeReasonerError.isInstance(error)).toBe(true);
    }
    // the config errors are the one ConfigValidationError, whichever package re-exports it
    for (const error of thrown.slice(0, 6)) {
      expect(error).toBeInstanceOf(ConfigValidationError);
      expect(error).toBeInstanceOf(CommonConfigValidationError);
      expect(exitCodeFor(error)).toBe(2);
    }
    expect(thrown[6]).toBeInstanceOf(BenchmarkDataError);
    expect(ConfigValidationError).toBe(CommonConfigValidationError);
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('errorEvent', () => {
  it('carries the code, the exit code, the message and the issues', () => {
    expect(errorEvent(new ConfigValidationError('run config', ['/seed: x']), 2)).toEqual({
      type: 'error',
      code: 'CONFIG_INVALID',
      exitCode: 2,
      message: 'run config is invalid:\n  - /seed: x',
      issues: ['/seed: x'],
    });
  });
});
