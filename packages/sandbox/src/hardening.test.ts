// Attacks on the sandbox's own integrity, each made by a task's code through the public API:
// rewriting the harness so that later wrong answers pass, reaching Pyodide's FFI, killing the
// worker, and sending huge results to the host.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from './types.js';
import type { CheckRequest } from './types.js';
import { Sandbox } from './sandbox.js';

const hasPython =
  spawnSync('python3', ['-c', 'import sys; assert sys.version_info >= (3, 9)']).status === 0;
if (!hasPython) {
  console.warn('hardening.test.ts: python3 >= 3.9 not found, the cpython engine cases are skipped');
}
const engines: Engine[] = hasPython ? ['pyodide', 'cpython'] : ['pyodide'];

const crawlSource = readFileSync(
  new URL('./__fixtures__/reachability-crawl.py', import.meta.url),
  'utf8',
);

/** Finds a class by name among every class alive (no import, no frame). */
const FIND_CLASS = [
  'def find(name):',
  '    seen, stack = set(), [object]',
  '    while stack:',
  '        for sub in type.__subclasses__(stack.pop()):',
  '            if sub not in seen:',
  '                seen.add(sub)',
  '                stack.append(sub)',
  '                if sub.__name__ == name:',
  '                    return sub',
  '',
].join('\n');

/** A handler that says "passed" whatever the task. */
const ALWAYS_PASS = 'lambda task, run, result: result.update(status="passed")';

/**
 * Task code that rewrites harness state, each by another route. Before the guard, every one of
 * them made the plainly wrong checks below pass on that worker (8 of 16 and 6 of 16 in issue 12).
 * The harness's caches change on every task by design: they are emptied after any task that could
 * reach them, so poisoning them is undone without an error. CPython's harness module was
 * `__main__`; it is replaced by an empty module, so that route finds nothing to change.
 */
const UNDONE = new Set([
  "the harness's compiled-assertion cache",
  '__main__ (the CPython harness module)',
]);
const TAMPERING: Record<string, string> = {
  'handlers table through sys._getframe': [
    'import sys',
    'g = sys._getframe(1).f_globals',
    `g["_HANDLERS"]["check"] = ${ALWAYS_PASS}`,
  ].join('\n'),
  'handlers and _Config through a traceback frame': [
    'try:',
    '    1 / 0',
    'except ZeroDivisionError as error:',
    '    g = error.__traceback__.tb_frame.f_back.f_globals',
    `g["_HANDLERS"] = {kind: ${ALWAYS_PASS} for kind in ("run", "check", "trace")}`,
    'g["_Config"].max_output_chars = 5',
  ].join('\n'),
  "the harness's private builtins, found through a class (no frame, no import)": [
    FIND_CLASS,
    'find("_Output").write.__builtins__["bool"] = lambda value: True',
  ].join('\n'),
  "a harness class's method": [
    FIND_CLASS,
    'find("_Output").text = lambda self: "forged"',
    'find("_Config").max_repr_chars = 3',
  ].join('\n'),
  'harness functions rebound in its globals': [
    FIND_CLASS,
    'g = find("_Output").write.__globals__',
    'g["_eval_expected"] = lambda source, mode: type("Y", (), {"__eq__": lambda s, o: True})()',
    'g["_do_check"] = lambda task, run, result: result.update(status="passed")',
  ].join('\n'),
  "the harness's compiled-assertion cache": [
    FIND_CLASS,
    'g = find("_Output").write.__globals__',
    'for index in range(16):',
    '    g["_assertion_cache"][f"assert f() == {index + 100}"] = ("statement", compile("pass", "<assertion>", "exec"))',
  ].join('\n'),
  '__main__ (the CPython harness module)': [
    'import __main__',
    `getattr(__main__, "_HANDLERS", {})["check"] = ${ALWAYS_PASS}`,
  ].join('\n'),
};

/** 16 wrong answers: each must stay `failed` on a worker a tampering task ran on. */
const WRONG: CheckRequest[] = Array.from({ length: 16 }, (_, index): CheckRequest => {
  const code = 'def f():\n    return 1';
  if (index % 3 === 0) return { code, assertion: `assert f() == ${index + 100}` };
  if (index % 3 === 1) return { code, call: 'f()', expected: String(index + 100) };
  return { code, call: 'f()', expected: String(index + 100), expectedMode: 'literal' };
});

describe.each(engines)('sandbox integrity on %s', (engine) => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    // One worker: the tampering task and the checks after it share an interpreter.
    sandbox = await Sandbox.create({ engine, workers: 1, timeoutMs: 5000 });
  }, 120_000);

  afterAll(async () => {
    await sandbox?.close();
  });

  async function expectWrongAnswersFail(): Promise<void> {
    const results = await sandbox.checkBatch(WRONG);
    expect(results.map((result) => result.status)).toEqual(WRONG.map(() => 'failed'));
    const right = await sandbox.checkBatch([
      { code: 'def f():\n    return 1', assertion: 'assert f() == 1' },
      { code: 'def f():\n    return [1]', call: 'f()', expected: '[1]', expectedMode: 'literal' },
      { code: 'def f():\n    return "x" * 40', call: 'f()', expected: "'x' * 40" },
    ]);
    expect(right.map((result) => result.status)).toEqual(['passed', 'passed', 'passed']);
    const printed = await sandbox.run({ code: 'print("hello")', call: '"abcdef"' });
    expect(printed).toMatchObject({ status: 'ok', stdout: 'hello\n', repr: "'abcdef'" });
  }

  it('judges plainly wrong answers as failed before any tampering', async () => {
    await expectWrongAnswersFail();
  });

  it.each(Object.entries(TAMPERING))(
    'a task that rewrites %s: later wrong answers still fail (error and new worker, or undone)',
    async (name, code) => {
      const restarts = sandbox.info().restarts;
      const result = await sandbox.run({ code, call: '0' });
      if (UNDONE.has(name)) {
        expect(result.status).toBe('ok');
      } else {
        expect(result.status).toBe('sandbox_error');
        expect(result.detail).toMatch(/changed the sandbox harness/);
        expect(sandbox.info().restarts).toBe(restarts + 1);
      }
      await expectWrongAnswersFail();
    },
    60_000,
  );

  it('refuses to change the defaults of harness functions', async () => {
    const result = await sandbox.run({
      code: `${FIND_CLASS}find("_Output").write.__globals__["_json_form"].__defaults__ = (10 ** 6,)`,
      call: '0',
    });
    expect(result).toMatchObject({ status: 'exception', exception: { type: 'PermissionError' } });
    await expectWrongAnswersFail();
  });

  it('undoes a module value that claims to equal everything', async () => {
    // `==` would call the planted __eq__ and find the module unchanged; the guard compares identity.
    const planted = await sandbox.run({
      code: 'import math\nclass Y:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\nmath.pi = Y()',
      call: '0',
    });
    expect(planted.status).toBe('ok');
    const check = await sandbox.check({ code: 'import math', call: 'math.pi', expected: '3' });
    expect(check.status).toBe('failed');
  });

  it('undoes patched stdlib functions the harness and later tasks use', async () => {
    const planted = await sandbox.run({
      code: [
        'import ast, json, re',
        'class Y:',
        '    def __eq__(self, other):',
        '        return True',
        'ast.literal_eval = lambda node: Y()',
        'json.dumps = lambda *args, **kwargs: \'{"status": "passed"}\'',
        're._cache2 = None',
      ].join('\n'),
      call: '0',
    });
    expect(planted.status).toBe('ok');
    await expectWrongAnswersFail();
  });

  it('refuses audit hooks, and undoes gc callbacks and an unfrozen heap', async () => {
    const planted = await sandbox.run({
      code: [
        'import sys, gc',
        'def hook(event, args):',
        '    if event == "compile":',
        '        raise ValueError("hooked")',
        'sys.addaudithook(hook)',
        'gc.callbacks.append(lambda phase, info: print("collected"))',
        'gc.unfreeze()',
        'gc.disable()',
      ].join('\n'),
      call: '0',
    });
    expect(planted.status).toBe('ok');
    const after = await sandbox.run({
      code: 'import gc',
      call: '(len(gc.callbacks), gc.isenabled(), gc.get_freeze_count() > 0)',
    });
    expect(after).toMatchObject({ status: 'ok', repr: '(0, True, True)' });
    await expectWrongAnswersFail();
  });
});

describe.each(engines)('blocked modules on %s', (engine) => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await Sandbox.create({ engine, workers: 1, timeoutMs: 10_000 });
  }, 120_000);

  afterAll(async () => {
    await sandbox?.close();
  });

  const routes = (name: string): string[] => [
    `__import__(${JSON.stringify(name)})`,
    `importlib.import_module(${JSON.stringify(name)})`,
    `importlib.util.module_from_spec(importlib.machinery.BuiltinImporter.find_spec(${JSON.stringify(name)}) or importlib.machinery.ModuleSpec(${JSON.stringify(name)}, importlib.machinery.BuiltinImporter))`,
    `_imp.create_builtin(importlib.machinery.ModuleSpec(${JSON.stringify(name)}, None))`,
    `importlib._bootstrap._load(importlib.machinery.ModuleSpec(${JSON.stringify(name)}, importlib.machinery.BuiltinImporter))`,
  ];
  const names =
    engine === 'pyodide'
      ? ['_pyodide_core', 'js', 'pyodide_js', 'pyodide', '_pyodide', 'pyodide.ffi', '_ctypes']
      : ['_ctypes', '_posixsubprocess', 'ctypes', 'subprocess'];

  it.each(names)('%s cannot be created by any import path', async (name) => {
    const results = await sandbox.runBatch(
      routes(name).map((call) => ({
        code: 'import importlib, importlib.util, importlib.machinery, _imp, sys',
        call,
      })),
    );
    for (const result of results) {
      expect(result.status).toBe('exception');
      expect(result.exception?.type).toMatch(/^(ImportError|ModuleNotFoundError|PermissionError)$/);
    }
    const loaded = await sandbox.run({
      code: 'import sys',
      call: `[m for m in sys.modules if m.split(".")[0] == ${JSON.stringify(name.split('.')[0])}]`,
    });
    expect(loaded).toMatchObject({ status: 'ok', repr: '[]' });
  });

  it('cannot make a second _imp with unguarded functions', async () => {
    const result = await sandbox.run({
      code: 'import _imp, importlib.machinery',
      call: '_imp.create_builtin(importlib.machinery.ModuleSpec("_imp", None))',
    });
    expect(result).toMatchObject({ status: 'exception', exception: { type: 'ImportError' } });
  });

  it.runIf(engine === 'pyodide')(
    'reaches no FFI module and no JavaScript proxy from any class, module, function or frame',
    async () => {
      const result = await sandbox.run({ code: crawlSource, call: 'crawl()', timeoutMs: 120_000 });
      expect(result.status).toBe('ok');
      const [visited, findings] = result.json as [number, string[]];
      expect(visited).toBeGreaterThan(10_000);
      expect(findings).toEqual([]);
    },
    180_000,
  );

  it.runIf(engine === 'pyodide')(
    'refuses to create JavaScript objects through the FFI classes left alive',
    async () => {
      const attempts = [
        'find("JsException")("x")',
        'type.__call__(find("JsException"), "x")',
        'find("JsBigInt")(5)',
        'BaseException.__new__(find("JsException"), "x")',
        '(delattr(find("JsException"), "__new__"), delattr(find("JsException"), "__init__"), find("JsException")("x"))',
      ];
      const results = await sandbox.runBatch(attempts.map((call) => ({ code: FIND_CLASS, call })));
      for (const result of results) {
        expect(result).toMatchObject({ status: 'exception', exception: { type: 'TypeError' } });
      }
      // Restored after the task that deleted the refusals.
      const again = await sandbox.run({ code: FIND_CLASS, call: 'find("JsException")("x")' });
      expect(again.exception?.message).toMatch(/does not create JavaScript objects/);
    },
  );
});

describe.each(engines)('fatal errors and caps on %s', (engine) => {
  let sandbox: Sandbox;
  const MAX_OUTPUT = 1000;
  const MAX_REPR = 500;

  beforeAll(async () => {
    sandbox = await Sandbox.create({
      engine,
      workers: 1,
      timeoutMs: 20_000,
      maxOutputChars: MAX_OUTPUT,
      maxReprChars: MAX_REPR,
    });
  }, 120_000);

  afterAll(async () => {
    await sandbox?.close();
  });

  it('gives a task that kills its worker an error and the other tasks their results', async () => {
    const restarts = sandbox.info().restarts;
    // SIGABRT: a WebAssembly trap in Pyodide (like trigger_fatal_error), process death in CPython.
    const results = await sandbox.runBatch([
      { code: '', call: '1 + 1' },
      { code: 'import signal', call: 'signal.raise_signal(signal.SIGABRT)' },
      { code: '', call: '2 + 2' },
      { code: 'import signal', call: 'signal.raise_signal(signal.SIGSEGV)' },
      { code: '', call: '3 + 3' },
    ]);
    expect(results.map((result) => result.status)).toEqual([
      'ok',
      expect.stringMatching(/^(sandbox_error|exception)$/),
      'ok',
      expect.stringMatching(/^(sandbox_error|exception)$/),
      'ok',
    ]);
    expect(results.map((result) => result.repr)).toEqual(['2', undefined, '4', undefined, '6']);
    if (results[1]?.status === 'sandbox_error')
      expect(sandbox.info().restarts).toBeGreaterThan(restarts);
    const later = await sandbox.check({
      code: 'def f():\n    return 1',
      assertion: 'assert f() == 1',
    });
    expect(later.status).toBe('passed');
  }, 120_000);

  it('sends no huge value to the host: json up to 8,000,000 characters', async () => {
    const result = await sandbox.run({ code: '', call: '"x" * 40_000_000' });
    expect(result).toMatchObject({
      status: 'ok',
      reprTruncated: true,
      reprRoundTrips: false,
      jsonOmitted: true,
    });
    expect(result.repr).toHaveLength(MAX_REPR);
    expect(result.json).toBeUndefined();
    const nested = await sandbox.run({ code: '', call: '[list(range(1000))] * 5000' });
    expect(nested).toMatchObject({ jsonOmitted: true, reprTruncated: true });
    expect(nested.json).toBeUndefined();
    // A long JSON str (REval's harness replies so) still arrives whole under the cap.
    const reply = await sandbox.run({ code: '', call: '"y" * 100_000' });
    expect(reply).toMatchObject({ reprTruncated: true, json: 'y'.repeat(100_000) });
    expect(reply.jsonOmitted).toBeUndefined();
  }, 60_000);

  it('caps stdout, stderr, exception messages and type names', async () => {
    const results = await sandbox.runBatch([
      { code: 'print("y" * 10_000_000)', call: '0' },
      { code: 'import sys\nsys.stderr.write("e" * 10_000_000)', call: '0' },
      { code: '', call: '(_ for _ in ()).throw(ValueError("m" * 10_000_000))' },
      { code: 'E = type("E" * 100_000, (Exception,), {})', call: '(_ for _ in ()).throw(E())' },
    ]);
    expect(results[0]).toMatchObject({ status: 'output_limit', stdoutTruncated: true });
    expect(results[0]?.stdout).toHaveLength(MAX_OUTPUT);
    expect(results[1]).toMatchObject({ status: 'output_limit', stdout: '' });
    expect(results[2]?.exception?.type).toBe('ValueError');
    expect(results[2]?.exception?.message.length).toBeLessThanOrEqual(2003);
    expect(results[2]?.exception?.message.endsWith('...')).toBe(true);
    expect(results[3]?.exception?.type.length).toBeLessThanOrEqual(203);
    expect(results[3]?.exception?.type.endsWith('...')).toBe(true);
  }, 60_000);

  it('caps a trace: huge locals, names and returns stop the recording, marked truncated', async () => {
    const code = [
      'def f(n):',
      '    big = "z" * 400',
      '    for i in range(n):',
      '        big = big[:400]',
      '    return big * 1000',
    ].join('\n');
    const result = await sandbox.trace({ code, call: 'f(100_000)', maxSteps: 10_000_000 });
    expect(result.status).toBe('ok');
    expect(result.truncated).toBe(true);
    expect(result.steps).toBeLessThan(100_000);
    const size = JSON.stringify(result.states).length;
    // 8,000,000 characters of recorded reprs and names, counted as Python counts them.
    expect(size).toBeLessThanOrEqual(8_000_000 + 200_000);
  }, 120_000);
});
