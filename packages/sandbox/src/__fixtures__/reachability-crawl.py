"""Task code for the sandbox tests: walk every object a task can reach and report Pyodide FFI
modules and JavaScript proxies among them.

Roots: every class (through `object.__subclasses__()`), `sys.modules`, builtins, and the frames
below this one (`sys._getframe` and `f_back`, with their globals and locals). Edges: module and
class dictionaries, a function's `__globals__`, `__builtins__`, closure cells and defaults, bound
methods, the module behind a builtin function (`__self__`), container items, instance
dictionaries. `crawl()` returns (objects visited, sorted findings); the tests want no findings.
"""

import builtins
import sys
import types

FFI_PACKAGES = ("_pyodide_core", "_pyodide", "pyodide", "js", "pyodide_js", "micropip")
SCALARS = (str, int, float, bytes, bool, type(None), complex)
DESCRIPTORS = (
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
)


def crawl(limit=400_000):
    findings = set()
    seen = set()
    stack = [object, builtins, sys, sys.modules]
    frame = sys._getframe()
    while frame is not None:
        stack += [frame.f_globals, frame.f_locals, frame.f_builtins]
        frame = frame.f_back
    count = 0
    while stack and count < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        count += 1
        kind = type(obj)
        if kind in SCALARS or kind in DESCRIPTORS:
            continue
        if any(base.__name__ == "JsProxy" for base in kind.__mro__):
            findings.add("JavaScript proxy: " + kind.__name__)
            continue
        if isinstance(obj, types.ModuleType):
            name = str(getattr(obj, "__name__", ""))
            if name.partition(".")[0] in FFI_PACKAGES:
                findings.add("module " + name)
        children = []
        if kind is types.BuiltinFunctionType:
            children.append(getattr(obj, "__self__", None))
        elif isinstance(obj, type):
            try:
                children += type.__subclasses__(obj)
            except TypeError:
                pass
            children += list(obj.__dict__.values())
        elif kind is types.FunctionType:
            children += [obj.__globals__, obj.__builtins__, obj.__defaults__, obj.__kwdefaults__]
            for cell in obj.__closure__ or ():
                try:
                    children.append(cell.cell_contents)
                except ValueError:
                    pass
        elif kind is types.MethodType:
            children += [obj.__self__, obj.__func__]
        elif kind is dict:
            for key, value in list(obj.items()):
                children += [key, value]
        elif kind in (list, tuple, set, frozenset):
            children += list(obj)
        elif kind in (classmethod, staticmethod):
            children.append(obj.__func__)
        elif kind is property:
            children += [obj.fget, obj.fset, obj.fdel]
        else:
            namespace = getattr(obj, "__dict__", None)
            if isinstance(namespace, dict):
                children.append(namespace)
        stack += [child for child in children if id(child) not in seen]
    return count, sorted(findings)
