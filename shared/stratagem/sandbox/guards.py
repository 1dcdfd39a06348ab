"""Runtime guards and curated modules given to compiled strategy code.

RestrictedPython rewrites attribute reads to ``_getattr_``, item and attribute writes to
``_write_``, iteration to ``_getiter_`` and so on; this module supplies those hooks. The
rules mirror the validator (no ``_`` names, no frames or code objects) and add what only
run time can know: per-type allow-lists for objects that expose buffers or files (numpy
arrays and scalars, memoryviews), safe ``str.format``, and writes only to objects the
strategy itself created.
"""

from __future__ import annotations

import collections
import datetime as _datetime
import functools
import itertools
import math
import operator
import statistics
import string
import types
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
from RestrictedPython.PrintCollector import PrintCollector

from .validator import FORBIDDEN_ATTRS


class SandboxClass(type):
    """Metaclass of every class a strategy defines: marks instances the strategy may mutate."""


_MISSING = object()

# Attribute allow-lists for types whose other attributes reach buffers, files or memory.
_NDARRAY_ATTRS = frozenset({
    "T", "all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "clip", "compress",
    "conj", "conjugate", "copy", "cumprod", "cumsum", "diagonal", "dot", "dtype", "fill", "flatten",
    "imag", "item", "itemsize", "max", "mean", "min", "nbytes", "ndim", "nonzero", "partition", "prod",
    "ptp", "ravel", "real", "repeat", "reshape", "round", "searchsorted", "shape", "size", "sort",
    "squeeze", "std", "sum", "swapaxes", "take", "tolist", "trace", "transpose", "var",
})
_SCALAR_ATTRS = frozenset({
    "item", "tolist", "real", "imag", "dtype", "conjugate", "is_integer", "as_integer_ratio",
    "astype", "round", "mean", "sum", "max", "min", "std", "all", "any", "shape", "ndim", "size",
    "bit_length", "numerator", "denominator",
})
_MEMORYVIEW_ATTRS = frozenset({"tolist"})
_DTYPE_ATTRS = frozenset({"name", "kind", "char", "itemsize"})
_UFUNC_ATTRS = frozenset({"reduce", "accumulate", "outer", "reduceat", "nin", "nout", "nargs", "identity"})
_RULES: dict[type, frozenset | None] = {}


def _rule_for(cls: type) -> frozenset | None:
    """Allow-list for instances of ``cls`` (``None`` = any public attribute)."""
    rule = _RULES.get(cls, _MISSING)
    if rule is _MISSING:
        if issubclass(cls, np.ndarray):
            rule = _NDARRAY_ATTRS
        elif issubclass(cls, np.generic):
            rule = _SCALAR_ATTRS
        elif issubclass(cls, memoryview):
            rule = _MEMORYVIEW_ATTRS
        elif issubclass(cls, np.dtype):
            rule = _DTYPE_ATTRS
        elif issubclass(cls, np.ufunc):
            rule = _UFUNC_ATTRS
        elif issubclass(cls, (np.flatiter, np.nditer, np.broadcast)) or cls.__module__.startswith("numpy"):
            # Other numpy objects (flat iterators, generators' internals...) get no attributes.
            rule = frozenset()
        elif issubclass(cls, types.ModuleType):
            rule = frozenset()
        else:
            rule = None
        _RULES[cls] = rule
    return rule  # type: ignore[return-value]


class _SafeFormatter(string.Formatter):
    """``str.format`` whose ``{0.attr[key]}`` fields go through the guards (CVE-2023-41039)."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = guarded_getattr(obj, key) if is_attr else obj[key]
        return obj, first


from _string import formatter_field_name_split as _formatter_field_name_split  # noqa: E402

_FORMATTER = _SafeFormatter()


def _safe_format(template: str, *args: Any, **kwargs: Any) -> str:
    return _FORMATTER.vformat(template, args, kwargs)


def _safe_format_map(template: str, mapping: Any) -> str:
    return _FORMATTER.vformat(template, (), mapping)


def guarded_getattr(obj: Any, name: Any, default: Any = _MISSING) -> Any:
    """``getattr`` for strategies: public names only, and per-type allow-lists."""
    if type(name) is not str:
        raise TypeError(f"attribute name must be a string, not {type(name).__name__}")
    if name[:1] == "_" or name in FORBIDDEN_ATTRS:
        raise AttributeError(f"access to attribute {name!r} is not allowed in a strategy")
    if name == "obj" and isinstance(obj, BaseException):
        # CVE-2024-47532: AttributeError.obj hands back the object whose lookup failed, which may
        # be an internal object of trusted code (a data function, numpy) the strategy never saw.
        raise AttributeError("access to an exception's 'obj' is not allowed in a strategy")
    if isinstance(obj, str) and name in ("format", "format_map"):
        return functools.partial(_safe_format if name == "format" else _safe_format_map, obj)
    if obj is str and name in ("format", "format_map"):
        return _safe_format if name == "format" else _safe_format_map
    cls = obj if isinstance(obj, type) else type(obj)
    rule = _rule_for(cls)
    if rule is not None and name not in rule:
        if default is not _MISSING:
            return default
        raise AttributeError(f"{cls.__name__!r} objects expose no attribute {name!r} to strategies")
    if default is _MISSING:
        return getattr(obj, name)
    return getattr(obj, name, default)


def guarded_hasattr(obj: Any, name: Any) -> bool:
    try:
        guarded_getattr(obj, name)
    except Exception:  # noqa: BLE001 - hasattr semantics: any failure means "no"
        return False
    return True


_WRITABLE_TYPES = (list, dict, set, bytearray, np.ndarray, collections.deque, collections.Counter,
                   collections.defaultdict, collections.OrderedDict)


def guarded_write(obj: Any) -> Any:
    """Writes (``ob[k] = v``, ``ob.a = v``, ``del``) only to containers and the strategy's own objects.

    Read-only data (memoryviews, read-only arrays) stays read-only: numpy refuses writes to
    arrays whose ``writeable`` flag is off, and the flag cannot be turned back on from here.
    """
    if isinstance(obj, _WRITABLE_TYPES) or isinstance(type(obj), SandboxClass) or isinstance(obj, SandboxClass):
        return obj
    raise TypeError(f"a strategy cannot modify {type(obj).__name__} objects")


_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
    "@=": operator.imatmul,
}


def inplacevar(op: str, x: Any, y: Any) -> Any:
    fn = _INPLACE.get(op)
    if fn is None:
        raise SyntaxError(f"unsupported augmented assignment {op!r}")
    return fn(x, y)


def inplace_read_item(obj: Any, key: Any) -> tuple[Any, Any, Any]:
    """First half of ``obj[key] op= value``: read the old value *before* the right-hand side is
    evaluated, as Python does (a KeyError comes before any error of the value)."""
    return obj, key, obj[key]


def inplace_item(ref: tuple[Any, Any, Any], op: str, value: Any) -> None:
    """Second half of ``obj[key] op= value`` (RestrictedPython alone rejects it; strategies need
    it): apply the operator and write through the write guard."""
    obj, key, old = ref
    target = guarded_write(obj)
    target[key] = inplacevar(op, old, value)


def inplace_read_attr(obj: Any, name: str) -> tuple[Any, str, Any]:
    """First half of ``obj.name op= value``: the guarded read, before the right-hand side."""
    return obj, name, guarded_getattr(obj, name)


def inplace_attr(ref: tuple[Any, str, Any], op: str, value: Any) -> None:
    """Second half of ``obj.name op= value`` on the strategy's own objects."""
    obj, name, old = ref
    setattr(guarded_write(obj), name, inplacevar(op, old, value))


def guarded_type(*args: Any) -> type:
    """``type(x)`` for type checks; never hands out a metaclass (which could build classes
    around the validator's rules on method names)."""
    if len(args) != 1:
        raise TypeError("type() takes exactly one argument in a strategy")
    t = type(args[0])
    if issubclass(t, type):
        raise TypeError("type() of a class is not available in a strategy")
    return t


def _apply(f: Callable, *a: Any, **kw: Any) -> Any:
    return f(*a, **kw)


class _InstanceOnly(type):
    """A stand-in class usable with ``isinstance`` but never to construct the real type."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._wrapped)  # type: ignore[attr-defined]

    def __subclasscheck__(cls, sub: Any) -> bool:
        return isinstance(sub, type) and issubclass(sub, cls._wrapped)  # type: ignore[attr-defined]

    def __call__(cls, *a: Any, **kw: Any) -> Any:
        raise TypeError(f"{cls.__name__} cannot be constructed in a strategy; use np.array(...)")


def _instance_only(name: str, real: type) -> type:
    return _InstanceOnly(name, (), {"_wrapped": real})


class Namespace(types.SimpleNamespace):
    """A curated module: a fixed set of public names, nothing to traverse, nothing to write."""

    def __init__(self, name: str, members: dict[str, Any]) -> None:
        super().__init__(**members)
        object.__setattr__(self, "_name", name)

    def __repr__(self) -> str:
        return f"<module {self._name!r} (sandbox)>"  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        # Only called for missing names: say it is the curated module, not a typo of ours.
        raise AttributeError(f"{self._name} in the sandbox has no attribute {name!r} "  # type: ignore[attr-defined]
                             "(file, process and memory functions are not available)")


_NP_FUNCS = """
array asarray zeros ones full zeros_like ones_like full_like arange linspace logspace eye identity
mean median std var sum prod cumsum cumprod min max amin amax nanmin nanmax nanmean nanmedian nanstd
nansum nanvar nanprod nancumsum nanpercentile nanquantile nanargmax nanargmin percentile quantile
average diff gradient ediff1d convolve correlate corrcoef cov polyfit polyval where select clip
abs absolute fabs sign sqrt cbrt exp exp2 expm1 log log2 log10 log1p power square maximum minimum
fmax fmin floor ceil round around rint trunc fix isnan isinf isfinite isneginf isposinf nan_to_num
argmax argmin argsort sort unique searchsorted concatenate stack vstack hstack column_stack
append delete insert reshape ravel flip fliplr flipud roll tile repeat dot matmul inner outer
allclose isclose array_equal any all count_nonzero nonzero flatnonzero argwhere logical_and
logical_or logical_not logical_xor greater less equal not_equal greater_equal less_equal add
subtract multiply divide true_divide floor_divide mod remainder fmod negative reciprocal sin cos
tan arcsin arccos arctan arctan2 sinh cosh tanh hypot degrees radians deg2rad rad2deg histogram
digitize bincount interp lexsort partition argpartition copy shape size ndim transpose squeeze
expand_dims atleast_1d atleast_2d ptp einsum cross trace diag diagonal tril triu meshgrid
cumulative_sum trapezoid isscalar result_type
""".split()
_NP_CONSTS = "nan inf pi e newaxis euler_gamma".split()
_NP_TYPES = "float64 float32 float16 int64 int32 int16 int8 uint64 uint32 uint8 bool_ int_ intp".split()
_LINALG = "norm solve lstsq inv det pinv matrix_rank eigvals eigvalsh qr svd cholesky".split()


def _numpy_namespace() -> Namespace:
    members: dict[str, Any] = {}
    for name in _NP_FUNCS + _NP_CONSTS + _NP_TYPES:
        if hasattr(np, name):
            members[name] = getattr(np, name)
    members["ndarray"] = _instance_only("ndarray", np.ndarray)
    members["generic"] = _instance_only("generic", np.generic)
    members["number"] = _instance_only("number", np.number)
    members["floating"] = _instance_only("floating", np.floating)
    members["integer"] = _instance_only("integer", np.integer)
    members["float_"] = np.float64
    members["linalg"] = Namespace("numpy.linalg", {n: getattr(np.linalg, n) for n in _LINALG})
    return Namespace("numpy", members)


def _public(module: Any, names: list[str] | None = None) -> dict[str, Any]:
    names = names if names is not None else [n for n in dir(module) if not n.startswith("_")]
    return {n: getattr(module, n) for n in names if hasattr(module, n)}


def curated_modules() -> dict[str, Namespace]:
    """Fresh namespaces for every allowed import (fresh per run: nothing leaks between runs)."""
    np_ns = _numpy_namespace()
    math_ns = Namespace("math", _public(math))
    stats_ns = Namespace("statistics", _public(statistics, list(statistics.__all__)))
    dt_ns = Namespace("datetime", _public(_datetime, ["date", "datetime", "time", "timedelta", "timezone",
                                                       "tzinfo", "MINYEAR", "MAXYEAR"]))
    typing_ns = Namespace("typing", _public(typing, ["Any", "Dict", "List", "Optional", "Tuple", "Union",
                                                     "Sequence", "Iterable", "Mapping", "Callable", "Set"]))
    coll_ns = Namespace("collections", {"deque": collections.deque, "Counter": collections.Counter,
                                        "defaultdict": collections.defaultdict,
                                        "OrderedDict": collections.OrderedDict})
    iter_ns = Namespace("itertools", _public(itertools, ["accumulate", "chain", "combinations", "count",
                                                         "groupby", "islice", "pairwise", "product",
                                                         "repeat", "starmap", "takewhile", "dropwhile",
                                                         "zip_longest", "permutations"]))
    func_ns = Namespace("functools", {"reduce": functools.reduce})
    return {"numpy": np_ns, "numpy.linalg": np_ns.linalg, "math": math_ns, "statistics": stats_ns,
            "datetime": dt_ns, "typing": typing_ns, "collections": coll_ns, "itertools": iter_ns,
            "functools": func_ns}


# True only while the zygote runs its trusted warm-up strategy: C-level lazy imports may then
# load modules from disk, so that later (untrusted) runs find them preloaded.
WARMING_UP = [False]


def make_import(modules: dict[str, Namespace]) -> Callable:
    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level != 0:
            raise ImportError("relative imports are not allowed")
        if type(fromlist) is list and (not fromlist or fromlist == ["__doc__"]):
            # PyImport_Import from C (numpy's lazy internals such as ndarray.mean) goes through
            # the *calling frame's* __import__ with a list as fromlist. Import statements in
            # strategy code pass None or a tuple, and nothing else can call __import__ (a '_'
            # name), so serve C's request from already-loaded modules only: nothing is ever
            # read from disk on behalf of a strategy.
            import sys

            mod = sys.modules.get(name)
            if mod is None:
                if not WARMING_UP[0]:
                    raise ImportError(f"module {name!r} is not preloaded in the sandbox")
                import importlib

                mod = importlib.import_module(name)
            return mod
        if name == "__future__":
            import __future__

            return __future__
        mod = modules.get(name)
        if mod is None:
            allowed = ", ".join(sorted(k for k in modules if "." not in k))
            raise ImportError(f"import of {name!r} is not allowed: strategies may import {allowed}")
        if "." in name and not fromlist:
            return modules[name.split(".")[0]]
        return mod

    return guarded_import


_SAFE_BUILTIN_NAMES = """
abs all any ascii bin bool bytes callable chr complex dict divmod enumerate filter float format
frozenset hash hex int isinstance issubclass iter len list map max min next object oct ord pow
range repr reversed round set slice sorted str sum tuple zip property
""".split()
_EXCEPTIONS = """
Exception ArithmeticError AssertionError AttributeError FloatingPointError IndexError KeyError
LookupError NameError NotImplementedError OverflowError RuntimeError StopIteration TypeError
ValueError ZeroDivisionError MemoryError RecursionError UnicodeError
""".split()


def make_builtins(modules: dict[str, Namespace]) -> dict[str, Any]:
    import builtins

    b: dict[str, Any] = {n: getattr(builtins, n) for n in _SAFE_BUILTIN_NAMES + _EXCEPTIONS}
    b.update({"None": None, "True": True, "False": False, "NotImplemented": NotImplemented,
              "Ellipsis": Ellipsis, "getattr": guarded_getattr, "hasattr": guarded_hasattr,
              "type": guarded_type, "__import__": make_import(modules),
              # Needed by every class statement; RestrictedPython forces our metaclass on them.
              "__build_class__": builtins.__build_class__})
    return b


def _unpack(it: Any, spec: Any, _getiter_: Any) -> Any:
    return it


def _iter_unpack(it: Any, spec: Any, _getiter_: Any) -> Any:
    return iter(it)


def make_globals(data_functions: dict[str, Callable], modules: dict[str, Namespace] | None = None) -> dict[str, Any]:
    """The module globals a compiled strategy runs in: guards, builtins, modules, data API.

    ``modules`` may be reused across re-runs of one strategy's module (they are read-only
    namespaces); a new strategy always gets new ones."""
    modules = modules if modules is not None else curated_modules()
    g: dict[str, Any] = {
        "__builtins__": make_builtins(modules),
        "__name__": "strategy",
        "__metaclass__": SandboxClass,
        "_getattr_": guarded_getattr,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_write_": guarded_write,
        # Our _getiter_ is plain iter (iteration itself needs no guard here: every object a
        # strategy reaches is already attribute-guarded), so RestrictedPython's pure-Python
        # guarded unpacking would only re-wrap values; these are the same semantics, faster.
        "_iter_unpack_sequence_": _iter_unpack,
        "_unpack_sequence_": _unpack,
        "_inplacevar_": inplacevar,
        "_inplace_item_": inplace_item,
        "_inplace_attr_": inplace_attr,
        "_inplace_read_item_": inplace_read_item,
        "_inplace_read_attr_": inplace_read_attr,
        "_apply_": _apply,
        "_print_": PrintCollector,
        "np": modules["numpy"],
        "math": modules["math"],
        "datetime": modules["datetime"],
        "statistics": modules["statistics"],
    }
    g.update(data_functions)
    return g
