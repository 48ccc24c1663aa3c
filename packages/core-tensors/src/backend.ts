import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { CodeReasonerError } from './errors.js';
import { registerMissingKernels } from './kernels.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendReport {
  /** The backend every tensor of this process now runs on. */
  active: BackendName;
  /** Every backend that ranks above `active` (or was asked for) and could not be used, with why. */
  skipped: { backend: BackendName; reason: string }[];
}

export interface InitBackendOptions {
  /** `auto` (default) tries tensorflow → wasm → cpu; a name forces that backend (falling back with a reason when it fails). */
  backend?: BackendName | 'auto';
}

/** A backend was requested that cannot be initialised (e.g. an unknown name in `CR_BACKEND`). */
export class BackendError extends CodeReasonerError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BACKEND_UNAVAILABLE', message, options);
    this.name = 'BackendError';
  }
}

const ORDER: BackendName[] = ['tensorflow', 'wasm', 'cpu'];
const BACKEND_NAMES = new Set<string>([...ORDER, 'auto']);

let current: { requested: BackendName | 'auto'; report: BackendReport } | undefined;
let pending: Promise<BackendReport> | undefined;

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // tfjs-node's loader error spans several lines with install hints; the first line says what failed.
  return message.split('\n')[0]!.trim();
}

async function tryBackend(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') {
      // createRequire keeps the native addon out of the bundle and turns its load failure into a catchable throw.
      const require = createRequire(import.meta.url);
      require('@tensorflow/tfjs-node');
    } else if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
    }
    if (tf.findBackendFactory(name) === null && tf.findBackend(name) === null) {
      return `backend '${name}' is not registered`;
    }
    const ok = await tf.setBackend(name);
    if (!ok) return `tf.setBackend('${name}') failed to initialise`;
    await tf.ready();
    registerMissingKernels(name);
    return undefined;
  } catch (error) {
    return describe(error);
  }
}

function requestedFrom(options: InitBackendOptions): BackendName | 'auto' {
  const fromEnv = process.env['CR_BACKEND']?.trim().toLowerCase();
  const requested = options.backend ?? (fromEnv === undefined || fromEnv === '' ? 'auto' : fromEnv);
  if (!BACKEND_NAMES.has(requested)) {
    throw new BackendError(
      `Unknown backend '${requested}' (from ${options.backend === undefined ? 'CR_BACKEND' : 'options.backend'}); use one of tensorflow, wasm, cpu or auto.`,
    );
  }
  return requested as BackendName | 'auto';
}

/**
 * Picks the TensorFlow.js backend once per process: `options.backend`, else `CR_BACKEND`, else
 * `auto` (tensorflow → wasm → cpu). A forced backend that fails falls back down the same order and
 * says why in `skipped`. Calling again with the same request returns the same report.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendReport> {
  const requested = requestedFrom(options);
  // Libraries never print: PROD silences TensorFlow.js's console notices (e.g. the cpu backend's
  // "install tfjs-node" banner); it changes no numerics. The active backend is reported instead.
  tf.env().set('PROD', true);
  if (pending !== undefined) await pending.catch(() => undefined);
  if (
    current !== undefined &&
    current.requested === requested &&
    tf.getBackend() === current.report.active
  ) {
    return current.report;
  }
  pending = (async () => {
    const skipped: BackendReport['skipped'] = [];
    const candidates = requested === 'auto' ? ORDER : ORDER.slice(ORDER.indexOf(requested));
    for (const name of candidates) {
      const reason = await tryBackend(name);
      if (reason === undefined) {
        const report: BackendReport = { active: name, skipped };
        current = { requested, report };
        return report;
      }
      skipped.push({ backend: name, reason });
    }
    throw new BackendError(
      `No TensorFlow.js backend could be initialised: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
    );
  })();
  try {
    return await pending;
  } finally {
    pending = undefined;
  }
}

/** The report of the last successful `initBackend`, or undefined when it has not run. */
export function backendReport(): BackendReport | undefined {
  return current?.report;
}

/** Which of the three backends can be initialised here (used by the conformance suite and the benchmark). */
export async function availableBackends(): Promise<BackendName[]> {
  const previous = tf.getBackend();
  const available: BackendName[] = [];
  for (const name of ORDER) {
    if ((await tryBackend(name)) === undefined) available.push(name);
  }
  if (previous !== undefined && previous !== tf.getBackend()) await tf.setBackend(previous);
  return available;
}

export { tf };
