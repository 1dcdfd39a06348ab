"""Static validation of strategy source: an AST allow-list, every finding with line and column.

This is the first, friendliest layer: it explains to a user (or to the generator's repair
loop) exactly what is not allowed and where. It is *not* the security boundary on its own -
RestrictedPython's guards and the OS-isolated worker enforce the same rules at run time.
Validation runs on the parsed AST, so identifiers are already NFKC-normalised exactly as the
compiler will see them (``__ｂuiltins__`` is ``__builtins__`` here too).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

MAX_SOURCE_BYTES = 200_000
MAX_NODES = 60_000
MAX_DEPTH = 80

# Modules a strategy may import; they bind curated namespaces, never the real modules.
ALLOWED_IMPORTS = frozenset({
    "numpy", "math", "statistics", "datetime", "typing", "collections", "itertools", "functools",
    "numpy.linalg",
})
_IMPORT_HINT = {
    "pandas": "pandas is not available in the sandbox; use numpy (np) and lists",
    "talib": "TA-Lib is not available; compute indicators with numpy (np)",
    "random": "random is not available: backtests must be deterministic",
}

# Names that do not exist in the sandbox under any spelling or alias.
FORBIDDEN_NAMES = frozenset({
    "exec", "eval", "compile", "open", "input", "breakpoint", "globals", "locals", "vars", "dir",
    "help", "setattr", "delattr", "memoryview", "super", "exit", "quit", "copyright", "credits",
    "license", "id", "classmethod", "staticmethod", "BaseException", "SystemExit",
    "KeyboardInterrupt", "GeneratorExit", "builtins", "printed",
})
# Callable only with a constant, public attribute name (static attribute access by string).
CONSTANT_ATTR_CALLS = frozenset({"getattr", "hasattr"})

# Attribute names that lead to frames, code or globals on any object.
FORBIDDEN_ATTRS = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "cr_frame", "cr_code", "cr_await",
    "cr_origin", "ag_frame", "ag_code", "ag_await", "f_back", "f_builtins", "f_code", "f_globals",
    "f_locals", "f_trace", "f_generator", "tb_frame", "tb_next", "co_code", "func_globals",
    "func_code", "im_func", "im_self", "mro", "format_map_unsafe",
})

# Magic methods a user class may define (RestrictedPython's own allow-list).
ALLOWED_DUNDER_DEFS = frozenset({"__init__", "__contains__", "__lt__", "__le__", "__eq__", "__ne__",
                                 "__gt__", "__ge__"})

ENTRY_POINTS = {
    # name: (positional arguments it is called with, required)
    "classify_symbol": (1, True),
    "run_screening": (2, False),
    "run_batch_backtest": (3, False),
    "run_realtime_scan": (1, False),
}

_ALLOWED_NODES: tuple[type, ...] = (
    ast.Module, ast.FunctionDef, ast.ClassDef, ast.Return, ast.Delete, ast.Assign, ast.AugAssign,
    ast.AnnAssign, ast.For, ast.While, ast.If, ast.Raise, ast.Try, ast.Assert, ast.Import,
    ast.ImportFrom, ast.Global, ast.Expr, ast.Pass, ast.Break, ast.Continue,
    ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict, ast.Set,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Compare, ast.Call,
    ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript, ast.Starred,
    ast.Name, ast.List, ast.Tuple, ast.Slice,
    ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop, ast.comprehension,
    ast.ExceptHandler, ast.arguments, ast.arg, ast.keyword, ast.alias,
)
_NODE_HINT = {
    "Yield": "generators (yield) are not allowed; return a list instead",
    "YieldFrom": "generators (yield from) are not allowed",
    "AsyncFunctionDef": "async functions are not allowed",
    "Await": "await is not allowed", "AsyncFor": "async for is not allowed",
    "AsyncWith": "async with is not allowed", "With": "'with' blocks are not allowed (no files or locks in a strategy)",
    "Nonlocal": "nonlocal is not allowed; use a list or dict to share state",
    "Match": "match statements are not supported; use if/elif",
    "TryStar": "except* is not supported",
}


@dataclass(frozen=True)
class Finding:
    """One validation problem, 1-based line and column."""

    line: int
    col: int
    message: str

    def to_json(self) -> dict:
        return {"line": self.line, "col": self.col, "message": self.message}

    def __str__(self) -> str:
        return f"line {self.line}, col {self.col}: {self.message}"


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self._ok_names: set[int] = set()
        self._class_depth = 0
        self._depth = 0
        self.nodes = 0

    def add(self, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 1) or 1, (getattr(node, "col_offset", 0) or 0) + 1, message))

    def visit(self, node: ast.AST) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.add(node, f"strategy too large: more than {MAX_NODES} syntax nodes")
            return
        if not isinstance(node, _ALLOWED_NODES):
            name = type(node).__name__
            self.add(node, _NODE_HINT.get(name, f"{name} syntax is not allowed in a strategy"))
            return
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                self.add(node, f"code nested more than {MAX_DEPTH} levels deep")
                return
            super().visit(node)
        finally:
            self._depth -= 1

    # names -------------------------------------------------------------------------------
    def _check_identifier(self, node: ast.AST, name: str, what: str) -> None:
        if name.startswith("_") and name != "_":
            self.add(node, f"{what} {name!r} starts with '_': private and dunder names are not allowed")
        elif name in FORBIDDEN_NAMES:
            self.add(node, f"{name!r} is not available in the sandbox")

    def visit_Name(self, node: ast.Name) -> None:
        if id(node) in self._ok_names:
            return
        if node.id in CONSTANT_ATTR_CALLS:
            self.add(node, f"{node.id} may only be called directly with a constant attribute name, "
                           f"e.g. {node.id}(obj, 'name')")
            return
        self._check_identifier(node, node.id, "name")

    def visit_arg(self, node: ast.arg) -> None:
        self._check_identifier(node, node.arg, "argument")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for n in node.names:
            self._check_identifier(node, n, "name")

    def visit_alias(self, node: ast.alias) -> None:
        if node.asname:
            self._check_identifier(node, node.asname, "name")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._check_identifier(node, node.name, "name")
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg and node.arg.startswith("_"):
            self.add(node, f"keyword argument {node.arg!r} starts with '_'")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self.add(node, f"attribute {attr!r} starts with '_': private and dunder attributes are not allowed")
        elif attr in FORBIDDEN_ATTRS:
            self.add(node, f"attribute {attr!r} is not allowed (frames, code and globals are off limits)")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if isinstance(f, ast.Name) and f.id in CONSTANT_ATTR_CALLS:
            self._ok_names.add(id(f))
            name_arg = node.args[1] if len(node.args) >= 2 else None
            if not (isinstance(name_arg, ast.Constant) and isinstance(name_arg.value, str)):
                self.add(node, f"{f.id}() needs a constant attribute name: dynamic attribute access by string is not allowed")
            elif name_arg.value.startswith("_") or name_arg.value in FORBIDDEN_ATTRS:
                self.add(node, f"{f.id}() of attribute {name_arg.value!r} is not allowed")
        if isinstance(f, ast.Name) and f.id == "type" and len(node.args) != 1:
            self.add(node, "type() may only be called with one argument (to get an object's type)")
        self.generic_visit(node)

    # definitions -------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        name = node.name
        if name.startswith("_"):
            if not (self._class_depth and name in ALLOWED_DUNDER_DEFS):
                allowed = ", ".join(sorted(ALLOWED_DUNDER_DEFS))
                self.add(node, f"function name {name!r} starts with '_' (inside classes only {allowed} may be defined)")
        elif name in FORBIDDEN_NAMES:
            self.add(node, f"{name!r} is a reserved name")
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Name) and dec.id == "property" and self._class_depth):
                self.add(dec, "decorators are not allowed (except @property inside a class)")
        saved = self._class_depth
        self._class_depth = 0
        try:
            self.generic_visit(node)
        finally:
            self._class_depth = saved

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_identifier(node, node.name, "class name")
        if node.keywords:
            self.add(node, "class keywords (metaclass=...) are not allowed")
        if node.decorator_list:
            self.add(node, "class decorators are not allowed")
        for base in node.bases:
            if not isinstance(base, (ast.Name, ast.Attribute)):
                self.add(base, "class bases must be plain names")
        self._class_depth += 1
        try:
            self.generic_visit(node)
        finally:
            self._class_depth -= 1

    def visit_Lambda(self, node: ast.Lambda) -> None:
        saved = self._class_depth
        self._class_depth = 0
        try:
            self.generic_visit(node)
        finally:
            self._class_depth = saved

    # imports -----------------------------------------------------------------------------
    def _check_module(self, node: ast.AST, module: str) -> None:
        if module == "__future__":
            return
        if module not in ALLOWED_IMPORTS:
            root = module.split(".")[0]
            hint = _IMPORT_HINT.get(root, "")
            allowed = ", ".join(sorted(m for m in ALLOWED_IMPORTS if "." not in m))
            self.add(node, f"import of {module!r} is not allowed: strategies may import {allowed}"
                     + (f" ({hint})" if hint else ""))

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self._check_module(node, a.name)
            if a.asname:
                self._check_identifier(node, a.asname, "name")
            elif "." in a.name:
                self.add(node, f"use 'import {a.name} as name' or 'from {a.name} import ...'")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.add(node, "relative imports are not allowed")
            return
        module = node.module or ""
        self._check_module(node, module)
        for a in node.names:
            if a.name == "*":
                self.add(node, "'from ... import *' is not allowed; import the names you use")
            elif module == "__future__" and a.name != "annotations":
                self.add(node, f"'from __future__ import {a.name}' is not allowed")
            else:
                self._check_identifier(node, a.name, "imported name")
                if a.asname:
                    self._check_identifier(node, a.asname, "name")

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Attribute) and node.target.attr.startswith("_"):
            self.add(node, f"attribute {node.target.attr!r} starts with '_'")
        self.generic_visit(node)


def _positional_arity(fn: ast.FunctionDef) -> tuple[int, int | None]:
    args = fn.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    return required, (None if args.vararg else positional)


def _check_entry_points(tree: ast.Module, findings: list[Finding]) -> None:
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name, (nargs, required) in ENTRY_POINTS.items():
        fn = defs.get(name)
        if fn is None:
            if required:
                findings.append(Finding(1, 1, f"the strategy must define {name}(symbol) at module level, "
                                              "returning a bool or a dict with 'signal'"))
            continue
        lo, hi = _positional_arity(fn)
        kwonly_required = any(d is None for d in fn.args.kw_defaults)
        if lo > nargs or (hi is not None and hi < nargs) or kwonly_required:
            findings.append(Finding(fn.lineno, fn.col_offset + 1,
                                    f"{name} must accept exactly {nargs} positional argument(s); "
                                    f"it requires {lo}" + ("" if hi is None else f" and accepts at most {hi}")))


def validate(source: str | bytes) -> list[Finding]:
    """Return every problem found in ``source``; an empty list means it may run.

    The checks: it parses; it is not too large or too deep; every syntax node is on the
    allow-list; no name or attribute starts with ``_`` (except the magic methods a class may
    define); no exec/eval/open/globals-style names under any alias; imports limited to the
    curated modules; ``classify_symbol`` exists and takes one argument.
    """
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            return [Finding(1, 1, f"source is not valid UTF-8: {exc.reason} at byte {exc.start}")]
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        return [Finding(1, 1, f"source is larger than {MAX_SOURCE_BYTES} bytes")]
    if "\x00" in source:
        line = source[:source.index("\x00")].count("\n") + 1
        return [Finding(line, 1, "source contains a NUL byte")]
    try:
        tree = ast.parse(source, filename="<strategy>", mode="exec")
    except SyntaxError as exc:
        return [Finding(exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")]
    except (RecursionError, MemoryError, ValueError) as exc:
        return [Finding(1, 1, f"source could not be parsed ({type(exc).__name__}): too deeply nested or malformed")]
    checker = _Checker()
    try:
        checker.visit(tree)
    except RecursionError:
        checker.add(tree, f"code nested too deeply (limit {MAX_DEPTH})")
    findings = checker.findings
    _check_entry_points(tree, findings)
    findings.sort(key=lambda f: (f.line, f.col))
    return findings
