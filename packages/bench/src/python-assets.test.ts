import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describePythonAsset } from '../../../test-support/python-assets.js';
import { revalHarnessPath, revalHarnessSource } from './python-assets.js';

// The harness's behaviour is tested through the sandbox in reval/truth.test.ts and
// reval/state-judge.test.ts.
describePythonAsset(revalHarnessPath(), fileURLToPath(new URL('..', import.meta.url)));

it('reads the REval harness from its file, once', () => {
  const source = revalHarnessSource();
  expect(source).toMatch(/^def reval_call\(spec_json\):$/m);
  expect(revalHarnessSource()).toBe(source);
});
