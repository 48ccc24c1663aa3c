// Worker-thread side of the Pyodide engine (built to dist/pyodide-worker.js). It loads Pyodide,
// runs python/harness.py, then locks down the JavaScript that Python could reach, and serves
// batches: one `run_task` call per task, with the task index and start time published in shared
// memory so the main thread can interrupt a task that runs past its limit.
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { loadPyodide } from 'pyodide';
import { CONTROL } from './control.js';

interface WorkerInit {
  /** Also post a memory snapshot (after the harness's imports) for later workers to start from. */
  makeSnapshot: boolean;
  harnessSource: string;
  options: {
    memoryLimitMb: number;
    maxOutputChars: number;
    maxReprChars: number;
    maxTraceChars: number;
    maxJsonChars: number;
    maxResultChars: number;
  };
  control: SharedArrayBuffer;
  /** A memory snapshot made by the process's first worker: loading from it skips Python's start-up. */
  snapshot?: SharedArrayBuffer;
}

interface BatchMessage {
  type: 'batch';
  tasks: string[];
}

// Pyodide reports some failures with console.error: nothing from here reaches the host's terminal.
const workerConsole = globalThis.console as unknown as Record<string, unknown>;
for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  workerConsole[method] = () => {};
}

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('pyodide-worker.js must run in a worker thread');
const control = new Int32Array(init.control, 0, CONTROL.int32Length);
const clock = new Float64Array(init.control, CONTROL.clockByteOffset, 1);
const now = (): number => performance.timeOrigin + performance.now();

// Cap the WebAssembly heap: Emscripten grows memory through Memory.prototype.grow, so a refusal
// here turns into a failed malloc, i.e. a Python MemoryError, instead of the host running dry.
const heapLimit = init.options.memoryLimitMb * 1024 * 1024;
interface WasmMemory {
  buffer: ArrayBuffer;
}
const memoryPrototype = (
  globalThis as unknown as {
    WebAssembly: { Memory: { prototype: { grow(pages: number): number } } };
  }
).WebAssembly.Memory.prototype;
const grow = memoryPrototype.grow;
memoryPrototype.grow = function limitedGrow(this: WasmMemory, pages: number): number {
  if (this.buffer.byteLength + pages * 65536 > heapLimit) {
    throw new RangeError(
      `the sandbox's memory limit of ${init.options.memoryLimitMb} MiB is reached`,
    );
  }
  return grow.call(this, pages);
};

const discard = { write: (buffer: Uint8Array): number => buffer.length };

const loadOptions = {
  // The `js` module is this empty, frozen, prototype-less object: no globalThis, no process.
  jsglobals: Object.freeze(Object.create(null) as object),
  env: { PYTHONHASHSEED: '0', HOME: '/home/pyodide' },
  stdout: () => {},
  stderr: () => {},
  args: [],
};

const pyodide = await loadPyodide({
  ...loadOptions,
  ...(init.snapshot
    ? { _loadSnapshot: new Uint8Array(init.snapshot) }
    : init.makeSnapshot
      ? { _makeSnapshot: true }
      : {}),
} as Parameters<typeof loadPyodide>[0]);

if (init.makeSnapshot) {
  let shared: SharedArrayBuffer | undefined;
  try {
    // Run the harness's module level (its imports) in a namespace created on the Python side, so
    // no JavaScript reference to a Python object exists when the snapshot is taken.
    pyodide.globals.set('harness_source', init.harnessSource);
    pyodide.runPython(
      'exec(harness_source, {"__name__": "codereasoner_sandbox_preload"})\ndel harness_source',
    );
    const bytes = (pyodide as unknown as { makeMemorySnapshot(): Uint8Array }).makeMemorySnapshot();
    shared = new SharedArrayBuffer(bytes.byteLength);
    new Uint8Array(shared).set(bytes);
  } catch {
    shared = undefined; // workers then start without a snapshot
  }
  port.postMessage({ type: 'snapshot', snapshot: shared });
}

pyodide.setStdout(discard);
pyodide.setStderr(discard);
pyodide.setInterruptBuffer(control.subarray(CONTROL.interrupt, CONTROL.interrupt + 1));

const namespace = pyodide.runPython('{"__name__": "codereasoner_sandbox_harness"}') as unknown as {
  get(key: string): unknown;
};
pyodide.runPython(init.harnessSource, { globals: namespace as never });
const setup = namespace.get('setup') as (options: string) => (task: string) => string;
const pythonVersion = (namespace.get('python_version') as () => string)();
// After setup the Pyodide Python modules are scrubbed: runPython no longer works, runTask does.
// runTask is the harness's guarded runner: it restores the interpreter and checks the harness
// after each task. Only this thread holds it; no Python object refers to it.
const runTask = setup(JSON.stringify(init.options));

// Emscripten replaces HEAP8 when the heap grows: keep the module, read the view when asked.
const emscriptenModule = (pyodide as unknown as { _module: { HEAP8: Int8Array } })._module;
lockDown(pyodide as unknown as Record<string, unknown>);

/**
 * Remove what Python could use to reach the host if it ever got hold of a JavaScript object: the
 * Pyodide API (file-system mounts, package loading, raw module access), Node's file system type,
 * and every way to compile JavaScript from a string (eval, the Function constructors).
 */
function lockDown(api: Record<string, unknown>): void {
  const module = api._module as Record<string, unknown> | undefined;
  const fs = module?.FS as
    | {
        filesystems?: Record<string, unknown>;
        root?: { mount: unknown };
        getMounts?: (mount: unknown) => { type: unknown; mountpoint: string }[];
      }
    | undefined;
  // Node's Pyodide mounts no host directory unless asked to: make sure of it before serving.
  const hostTypes = new Set(
    ['NODEFS', 'PROXYFS', 'WORKERFS'].map((name) => fs?.filesystems?.[name]).filter(Boolean),
  );
  for (const mount of fs?.getMounts?.(fs.root?.mount) ?? []) {
    if (hostTypes.has(mount.type))
      throw new Error(`Pyodide has a host file system mounted at ${mount.mountpoint}`);
  }
  for (const name of ['NODEFS', 'NODESOCKFS', 'PROXYFS', 'WORKERFS']) {
    if (fs?.filesystems) delete fs.filesystems[name];
    if (module) delete module[name];
  }
  for (const key of Reflect.ownKeys(api)) {
    try {
      Reflect.deleteProperty(api, key);
    } catch {
      // a non-configurable property stays; the Python side cannot reach this object anyway
    }
  }
  const refuse = (): never => {
    throw new EvalError('code generation is disabled in the sandbox');
  };
  const functionPrototypes = [
    Function.prototype,
    Object.getPrototypeOf(async function () {}) as object,
    Object.getPrototypeOf(function* () {}) as object,
    Object.getPrototypeOf(async function* () {}) as object,
  ];
  for (const prototype of functionPrototypes) {
    Object.defineProperty(prototype, 'constructor', {
      value: refuse,
      writable: false,
      configurable: false,
    });
  }
  Object.defineProperty(globalThis, 'eval', {
    value: refuse,
    writable: false,
    configurable: false,
  });
  Object.defineProperty(Error, 'prepareStackTrace', {
    value: undefined,
    writable: false,
    configurable: false,
  });
  for (const name of ['process', 'fetch', 'WebSocket', 'XMLHttpRequest', 'require', 'Buffer']) {
    try {
      Reflect.deleteProperty(globalThis, name);
    } catch {
      // not configurable in this Node version; unreachable without code generation
    }
  }
}

/** This interpreter's footprint: its WebAssembly heap plus this thread's JavaScript heap. */
function memoryBytes(): number {
  return emscriptenModule.HEAP8.buffer.byteLength + getHeapStatistics().used_heap_size;
}

// WebAssembly memory never shrinks: once a task has grown the heap past half its limit, this
// worker stops after that task and is replaced (from the snapshot), giving the memory back.
const recycleBytes = heapLimit / 2;

/** Runs tasks in order; stops early (returning fewer results) when the worker should be recycled. */
function runBatch(tasks: string[], results: string[]): string[] {
  for (let index = 0; index < tasks.length; index += 1) {
    let output = runOne(index, tasks[index] as string);
    // A SIGINT meant for the previous task can land just after this one started: run it again.
    if (output === undefined) output = runOne(index, tasks[index] as string) ?? interruptedResult();
    results.push(output);
    if (emscriptenModule.HEAP8.buffer.byteLength > recycleBytes) break;
    // The guard found the harness changed (or could not settle the interpreter): run nothing
    // more here; the main thread replaces this worker and sends the rest to its successor.
    if (output.includes('"fatal"') && (JSON.parse(output) as { fatal?: unknown }).fatal === true)
      break;
  }
  Atomics.store(control, CONTROL.index, -1);
  return results;
}

function runOne(index: number, task: string): string | undefined {
  Atomics.store(control, CONTROL.interrupt, 0);
  Atomics.store(control, CONTROL.interruptedIndex, -1);
  clock[0] = now();
  Atomics.store(control, CONTROL.index, index);
  let output = runTask(task);
  // The harness caps every field and the whole result; this is the same cap, checked again
  // before the text leaves this thread (UTF-16 units: twice the code-point cap).
  if (output.length > 2 * init.options.maxResultChars) output = oversizedOutput();
  const interrupted = Atomics.load(control, CONTROL.interruptedIndex) === index;
  Atomics.store(control, CONTROL.interrupt, 0);
  if (interrupted) return timedOutResult(output);
  if (output.includes('"KeyboardInterrupt"')) {
    const parsed = JSON.parse(output) as { exception?: { type?: string } };
    if (parsed.exception?.type === 'KeyboardInterrupt' && !/KeyboardInterrupt/.test(task))
      return undefined;
  }
  return output;
}

function timedOutResult(output: string): string {
  const parsed = JSON.parse(output) as { stdout?: string; durationMs?: number; fatal?: boolean };
  return JSON.stringify({
    status: 'timeout',
    stdout: parsed.stdout ?? '',
    detail: 'the task ran longer than its limit and was interrupted',
    durationMs: parsed.durationMs ?? 0,
    ...(parsed.fatal === true ? { fatal: true } : {}),
  });
}

function oversizedOutput(): string {
  return JSON.stringify({
    status: 'output_limit',
    stdout: '',
    detail: `the result exceeded ${init.options.maxResultChars} characters`,
    durationMs: 0,
    fatal: true,
  });
}

function interruptedResult(): string {
  return JSON.stringify({
    status: 'sandbox_error',
    stdout: '',
    detail: 'interrupted twice by a stray signal',
    durationMs: 0,
  });
}

port.on('message', (message: BatchMessage) => {
  if (message.type !== 'batch') return;
  const results: string[] = [];
  try {
    const done = runBatch(message.tasks, results);
    const recycle = emscriptenModule.HEAP8.buffer.byteLength > recycleBytes;
    port.postMessage({ type: 'done', results: done, memoryBytes: memoryBytes(), recycle });
  } catch (error) {
    // The harness never raises, so an error here is Pyodide itself failing (a fatal error, a
    // WebAssembly trap): report which task did it and let the main thread replace this worker.
    port.postMessage({
      type: 'crashed',
      results,
      index: Atomics.load(control, CONTROL.index),
      detail:
        error instanceof Error
          ? `${error.name}: ${error.message.slice(0, 500)}`
          : String(error).slice(0, 500),
    });
  }
});
port.postMessage({ type: 'ready', pythonVersion });
