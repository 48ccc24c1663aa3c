import { fileURLToPath } from 'node:url';
import { describePythonAsset } from '../../../test-support/python-assets.js';
import { harnessPath } from './harness-source.js';

// The harness's behaviour is what every other test here exercises, on both engines.
describePythonAsset(harnessPath(), fileURLToPath(new URL('..', import.meta.url)), {
  // The harness swaps in a private copy of the builtins before its imports, on purpose.
  ruffIgnore: ['E402'],
});
