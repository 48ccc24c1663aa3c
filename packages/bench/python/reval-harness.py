# REval ground truth and answer checking, run inside the sandbox. @codereasoner/bench reads this
# file at run time (src/python-assets.ts) and has the sandbox compile it under "<reval-harness>"
# (src/reval/truth.ts); the only entry point is reval_call at the end.
# A port of the official harness (r-eval/REval: dynamics.py, dataset.py, evaluation.py):
# same trace rules (filename "<internals>", locals filter, deep copies, consecutive events on one
# line merged, return/exception events attached to the current state), same VarInterpreter,
# same state-answer parser and equality. Only the plumbing differs: one JSON spec in, one JSON
# string out, and nothing outside the sandbox ever evaluates model output.
import ast as _ast
import builtins as _builtins
import io as _io
import itertools as _itertools
import json as _json
import linecache as _linecache
import re as _re
import sys as _sys
from copy import deepcopy as _deepcopy
from typing import Generator as _Generator, Iterator as _Iterator

_INTERNALS = "<internals>"
_TEST_FILE = "<reval-test>"


class _NilType:
    def __new__(cls):
        return _NIL

    def __copy__(self):
        return self

    def __deepcopy__(self, _memo):
        return self

    def __repr__(self):
        return "Nil"


_NIL = object.__new__(_NilType)


class _Discard(_io.TextIOBase):
    def write(self, s):
        return len(s)


class _State:
    __slots__ = ("lineno", "locals", "return_", "exception")

    def __init__(self, lineno):
        self.lineno = lineno
        self.locals = {}
        self.return_ = _NIL
        self.exception = _NIL


class _Trace:
    def __init__(self):
        self.states = []

    def add(self, line, event, value):
        if not self.states or self.states[-1].lineno != line:
            state = _State(line)
            self.states.append(state)
        else:
            state = self.states[-1]
        if event == "locals":
            state.locals = value
        elif event == "return":
            state.return_ = value
        else:
            state.exception = value

    def lines(self):
        return [s.lineno for s in self.states]

    def covered(self, lineno):
        return any(s.lineno == lineno for s in self.states)

    def next_lines(self, lineno):
        if not self.covered(lineno):
            return {-1}
        out = set()
        n = len(self.states)
        for i, s in enumerate(self.states):
            if s.lineno == lineno:
                out.add(self.states[i + 1].lineno if i + 1 < n else -1)
        return out

    def states_after(self, lineno):
        n = len(self.states)
        out = []
        for i, s in enumerate(self.states):
            if s.lineno == lineno:
                out.append(self.states[i + 1] if i + 1 < n else s)
        return out

    def get_local(self, lineno, var):
        values = [s.locals[var] for s in self.states_after(lineno) if var in s.locals]
        return values if values else _NIL


def _make_tracer(trace):
    def local_trace(frame, event, arg):
        if event == "line":
            snapshot = {}
            for k, v in frame.f_locals.items():
                name = v.__class__.__name__
                if name in ("module", "function", "builtin_function_or_method"):
                    continue
                if isinstance(v, _Iterator) or isinstance(v, _Generator):
                    continue
                snapshot[k] = _deepcopy(v)
            trace.add(frame.f_lineno - 1, "locals", snapshot)
        elif event == "return":
            trace.add(frame.f_lineno - 1, "return", arg)
        elif event == "exception":
            trace.add(frame.f_lineno - 1, "exception", arg[0])

    def global_trace(frame, event, _arg):
        if event != "call":
            return None
        if frame.f_code.co_filename == _INTERNALS:
            return local_trace
        return None

    return global_trace


class _VarInterpreter:
    # Same node rules as dynamics.VarInterpreter, including returning (not raising) an error
    # object for unsupported nodes, which later fails and yields Nil.
    def __init__(self, lineno, name, trace):
        self.lineno = lineno
        self.name = name
        self.trace = trace

    def _node(self, node):
        if isinstance(node, _ast.Constant):
            return [node.value]
        if isinstance(node, _ast.Name):
            return self.trace.get_local(self.lineno, node.id)
        if isinstance(node, _ast.Attribute):
            obj = self._node(node.value)
            if obj is _NIL:
                return _NIL
            res = [getattr(o, node.attr) for o in obj if hasattr(o, node.attr)]
            return res if res else _NIL
        if isinstance(node, _ast.Subscript):
            arr = self._node(node.value)
            idx = self._node(node.slice)
            if arr is _NIL or idx is _NIL:
                return _NIL
            res = []
            for a, i in list(_itertools.product(arr, idx)):
                try:
                    res.append(a[i])
                except (TypeError, KeyError, IndexError):
                    pass
            return res if res else _NIL
        if isinstance(node, _ast.Tuple):
            elts = [self._node(n) for n in node.elts]
            if any(e is _NIL for e in elts):
                return _NIL
            return list(_itertools.product(*elts))
        return ValueError("Unsupported node type: %r" % (node,))

    def get(self):
        try:
            if not self.trace.covered(self.lineno):
                return _NIL
            tree = _ast.parse(self.name)
            assert len(tree.body) == 1
            expr = tree.body[0]
            assert isinstance(expr, _ast.Expr)
            return self._node(expr.value)
        except Exception:
            return _NIL


_IMPORT_FAILED = set()


def _locate(path):
    # pydoc.locate's lookup (import the longest importable dotted prefix, then getattr; a bare
    # name falls back to builtins), without importing pydoc (the sandbox refuses parts of it) and
    # remembering failed imports (each failed import searches the whole library path).
    parts = [p for p in path.split(".") if p]
    module, n = None, 0
    while n < len(parts):
        name = ".".join(parts[: n + 1])
        if name in _IMPORT_FAILED:
            break
        try:
            __import__(name)
            module = _sys.modules[name]
            n += 1
        except Exception:
            _IMPORT_FAILED.add(name)
            break
    obj = module if module is not None else _builtins
    for part in parts[n:]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            return None
    return obj


def _is_builtin_type(cls):
    if cls is None:
        raise ValueError("invalid type %r" % (cls,))
    assert isinstance(cls, type), "Use a class instead of instance: %r" % (cls,)
    return cls.__module__ == "builtins"


class _NotJudged(Exception):
    """The answer's value text is not a literal, and this pass may not evaluate it."""


def _eval_text(text):
    # What the official harness does with every value text (trusted texts only: gold renderings,
    # or, in official scoring, answers the judge found non-literal, in a pass of their own).
    return eval(text, {"__builtins__": _builtins})


_CANONICAL_NAMES = {"set": set, "frozenset": frozenset, "float": float, "complex": complex, "range": range,
                    "nan": float("nan"), "inf": float("inf"), "__builtins__": {}}


def _value_source(answer):
    """How one answer's value text becomes a value. The sandbox's judge (CPython's parser, the
    literal whitelist) already decided; a literal comes back as the repr of its value, rebuilt
    here with no builtins: the answer's own text never runs. A non-literal is evaluated only when
    this pass allows it (official scoring, a pass apart from every literal answer)."""
    judged = answer.get("judged")
    canonical = answer.get("canonical")
    evaluate = bool(answer.get("evaluate"))

    def value_of(text):
        if canonical is not None and text == judged:
            return eval(canonical, dict(_CANONICAL_NAMES))
        if evaluate:
            return _eval_text(text)
        raise _NotJudged(text)

    return value_of


def _parse_state_answer(resp, value_of=_eval_text):
    # evaluation.py State._postprocess after the [ANSWER] block has been cut out; value_of is
    # where the official code calls eval().
    resp = (
        resp.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"').strip()
    )
    if resp.capitalize() == "Nil" or resp == "[Nil]":
        return _NIL
    semicolon = resp.rfind(";")
    if semicolon == -1:
        return "ERROR"
    val_str, type_str = resp[:semicolon].strip(), resp[semicolon + 1 :].strip().lower()
    if val_str.capitalize() == "Nil":
        return _NIL
    m = _re.match(r"<class '(.*)'>", type_str)
    if m:
        type_str = m.group(1)
    m = _re.match(r"(.*)\[.*\]", type_str)
    if m:
        type_str = m.group(1)
    type_str = {"string": "str", "integer": "int"}.get(type_str, type_str)
    if "," in type_str or "tuple" in type_str:
        type_str = "tuple"
    if type_str == "str":
        # Official quirk: when eval fails the raw text is the string ('hello; str').
        try:
            return value_of(val_str), str
        except _NotJudged:
            raise
        except Exception:
            return val_str, str
    if type_str in ("datetime.datetime", "datetime"):
        # Parsed as a date, never evaluated. python-dateutil is not in the sandbox: ISO text (what
        # str(datetime) prints) is parsed by the standard library instead.
        import datetime

        try:
            from dateutil.parser import parse
        except ImportError:
            parse = datetime.datetime.fromisoformat
        try:
            return parse(val_str), _locate(type_str)
        except Exception:
            return "ERROR"
    if type_str in ("numpy.ndarray", "np.ndarray"):
        try:
            import numpy as np

            return np.array(value_of(val_str)), _locate(type_str)
        except _NotJudged:
            raise
        except Exception:
            return "ERROR"
    # Official quirk: the type was lower-cased, so its parts[1] == 'NoneType' never holds.
    if val_str == "None":
        return None, type(None)
    try:
        typ = _locate(type_str)
        if _is_builtin_type(typ):
            val = value_of(val_str)
        else:
            try:
                val = typ(value_of(val_str))
            except _NotJudged:
                raise
            except Exception:
                val = typ(val_str)
        return val, typ
    except _NotJudged:
        raise
    except Exception:
        return "ERROR"


def _state_eq(ans, actual):
    # evaluation.py State._eq: exact types ('1; int' is not a bool truth), the float tolerance
    # tried on every true value. A None truth never matches (the port's filter, unchanged).
    # Types are compared with == and != as the official code does (E721 below, on purpose).
    if ans is _NIL and actual is _NIL:
        return True
    if ans is _NIL or actual is _NIL:
        return False
    ans_val, ans_type = ans
    if all(ans_type != type(a) for a in actual if a is not None):  # noqa: E721
        return False
    if type(ans_val) != ans_type:  # noqa: E721
        return False
    if ans_type == float:  # noqa: E721
        for a in actual:
            try:
                if abs(ans_val - a) < 1e-6:
                    return True
            except Exception:
                continue
        return False
    try:
        return ans_val in actual
    except (ValueError, TypeError):
        for a in actual:
            try:
                if type(a).__name__ == "ndarray" and type(ans_val).__name__ == "ndarray":
                    import numpy as np

                    if np.allclose(ans_val, a):
                        return True
                elif ans_val == a:
                    return True
            except Exception:
                continue
        return False


_NOT_LITERAL = "the value is not a literal (strict literals)"


def _check_state(answer, actual, value_of=_eval_text):
    if answer is None:
        return False, "no answer"
    try:
        parsed = _parse_state_answer(answer, value_of)
    except _NotJudged:
        return False, _NOT_LITERAL
    if isinstance(parsed, str) and parsed == "ERROR":
        return False, "unparsable state answer (expected 'value; type' or Nil)"
    try:
        ok = bool(_state_eq(parsed, actual))
    except Exception as e:  # the official harness would crash here; count it wrong
        return False, "comparison raised %s" % type(e).__name__
    return ok, "matches the traced value" if ok else "differs from the traced value(s)"


def _safe_repr(v, limit=2000):
    try:
        r = repr(v)
    except Exception as e:
        r = "<repr failed: %s>" % type(e).__name__
    return r if len(r) <= limit else r[:limit] + "..."


def _type_name(v):
    t = type(v)
    return t.__name__ if t.__module__ == "builtins" else "%s.%s" % (t.__module__, t.__qualname__)


def _check_state_value(text, actual, value_of=_eval_text):
    # The task protocol's state answer is a bare Python literal (no type): its type is the type
    # of its value; "Nil" still means "not executed". Then the official equality.
    text = text.strip()
    if text.capitalize() == "Nil" or text == "[Nil]":
        parsed = _NIL
    else:
        try:
            value = value_of(text)
        except _NotJudged:
            return False, _NOT_LITERAL
        except Exception:
            return False, "the answer is not a Python literal"
        parsed = (value, type(value))
    try:
        ok = bool(_state_eq(parsed, actual))
    except Exception as e:
        return False, "comparison raised %s" % type(e).__name__
    return ok, "matches the traced value" if ok else "differs from the traced value(s)"


def _gold_state_answer(actual):
    # The first "repr; type" (or "str; type") rendering of a true value that the official parser
    # and equality accept; None when no rendering can pass (e.g. a None value, or an instance of
    # a class defined by the program: the official parser lower-cases type names).
    if actual is _NIL:
        return "Nil"
    for v in actual:
        names = [_type_name(v), type(v).__name__]
        texts = [_safe_repr(v, 10**6), str(v)]
        if isinstance(v, type):
            texts.append(v.__qualname__)
        elif not isinstance(v, (str, bytes, list, tuple, set, dict)):
            for convert in ("tolist", "items"):
                if hasattr(v, convert):
                    try:
                        texts.append(_safe_repr(dict(v) if convert == "items" else v.tolist(), 10**6))
                    except Exception:
                        pass
            try:
                texts.append(_safe_repr(list(v), 10**6))
            except Exception:
                pass
        for text in texts:
            for name in names:
                candidate = "%s; %s" % (text, name)
                if _check_state(candidate, actual)[0]:
                    return candidate
    return None


_DYNAMICS_NAMES = {}


def _program_globals():
    # The official harness execs every program into dynamics.py's module globals, so the names
    # that module imports are visible to the programs; provide the same ones (tempfile, which the
    # sandbox refuses, excepted).
    import ast
    import inspect
    import itertools
    import sys
    from copy import deepcopy
    from types import FrameType
    from typing import Callable, Generator, Iterator, Type

    g = {"__name__": "__reval__", "__builtins__": _builtins}
    g.update(
        ast=ast, inspect=inspect, itertools=itertools, sys=sys, deepcopy=deepcopy,
        FrameType=FrameType, Callable=Callable, Iterator=Iterator, Generator=Generator, Type=Type,
    )
    return g


def _unittest():
    """The unittest package, assembled from its submodules case, result and util (what TestCase
    needs). Its __init__ also imports unittest.main (argparse) and unittest.signals ("signal",
    which the sandbox refuses) for the command-line runner, which is never used here; skipping
    them also makes the import several times cheaper (it is repeated in every sandbox task)."""
    existing = _sys.modules.get("unittest")
    if existing is not None and hasattr(existing, "TestCase"):
        return existing
    import os
    import types

    pkg = types.ModuleType("unittest")
    pkg.__path__ = [os.path.join(os.path.dirname(os.__file__), "unittest")]
    pkg.__package__ = "unittest"
    _sys.modules["unittest"] = pkg
    try:
        from unittest import case, result, util

        for name in ("TestCase", "FunctionTestCase", "SkipTest", "skip", "skipIf", "skipUnless", "expectedFailure"):
            setattr(pkg, name, getattr(case, name))
        pkg.TestResult = result.TestResult
        pkg.case, pkg.result, pkg.util = case, result, util
    except BaseException:
        _sys.modules.pop("unittest", None)
        raise
    return pkg


def _load_program(spec):
    g = _program_globals()
    exec(compile(spec["code"], _INTERNALS, "exec"), g)
    return g


def _test_classes(g, spec):
    test_src = spec["test"]
    unittest = _unittest()
    _linecache.cache[_TEST_FILE] = (len(test_src), None, test_src.splitlines(True), _TEST_FILE)
    exec(compile(test_src, _TEST_FILE, "exec"), g)
    entry = spec["entryPoint"]
    classes = []
    for k, v in list(g.items()):
        if isinstance(v, type) and _re.match("%sTest.*" % entry, k) and issubclass(v, unittest.TestCase):
            classes.append(v)
    return classes


def _first_test(cls):
    names = [k for k in cls.__dict__ if k.startswith("test")]
    if not names:
        raise AssertionError("No test methods found in %r" % (cls,))
    return names[0]


def _setup_comment(cls):
    # evaluation.py: "\n# setup code executed previously\n# " + "\n# ".join(setUp source lines[1:]),
    # empty when setUp is unittest's own hook.
    fn = getattr(cls, "setUp", None)
    code = getattr(fn, "__code__", None)
    if code is None or code.co_filename != _TEST_FILE:
        return ""
    import inspect

    src = inspect.getsource(fn)
    return "\n# setup code executed previously\n# " + "\n# ".join(src.split("\n")[1:])


def _snippet_of(cls, name):
    import inspect

    lines, _ = inspect.getsourcelines(cls.__dict__[name])
    return "".join(x.replace("self.assert", "assert").lstrip() for x in lines[1:])


def _run_traced(fn, args):
    trace = _Trace()
    tracer = _make_tracer(trace)
    out = _Discard()
    old_out, old_err = _sys.stdout, _sys.stderr
    _sys.stdout = _sys.stderr = out
    status, result = "ok", None
    try:
        _sys.settrace(tracer)
        try:
            result = fn(*args)
        finally:
            _sys.settrace(None)
    except BaseException as e:  # the official harness records the status and refuses the run
        status = "exception: %s: %s" % (type(e).__name__, e)
    finally:
        _sys.stdout, _sys.stderr = old_out, old_err
    return trace, status, result


def _group(spec):
    """Trace one (problem, input) group; answer truth for its probes; check state answers."""
    g = _load_program(spec)
    out = {"setup": "", "snippetMatches": None}
    if spec["kind"] == "function":
        fn = g[spec["entryPoint"]]
        args = eval(spec["input"], g)
        trace, status, result = _run_traced(fn, tuple(args))
        out["returnRepr"] = _safe_repr(result, 10**6) if status == "ok" else None
    else:
        classes = _test_classes(g, spec)
        idx = spec["inputIdx"]
        if idx >= len(classes):
            raise IndexError("input_idx %d but only %d test classes match %sTest*" % (idx, len(classes), spec["entryPoint"]))
        cls = classes[idx]
        name = _first_test(cls)
        out["setup"] = _setup_comment(cls)
        try:
            out["snippetMatches"] = _snippet_of(cls, name).rstrip() == spec["input"].rstrip()
        except Exception:
            out["snippetMatches"] = None
        obj = cls()
        obj.setUp()
        trace, status, result = _run_traced(getattr(obj, name), ())
    out["status"] = status
    out["steps"] = len(trace.states)
    probes = []
    answers = spec.get("stateAnswers") or {}
    for i, probe in enumerate(spec["probes"]):
        line0 = probe["line"] - 1
        actual = _VarInterpreter(line0, probe["var"], trace).get()
        nxt = sorted(a + 1 if a != -1 else -1 for a in trace.next_lines(line0))
        entry = {
            "covered": trace.covered(line0),
            "next": nxt,
            "nil": actual is _NIL,
            "values": [] if actual is _NIL or not isinstance(actual, list) else [_safe_repr(v) for v in actual[:20]],
            "types": [] if actual is _NIL or not isinstance(actual, list) else [_type_name(v) for v in actual[:20]],
            "gold": _gold_state_answer(actual) if isinstance(actual, list) or actual is _NIL else None,
        }
        checks = []
        for answer in answers.get(str(i), []):
            # {"text", "format": "official" | "value", "judged", "canonical", "evaluate", "skip"}
            if answer.get("skip"):
                checks.append({"correct": False, "reason": "judged in another pass", "skipped": True})
                continue
            value_of = _value_source(answer)
            if answer.get("format") == "value":
                ok, reason = _check_state_value(answer["text"], actual, value_of)
            else:
                ok, reason = _check_state(answer["text"], actual, value_of)
            check = {"correct": ok, "reason": reason}
            if reason == _NOT_LITERAL:
                check["notJudged"] = True
            checks.append(check)
        entry["checks"] = checks
        probes.append(entry)
    out["probes"] = probes
    if status == "ok":
        if spec["kind"] == "function":
            gold = spec["outputPred"].replace("??", out["returnRepr"], 1) if out.get("returnRepr") else None
        else:
            gold = spec["input"]
        out["outputGold"] = gold
        if gold is not None:
            check = dict(spec)
            check["answer"] = gold
            out["outputGoldCheck"] = _output_check(check)
    return out


def _output_check(spec):
    """Execute one completed output answer (already padded and screened); pass = no exception."""
    g = _load_program(spec)
    out = _Discard()
    old_out, old_err = _sys.stdout, _sys.stderr
    _sys.stdout = _sys.stderr = out
    try:
        if spec["kind"] == "function":
            exec(spec["answer"], g)
        else:
            classes = _test_classes(g, spec)
            cls = classes[spec["inputIdx"]]
            # FunctionFactory.create_from_answer: indent each line with a tab unless inside a
            # triple-quoted block, then turn "assert" into "self.assert".
            code = "def dreval_output_pred(self):"
            in_string = False
            for line in spec["answer"].split("\n"):
                code += ("\n" + line) if in_string else ("\n\t" + line)
                if "'''" in line or '"""' in line:
                    in_string = not in_string
            code = code.replace("assert", "self.assert")
            exec(compile(code, _INTERNALS, "exec"), g)
            setattr(cls, "dreval_output_pred", g["dreval_output_pred"])
            obj = cls()
            obj.setUp()
            obj.dreval_output_pred()
        return {"passed": True, "reason": "ran without exception"}
    except BaseException as e:
        return {"passed": False, "reason": "%s: %s" % (type(e).__name__, _safe_repr(str(e), 300))}
    finally:
        _sys.stdout, _sys.stderr = old_out, old_err


def _one(spec):
    try:
        if spec["op"] == "group":
            result = _group(spec)
        else:
            result = _output_check(spec)
        result["ok"] = True
    except BaseException as e:
        result = {"ok": False, "error": "%s: %s" % (type(e).__name__, _safe_repr(str(e), 500))}
    return result


def reval_call(spec_json):
    """One JSON spec in (an op, or {"op": "batch", "specs": [...]}), one JSON string out.
    Batching amortises the per-task start-up (the unittest import costs far more than a trace)."""
    spec = _json.loads(spec_json)
    if spec.get("op") == "batch":
        return _json.dumps({"ok": True, "results": [_one(s) for s in spec["specs"]]})
    return _json.dumps(_one(spec))
