"""Execution harness of @codereasoner/sandbox.

One file serves both engines, so both give the same answers by construction:
- Pyodide: the worker thread runs this source, then calls `run_task(json) -> json` per task.
- CPython: `python3 -S -s -u -B harness.py` starts `_serve()`, a line protocol on private fds.

Everything here runs before untrusted code and must leave nothing useful behind: the audit hook
(irremovable once added) blocks file, process, network, ctypes and introspection escapes; the
task namespace is rebuilt per task; builtins, `sys` and every module's globals are restored
after each task, so one task cannot change what the next one sees.
"""

import sys
import builtins

# Functions capture their builtins when defined: give the harness a private copy first, so a task
# that deletes or patches names in the builtins module cannot break the code that restores them.
globals()["__builtins__"] = dict(builtins.__dict__)

_PYODIDE = sys.platform == "emscripten"

import ast
import dis
import io
import json
import math
import os
import random
import time
import types
from collections.abc import Generator as _Generator
from collections.abc import Iterator as _Iterator
from operator import eq as _eq

# Modules user code commonly imports (CRUXEval, REval, generated corpora). Importing them here puts
# them in the snapshot, so a task pays no import cost and cannot leave a patched copy behind.
_PRELOAD = (
    "math re string collections itertools functools operator heapq bisect copy json typing "
    "dataclasses enum textwrap unicodedata datetime decimal fractions statistics array numbers "
    "cmath abc contextlib keyword calendar pprint reprlib struct hashlib base64 difflib"
).split()
for _name in _PRELOAD:
    try:
        __import__(_name)
    except ImportError:  # an engine may lack one; user code then gets the same ImportError
        pass

CODE_FILENAME = "<internals>"  # REval's dynamics.py traces frames compiled under this name
_INTERNAL_FILENAMES = ("<call>", "<expected>", "<assertion>", "<setup>", "<roundtrip>")

# Top-level module names user code may never import: the Pyodide FFI (the path to JavaScript),
# native code, processes, and ways to change this process's limits. (socket, select, signal and
# threading stay importable for the standard library's sake; creating a socket or a connection
# is an audit event refused below, and Pyodide has neither sockets nor threads.)
_BLOCKED_MODULES = frozenset(
    """js pyodide pyodide_js _pyodide _pyodide_core micropip ctypes _ctypes cffi subprocess
    _posixsubprocess multiprocessing _multiprocessing concurrent asyncio _asyncio resource pty
    tty termios fcntl mmap _posixshmem faulthandler tracemalloc webbrowser antigravity readline
    syslog _winapi msvcrt winreg""".split()
)
# Audit events refused outright (prefix match). `os.listdir`/`os.scandir` and `open` are judged
# by path in `_audit` (the import system lists and reads the standard library).
_BLOCKED_EVENT_PREFIXES = (
    "os.", "subprocess.", "socket.", "ctypes.", "shutil.", "pty.", "tempfile.", "resource.",
    "signal.", "winreg.", "urllib.", "http.", "ftplib.", "smtplib.", "poplib.", "imaplib.",
    "nntplib.", "telnetlib.", "webbrowser.", "sqlite3.", "syslog.", "mmap.", "fcntl.", "msvcrt.",
    "_winapi.", "glob.", "gc.get_", "sys._current_frames", "sys._current_exceptions",
    "sys.remote_exec", "cpython.remote_debugger", "_thread.", "threading.",
    "sys.monitoring.", "pickle.", "shelve.", "dbm.", "_posixsubprocess.",
)
_PATH_EVENTS = frozenset(("os.listdir", "os.scandir"))
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class _SandboxTimeout(BaseException):
    """Raised by the CPython engine's SIGALRM handler when a task runs past its limit."""


class _OutputLimit(BaseException):
    """Raised when a task prints more than maxOutputChars (BaseException: `except Exception` keeps it)."""


class _Config:
    max_output_chars = 10_000
    max_repr_chars = 10_000
    max_message_chars = 2_000
    max_trace_chars = 20_000_000


class _Output:
    """A capped text sink for sys.stdout/sys.stderr; past the cap it keeps the head and raises."""

    encoding = "utf-8"
    errors = "strict"
    newlines = None

    def __init__(self, keep):
        self._parts = []
        self._size = 0
        self._keep = keep
        self.overflow = False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        limit = _Config.max_output_chars
        room = limit - self._size
        if len(text) > room:
            if self._keep and room > 0:
                self._parts.append(text[:room])
            self._size = limit
            self.overflow = True
            raise _OutputLimit(f"output exceeded {limit} characters")
        if self._keep:
            self._parts.append(text)
        self._size += len(text)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("the sandbox's output has no file descriptor")

    @property
    def closed(self):
        return False

    def text(self):
        return "".join(self._parts)


def _truncate(text, limit):
    return text if len(text) <= limit else text[:limit] + "..."


def _safe_repr(value, limit=None):
    """repr(value) capped at limit; (text, truncated). A failing __repr__ is reported, not raised."""
    limit = _Config.max_repr_chars if limit is None else limit
    try:
        text = repr(value)
    except (_SandboxTimeout, _OutputLimit, KeyboardInterrupt, MemoryError):
        raise
    except BaseException as error:  # noqa: BLE001 - user __repr__ may raise anything
        return f"<repr failed: {type(error).__name__}>", False
    if not isinstance(text, str):
        return "<repr failed: not a str>", False
    if len(text) > limit:
        return text[:limit], True
    return text, False


_SAFE_INT = 2**53 - 1
_NO_JSON = object()


def _json_form(value, depth=0):
    """The value as JSON-compatible data when one exists without loss, else _NO_JSON.

    Like json.dumps, tuples become arrays; unlike it, non-str dict keys, NaN/Infinity and ints a
    JavaScript number cannot hold exactly (|n| > 2**53-1) mean "no JSON form" instead of a lossy one.
    """
    if depth > 100:
        return _NO_JSON
    if value is None or value is True or value is False or type(value) is str:
        return value
    if type(value) is int:
        return value if -_SAFE_INT <= value <= _SAFE_INT else _NO_JSON
    if type(value) is float:
        return value if math.isfinite(value) else _NO_JSON
    if type(value) in (list, tuple):
        out = []
        for item in value:
            converted = _json_form(item, depth + 1)
            if converted is _NO_JSON:
                return _NO_JSON
            out.append(converted)
        return out
    if type(value) is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NO_JSON
            converted = _json_form(item, depth + 1)
            if converted is _NO_JSON:
                return _NO_JSON
            out[key] = converted
        return out
    return _NO_JSON


# ---------------------------------------------------------------------------------------------
# Isolation: snapshots taken once, restored after every task.

_BUILTINS_DICT = builtins.__dict__
_BUILTINS_SNAPSHOT = {}
_SYS_ATTRS = (
    "stdout stderr stdin displayhook excepthook breakpointhook path meta_path path_hooks "
    "path_importer_cache argv dont_write_bytecode"
).split()
_SYS_SNAPSHOT = {}
_SYS_MODULES_SNAPSHOT = {}
_MODULE_DICTS = []
_MODULE_COPIES = []
_TYPES = []  # mutable (heap, not immutable) classes defined in loaded modules
_TYPE_DICTS = []
_TYPE_COPIES = []
_MISSING = object()
_RECURSION_LIMIT = 1000
_INT_DIGITS = 4300


def _take_snapshots():
    _BUILTINS_SNAPSHOT.clear()
    _BUILTINS_SNAPSHOT.update(_BUILTINS_DICT)
    for name in _SYS_ATTRS:
        if hasattr(sys, name):
            _SYS_SNAPSHOT[name] = getattr(sys, name)
    _SYS_MODULES_SNAPSHOT.clear()
    _SYS_MODULES_SNAPSHOT.update(sys.modules)
    _MODULE_DICTS.clear()
    _MODULE_COPIES.clear()
    for module in list(sys.modules.values()):
        if isinstance(module, types.ModuleType) and module.__name__ != "__main__":
            _MODULE_DICTS.append(module.__dict__)
            _MODULE_COPIES.append(dict(module.__dict__))
    _TYPES.clear()
    seen = set()
    for namespace in _MODULE_DICTS:
        for value in list(namespace.values()):
            if (
                isinstance(value, type)
                and value not in seen
                and value.__flags__ & _HEAPTYPE
                and not value.__flags__ & _IMMUTABLETYPE
            ):
                seen.add(value)
                _TYPES.append(value)
    _TYPE_DICTS[:] = [cls.__dict__ for cls in _TYPES]
    _TYPE_COPIES[:] = [dict(cls.__dict__) for cls in _TYPES]


_HEAPTYPE = 1 << 9
_IMMUTABLETYPE = 1 << 8


def _restore_dict(target, snapshot):
    if len(target) == len(snapshot) and all(target.get(k, target) is v for k, v in snapshot.items()):
        return
    target.clear()
    target.update(snapshot)


def _restore_state(full=True):
    """Undo whatever the last task changed in shared interpreter state. `full=False` (the task's
    code could not reach modules or classes, see `_risky`) skips comparing their dictionaries."""
    sys.settrace(None)
    sys.setprofile(None)
    _restore_dict(_BUILTINS_DICT, _BUILTINS_SNAPSHOT)
    for name, value in _SYS_SNAPSHOT.items():
        if getattr(sys, name, _restore_state) is not value:
            setattr(sys, name, value)
    modules = sys.modules
    if len(modules) != len(_SYS_MODULES_SNAPSHOT) or any(
        modules.get(k) is not v for k, v in _SYS_MODULES_SNAPSHOT.items()
    ):
        modules.clear()
        modules.update(_SYS_MODULES_SNAPSHOT)
    if not full:
        _restore_limits()
        return
    # One C-level dict comparison per module finds changed globals (the values are identical
    # objects, so no __eq__ runs unless a task rebound something); only those modules are restored.
    if not all(map(_eq, _MODULE_DICTS, _MODULE_COPIES)):
        for target, snapshot in zip(_MODULE_DICTS, _MODULE_COPIES):
            _restore_dict(target, snapshot)
    # Classes of the standard library written in Python (Counter, Fraction, ...) are mutable: a C
    # dict comparison per class finds the patched ones, which get their attributes back.
    if not all(map(_eq, _TYPE_DICTS, _TYPE_COPIES)):
        for cls, snapshot in zip(_TYPES, _TYPE_COPIES):
            current = cls.__dict__
            if current == snapshot:
                continue
            for key in [k for k in current if k not in snapshot]:
                try:
                    type.__delattr__(cls, key)
                except (AttributeError, TypeError):
                    pass
            for key, value in snapshot.items():
                if current.get(key, _MISSING) is not value and key not in ("__dict__", "__weakref__"):
                    try:
                        type.__setattr__(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
    _restore_limits()


def _restore_limits():
    if sys.getrecursionlimit() != _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)
    if _INT_DIGITS is not None and sys.get_int_max_str_digits() != _INT_DIGITS:
        sys.set_int_max_str_digits(_INT_DIGITS)
    random.seed(0)


# ---------------------------------------------------------------------------------------------
# Audit hook: the policy that holds even if user code finds its way around the namespace.

def _make_audit_hook(roots, cwd, trusted_codes):
    """The audit policy as a closure over immutable values and captured builtins: user code can
    rebind harness globals or patch builtins during a task, and the hook must not notice."""
    blocked_modules = _BLOCKED_MODULES
    blocked_prefixes = _BLOCKED_EVENT_PREFIXES
    path_events = _PATH_EVENTS
    write_flags = _WRITE_FLAGS
    str_type, bytes_type, int_type, type_type = str, bytes, int, type
    permission_error, import_error = PermissionError, ImportError
    getframe = sys._getframe
    protected_attrs = frozenset(("__code__",))

    def normalize(path):
        kind = type_type(path)
        if kind is bytes_type:
            path = path.decode("utf-8", "surrogateescape")
        elif kind is not str_type:
            return None
        if not path.startswith("/"):
            path = cwd + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "" or part == ".":
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return "/" + "/".join(parts)

    def allowed(path):
        normalized = normalize(path)
        if normalized is None:
            return False
        for root in roots:
            if normalized == root or normalized.startswith(root + "/"):
                return True
        return False

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if type_type(mode) is str_type:
                writing = "w" in mode or "a" in mode or "x" in mode or "+" in mode
            else:
                writing = ((flags or 0) & write_flags) != 0
            if writing or not allowed(path):
                raise permission_error("the sandbox blocks file access: " + str_type(path)[:200])
            return
        if event == "import":
            name = args[0]
            if type_type(name) is str_type and name.partition(".")[0] in blocked_modules:
                raise import_error("import of " + name + " is blocked in the sandbox")
            return
        if event == "object.__setattr__" or event == "object.__delattr__":
            target = args[0]
            name = args[1] if len(args) > 1 else None
            if name in protected_attrs and type_type(target) is not type_type:
                raise permission_error("the sandbox blocks changing " + str_type(name))
            return
        if event in path_events:
            path = args[0] if args else cwd
            if path is None or (type_type(path) is int_type) or not allowed(path):
                raise permission_error("the sandbox blocks directory listing: " + str_type(path)[:200])
            return
        if event.startswith(blocked_prefixes):
            caller = getframe(1)
            if caller.f_code in trusted_codes:
                return
            raise permission_error("the sandbox blocks " + event)

    return hook


def _blocked_exit(*_args, **_kwargs):
    raise SystemExit("os._exit is disabled in the sandbox")


def _secure_process(trusted_codes=()):
    """Strip what untrusted code could use to leave the interpreter, then add the audit hook."""
    global _RECURSION_LIMIT, _INT_DIGITS
    if _PYODIDE:
        _scrub_pyodide()
        _restore_sleep()
    for name in list(sys.modules):
        top = name.partition(".")[0]
        # The import system and widely shared stdlib internals stay loaded (their dangerous calls are
        # refused by the audit hook); everything else on the list is unloaded so `import` must ask.
        if top in _BLOCKED_MODULES:
            del sys.modules[name]
    # os._exit would end a Pyodide worker with a fatal error or a CPython worker at once; make it
    # an ordinary SystemExit so the task is classified and the worker lives on.
    for module in (os, sys.modules.get("posix")):
        if module is not None:
            for attr in ("_exit", "abort", "kill", "killpg", "fork", "forkpty", "system"):
                if hasattr(module, attr):
                    setattr(module, attr, _blocked_exit if attr == "_exit" else _make_blocked(attr))
    roots = set()
    for candidate in [os.path.dirname(os.__file__), getattr(sys, "_stdlib_dir", None), sys.prefix, sys.base_prefix]:
        if candidate:
            roots.add(os.path.normpath(candidate))
    for entry in sys.path:
        if entry and (entry.endswith(".zip") or "python" in entry.rsplit("/", 1)[-1] or "lib-dynload" in entry):
            roots.add(os.path.normpath(entry))
    if _PYODIDE:
        roots.add("/lib")
    # A prefix of "/" or the user's home would open everything: keep only library directories.
    allowed_roots = tuple(sorted(r for r in roots if r not in ("/", "/usr", "/usr/local", os.path.expanduser("~"))))
    sys.path[:] = [p for p in sys.path if any(p == r or p.startswith(r + "/") for r in allowed_roots)]
    _RECURSION_LIMIT = sys.getrecursionlimit()
    # Python < 3.11 has no limit on int/str conversion digits.
    _INT_DIGITS = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
    sys.addaudithook(_make_audit_hook(allowed_roots, os.getcwd().rstrip("/"), frozenset(trusted_codes)))


def _make_blocked(name):
    def blocked(*_args, **_kwargs):
        raise PermissionError(f"the sandbox blocks os.{name}")

    blocked.__name__ = name
    return blocked


def _busy_sleep(secs):
    """time.sleep for the Pyodide engine: a wait on the monotonic clock. Pyodide's own sleep
    needs its FFI, which _scrub_pyodide removes; this one keeps programs that pause working (each
    worker is one core anyway) and stays interruptible at the task's time limit."""
    if isinstance(secs, bool) or not isinstance(secs, (int, float)):
        raise TypeError(f"'{type(secs).__name__}' object cannot be interpreted as an integer or float")
    if secs != secs:
        raise ValueError("Invalid value NaN (not a number)")
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        pass


def _restore_sleep():
    # CPython's sleep is a builtin; Pyodide replaces it with a Python function that calls into
    # JavaScript, which no longer exists once scrubbed.
    if isinstance(time.sleep, types.FunctionType):
        _busy_sleep.__name__ = "sleep"
        _busy_sleep.__qualname__ = "sleep"
        _busy_sleep.__module__ = "time"
        time.sleep = _busy_sleep


def _scrub_pyodide():
    """Drop every Python-side handle on JavaScript: the FFI modules, their import finder and the
    JsProxy values other modules keep. The worker also neuters the JavaScript side."""
    jsproxy_type = None
    try:
        from pyodide.ffi import JsProxy as jsproxy_type  # noqa: N813
    except ImportError:
        pass
    pyodide_packages = ("js", "pyodide", "pyodide_js", "_pyodide", "_pyodide_core", "micropip")

    def from_pyodide(obj):
        owner = obj if isinstance(obj, type) else type(obj)
        module = getattr(owner, "__module__", "") or ""
        return isinstance(module, str) and module.partition(".")[0] in pyodide_packages

    # Pyodide's import finders (the JS-module finder and the "not installed, use micropip" ones)
    # live in modules cleared below: take them out of the import system first.
    for finder in list(sys.meta_path):
        if from_pyodide(finder):
            proxies = getattr(finder, "jsproxies", None)
            if isinstance(proxies, dict):
                proxies.clear()
            sys.meta_path.remove(finder)
    for hook in list(sys.path_hooks):
        if (getattr(hook, "__module__", "") or "").partition(".")[0] in pyodide_packages:
            sys.path_hooks.remove(hook)
    for key, value in list(sys.path_importer_cache.items()):
        if from_pyodide(value):
            del sys.path_importer_cache[key]
    pyodide_modules = [name for name in sys.modules if name.partition(".")[0] in pyodide_packages]
    for name in list(sys.modules):
        module = sys.modules[name]
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            if (jsproxy_type is not None and isinstance(value, jsproxy_type)) or (
                isinstance(value, types.ModuleType) and value.__name__.partition(".")[0] in ("js", "pyodide_js", "_pyodide_core", "pyodide", "_pyodide")
            ):
                del namespace[key]
    for name in pyodide_modules:
        module = sys.modules.pop(name, None)
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and name != "_pyodide_core":
            namespace.clear()
    main = sys.modules.get("__main__")
    if main is not None:
        for key in [k for k in main.__dict__ if not k.startswith("__")]:
            del main.__dict__[key]
    import gc

    gc.collect()


# ---------------------------------------------------------------------------------------------
# Running one task.

_code_cache = {}


def _compile(source, filename, mode):
    key = (source, filename, mode)
    code = _code_cache.get(key)
    if code is None:
        code = compile(source, filename, mode, dont_inherit=True)
        if len(_code_cache) > 4096:
            _code_cache.clear()
        _code_cache[key] = code
    return _note(code)


# ---------------------------------------------------------------------------------------------
# Which tasks can change shared state. Comparing every module's globals and every mutable
# standard-library class after each task costs ~0.45 ms in Pyodide, 10-100 times the task itself.
# Code that imports nothing and names no reflective builtin or attribute cannot reach a module
# or a mutable class (what the builtins hand out are immutable C types, or task-local objects),
# so after such a task the cheap checks suffice. The verdict is cached per code object.

_SAFE_DUNDERS = frozenset(
    """init new del repr str bytes format hash bool lt le eq ne gt ge getattr len length_hint
    iter next reversed contains getitem setitem delitem missing call enter exit aenter aexit
    await aiter anext add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or
    radd rsub rmul rmatmul rtruediv rfloordiv rmod rdivmod rpow rlshift rrshift rand rxor ror
    iadd isub imul imatmul itruediv ifloordiv imod ipow ilshift irshift iand ixor ior neg pos
    abs invert complex int float index round trunc floor ceil name qualname module doc slots
    annotations annotate annotate_func conditional_annotations firstlineno static_attributes
    classcell classdictcell match_args post_init class_getitem set_name init_subclass get set
    delete instancecheck subclasscheck sizeof dir copy deepcopy main""".split()
)
_SAFE_DUNDERS = frozenset("__" + name + "__" for name in _SAFE_DUNDERS)
_RISKY_NAMES = frozenset(
    """getattr setattr delattr vars globals locals eval exec compile breakpoint help open input
    exit quit copyright credits license""".split()
) | frozenset(
    # Builtins that are (or are instances of) mutable Python-level classes, e.g. ExceptionGroup.
    name
    for name, value in builtins.__dict__.items()
    for kind in ((value if isinstance(value, type) else type(value)),)
    if kind.__flags__ & (1 << 9) and not kind.__flags__ & (1 << 8)
)
_RISKY_PREFIXES = ("f_", "tb_", "gi_", "cr_", "ag_", "co_")
_IMPORT_OPCODES = frozenset(dis.opmap[name] for name in ("IMPORT_NAME", "IMPORT_FROM", "IMPORT_STAR") if name in dis.opmap)
_risk_cache = {}
_task_risk = [False]


def _risky(code):
    """Could this code object (or one nested in it) reach a module or a mutable class?"""
    verdict = _risk_cache.get(code)
    if verdict is None:
        verdict = False
        for name in code.co_names:
            if _risky_name(name):
                verdict = True
                break
        if not verdict and not _IMPORT_OPCODES.isdisjoint(code.co_code[::2]):
            verdict = True
        if not verdict:
            # Class patterns (`case C(attr=...)`) read attributes named by a tuple constant.
            verdict = any(
                _risky(const) if isinstance(const, types.CodeType) else _risky_strings(const)
                for const in code.co_consts
                if isinstance(const, (types.CodeType, tuple, frozenset))
            )
        if len(_risk_cache) > 8192:
            _risk_cache.clear()
        _risk_cache[code] = verdict
    return verdict


def _risky_name(name):
    return (
        name in _RISKY_NAMES
        or name.startswith(_RISKY_PREFIXES)
        or (name.startswith("__") and name.endswith("__") and name not in _SAFE_DUNDERS)
    )


def _risky_strings(values):
    for value in values:
        if isinstance(value, str):
            if _risky_name(value):
                return True
        elif isinstance(value, (tuple, frozenset)) and _risky_strings(value):
            return True
    return False


def _note(code):
    """Record a code object the current task is about to run."""
    if not _task_risk[0] and _risky(code):
        _task_risk[0] = True
    return code


class _SyntaxProblem(Exception):
    def __init__(self, where, error):
        super().__init__(where)
        self.where = where
        self.error = error


def _compile_or_flag(source, filename, mode, where):
    try:
        return _compile(source, filename, mode)
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as error:
        if isinstance(error, MemoryError):
            raise
        raise _SyntaxProblem(where, error) from None


def _syntax_detail(problem):
    error = problem.error
    if isinstance(error, SyntaxError):
        line = f" (line {error.lineno})" if error.lineno else ""
        return f"{problem.where}: {type(error).__name__}: {error.msg}{line}"
    return f"{problem.where}: {type(error).__name__}: {error}"


def _fresh_namespace():
    return {"__name__": "__main__", "__builtins__": dict(_BUILTINS_SNAPSHOT)}


class _Run:
    """Per-task output capture: stdout and stderr, each kept up to the same cap."""

    __slots__ = ("stdout", "stderr")

    def __init__(self):
        self.stdout = _Output(True)
        self.stderr = _Output(True)


def _enter(run, stdin):
    sys.stdout = run.stdout
    sys.stderr = run.stderr
    # Whole programs (SandboxFusion-style run_code) read their input here; everything else sees EOF.
    sys.stdin = io.StringIO(stdin if isinstance(stdin, str) else "")


def _classify(error, run):
    """(status, exception to report or None) for an error that ended a task. A KeyboardInterrupt
    is an ordinary exception here: the Pyodide worker knows whether it sent one (a timeout)."""
    if run.stdout.overflow or run.stderr.overflow or isinstance(error, _OutputLimit):
        return "output_limit", None
    if isinstance(error, _SandboxTimeout):
        return "timeout", None
    if isinstance(error, MemoryError):
        return "memory", None
    return "exception", error


def _exception_info(error):
    try:
        message = str(error)
    except BaseException:  # noqa: BLE001 - user __str__ may raise anything
        message = "<str failed>"
    return {"type": type(error).__name__, "message": _truncate(message, _Config.max_message_chars)}


def _eval_expected(source, mode):
    if mode == "literal":
        tree = ast.parse(source.strip(), "<expected>", "eval")
        return _literal(tree.body)
    code = _compile_or_flag(source, "<expected>", "eval", "expected")
    return eval(code, _fresh_namespace())


_LITERAL_CALLS = {"set": set, "frozenset": frozenset, "float": float, "complex": complex}


def _literal(node):
    """ast.literal_eval plus set()/frozenset()/float('nan'): every repr of a plain value parses."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _LITERAL_CALLS and not node.keywords:
        return _LITERAL_CALLS[node.func.id](*[_literal(arg) for arg in node.args])
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items) if isinstance(node, ast.Tuple) else set(items)
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def _actual_side(left, right):
    """Which side of `assert L == R` holds the computed value: the one that is not a literal."""
    for node, other in ((left, right), (right, left)):
        try:
            _literal(other)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, AttributeError):
            continue
        return node
    return left


_assertion_cache = {}


def _assertion_plan(source):
    """How to run an assertion, cached by its text: `assert L == R` (one statement, no message)
    becomes two expressions evaluated in order and compared, which is what the statement does
    but also yields the computed value; anything else runs as given."""
    plan = _assertion_cache.get(source)
    if plan is not None:
        for part in plan[1:]:
            if isinstance(part, types.CodeType):
                _note(part)
        return plan
    try:
        tree = ast.parse(source, "<assertion>", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError) as error:
        raise _SyntaxProblem("assertion", error) from None
    body = tree.body
    if (
        len(body) == 1
        and isinstance(body[0], ast.Assert)
        and body[0].msg is None
        and isinstance(body[0].test, ast.Compare)
        and len(body[0].test.ops) == 1
        and isinstance(body[0].test.ops[0], ast.Eq)
    ):
        test = body[0].test
        left = compile(ast.Expression(test.left), "<assertion>", "eval", dont_inherit=True)
        right = compile(ast.Expression(test.comparators[0]), "<assertion>", "eval", dont_inherit=True)
        plan = ("compare", left, right, _actual_side(test.left, test.comparators[0]) is test.left)
    else:
        plan = ("statement", _compile_or_flag(source, "<assertion>", "exec", "assertion"))
    if len(_assertion_cache) > 4096:
        _assertion_cache.clear()
    _assertion_cache[source] = plan
    for part in plan[1:]:
        if isinstance(part, types.CodeType):
            _note(part)
    return plan


def _do_run(task, run, result):
    code = _compile_or_flag(task["code"], CODE_FILENAME, "exec", "code")
    call = _compile_or_flag(task["call"], "<call>", "eval", "call")
    namespace = _fresh_namespace()
    exec(code, namespace)
    value = eval(call, namespace)
    _describe_value(value, namespace, result)
    result["status"] = "ok"


def _describe_value(value, namespace, result):
    text, truncated = _safe_repr(value)
    result["repr"] = text
    if truncated:
        result["reprTruncated"] = True
    form = _json_form(value)
    if form is not _NO_JSON:
        result["json"] = form
    roundtrips = False
    if not truncated:
        try:
            # Not through the code cache: reprs are mostly unique and would evict real programs.
            back = eval(_note(compile(text, "<roundtrip>", "eval", dont_inherit=True)), namespace)
            roundtrips = bool(back == value)
        except (_SandboxTimeout, _OutputLimit, KeyboardInterrupt, MemoryError):
            raise
        except BaseException:  # noqa: BLE001 - a repr that does not parse simply does not round-trip
            roundtrips = False
    result["reprRoundTrips"] = roundtrips


def _do_check(task, run, result):
    code = _compile_or_flag(task["code"], CODE_FILENAME, "exec", "code")
    if "assertion" in task:
        plan = _assertion_plan(task["assertion"])
        namespace = _fresh_namespace()
        if plan[0] == "compare":
            _kind, left_code, right_code, actual_is_left = plan
            exec(code, namespace)
            left = eval(left_code, namespace)
            right = eval(right_code, namespace)
            result["actualRepr"] = _safe_repr(left if actual_is_left else right)[0]
            passed = bool(left == right)
        else:
            exec(code, namespace)
            try:
                exec(plan[1], namespace)
                passed = True
            except AssertionError as error:
                tb = error.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                if tb is None or tb.tb_frame.f_code.co_filename != "<assertion>":
                    raise
                passed = False
        result["status"] = "passed" if passed else "failed"
        if not passed:
            result["detail"] = "assertion failed"
        return
    call = _compile_or_flag(task["call"], "<call>", "eval", "call")
    mode = task.get("expectedMode", "eval")
    if mode == "literal":
        try:
            ast.parse(task["expected"].strip(), "<expected>", "eval")
        except (SyntaxError, ValueError) as error:
            raise _SyntaxProblem("expected", error) from None
    else:
        _compile_or_flag(task["expected"], "<expected>", "eval", "expected")
    namespace = _fresh_namespace()
    exec(code, namespace)
    actual = eval(call, namespace)
    result["actualRepr"] = _safe_repr(actual)[0]
    try:
        expected = _eval_expected(task["expected"], mode)
    except ValueError as error:
        if mode == "literal":
            result["status"] = "failed"
            result["detail"] = f"expected is not a literal: {_truncate(str(error), 200)}"
            return
        raise
    passed = bool(actual == expected)
    result["status"] = "passed" if passed else "failed"
    if not passed:
        result["detail"] = "actual != expected"


# ---------------------------------------------------------------------------------------------
# Tracing, following REval's dynamics.py: frames whose code was compiled under CODE_FILENAME are
# traced (nested functions, lambdas, comprehensions); a `line` event records the frame's locals
# (modules, functions, builtins, iterators and generators skipped); consecutive events on the same
# line number update one state; `return`/`exception` attach to the current state, or open a new
# one when the line differs. "After line L" is the state that follows it (the last state keeps
# its own locals).


class _Tracer:
    __slots__ = ("states", "steps", "max_steps", "truncated", "chars")

    def __init__(self, max_steps):
        self.states = []  # [line, locals-repr dict, return repr or None, exception name or None]
        self.steps = 0
        self.max_steps = max_steps
        self.truncated = False
        self.chars = 0  # characters of repr recorded so far, capped by _Config.max_trace_chars

    def global_trace(self, frame, event, _arg):
        if event != "call" or self.truncated:
            return None
        if frame.f_code.co_filename == CODE_FILENAME:
            return self.local_trace
        return None

    def _state(self, line):
        states = self.states
        if states and states[-1][0] == line:
            return states[-1]
        state = [line, {}, None, None]
        states.append(state)
        return state

    def local_trace(self, frame, event, arg):
        if self.truncated:
            return None
        if event == "line":
            self.steps += 1
            if self.steps > self.max_steps:
                self.steps = self.max_steps
                self.truncated = True
                sys.settrace(None)
                frame.f_trace = None
                return None
            snapshot = {}
            size = 0
            for key, value in frame.f_locals.items():
                name = value.__class__.__name__
                if name in ("module", "function", "builtin_function_or_method"):
                    continue
                if isinstance(value, (_Iterator, _Generator)):
                    continue
                text = _safe_repr(value)[0]
                snapshot[key] = text
                size += len(text)
            self.chars += size
            if self.chars > _Config.max_trace_chars:
                # The states would outgrow what is worth sending back: stop like at max_steps.
                self.steps -= 1
                self.truncated = True
                sys.settrace(None)
                frame.f_trace = None
                return None
            self._state(frame.f_lineno)[1] = snapshot
        elif event == "return":
            self._state(frame.f_lineno)[2] = _safe_repr(arg)[0]
        elif event == "exception":
            self._state(frame.f_lineno)[3] = arg[0].__name__
        return None


def _do_trace(task, run, result):
    code = _compile_or_flag(task["code"], CODE_FILENAME, "exec", "code")
    setup_source = task.get("setup") or ""
    setup = _compile_or_flag(setup_source, "<setup>", "exec", "setup") if setup_source else None
    try:
        call = _compile(task["call"], "<call>", "eval")
        is_expression = True
    except SyntaxError:
        call = _compile_or_flag(task["call"], "<call>", "exec", "call")
        is_expression = False
    namespace = _fresh_namespace()
    exec(code, namespace)
    if setup is not None:
        exec(setup, namespace)
    tracer = _Tracer(int(task.get("maxSteps") or 10_000))
    result["_tracer"] = tracer
    sys.settrace(tracer.global_trace)
    try:
        value = eval(call, namespace) if is_expression else exec(call, namespace)
    finally:
        sys.settrace(None)
    _describe_value(value, namespace, result)
    result["status"] = "ok"


def _finish_trace(result):
    tracer = result.pop("_tracer", None)
    states = tracer.states if tracer else []
    count = len(states)
    path = [state[0] for state in states]
    entries = []
    for index, state in enumerate(states):
        after = states[index + 1] if index + 1 < count else state
        entry = {"line": state[0], "locals": after[1]}
        if state[2] is not None:
            entry["return"] = state[2]
        if state[3] is not None:
            entry["exception"] = state[3]
        entries.append(entry)
    result["coverage"] = sorted(set(path))
    result["path"] = path
    result["states"] = entries
    result["steps"] = tracer.steps if tracer else 0
    result["truncated"] = bool(tracer and tracer.truncated)


_HANDLERS = {"run": _do_run, "check": _do_check, "trace": _do_trace}


def execute(task):
    """Run one task (a dict) and return its result dict. Never raises."""
    kind = task.get("kind")
    run = _Run()
    result = {"status": "sandbox_error"}
    started = time.perf_counter()
    handler = _HANDLERS.get(kind)
    _task_risk[0] = False
    try:
        if handler is None:
            result["detail"] = f"unknown task kind {kind!r}"
        else:
            _enter(run, task.get("stdin"))
            handler(task, run, result)
    except _SyntaxProblem as problem:
        result["status"] = "syntax_error"
        result["detail"] = _syntax_detail(problem)
    except BaseException as error:  # noqa: BLE001 - every outcome of untrusted code is a result
        status, exc = _classify(error, run)
        result["status"] = status
        if exc is not None:
            result["exception"] = _exception_info(exc)
        if status == "output_limit":
            result["detail"] = f"output exceeded {_Config.max_output_chars} characters"
        elif status == "memory":
            result["detail"] = "the task ran out of memory"
    finally:
        sys.settrace(None)
        if run.stdout.overflow or run.stderr.overflow:
            if result["status"] not in ("syntax_error",):
                result["status"] = "output_limit"
                result["detail"] = f"output exceeded {_Config.max_output_chars} characters"
                result.pop("repr", None)
                result.pop("json", None)
        try:
            _restore_state(full=_task_risk[0])
        except BaseException as error:  # noqa: BLE001 - reported, the engine replaces the worker
            result["status"] = "sandbox_error"
            result["detail"] = f"could not restore the interpreter: {type(error).__name__}: {error}"
            result["fatal"] = True
    if kind == "trace":
        _finish_trace(result)
    elif "_tracer" in result:
        result.pop("_tracer")
    if kind == "check" and result["status"] == "ok":
        result["status"] = "sandbox_error"
    result["stdout"] = run.stdout.text()
    if run.stdout.overflow:
        result["stdoutTruncated"] = True
    stderr = run.stderr.text()
    if stderr:
        result["stderr"] = stderr
    result["durationMs"] = round((time.perf_counter() - started) * 1000, 3)
    return result


def _encode(result):
    try:
        return json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        return json.dumps({"status": "sandbox_error", "detail": f"result not encodable: {error}", "stdout": ""})


def run_task(task_json):
    """Pyodide entry point: one task as JSON text in, its result as JSON text out."""
    try:
        task = json.loads(task_json)
    except ValueError as error:
        return json.dumps({"status": "sandbox_error", "detail": f"bad task: {error}", "stdout": ""})
    return _encode(execute(task))


def configure(options):
    """Set limits (before the first task); options: dict with camelCase keys as in SandboxOptions."""
    _Config.max_output_chars = int(options.get("maxOutputChars", _Config.max_output_chars))
    _Config.max_repr_chars = int(options.get("maxReprChars", _Config.max_repr_chars))


def setup(options_json, trusted_codes=()):
    """Configure, snapshot and lock the interpreter. Called once, before any task."""
    configure(json.loads(options_json))
    sys.setrecursionlimit(1000)
    random.seed(0)
    _secure_process(trusted_codes)
    _take_snapshots()
    return sys.version.split()[0]


# ---------------------------------------------------------------------------------------------
# CPython engine: a line protocol over private file descriptors.


def _serve():
    import resource
    import signal

    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    reader = io.BufferedReader(proto_in, 1 << 16)
    first = reader.readline()
    hello = json.loads(first)
    nonce = hello["nonce"]
    options = hello.get("options", {})

    limit_mb = int(options.get("memoryLimitMb", 0) or 0)
    if limit_mb > 0:
        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No new processes or threads (the kernel ignores this for root; the audit hook still refuses
    # fork/exec/spawn, and Pyodide has no threads at all).
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass

    def on_alarm(_signum, _frame):
        raise _SandboxTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]

    def set_cpu_limit(timeout):
        # CPU seconds are counted for the whole process: allow this task its share and one more
        # second; past the soft limit the kernel's SIGXCPU ends the process even inside C code.
        # The hard limit stays put (lowering it could not be undone without privileges).
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(math.ceil(used.ru_utime + used.ru_stime + timeout + 1))
        if cpu_hard != resource.RLIM_INFINITY:
            soft = min(soft, cpu_hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))

    def send(obj):
        proto_out.write((nonce + json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"))

    try:
        setup(json.dumps(options), (set_cpu_limit.__code__,))
        send({"ready": True, "version": sys.version.split()[0]})
        _serve_loop(reader, proto_out, nonce, set_cpu_limit, signal)
    except BaseException as error:  # noqa: BLE001 - the engine reports this and replaces the worker
        import traceback

        send({"fatal": "".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:]})
        raise


def _serve_loop(reader, proto_out, nonce, set_cpu_limit, signal):
    while True:
        line = reader.readline()
        if not line:
            return
        message = json.loads(line)
        batch_id = message["id"]
        for index, task in enumerate(message["tasks"]):
            timeout = max(0.001, float(task.get("timeoutMs", 5000)) / 1000.0)
            set_cpu_limit(timeout)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                result = execute(task)
            except _SandboxTimeout:
                result = {"status": "timeout", "stdout": ""}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            try:
                encoded = json.dumps(result, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as error:
                encoded = json.dumps({"status": "sandbox_error", "detail": f"result not encodable: {error}", "stdout": ""})
            proto_out.write((nonce + '{"id":' + json.dumps(batch_id) + ',"index":' + str(index) + ',"result":' + encoded + "}\n").encode("utf-8"))


if __name__ == "__main__":
    _serve()
