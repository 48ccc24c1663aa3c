import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { availableBackends, BackendError, backendReport, initBackend } from './backend.js';

// Probed once, before any test picks a backend (the probe restores the one it found).
const nativeLoads = (await availableBackends()).includes('tensorflow');

describe('initBackend', () => {
  const saved = process.env['CR_BACKEND'];
  afterEach(() => {
    if (saved === undefined) delete process.env['CR_BACKEND'];
    else process.env['CR_BACKEND'] = saved;
  });

  it('picks the best backend that loads and says why better ones were skipped', async () => {
    delete process.env['CR_BACKEND'];
    const report = await initBackend();
    const available = await availableBackends();
    expect(report.active).toBe(available[0]);
    expect(tf.getBackend()).toBe(report.active);
    if (!available.includes('tensorflow')) {
      // here the native addon of tfjs-node is not installed: skipped with the loader's reason, not a crash
      expect(report.skipped[0]!.backend).toBe('tensorflow');
      expect(report.skipped[0]!.reason).toMatch(/tfjs_binding|Cannot find|native/i);
    }
    expect(await initBackend()).toBe(report); // idempotent
    expect(backendReport()).toBe(report);
  });

  it('honours an explicit choice from options and from CR_BACKEND', async () => {
    const cpu = await initBackend({ backend: 'cpu' });
    expect(cpu).toEqual({ active: 'cpu', skipped: [] });
    expect(tf.getBackend()).toBe('cpu');
    process.env['CR_BACKEND'] = 'wasm';
    const wasm = await initBackend();
    expect(wasm.active).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  // Which of the two cases this machine shows depends on whether tfjs-node's native addon is
  // installed; the other one is skipped under a name that says why.
  it.skipIf(nativeLoads)(
    `falls back from a forced backend that cannot load, with the reason${nativeLoads ? ' (skipped: the native tfjs-node addon loads here)' : ''}`,
    async () => {
      const report = await initBackend({ backend: 'tensorflow' });
      expect(report.active).toBe('wasm');
      expect(report.skipped.map((s) => s.backend)).toEqual(['tensorflow']);
      expect(report.skipped[0]!.reason).toMatch(/tfjs_binding|Cannot find|native/i);
    },
  );

  it.runIf(nativeLoads)(
    `uses the native backend when it is forced and loads${nativeLoads ? '' : ' (skipped: the native tfjs-node addon is not installed here)'}`,
    async () => {
      const report = await initBackend({ backend: 'tensorflow' });
      expect(report).toEqual({ active: 'tensorflow', skipped: [] });
    },
  );

  it('rejects unknown names with a BackendError naming the source', async () => {
    process.env['CR_BACKEND'] = 'webgpu';
    await expect(initBackend()).rejects.toThrow(BackendError);
    await expect(initBackend()).rejects.toThrow(/Unknown backend 'webgpu' \(from CR_BACKEND\)/);
    await expect(initBackend({ backend: 'gpu' as never })).rejects.toThrow(/from options.backend/);
  });
});
