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
import functools
import gc
import io
import json
import math
import os
import random
import time
import types
from collections.abc import Generator as _Generator
from collections.abc import Iterator as _Iterator
from operator import add as _add, mul as _mul, sub as _sub
from operator import is_ as _is

_LRU_CACHE_TYPE = functools._lru_cache_wrapper

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
    """Caps on what a task sends back (the host enforces the same; see the README's limits)."""

    max_output_chars = 10_000
    max_repr_chars = 10_000
    max_message_chars = 2_000  # exception messages
    max_name_chars = 200  # exception type names
    max_trace_chars = 8_000_000  # a trace's recorded locals, returns and per-line overhead
    max_json_chars = 8_000_000  # the JSON form of a value whose repr was cut
    max_result_chars = 8_100_000  # one encoded result: the backstop, set by configure()


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
# Isolation and integrity: the guard.
#
# After each task the interpreter must be as it was before it, and the harness itself (its
# globals, classes, tables and private builtins) must be untouched, or the verdict it computed
# cannot be trusted and later tasks would be judged by whatever the task left behind. Task code
# can reach the harness's globals (through `__globals__` of a method of a harness class, or a
# frame), so nothing the check relies on lives there: the snapshots, the check, and the flag that
# says a task ran reflective code live in one closure with the audit hook (`_make_guard`), which
# nothing in Python can reach (audit hooks cannot be listed, the closure's functions are held
# only by the interpreter's hook list and by the host). The host calls the runner it returns.

_SYS_ATTRS = (
    "stdout stderr stdin displayhook excepthook unraisablehook breakpointhook path meta_path "
    "path_hooks path_importer_cache argv dont_write_bytecode"
).split()
_HEAPTYPE = 1 << 9
_IMMUTABLETYPE = 1 << 8
_RISKY_EVENT = "codereasoner.sandbox.risky"
_CREATE_EVENT = "codereasoner.sandbox.create_module"
# Harness tables that change on every task by design: after a task that could reach them, put back
# as they were when its code was compiled (the guard copies them then).
_CACHE_NAMES = ("_code_cache", "_risk_cache", "_assertion_cache", "_task_risk", "_judge_cache")
# Garbage collections run after a task that could reach shared state, so that finalizers it left
# behind run now, not during a later task; a task whose finalizers keep making garbage past this
# gets its worker replaced.
_COLLECT_ROUNDS = 4


def _mutable_class(value):
    return isinstance(value, type) and value.__flags__ & _HEAPTYPE and not value.__flags__ & _IMMUTABLETYPE


def _make_guard(roots, cwd, trusted_codes, harness):
    """The audit hook and the task runner, as closures over private state.

    `hook(event, args)`: the audit policy (refusals below). `snapshot()`: records the clean state
    (called once, at the end of setup). `run(task) -> dict`: runs one task with the harness's
    `execute`, then restores shared interpreter state and checks the harness; when the harness
    was changed the result becomes a `sandbox_error` with `fatal: True` (the host replaces the
    worker), never the verdict the changed harness computed.
    """
    blocked_modules = _BLOCKED_MODULES
    blocked_prefixes = _BLOCKED_EVENT_PREFIXES
    path_events = _PATH_EVENTS
    write_flags = _WRITE_FLAGS
    risky_event, create_event = _RISKY_EVENT, _CREATE_EVENT
    str_type, bytes_type, int_type, type_type = str, bytes, int, type
    dict_type, list_type, function_type = dict, list, types.FunctionType
    permission_error, import_error, base_exception = PermissionError, ImportError, BaseException
    attribute_errors = (AttributeError, TypeError)
    len_, zip_, map_, all_, isinstance_, id_, sorted_ = len, zip, map, all, isinstance, id, sorted
    range_, set_, list_, getattr_, setattr_, hasattr_ = range, set, list, getattr, setattr, hasattr
    dict_, dict_copy, dict_clear, dict_update = dict, dict.copy, dict.clear, dict.update
    list_copy = list.copy
    is_ = _is
    getframe = sys._getframe
    sys_module = sys
    modules = sys.modules
    builtins_dict = builtins.__dict__
    settrace, setprofile = sys.settrace, sys.setprofile
    getrecursionlimit, setrecursionlimit = sys.getrecursionlimit, sys.setrecursionlimit
    get_digits = getattr(sys, "get_int_max_str_digits", None)
    set_digits = getattr(sys, "set_int_max_str_digits", None)
    seed = random.seed
    collect, gc_enable, gc_isenabled = gc.collect, gc.enable, gc.isenabled
    gc_freeze, gc_get_freeze_count = gc.freeze, gc.get_freeze_count
    gc_get_threshold, gc_set_threshold, gc_callbacks = gc.get_threshold, gc.set_threshold, gc.callbacks
    type_delattr, type_setattr = type.__delattr__, type.__setattr__
    harness_globals = harness
    execute = harness["execute"]
    protected_attrs = frozenset(("__code__",))
    harness_function_attrs = frozenset(("__code__", "__defaults__", "__kwdefaults__"))
    # Originals of the `_imp` functions that create modules, replaced by `_imp_guard` wrappers that
    # ask this hook (so no Python object but this closure holds them).
    creators = {}
    risk = [False]
    collect_rounds = _COLLECT_ROUNDS
    sys_attr_names = tuple(_SYS_ATTRS)
    module_type = types.ModuleType
    lru_cache_type = _LRU_CACHE_TYPE
    cache_names = _CACHE_NAMES
    mutable_class = _mutable_class
    # Everything below is filled by snapshot().
    clean = {}
    sys_attrs = []  # (name, value)
    module_dicts, module_copies = [], []
    containers, container_copies = [], []  # dicts and lists held in module globals
    classes, class_views, class_copies = [], [], []  # mutable classes defined in loaded modules
    harness_classes, harness_class_copies = [], []
    exposed_classes, exposed_views, exposed_copies = [], [], []  # harness classes a task receives (its exceptions)
    harness_tables, harness_table_copies = [], []
    caches, cache_copies = [], []
    lru_caches = []

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

    def create_module(args):
        kind, spec, box = args
        name = getattr_(spec, "name", None)
        if type_type(name) is not str_type:
            raise import_error("module spec without a name")
        top = name.partition(".")[0]
        if top in blocked_modules or top == "_imp":
            raise import_error("import of " + name + " is blocked in the sandbox")
        original = creators.get(kind)
        if original is None or type_type(box) is not list_type:
            raise import_error("the sandbox cannot create " + name)
        box.append(original(spec))

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
            name = args[1] if len_(args) > 1 else None
            if type_type(target) is function_type:
                if name in protected_attrs or (
                    name in harness_function_attrs and target.__globals__ is harness_globals
                ):
                    raise permission_error("the sandbox blocks changing " + str_type(name))
            elif name in protected_attrs and type_type(target) is not type_type:
                raise permission_error("the sandbox blocks changing " + str_type(name))
            return
        if event == risky_event:
            if not risk[0]:
                risk[0] = True
                # The caches as they are before any of the task's code runs (the harness signals
                # when it compiles the code): put back after the task if they were touched.
                cache_copies[:] = [
                    dict_copy(c) if type_type(c) is dict_type else list_copy(c) for c in caches
                ]
            return
        if event == create_event:
            create_module(args)
            return
        if event == "sys.addaudithook":
            # A hook added by a task would run inside every later task: refuse it. CPython
            # swallows the refusal (sys.addaudithook returns None) and does not add the hook.
            raise permission_error("the sandbox blocks adding audit hooks")
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

    def same_dict(current, copy):
        # Identity, never ==: a value a task planted may define __eq__ (and run code here), or be
        # an equal object of another type (a str subclass). Same length and the same value objects
        # in the same order: a rebound, added or deleted name shows (keys are compared only
        # where values cannot tell, in same_keys).
        return len_(current) == len_(copy) and all_(map_(is_, current.values(), copy.values()))

    def same_keys(current, copy):
        return all_(map_(is_, current, copy))

    def same_list(current, copy):
        return len_(current) == len_(copy) and all_(map_(is_, current, copy))

    def reset_dict(current, copy, graveyard):
        graveyard.append(dict_copy(current))
        dict_clear(current)
        dict_update(current, copy)

    def reset_class(cls, copy, graveyard):
        current = cls.__dict__
        graveyard.append(dict_(current))
        for key in [k for k in current if k not in copy]:
            try:
                type_delattr(cls, key)
            except attribute_errors:
                pass
        for key, value in copy.items():
            if current.get(key, reset_class) is not value and key not in ("__dict__", "__weakref__"):
                try:
                    type_setattr(cls, key, value)
                except attribute_errors:
                    pass

    def snapshot(extra_tables=()):
        clean["builtins"] = dict_copy(builtins_dict)
        clean["modules"] = dict_copy(modules)
        clean["recursion"] = getrecursionlimit()
        clean["digits"] = get_digits() if get_digits is not None else None
        clean["threshold"] = gc_get_threshold()
        clean["gc_callbacks"] = list_copy(gc_callbacks)
        sys_attrs[:] = [(name, getattr_(sys_module, name)) for name in sys_attr_names if hasattr_(sys_module, name)]
        module_dicts[:] = [
            module.__dict__
            for module in list_(modules.values())
            if isinstance_(module, module_type) and module.__name__ != "__main__"
        ]
        module_copies[:] = [dict_copy(namespace) for namespace in module_dicts]
        seen_classes, seen_containers, found_caches = set_(), set_(), []
        for namespace in module_dicts:
            for value in list_(namespace.values()):
                kind = type_type(value)
                if (kind is dict_type or kind is list_type) and id_(value) not in seen_containers:
                    if value is not builtins_dict and value is not modules and value is not gc_callbacks:
                        seen_containers.add(id_(value))
                        containers.append(value)
                elif mutable_class(value) and value not in seen_classes:
                    seen_classes.add(value)
                    classes.append(value)
                elif kind is lru_cache_type:
                    found_caches.append(value)
        for cls in _js_classes():
            if cls not in seen_classes and mutable_class(cls):
                seen_classes.add(cls)
                classes.append(cls)
        container_copies[:] = [dict_copy(c) if type_type(c) is dict_type else list_copy(c) for c in containers]
        class_views[:] = [cls.__dict__ for cls in classes]  # live views, made once
        class_copies[:] = [dict_(view) for view in class_views]
        lru_caches[:] = found_caches
        own = harness_globals["__name__"]
        for value in harness_globals.values():
            if isinstance_(value, type_type) and value.__module__ == own:
                harness_classes.append(value)
        harness_class_copies[:] = [dict_(cls.__dict__) for cls in harness_classes]
        exposed_classes[:] = [harness_globals[name] for name in ("_OutputLimit", "_SandboxTimeout")]
        exposed_views[:] = [cls.__dict__ for cls in exposed_classes]
        exposed_copies[:] = [dict_(view) for view in exposed_views]
        clean["harness"] = dict_copy(harness_globals)
        clean["harness_builtins"] = dict_copy(harness_globals["__builtins__"])
        for name, value in harness_globals.items():
            kind = type_type(value)
            if name in cache_names:
                caches.append(value)
            elif kind is dict_type and value is not harness_globals["__builtins__"]:
                harness_tables.append(value)
            elif kind is list_type:
                harness_tables.append(value)
        harness_tables.extend(extra_tables)
        harness_table_copies[:] = [
            dict_copy(t) if type_type(t) is dict_type else list_copy(t) for t in harness_tables
        ]
        # Everything alive now is permanent: a full collection after a task then only looks at
        # what was made since (about 1 ms instead of 150 in Pyodide).
        collect()
        gc_freeze()
        clean["frozen"] = gc_get_freeze_count()

    def restore_quick(graveyard):
        settrace(None)
        setprofile(None)
        if not same_dict(builtins_dict, clean["builtins"]):
            reset_dict(builtins_dict, clean["builtins"], graveyard)
        for name, value in sys_attrs:
            if getattr_(sys_module, name, restore_quick) is not value:
                setattr_(sys_module, name, value)
        if not same_dict(modules, clean["modules"]):
            reset_dict(modules, clean["modules"], graveyard)
        if getrecursionlimit() != clean["recursion"]:
            setrecursionlimit(clean["recursion"])
        if get_digits is not None and get_digits() != clean["digits"]:
            set_digits(clean["digits"])
        seed(0)

    def restore_full(graveyard):
        if not same_keys(builtins_dict, clean["builtins"]):
            reset_dict(builtins_dict, clean["builtins"], graveyard)
        for namespace, copy in zip_(module_dicts, module_copies):
            if not same_dict(namespace, copy):
                reset_dict(namespace, copy, graveyard)
        for container, copy in zip_(containers, container_copies):
            if type_type(container) is dict_type:
                if not same_dict(container, copy):
                    reset_dict(container, copy, graveyard)
            elif not same_list(container, copy):
                graveyard.append(list_copy(container))
                container[:] = copy
        for cls, view, copy in zip_(classes, class_views, class_copies):
            if not same_dict(view, copy):
                reset_class(cls, copy, graveyard)
        if not same_list(gc_callbacks, clean["gc_callbacks"]):
            graveyard.append(list_copy(gc_callbacks))
            gc_callbacks[:] = clean["gc_callbacks"]
        if not gc_isenabled():
            gc_enable()
        if gc_get_threshold() != clean["threshold"]:
            gc_set_threshold(*clean["threshold"])
        if gc_get_freeze_count() < clean["frozen"]:
            gc_freeze()  # a task unfroze them: freeze again (its leftovers too, which never run)
        for cache in lru_caches:
            cache.cache_clear()

    def check_harness(graveyard):
        """Names of the harness parts a task changed (restored here), empty when intact."""
        changed = []
        if not same_dict(harness_globals, clean["harness"]) or not same_keys(harness_globals, clean["harness"]):
            changed.append("globals")
            reset_dict(harness_globals, clean["harness"], graveyard)
        own_builtins = harness_globals["__builtins__"]
        if not same_dict(own_builtins, clean["harness_builtins"]):
            changed.append("builtins")
            reset_dict(own_builtins, clean["harness_builtins"], graveyard)
        for cls, copy in zip_(harness_classes, harness_class_copies):
            if not same_dict(cls.__dict__, copy):
                changed.append("class " + cls.__name__)
                reset_class(cls, copy, graveyard)
        for table, copy in zip_(harness_tables, harness_table_copies):
            if type_type(table) is dict_type:
                if not same_dict(table, copy):
                    changed.append("tables")
                    reset_dict(table, copy, graveyard)
            elif not same_list(table, copy):
                changed.append("tables")
                graveyard.append(list_copy(table))
                table[:] = copy
        return changed

    def check_exposed(graveyard):
        changed = []
        for cls, view, copy in zip_(exposed_classes, exposed_views, exposed_copies):
            if not same_dict(view, copy):
                changed.append("class " + cls.__name__)
                reset_class(cls, copy, graveyard)
        return changed

    def settle():
        """Restore everything a task may have changed; (harness parts changed, worker sound)."""
        changed = []
        sound = True
        for _round in range_(collect_rounds):
            if collect() == 0:
                break
        else:
            sound = False
        # Restoring drops the task's objects; their finalizers may change state again, so the
        # dropped objects are released and everything is checked once more.
        for _attempt in range_(3):
            graveyard = []
            restore_quick(graveyard)
            restore_full(graveyard)
            changed += check_harness(graveyard)
            if not graveyard:
                break
            del graveyard
            collect()
        else:
            sound = False
        for cache, copy in zip_(caches, cache_copies):
            if type_type(cache) is dict_type:
                if not same_dict(cache, copy) or not same_keys(cache, copy):
                    reset_dict(cache, copy, [])
            else:
                cache[:] = [False]
        del cache_copies[:]
        # What is alive now (the harness's caches, mostly) joins the permanent generation, so the
        # next collection here looks only at what later tasks make.
        gc_freeze()
        return changed, sound

    def settle_quick():
        graveyard = []
        restore_quick(graveyard)
        changed = check_exposed(graveyard)
        if graveyard:  # unexpected after code that reaches nothing: do the whole round
            del graveyard
            more, sound = settle()
            return changed + more, sound
        return changed, True

    def run(task, after=None):
        risk[0] = False
        try:
            result = execute(task)
        except base_exception as error:  # noqa: BLE001 - execute never raises unless changed
            result = {"status": "sandbox_error", "stdout": "", "detail": "the harness failed: " + type_type(error).__name__}
            risk[0] = True
        if after is not None:
            after()
        # A timeout signal meant for the task can land here (SIGALRM, Pyodide's interrupt): then the
        # restore is done again (each task gets one such signal).
        changed, sound = ["restore"], False
        for _attempt in range_(3):
            try:
                changed, sound = settle() if risk[0] else settle_quick()
                break
            except base_exception:  # noqa: BLE001
                risk[0] = True
        if changed:
            return {
                "status": "sandbox_error",
                "detail": "the task changed the sandbox harness ("
                + ", ".join(sorted_(set_(changed)))
                + "); its result is discarded and the worker replaced",
                "stdout": "",
                "fatal": True,
            }
        if not sound:
            result["fatal"] = True
        return result

    return hook, snapshot, run, creators


def _imp_guard(creators):
    """Route `_imp.create_builtin` / `create_dynamic` (what every import path ends in: `import`,
    `importlib.import_module`, `module_from_spec`, direct calls) through the audit hook, which
    refuses the blocked modules and alone holds the originals: `_pyodide_core`, `js`, `ctypes`,
    a second `_imp`... cannot be created. Returns the wrappers' globals (checked by the guard)."""
    import _imp

    namespaces = []
    for kind in ("create_builtin", "create_dynamic"):
        original = getattr(_imp, kind, None)
        if original is None:
            continue
        creators[kind] = original
        # The wrapper's globals hold only what it needs: no path back to the harness or the originals.
        namespace = {
            "__builtins__": {},
            "_audit": sys.audit,
            "_event": _CREATE_EVENT,
            "_kind": kind,
            "_ImportError": ImportError,
        }
        wrapper = types.FunctionType(_create_via_hook.__code__, namespace, kind, (None,))
        setattr(_imp, kind, wrapper)
        namespaces.append(namespace)
    return namespaces


def _create_via_hook(spec, file=None):  # noqa: ARG001 - create_dynamic's signature
    box = []
    _audit(_event, _kind, spec, box)  # noqa: F821 - names from the wrapper's own globals
    if not box:
        raise _ImportError("the sandbox refused to create this module")  # noqa: F821
    return box[0]


def _blocked_exit(*_args, **_kwargs):
    raise SystemExit("os._exit is disabled in the sandbox")


def _secure_process(trusted_codes=()):
    """Strip what untrusted code could use to leave the interpreter, then add the audit hook.
    Returns the guard's (snapshot, run) functions; nothing in the harness keeps them."""
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
    # CPython runs this file as __main__: a task importing __main__ would get the harness module.
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__dict__", None) is globals():
        sys.modules["__main__"] = types.ModuleType("__main__")
    hook, snapshot, run, creators = _make_guard(
        allowed_roots, os.getcwd().rstrip("/"), frozenset(trusted_codes), globals()
    )
    wrapper_namespaces = _imp_guard(creators)
    sys.addaudithook(hook)
    return snapshot, run, wrapper_namespaces


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
    _neuter_js_classes(pyodide_packages)
    gc.collect()


_JS_PACKAGES = ("js", "pyodide", "pyodide_js", "_pyodide", "_pyodide_core", "micropip")


def _js_classes(packages=_JS_PACKAGES):
    """Classes of the Pyodide FFI still alive (every class is reachable through
    `object.__subclasses__()`): JsProxy and its family, JsException, the import hook classes."""
    found, seen, stack = [], set(), [object]
    while stack:
        try:
            subclasses = type.__subclasses__(stack.pop())
        except TypeError:
            continue
        for cls in subclasses:
            if cls in seen:
                continue
            seen.add(cls)
            stack.append(cls)
            module = cls.__dict__.get("__module__", "")
            if isinstance(module, str) and module.partition(".")[0] in packages:
                found.append(cls)
    return found


def _neuter_js_classes(packages):
    """Make the FFI classes refuse to make instances: `JsException("x")` would otherwise create a
    JavaScript Error whose prototype chain leads to Object.prototype in the worker's realm. The
    guard snapshots these classes, so a task that puts the constructors back is undone."""
    refuse = types.FunctionType(
        _refuse_js.__code__, {"__builtins__": {}, "_TypeError": TypeError}, "__new__"
    )
    for cls in _js_classes(packages):
        for name in ("__new__", "__init__"):
            try:
                type.__setattr__(cls, name, staticmethod(refuse) if name == "__new__" else refuse)
            except (TypeError, AttributeError):
                pass  # an immutable type: Python cannot instantiate it from a task either


def _refuse_js(*_args, **_kwargs):
    raise _TypeError("the sandbox does not create JavaScript objects")  # noqa: F821 - own globals


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
        # Tells the guard (which the task cannot reach) to restore and check everything after
        # this task. Raised when the code is compiled, before any of it runs.
        sys.audit(_RISKY_EVENT)
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
    # A compact dict copies as one block (the live builtins module dict, with its history of
    # deletions, copies entry by entry: ten times slower). The guard checks this table.
    return {"__name__": "__main__", "__builtins__": dict(_BUILTINS_COPY)}


_BUILTINS_COPY = {}  # the builtins as they are at setup, filled by _setup


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
    if not isinstance(message, str):
        message = "<str failed>"
    return {
        "type": _truncate(type(error).__name__, _Config.max_name_chars),
        "message": _truncate(message, _Config.max_message_chars),
    }


def _eval_expected(source, mode):
    if mode == "literal":
        # The judge's rule (see "Judging a model's answer" below): one definition of a literal.
        positional, _keywords = _judge_parsed(source, "value", "")
        return _judge_value(positional[0])
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
    if form is not _NO_JSON and truncated:
        # An uncut repr bounds the JSON form; past it, the form is measured (e.g. REval's
        # harness returns its JSON as one long str) and sent only within max_json_chars.
        try:
            size = len(json.dumps(form, ensure_ascii=False))
        except (TypeError, ValueError, RecursionError):
            size = None
        if size is None or size > _Config.max_json_chars:
            form = _NO_JSON
            result["jsonOmitted"] = True
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


# What a recorded entry costs beyond its reprs (JSON punctuation, line number, path entry).
_STATE_OVERHEAD_CHARS = 16


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
            size = _STATE_OVERHEAD_CHARS
            for key, value in frame.f_locals.items():
                name = value.__class__.__name__
                if name in ("module", "function", "builtin_function_or_method"):
                    continue
                if isinstance(value, (_Iterator, _Generator)):
                    continue
                text = _safe_repr(value)[0]
                snapshot[key] = text
                size += len(key) + len(text) + _STATE_OVERHEAD_CHARS
            if self._over(size, frame):
                self.steps -= 1
                return None
            self._state(frame.f_lineno)[1] = snapshot
        elif event == "return":
            text = _safe_repr(arg)[0]
            if not self._over(len(text) + _STATE_OVERHEAD_CHARS, frame):
                self._state(frame.f_lineno)[2] = text
        elif event == "exception":
            name = _truncate(arg[0].__name__, _Config.max_name_chars)
            if not self._over(len(name) + _STATE_OVERHEAD_CHARS, frame):
                self._state(frame.f_lineno)[3] = name
        return None

    def _over(self, size, frame):
        """Count `size` characters; past max_trace_chars stop recording, as at max_steps."""
        self.chars += size
        if self.chars <= _Config.max_trace_chars:
            return False
        self.truncated = True
        sys.settrace(None)
        frame.f_trace = None
        return True


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


# ---------------------------------------------------------------------------------------------
# Judging a model's answer (task kind "judge"): the one rule every scorer uses. The answer text
# arrives as a value (its own field), never pasted into code. Its newlines are normalised as
# CPython's tokenizer does for string input (\r\n and a lone \r become \n), then CPython's own
# parser (`ast.parse(mode="eval")`) reads it; it is accepted only when every node of the tree is
# on the whitelist below, and only the value that the whitelisted tree evaluates to (with no
# builtins but the listed constructors) reaches the comparison.
#
# What "literal" admits:
# - Python literals as `ast.literal_eval` reads them: numbers, strings, bytes, True/False/None,
#   `...`, tuples, lists, sets and dicts of literals, `-x`, `+x` and `a+bj`/`a-bj`;
# - what `repr` prints for values without literal syntax, and side-effect-free constructors on
#   literals: `set(...)`, `frozenset(...)`, `float('nan')`, `complex(...)`, `dict(...)` (keyword
#   arguments too), `list(...)`, `tuple(...)`, and `range(<ints>)` (not inside another call, so
#   `list(range(10**12))` cannot be written);
# - a call of a side-effect-free, non-growing `str` method on a string literal with literal
#   arguments: `'a-b'.split('-')`, `'$78'.upper()`;
# - `'a' + 'b'` (strings or bytes) and a repetition of a literal sequence at most 10,000 long
#   (`['A'] * 20`);
# - in argument lists only (input answers): a name the task's code binds to plain data, or a
#   slice of it (`xs[:]`), and `lambda x: <body>` whose body uses only its own
#   parameters, constants and operators (no `**`, `<<`), attribute names without a leading `_`
#   or a frame/code prefix, calls, subscripts, displays and `a if c else b`: no name but the
#   parameters is reachable, and the lambda runs with empty builtins.
# Every CRUXEval-I gold input is such an argument list (samples 344, 364, 378, 522, 694, 720 and
# 770 use a lambda, `dict(...)`, `range(...)` and `str` methods; 152, 239 and 258 a repetition,
# a concatenation and a global of the code).

_JUDGE_MAX_ANSWER_CHARS = 100_000
_JUDGE_MAX_DEPTH = 100
_JUDGE_MAX_REPEAT = 10_000
_JUDGE_DATA_TYPES = (list, tuple, dict, set, frozenset, str, bytes, int, float, complex, bool, type(None))
_JUDGE_CONSTRUCTORS = {
    "set": set,
    "frozenset": frozenset,
    "float": float,
    "complex": complex,
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "range": range,
}
_JUDGE_STR_METHODS = frozenset(
    "split rsplit splitlines upper lower casefold swapcase title capitalize strip lstrip rstrip join".split()
)
_JUDGE_LAMBDA_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.BitAnd, ast.BitOr, ast.BitXor, ast.RShift, ast.MatMult)
_JUDGE_ATTRIBUTE_PREFIXES = ("_", "f_", "tb_", "gi_", "cr_", "ag_", "co_")
_JUDGE_ARGUMENTS_MARKER = "__cr_arguments__"


class _NotLiteral(ValueError):
    """The answer is not a literal (or an argument list of literals); the message says why."""


def _judge_real(node):
    if type(node) is ast.UnaryOp and type(node.op) in (ast.USub, ast.UAdd):
        node = node.operand
    return type(node) is ast.Constant and type(node.value) in (int, float)


def _judge_node(node, depth, where, params=None):
    """Raise _NotLiteral unless `node` is on the whitelist. `where`: "value" (top level or inside a
    display), "argument" (an argument of the answer's call: lambdas allowed), "constructor" (an
    argument of a whitelisted call: no `range`), "lambda" (a lambda body; params: its names)."""
    if depth > _JUDGE_MAX_DEPTH:
        raise _NotLiteral("nested too deeply")
    depth += 1
    kind = type(node)
    if where == "lambda":
        _judge_lambda_node(node, depth, params)
        return
    if kind is ast.Constant:
        return
    inner = "constructor" if where == "constructor" else "value"
    if kind in (ast.Tuple, ast.List, ast.Set):
        for element in node.elts:
            _judge_node(element, depth, inner)
        return
    if kind is ast.Dict:
        for key, value in zip(node.keys, node.values):
            if key is None:
                raise _NotLiteral("dict unpacking (**) is not a literal")
            _judge_node(key, depth, inner)
            _judge_node(value, depth, inner)
        return
    if kind is ast.UnaryOp:
        if type(node.op) in (ast.USub, ast.UAdd) and _judge_real(node.operand) or (
            type(node.op) in (ast.USub, ast.UAdd) and type(node.operand) is ast.Constant and type(node.operand.value) is complex
        ):
            return
        raise _NotLiteral("only + and - of a number are literal operators")
    if kind is ast.BinOp:
        left, right, op = node.left, node.right, type(node.op)
        if op in (ast.Add, ast.Sub) and _judge_real(left) and type(right) is ast.Constant and type(right.value) is complex:
            return
        if (
            op is ast.Add
            and type(left) is ast.Constant
            and type(right) is ast.Constant
            and type(left.value) in (str, bytes)
            and type(left.value) is type(right.value)
        ):
            return
        if op is ast.Mult:
            sequence, count = (left, right) if type(right) is ast.Constant else (right, left)
            if type(count) is ast.Constant and type(count.value) is int and 0 <= count.value:
                if type(sequence) is ast.Constant and type(sequence.value) in (str, bytes):
                    size = len(sequence.value)
                elif type(sequence) in (ast.List, ast.Tuple):
                    size = len(sequence.elts)
                    _judge_node(sequence, depth, inner)
                else:
                    size = None
                if size is not None:
                    if size * count.value > _JUDGE_MAX_REPEAT:
                        raise _NotLiteral(f"a repetition longer than {_JUDGE_MAX_REPEAT} items is not a literal")
                    return
        raise _NotLiteral("the only literal operations are a+bj, 'a' + 'b' and a short repetition ([x] * n)")
    if kind is ast.Name and where == "argument":
        # A plain data value the task's own code defines (CRUXEval-I sample 258 passes a global
        # list); the evaluation sees only such names, so a function or class name fails there.
        return
    if kind is ast.Subscript and where == "argument" and type(node.value) is ast.Name:
        bounds = (node.slice.lower, node.slice.upper, node.slice.step) if type(node.slice) is ast.Slice else (node.slice,)
        if all(bound is None or _judge_real(bound) for bound in bounds):
            return
        raise _NotLiteral("a subscript of a name takes integer literals only")
    if kind is ast.Call:
        _judge_call(node, depth, where)
        return
    if kind is ast.Lambda and where == "argument":
        arguments = node.args
        if (
            arguments.vararg is not None
            or arguments.kwarg is not None
            or arguments.kwonlyargs
            or arguments.defaults
            or arguments.kw_defaults
        ):
            raise _NotLiteral("a lambda argument takes plain positional parameters only")
        names = frozenset(a.arg for a in arguments.posonlyargs + arguments.args)
        _judge_node(node.body, depth, "lambda", names)
        return
    raise _NotLiteral(f"{kind.__name__} is not a literal")


def _judge_call(node, depth, where):
    func = node.func
    if type(func) is ast.Name and func.id in _JUDGE_CONSTRUCTORS:
        if func.id == "range" and where == "constructor":
            raise _NotLiteral("range(...) inside another call is not a literal")
        if node.keywords and func.id != "dict":
            raise _NotLiteral(f"{func.id}(...) takes no keyword arguments here")
        if func.id == "range" and not all(
            _judge_real(arg) and type(getattr(arg, "operand", arg).value) is int for arg in node.args
        ):
            raise _NotLiteral("range(...) takes integer literals only")
        for arg in node.args:
            _judge_node(arg, depth, "constructor")
        for keyword in node.keywords:
            if keyword.arg is None:
                raise _NotLiteral("keyword unpacking (**) is not a literal")
            _judge_node(keyword.value, depth, "constructor")
        return
    if (
        type(func) is ast.Attribute
        and func.attr in _JUDGE_STR_METHODS
        and type(func.value) is ast.Constant
        and type(func.value.value) is str
    ):
        for arg in list(node.args) + [keyword.value for keyword in node.keywords]:
            # Literal arguments without calls: the result is no longer than its inputs.
            _judge_node(arg, depth, "constructor")
            if any(type(part) is ast.Call for part in ast.walk(arg)):
                raise _NotLiteral(f"str.{func.attr}(...) takes literal arguments without calls")
        if any(keyword.arg is None for keyword in node.keywords):
            raise _NotLiteral("keyword unpacking (**) is not a literal")
        return
    raise _NotLiteral("a call is a literal only for set, frozenset, float, complex, dict, list, tuple, range or a str method on a string literal")


def _judge_lambda_node(node, depth, params):
    kind = type(node)
    if kind is ast.Constant:
        return
    if kind is ast.Name:
        if node.id not in params:
            raise _NotLiteral(f"a lambda may use only its own parameters, not {node.id!r}")
        return
    if kind is ast.Attribute:
        if node.attr.startswith(_JUDGE_ATTRIBUTE_PREFIXES):
            raise _NotLiteral(f"attribute {node.attr!r} is not allowed in a lambda")
        children = (node.value,)
    elif kind is ast.BinOp:
        if not isinstance(node.op, _JUDGE_LAMBDA_BINOPS):
            raise _NotLiteral(f"operator {type(node.op).__name__} is not allowed in a lambda")
        children = (node.left, node.right)
    elif kind is ast.UnaryOp:
        children = (node.operand,)
    elif kind is ast.BoolOp:
        children = tuple(node.values)
    elif kind is ast.Compare:
        children = (node.left, *node.comparators)
    elif kind is ast.IfExp:
        children = (node.test, node.body, node.orelse)
    elif kind is ast.Subscript:
        children = (node.value, node.slice)
    elif kind is ast.Slice:
        children = tuple(part for part in (node.lower, node.upper, node.step) if part is not None)
    elif kind in (ast.Tuple, ast.List, ast.Set):
        children = tuple(node.elts)
    elif kind is ast.Dict:
        if any(key is None for key in node.keys):
            raise _NotLiteral("dict unpacking (**) is not allowed in a lambda")
        children = (*node.keys, *node.values)
    elif kind is ast.Call:
        if any(keyword.arg is None for keyword in node.keywords) or any(type(a) is ast.Starred for a in node.args):
            raise _NotLiteral("argument unpacking is not allowed in a lambda")
        children = (node.func, *node.args, *(keyword.value for keyword in node.keywords))
    else:
        raise _NotLiteral(f"{kind.__name__} is not allowed in a lambda")
    for child in children:
        if depth > _JUDGE_MAX_DEPTH:
            raise _NotLiteral("nested too deeply")
        _judge_lambda_node(child, depth + 1, params)


def _judge_parse(text, form, function):
    """The answer's nodes: (positional argument nodes, keyword (name, node) pairs); for "value",
    one positional node. Raises _NotLiteral."""
    if not isinstance(text, str):
        raise _NotLiteral("the answer is not text")
    if len(text) > _JUDGE_MAX_ANSWER_CHARS:
        raise _NotLiteral(f"the answer is longer than {_JUDGE_MAX_ANSWER_CHARS} characters")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if form == "arguments":
        source = f"{_JUDGE_ARGUMENTS_MARKER}(\n{text}\n)"
        name = _JUDGE_ARGUMENTS_MARKER
    else:
        # Leading indentation would be an IndentationError; only the whitespace CPython's own
        # tokenizer skips is dropped (str.strip would also drop U+2028 and friends, which it refuses).
        source = text.strip(" \t\n\x0b\x0c")
        name = function
    try:
        tree = ast.parse(source, "<answer>", "eval")
    except (SyntaxError, ValueError, OverflowError, RecursionError) as error:
        message = error.msg if isinstance(error, SyntaxError) else str(error)
        raise _NotLiteral(f"not a Python expression: {type(error).__name__}: {_truncate(str(message), 200)}") from None
    body = tree.body
    if form == "value":
        _judge_node(body, 0, "value")
        return [body], []
    if type(body) is not ast.Call or type(body.func) is not ast.Name or body.func.id != name:
        raise _NotLiteral(f"not a single call of {name}" if form == "call" else "not an argument list")
    if form == "arguments" and (
        (body.func.lineno, body.func.col_offset) != (1, 0) or (body.end_lineno, body.end_col_offset) != (source.count("\n") + 1, 1)
    ):
        raise _NotLiteral("not an argument list")
    for arg in body.args:
        _judge_node(arg, 0, "argument")
    pairs = []
    for keyword in body.keywords:
        if keyword.arg is None:
            raise _NotLiteral("keyword unpacking (**) is not a literal")
        _judge_node(keyword.value, 0, "argument")
        pairs.append((keyword.arg, keyword.value))
    return list(body.args), pairs


_JUDGE_BINOPS = {ast.Add: _add, ast.Sub: _sub, ast.Mult: _mul}
_judge_cache = {}


def _judge_parsed(text, form, function):
    """_judge_parse, cached by its inputs (the same answer is judged once per sample of a
    problem); the cached trees are only read, every evaluation builds fresh values."""
    key = (text, form, function)
    parsed = _judge_cache.get(key)
    if parsed is None:
        try:
            parsed = _judge_parse(text, form, function)
        except _NotLiteral as reason:
            parsed = str(reason)  # the reason, not the exception: a re-raised one keeps its traceback
        if len(_judge_cache) > 4096:
            _judge_cache.clear()
        _judge_cache[key] = parsed
    if isinstance(parsed, str):
        raise _NotLiteral(parsed)
    return parsed


def _judge_value(node, data=None):
    """Evaluate a whitelisted node: no builtins but the constructors (and, for arguments, the plain
    data values the task's code defines), so nothing else is reachable. The tree is walked
    directly (no compile per answer); only a lambda is compiled, and runs with empty builtins."""
    kind = type(node)
    if kind is ast.Constant:
        return node.value
    if kind is ast.List:
        return [_judge_value(element, data) for element in node.elts]
    if kind is ast.Tuple:
        return tuple([_judge_value(element, data) for element in node.elts])
    if kind is ast.Set:
        return {_judge_value(element, data) for element in node.elts}
    if kind is ast.Dict:
        return {_judge_value(key, data): _judge_value(value, data) for key, value in zip(node.keys, node.values)}
    if kind is ast.UnaryOp:
        operand = _judge_value(node.operand, data)
        return -operand if type(node.op) is ast.USub else +operand
    if kind is ast.BinOp:
        return _JUDGE_BINOPS[type(node.op)](_judge_value(node.left, data), _judge_value(node.right, data))
    if kind is ast.Call:
        args = [_judge_value(arg, data) for arg in node.args]
        kwargs = {keyword.arg: _judge_value(keyword.value, data) for keyword in node.keywords}
        func = node.func
        if type(func) is ast.Name:
            return _JUDGE_CONSTRUCTORS[func.id](*args, **kwargs)
        return getattr(func.value.value, func.attr)(*args, **kwargs)
    if kind is ast.Name:
        if data is None or node.id not in data:
            raise NameError(f"name {node.id!r} is not plain data defined by the code")
        return data[node.id]
    if kind is ast.Subscript:
        value = _judge_value(node.value, data)
        part = node.slice
        if type(part) is ast.Slice:
            bounds = [None if b is None else _judge_value(b, data) for b in (part.lower, part.upper, part.step)]
            return value[slice(*bounds)]
        return value[_judge_value(part, data)]
    code = _note(compile(ast.Expression(node), "<answer>", "eval", dont_inherit=True))
    return eval(code, {"__builtins__": {}})


def _do_judge(task, run, result):
    form = task.get("answerForm", "value")
    function = task.get("function") or ""
    golds = task.get("golds") or []
    compare = task.get("compare", "eq")
    code = _compile_or_flag(task.get("code") or "", CODE_FILENAME, "exec", "code")
    gold_codes = [_compile_or_flag(gold, "<expected>", "eval", "expected") for gold in golds]
    try:
        positional, keywords = _judge_parsed(task.get("answer"), form, function)
    except _NotLiteral as reason:
        result["literal"] = False
        result["status"] = "failed"
        result["detail"] = f"not a literal: {reason}"
        return
    result["literal"] = True
    if not gold_codes:
        # Only the literal decision was asked for; a literal value's repr comes back so that a
        # caller can rebuild the value without evaluating the answer's text (REval's harness).
        result["status"] = "passed"
        if form == "value":
            text, truncated = _safe_repr(_judge_value(positional[0]))
            if not truncated:
                result["valueRepr"] = text
        return
    namespace = _fresh_namespace()
    exec(code, namespace)
    data = {}
    if form != "value":
        data = {name: value for name, value in namespace.items() if type(value) in _JUDGE_DATA_TYPES and not name.startswith("__")}
    args = [_judge_value(node, data) for node in positional]
    kwargs = {name: _judge_value(node, data) for name, node in keywords}
    if form == "value":
        actual = args[0]
    else:
        target = namespace.get(function)
        if target is None:
            raise NameError(f"name {function!r} is not defined by the code")
        actual = target(*args, **kwargs)
    result["actualRepr"] = _safe_repr(actual)[0]
    passed = False
    for gold_code in gold_codes:
        gold = eval(gold_code, namespace)
        if compare == "typed" and type(gold) is not type(actual):
            continue
        if bool(gold == actual):
            passed = True
            break
    result["status"] = "passed" if passed else "failed"
    if not passed:
        result["detail"] = "the answer differs from the expected value"


_HANDLERS["judge"] = _do_judge


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
            result["detail"] = f"unknown task kind {_truncate(repr(kind), 200)}"
        else:
            _enter(run, task.get("stdin"))
            handler(task, run, result)
    except _SyntaxProblem as problem:
        result["status"] = "syntax_error"
        result["detail"] = _truncate(_syntax_detail(problem), _Config.max_message_chars)
    except BaseException as error:  # noqa: BLE001 - every outcome of untrusted code is a result
        status, exc = _classify(error, run)
        result["status"] = status
        if exc is not None:
            result["exception"] = _exception_info(exc)
        if status == "output_limit":
            result["detail"] = f"output exceeded {_Config.max_output_chars} characters"
        elif status == "memory":
            result["detail"] = "the task ran out of memory"
        elif status == "timeout":  # the Pyodide worker says the same of the interrupts it sends
            result["detail"] = "the task ran longer than its limit and was interrupted"
    finally:
        sys.settrace(None)
        if run.stdout.overflow or run.stderr.overflow:
            if result["status"] not in ("syntax_error",):
                result["status"] = "output_limit"
                result["detail"] = f"output exceeded {_Config.max_output_chars} characters"
                result.pop("repr", None)
                result.pop("json", None)
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
        text = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        return json.dumps({"status": "sandbox_error", "detail": f"result not encodable: {error}"[:500], "stdout": ""})
    if len(text) > _Config.max_result_chars:
        # Every field has its own cap; this backstop (the host checks the same) keeps a result
        # whose fields add up past the whole from crossing to the host.
        limited = {
            "status": "output_limit",
            "detail": f"the result exceeded {_Config.max_result_chars} characters",
            "stdout": "",
        }
        if result.get("fatal") is True:
            limited["fatal"] = True
        return json.dumps(limited)
    return text


def _json_runner(run):
    """Pyodide entry point: one task as JSON text in, its result as JSON text out (through the
    guard's `run`, which the returned function alone holds)."""
    loads = json.loads
    encode = _encode

    def run_task(task_json):
        try:
            task = loads(task_json)
        except ValueError as error:
            return encode({"status": "sandbox_error", "detail": f"bad task: {error}"[:500], "stdout": ""})
        return encode(run(task))

    return run_task


def python_version():
    return sys.version.split()[0]


def configure(options):
    """Set limits (before the first task); options: dict with camelCase keys as in SandboxOptions."""
    _Config.max_output_chars = int(options.get("maxOutputChars", _Config.max_output_chars))
    _Config.max_repr_chars = int(options.get("maxReprChars", _Config.max_repr_chars))
    _Config.max_trace_chars = int(options.get("maxTraceChars", _Config.max_trace_chars))
    _Config.max_json_chars = int(options.get("maxJsonChars", _Config.max_json_chars))
    _Config.max_result_chars = int(options.get("maxResultChars", _Config.max_result_chars))


def setup(options_json, trusted_codes=()):
    """Configure, snapshot and lock the interpreter. Called once, before any task. Returns the
    task runner (task JSON in, result JSON out); keep it outside Python, it is the only handle
    on the guard."""
    return _json_runner(_setup(options_json, trusted_codes))


def _setup(options_json, trusted_codes):
    configure(json.loads(options_json))
    sys.setrecursionlimit(1000)
    random.seed(0)
    snapshot, run, wrapper_namespaces = _secure_process(trusted_codes)
    _BUILTINS_COPY.update(builtins.__dict__)
    snapshot(wrapper_namespaces)
    return run


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
        run = _setup(json.dumps(options), (set_cpu_limit.__code__,))
        send({"ready": True, "version": sys.version.split()[0]})
        _serve_loop(reader, proto_out, nonce, set_cpu_limit, signal, run)
    except BaseException as error:  # noqa: BLE001 - the engine reports this and replaces the worker
        import traceback

        send({"fatal": "".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:]})
        raise


def _serve_loop(reader, proto_out, nonce, set_cpu_limit, signal, run):
    def stop_timer():
        signal.setitimer(signal.ITIMER_REAL, 0)

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
                result = run(task, stop_timer)
            except _SandboxTimeout:
                result = {"status": "timeout", "stdout": "", "fatal": True}
            finally:
                stop_timer()
            encoded = _encode(result)
            proto_out.write((nonce + '{"id":' + json.dumps(batch_id) + ',"index":' + str(index) + ',"result":' + encoded + "}\n").encode("utf-8"))
            if result.get("fatal") is True:
                return  # the host replaces this process; the rest of the batch runs elsewhere


if __name__ == "__main__":
    _serve()
