import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from './types.js';
import { Sandbox } from './sandbox.js';

const hasPython =
  spawnSync('python3', ['-c', 'import sys; assert sys.version_info >= (3, 9)']).status === 0;
const engines: Engine[] = hasPython ? ['pyodide', 'cpython'] : ['pyodide'];

const TIMEOUT_MS = 600;
const MEMORY_MB = 256;
const MAX_OUTPUT = 2000;

describe.each(engines)('Sandbox on %s', (engine) => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await Sandbox.create({
      engine,
      workers: 2,
      timeoutMs: TIMEOUT_MS,
      memoryLimitMb: MEMORY_MB,
      maxOutputChars: MAX_OUTPUT,
    });
  }, 60_000);

  afterAll(async () => {
    await sandbox?.close();
  });

  /** After every hostile case: the pool still gives right answers. */
  async function expectHealthy(): Promise<void> {
    const results = await sandbox.runBatch([
      { code: 'def f(x):\n    return sorted(x) + [len(x)]', call: 'f([3, 1, 2])' },
      { code: 'import math', call: 'round(math.pi, 5), abs(-2), str(7)' },
    ]);
    expect(results.map((result) => [result.status, result.repr])).toEqual([
      ['ok', '[1, 2, 3, 3]'],
      ['ok', "(3.14159, 2, '7')"],
    ]);
  }

  describe('run', () => {
    it('returns repr, JSON form and round-trip for plain values', async () => {
      const result = await sandbox.run({
        code: 'def f(n):\n    return {"a": [1, (2, 3)], "b": None, "c": n * 1.5, "d": "x"}',
        call: 'f(2)',
      });
      expect(result).toMatchObject({
        status: 'ok',
        repr: "{'a': [1, (2, 3)], 'b': None, 'c': 3.0, 'd': 'x'}",
        json: { a: [1, [2, 3]], b: null, c: 3, d: 'x' },
        reprRoundTrips: true,
        stdout: '',
      });
    });

    it('feeds stdin to whole programs and returns what they wrote to stderr', async () => {
      const program =
        'import sys\nn = int(input())\nrest = sys.stdin.read().split()\nprint(n + len(rest))\nprint("warn", file=sys.stderr)';
      const [fed, unfed, plain] = await sandbox.runBatch([
        { code: program, call: 'None', stdin: '3\na b c\n' },
        { code: 'print(input())', call: 'None' },
        { code: '', call: '1' },
      ]);
      expect(fed).toMatchObject({ status: 'ok', stdout: '6\n', stderr: 'warn\n' });
      // No stdin: input() meets end of file, as a program run with </dev/null does.
      expect(unfed).toMatchObject({ status: 'exception', exception: { type: 'EOFError' } });
      expect(plain?.stderr).toBeUndefined();
      await expect(
        sandbox.run({ code: '', call: '1', stdin: 3 as unknown as string }),
      ).rejects.toThrow(/stdin: must be a string/);
    });

    it('time.sleep pauses and still stops at the time limit', async () => {
      const [slept, endless, bad] = await sandbox.runBatch([
        {
          code: 'import time\nstart = time.monotonic()\ntime.sleep(0.05)',
          call: 'time.monotonic() - start >= 0.05',
        },
        { code: 'import time\ntime.sleep(3600)', call: 'None' },
        { code: 'import time', call: 'time.sleep(-1)' },
      ]);
      expect(slept).toMatchObject({ status: 'ok', repr: 'True' });
      expect(endless?.status).toBe('timeout');
      expect(bad).toMatchObject({ status: 'exception', exception: { type: 'ValueError' } });
    });

    it('handles sets, dict order, large ints and unicode exactly', async () => {
      const results = await sandbox.runBatch([
        { code: '', call: '{3, 1, 2}' },
        { code: 'd = {}\nd["z"] = 1\nd["a"] = 2', call: 'd' },
        { code: '', call: '2 ** 100' },
        { code: 'def f(s):\n    return s[::-1] + "é"', call: 'f("🙂ab")' },
        { code: '', call: '{1: "a", (2, 3): frozenset({4})}' },
        { code: '', call: "float('nan')" },
        { code: '', call: '[[[]], [[1, [2, [3]]]]]' },
      ]);
      expect(results[0]).toMatchObject({ status: 'ok', repr: '{1, 2, 3}', reprRoundTrips: true });
      expect(results[0]?.json).toBeUndefined();
      expect(results[1]).toMatchObject({ repr: "{'z': 1, 'a': 2}", json: { z: 1, a: 2 } });
      expect(results[2]).toMatchObject({
        repr: '1267650600228229401496703205376',
        reprRoundTrips: true,
      });
      expect(results[2]?.json).toBeUndefined();
      expect(results[3]).toMatchObject({ repr: "'ba🙂é'", json: 'ba🙂é', reprRoundTrips: true });
      expect(results[4]).toMatchObject({
        repr: "{1: 'a', (2, 3): frozenset({4})}",
        reprRoundTrips: true,
      });
      expect(results[4]?.json).toBeUndefined();
      expect(results[5]).toMatchObject({ repr: 'nan', reprRoundTrips: false });
      expect(results[6]).toMatchObject({
        repr: '[[[]], [[1, [2, [3]]]]]',
        json: [[[]], [[1, [2, [3]]]]],
      });
    });

    it('reports exceptions, syntax errors and printed text', async () => {
      const [division, badCode, badCall, statement, printed] = await sandbox.runBatch([
        { code: 'def f(x):\n    return 1 / x', call: 'f(0)' },
        { code: 'def f(:\n    pass', call: 'f()' },
        { code: 'x = 1', call: 'x +' },
        { code: 'x = 1', call: 'x = 2' },
        { code: 'print("hi", 1)\nx = 5', call: 'x' },
      ]);
      expect(division).toMatchObject({
        status: 'exception',
        exception: { type: 'ZeroDivisionError', message: 'division by zero' },
      });
      expect(badCode?.status).toBe('syntax_error');
      expect(badCode?.detail).toMatch(/^code: SyntaxError: .*\(line 1\)/);
      expect(badCall?.status).toBe('syntax_error');
      expect(badCall?.detail).toMatch(/^call: /);
      expect(statement?.status).toBe('syntax_error');
      expect(printed).toMatchObject({ status: 'ok', repr: '5', stdout: 'hi 1\n' });
    });

    it('is deterministic: same hash seed, same random stream, every task and every worker', async () => {
      const request = {
        code: 'import random\nwords = {"apple", "banana", "cherry", "date", "elderberry", "fig"}',
        call: '(list(words), hash("abc"), random.random(), [random.randint(0, 99) for _ in range(3)])',
      };
      const results = await sandbox.runBatch(Array.from({ length: 8 }, () => request));
      const reprs = new Set(results.map((result) => result.repr));
      expect(results.every((result) => result.status === 'ok')).toBe(true);
      expect(reprs.size).toBe(1);
    });

    it('cuts long reprs at maxReprChars and says so', async () => {
      const result = await sandbox.run({ code: '', call: '"x" * 20000' });
      expect(result.status).toBe('ok');
      expect(result.reprTruncated).toBe(true);
      expect(result.repr).toHaveLength(10_000);
      expect(result.reprRoundTrips).toBe(false);
    });
  });

  it('runs ordinary standard-library code (unittest, namedtuple defaults, queue, pathlib names)', async () => {
    const code = [
      'import unittest, queue, collections, pathlib, dataclasses',
      'Point = collections.namedtuple("Point", "x y", defaults=(0,))',
      '@dataclasses.dataclass',
      'class Box:',
      '    items: list',
      'class BoxTest(unittest.TestCase):',
      '    def test_items(self):',
      '        self.assertEqual(Box([1]).items, [1])',
      'def go():',
      '    result = unittest.TestResult()',
      '    BoxTest("test_items").run(result)',
      '    q = queue.Queue()',
      '    q.put(3)',
      '    return (result.wasSuccessful(), Point(1), q.get(), pathlib.PurePosixPath("/a/b").name)',
    ].join('\n');
    const result = await sandbox.run({ code, call: 'go()', timeoutMs: 20_000 });
    expect(result).toMatchObject({ status: 'ok', repr: "(True, Point(x=1, y=0), 3, 'b')" });
  });

  describe('check', () => {
    const code = 'def f(xs):\n    return {x: x * x for x in xs}';

    it('compares call and expected with ==, each parsed alone', async () => {
      const results = await sandbox.checkBatch([
        { code, call: 'f([1, 2])', expected: '{2: 4, 1: 1}' },
        { code, call: 'f([1, 2])', expected: '{1: 1, 2: 5}' },
        { code: 'def f():\n    return 1', call: 'f()', expected: '1.0' },
        { code, call: 'f([1])', expected: 'f([1])' },
        { code, call: 'f([1])', expected: '{1: 1}\nimport os' },
        { code, call: 'f(None)', expected: '{}' },
      ]);
      expect(results[0]).toMatchObject({ status: 'passed', actualRepr: '{1: 1, 2: 4}' });
      expect(results[1]).toMatchObject({ status: 'failed', actualRepr: '{1: 1, 2: 4}' });
      expect(results[2]?.status).toBe('passed');
      // `expected` cannot call the definitions: it is evaluated without them.
      expect(results[3]).toMatchObject({ status: 'exception', exception: { type: 'NameError' } });
      expect(results[4]).toMatchObject({ status: 'syntax_error' });
      expect(results[4]?.detail).toMatch(/^expected: /);
      expect(results[5]).toMatchObject({ status: 'exception', exception: { type: 'TypeError' } });
    });

    it("with expectedMode 'literal' refuses an expected value that is not a literal", async () => {
      const cheat = "type('Y', (), {'__eq__': lambda self, other: True})()";
      const [loose, strict, literalSet] = await sandbox.checkBatch([
        { code, call: 'f([3])', expected: cheat },
        { code, call: 'f([3])', expected: cheat, expectedMode: 'literal' },
        {
          code: 'def g():\n    return set()',
          call: 'g()',
          expected: 'set()',
          expectedMode: 'literal',
        },
      ]);
      expect(loose?.status).toBe('passed');
      expect(strict?.status).toBe('failed');
      expect(strict?.detail).toMatch(/not a literal/);
      expect(literalSet?.status).toBe('passed');
    });

    it('runs CRUXEval-style assertions', async () => {
      const results = await sandbox.checkBatch([
        { code, assertion: 'assert f([2]) == {2: 4}' },
        { code, assertion: 'assert {2: 5} == f([2])' },
        { code, assertion: 'assert f([2]) == {2: 4} and len(f([1, 2])) == 3' },
        { code: 'def f(x):\n    assert x > 0\n    return x', assertion: 'assert f(-1) == -1' },
        { code, assertion: 'assert f([2]) ==' },
        { code, assertion: 'assert f([2]) == {2: 4}  # trailing comment' },
      ]);
      expect(results.map((result) => result.status)).toEqual([
        'passed',
        'failed',
        'failed',
        'exception',
        'syntax_error',
        'passed',
      ]);
      expect(results[1]?.actualRepr).toBe('{2: 4}');
      expect(results[3]?.exception?.type).toBe('AssertionError');
    });
  });

  describe('trace (REval rules)', () => {
    it('records path, coverage and the locals after each line of a loop', async () => {
      const code =
        'def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total';
      const result = await sandbox.trace({ code, call: 'f(2)' });
      expect(result).toMatchObject({ status: 'ok', repr: '1', steps: 7, truncated: false });
      expect(result.path).toEqual([2, 3, 4, 3, 4, 3, 5]);
      expect(result.coverage).toEqual([2, 3, 4, 5]);
      expect(result.states.map((state) => state.locals)).toEqual([
        { n: '2', total: '0' },
        { n: '2', total: '0', i: '0' },
        { n: '2', total: '0', i: '0' },
        { n: '2', total: '0', i: '1' },
        { n: '2', total: '1', i: '1' },
        { n: '2', total: '1', i: '1' },
        { n: '2', total: '1', i: '1' },
      ]);
      expect(result.states[6]?.return).toBe('1');
    });

    it('follows calls into helpers and attaches returns to their lines', async () => {
      const code = [
        'def g(x):',
        '    y = x + 1',
        '    return y',
        'def f(a):',
        '    b = g(a)',
        '    return b * 2',
      ].join('\n');
      const result = await sandbox.trace({ code, call: 'f(1)' });
      expect(result.path).toEqual([5, 2, 3, 6]);
      expect(result.coverage).toEqual([2, 3, 5, 6]);
      expect(result.states).toEqual([
        { line: 5, locals: { x: '1' } },
        { line: 2, locals: { x: '1', y: '2' } },
        { line: 3, locals: { a: '1', b: '2' }, return: '2' },
        { line: 6, locals: { a: '1', b: '2' }, return: '4' },
      ]);
    });

    it('merges consecutive events on one line, across recursive frames', async () => {
      const code = 'def f(n):\n    return 1 if n <= 1 else n * f(n - 1)';
      const result = await sandbox.trace({ code, call: 'f(3)' });
      expect(result).toMatchObject({ repr: '6', path: [2], coverage: [2], steps: 3 });
      expect(result.states).toEqual([{ line: 2, locals: { n: '1' }, return: '6' }]);
    });

    it('skips functions and modules in locals and marks exceptions', async () => {
      const code = [
        'import math',
        'def f(x):',
        '    h = math.floor',
        '    y = 10 // x',
        '    return y',
      ].join('\n');
      const result = await sandbox.trace({ code, call: 'f(0)' });
      expect(result.status).toBe('exception');
      expect(result.exception?.type).toBe('ZeroDivisionError');
      expect(result.path).toEqual([3, 4]);
      expect(result.states[0]?.locals).toEqual({ x: '0' });
      expect(result.states[1]).toMatchObject({ line: 4, exception: 'ZeroDivisionError' });
    });

    it('stops recording at maxSteps but still returns the value', async () => {
      const code = 'def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s';
      const result = await sandbox.trace({ code, call: 'f(1000)', maxSteps: 10 });
      expect(result).toMatchObject({ status: 'ok', repr: '499500', steps: 10, truncated: true });
      expect(result.path).toHaveLength(10);
    });

    it('runs setup untraced and accepts a statement block as the call', async () => {
      const code =
        'class C:\n    def __init__(self):\n        self.v = 0\n    def inc(self):\n        self.v += 1\n        return self.v';
      const result = await sandbox.trace({ code, setup: 'c = C()', call: 'c.inc()\nc.inc()' });
      expect(result.status).toBe('ok');
      expect(result.path).toEqual([5, 6, 5, 6]);
      expect(result.states.map((state) => state.return)).toEqual([undefined, '1', undefined, '2']);
    });
  });

  describe('hostile code', () => {
    // Behaviour, not wall-clock bounds (a loaded machine stretches every duration): which limit
    // stopped the task, how (interrupted in Python, or its worker replaced), and that the pool
    // still answers correctly afterwards.
    it('stops an infinite loop at its limit and keeps serving', async () => {
      const restarts = sandbox.info().restarts;
      const result = await sandbox.run({ code: 'while True:\n    pass', call: '0' });
      expect(result.status).toBe('timeout');
      expect(result.detail).toMatch(/limit/);
      // A pure-Python loop is interruptible: the worker survives it.
      expect(sandbox.info().restarts).toBe(restarts);
      await expectHealthy();
    });

    it('kills and replaces a worker whose task swallows the interrupt', async () => {
      const restarts = sandbox.info().restarts;
      const code =
        'def f():\n    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass';
      const result = await sandbox.run({ code, call: 'f()', timeoutMs: 300 });
      expect(result.status).toBe('timeout');
      expect(result.detail).toMatch(/terminated|killed|CPU time/);
      expect(sandbox.info().restarts).toBe(restarts + 1);
      await expectHealthy();
    }, 30_000);

    it('stops a task stuck inside C code and keeps serving', async () => {
      const restarts = sandbox.info().restarts;
      const result = await sandbox.run({ code: '', call: 'sum(range(10 ** 12))', timeoutMs: 300 });
      expect(result.status).toBe('timeout');
      expect(result.detail).toMatch(/terminated|killed|CPU time/);
      expect(sandbox.info().restarts).toBe(restarts + 1);
      await expectHealthy();
    }, 30_000);

    it('classifies recursion too deep for C code as RecursionError', async () => {
      const result = await sandbox.run({
        code: 'l = []\nfor _ in range(10 ** 6):\n    l = [l]',
        call: 'len(repr(l))',
        timeoutMs: 10_000,
      });
      expect(result).toMatchObject({ status: 'exception', exception: { type: 'RecursionError' } });
      await expectHealthy();
    }, 30_000);

    it('classifies infinite recursion as RecursionError', async () => {
      const result = await sandbox.run({ code: 'def f(n):\n    return f(n + 1)', call: 'f(0)' });
      expect(result).toMatchObject({ status: 'exception', exception: { type: 'RecursionError' } });
      await expectHealthy();
    });

    it('caps memory', async () => {
      const results = await sandbox.runBatch([
        { code: 'x = [0] * (2 ** 28)', call: '0' },
        {
          code: 'chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2 ** 20))',
          call: '0',
          timeoutMs: 5000,
        },
        { code: `x = bytearray(${MEMORY_MB + 64} * 2 ** 20)`, call: '0' },
      ]);
      expect(results.map((result) => result.status)).toEqual(['memory', 'memory', 'memory']);
      await expectHealthy();
      if (engine === 'pyodide') {
        // WebAssembly memory never shrinks: a worker whose heap grew past half the cap was replaced.
        expect(Math.max(...sandbox.info().peakMemoryMb)).toBeLessThan(MEMORY_MB / 2);
      }
    }, 30_000);

    it('caps stdout', async () => {
      const result = await sandbox.run({ code: 'while True:\n    print("x" * 999)', call: '0' });
      expect(result.status).toBe('output_limit');
      expect(result.stdout).toHaveLength(MAX_OUTPUT);
      expect(result.stdoutTruncated).toBe(true);
      await expectHealthy();
    });

    it('turns sys.exit, SystemExit and os._exit into exceptions', async () => {
      const results = await sandbox.runBatch([
        { code: 'import sys\nsys.exit(3)', call: '0' },
        { code: 'raise SystemExit("bye")', call: '0' },
        { code: 'import os\nos._exit(1)', call: '0' },
        { code: 'import posix\nposix._exit(1)', call: '0' },
        {
          code: 'def f():\n    try:\n        raise SystemExit(1)\n    finally:\n        return 5',
          call: 'f()',
        },
      ]);
      expect(results.map((result) => [result.status, result.exception?.type])).toEqual([
        ['exception', 'SystemExit'],
        ['exception', 'SystemExit'],
        ['exception', 'SystemExit'],
        ['exception', 'SystemExit'],
        ['ok', undefined],
      ]);
      await expectHealthy();
    });

    it('cannot read host files or write to the host file system', async () => {
      const target = join(tmpdir(), `cr-sandbox-probe-${process.pid}-${engine}`);
      rmSync(target, { force: true });
      const results = await sandbox.runBatch([
        { code: "data = open('/etc/passwd').read()", call: 'data[:10]' },
        { code: `open(${JSON.stringify(target)}, 'w').write('pwned')`, call: '0' },
        {
          code: `import os\nfd = os.open(${JSON.stringify(target)}, os.O_CREAT | os.O_WRONLY)`,
          call: 'fd',
        },
        {
          code: `import pathlib\npathlib.Path(${JSON.stringify(target)}).write_text('x')`,
          call: '0',
          timeoutMs: 10_000,
        },
        { code: 'import os', call: 'os.listdir("/")' },
        { code: `import io\nio.open(${JSON.stringify(target)}, 'a')`, call: '0' },
      ]);
      for (const result of results) {
        expect(result.status).toBe('exception');
        expect(result.exception?.type).toBe('PermissionError');
      }
      expect(existsSync(target)).toBe(false);
      await expectHealthy();
    });

    it.runIf(engine === 'pyodide')(
      'sees an in-memory file system only: no host path exists',
      async () => {
        const hostPaths = [
          join(process.cwd(), 'package.json'),
          '/etc/passwd',
          process.cwd(),
          tmpdir(),
        ].filter((path) => existsSync(path));
        expect(hostPaths.length).toBeGreaterThanOrEqual(3);
        const probe = hostPaths.filter((path) => path !== '/tmp');
        const result = await sandbox.run({
          code: 'import os',
          call: `[os.path.exists(p) for p in ${JSON.stringify(probe)}]`,
        });
        expect(result).toMatchObject({ status: 'ok', json: probe.map(() => false) });
      },
    );

    it('has no network', async () => {
      let connections = 0;
      const server: Server = createServer((socket) => {
        connections += 1;
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      try {
        const results = await sandbox.runBatch([
          {
            code: `import socket\ns = socket.create_connection(("127.0.0.1", ${port}), timeout=0.2)`,
            call: '0',
          },
          {
            code: `s = __import__("_socket").socket()\ns.connect(("127.0.0.1", ${port}))`,
            call: '0',
          },
          // urllib.request imports http, email, ... from the zip: slow on a busy machine.
          {
            code: `import urllib.request\nurllib.request.urlopen("http://127.0.0.1:${port}/")`,
            call: '0',
            timeoutMs: 10_000,
          },
        ]);
        for (const result of results) {
          expect(result.status).toBe('exception');
          expect(result.exception?.type).toMatch(
            /^(ImportError|ModuleNotFoundError|PermissionError)$/,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(connections).toBe(0);
      } finally {
        server.close();
      }
      await expectHealthy();
    });

    it('cannot start processes', async () => {
      const target = join(tmpdir(), `cr-sandbox-proc-${process.pid}-${engine}`);
      rmSync(target, { force: true });
      const results = await sandbox.runBatch([
        {
          code: `import subprocess\nsubprocess.run(["touch", ${JSON.stringify(target)}])`,
          call: '0',
          timeoutMs: 10_000,
        },
        { code: `import os\nos.system("touch ${target}")`, call: '0' },
        {
          code: `import os\nos.execv("/usr/bin/touch", ["touch", ${JSON.stringify(target)}])`,
          call: '0',
        },
        {
          code: `import os\nos.posix_spawn("/usr/bin/touch", ["touch", ${JSON.stringify(target)}], {})`,
          call: '0',
        },
        { code: 'import os\nos.fork()', call: '0' },
      ]);
      for (const result of results) {
        expect(result.status).toBe('exception');
        expect(result.exception?.type).toMatch(
          /^(ImportError|PermissionError|AttributeError|OSError)$/,
        );
      }
      expect(existsSync(target)).toBe(false);
      await expectHealthy();
    });

    it('gives no path to JavaScript or the host through js / pyodide', async () => {
      const results = await sandbox.runBatch([
        { code: 'import js', call: 'js.process' },
        { code: 'import pyodide_js', call: 'pyodide_js' },
        { code: 'from pyodide.ffi import to_js', call: 'to_js([])' },
        { code: 'from pyodide.code import run_js', call: 'run_js("process")' },
        { code: 'import _pyodide_core', call: '_pyodide_core' },
        { code: 'import ctypes', call: 'ctypes.CDLL(None)' },
        {
          code: 'import sys',
          call: '[m for m in sys.modules if m.split(".")[0] in ("js", "pyodide", "pyodide_js", "_pyodide", "_pyodide_core")]',
        },
      ]);
      for (const result of results.slice(0, 6)) {
        expect(result.status).toBe('exception');
        expect(result.exception?.type).toMatch(/^(ImportError|ModuleNotFoundError)$/);
      }
      expect(results[6]).toMatchObject({ status: 'ok', repr: '[]' });
      // The FFI classes left alive refuse to make a JavaScript object (one led to Object.prototype);
      // were one made, its constructor chain must not compile code (the worker disables that).
      const escape = [
        'def find(name):',
        '    seen, stack = set(), [object]',
        '    while stack:',
        '        for sub in type.__subclasses__(stack.pop()):',
        '            if sub not in seen:',
        '                seen.add(sub)',
        '                stack.append(sub)',
        '                if sub.__name__ == name:',
        '                    return sub',
        'def attempt():',
        '    JsException = find("JsException")',
        '    if JsException is None:',
        '        return "no ffi"',
        '    error = JsException("x").constructor',
        '    try:',
        '        return str(error.constructor("return process.pid")())',
        '    except BaseException as exc:',
        '        return type(exc).__name__ + ": " + str(exc)[:60]',
      ].join('\n');
      const attempt = await sandbox.run({ code: escape, call: 'attempt()' });
      if (engine === 'pyodide') {
        expect(attempt).toMatchObject({
          status: 'exception',
          exception: {
            type: 'TypeError',
            message: 'the sandbox does not create JavaScript objects',
          },
        });
      } else {
        expect(attempt).toMatchObject({ status: 'ok', repr: "'no ffi'" });
      }
      expect(attempt.repr ?? '').not.toContain(String(process.pid));
      await expectHealthy();
    });

    it('restores builtins, modules, classes and limits for the next task', async () => {
      const vandal = [
        'import builtins, math, collections, sys, json',
        'del builtins.len',
        'builtins.sorted = lambda *args, **kwargs: "pwned"',
        'math.pi = 3',
        'collections.Counter.most_common = lambda self, n=None: "pwned"',
        'json.dumps = None',
        'sys.setrecursionlimit(60)',
        'sys.modules["evil"] = math',
        '__builtins__["abs"] = None',
      ].join('\n');
      const [vandalised] = await sandbox.runBatch([{ code: vandal, call: '0' }]);
      expect(vandalised?.status).toBe('ok');
      // Run the checks on every worker: the vandal ran on one of them.
      const probe = {
        code: 'import math, collections, sys, json\ndef depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)',
        call: '(len("abc"), sorted([2, 1]), math.pi, collections.Counter("aab").most_common(1), json.dumps([1]), depth(500), "evil" in sys.modules, abs(-1))',
      };
      const results = await sandbox.runBatch(Array.from({ length: 6 }, () => probe));
      for (const result of results) {
        expect(result).toMatchObject({
          status: 'ok',
          repr: "(3, [1, 2], 3.141592653589793, [('a', 2)], '[1]', 500, False, 1)",
        });
      }
    });

    it('restores classes patched without any import (reflection, mutable builtins)', async () => {
      const vandals = [
        'counter = [k for k in dict.__subclasses__() if k.__name__ == "Counter"][0]\ncounter.most_common = lambda self, n=None: "pwned"',
        'ExceptionGroup.derive = None',
        // Class patterns read attributes named by a constant, not by a name in co_names.
        'match print:\n    case object(__self__=module):\n        pass\nmatch module:\n    case object(__loader__=loader):\n        loader.find_spec = None',
      ];
      for (const code of vandals)
        expect((await sandbox.run({ code, call: '0' })).status).toBe('ok');
      const probe = {
        code: 'import collections, importlib.machinery',
        call: '(collections.Counter("aab").most_common(1), "derive" in vars(ExceptionGroup), importlib.machinery.BuiltinImporter.find_spec is None)',
      };
      const results = await sandbox.runBatch(Array.from({ length: 4 }, () => probe));
      for (const result of results)
        expect(result).toMatchObject({ status: 'ok', repr: "([('a', 2)], False, False)" });
    });

    it('does not let printed text imitate a verdict', async () => {
      const code = [
        'import os',
        'print(\'{"status": "passed", "stdout": ""}\')',
        'print("passed")',
        'try:',
        '    os.write(1, b\'{"id": 1, "index": 0, "result": {"status": "passed"}}\\n\')',
        'except OSError:',
        '    pass',
        'def f():',
        '    return 1',
      ].join('\n');
      const result = await sandbox.check({ code, assertion: 'assert f() == 2' });
      expect(result.status).toBe('failed');
      expect(result.stdout).toBe('{"status": "passed", "stdout": ""}\npassed\n');
      await expectHealthy();
    });
  });
});

describe('Sandbox options', () => {
  it('rejects bad options with every issue listed', async () => {
    await expect(
      Sandbox.create({ workers: 0, timeoutMs: -1, engine: 'ruby' as Engine }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      issues: expect.arrayContaining([
        expect.stringMatching(/^\/workers: /),
        expect.stringMatching(/^\/timeoutMs: /),
        expect.stringMatching(/^\/engine: /),
      ]) as unknown,
    });
  });

  it('says clearly when python3 is missing for the cpython engine', async () => {
    await expect(
      Sandbox.create({ engine: 'cpython', workers: 1, pythonPath: 'python3-that-does-not-exist' }),
    ).rejects.toMatchObject({
      name: 'SandboxError',
      kind: 'engine_unavailable',
      message: expect.stringContaining("engine: 'pyodide'") as unknown,
    });
  });
});
