"""Static reading of the functions and the service core (``ast``: nothing is imported, so no
Google library is needed to check the wiring).

* :func:`entry_points` - a ``main.py``'s module-level functions and their Functions Framework
  decorator kind (``http`` / ``cloud_event``).
* :class:`PublishScan` - which ``TOPICS[...]`` keys a function can publish to: the names its
  ``main.py`` takes from ``stratagem.service`` / ``stratagem.api`` are the roots; references
  are followed through those two modules (functions, and classes as a whole) to every
  ``TOPICS["key"]`` they use. ``stratagem.factory`` and the function runtime are deliberately
  not followed: they wire every handler for the in-process bus, which is not what a deployed
  function runs.
* :func:`local_wiring` - the topic -> handler map of ``factory.wire_in_process`` (the embedded
  topology), to compare with the deployed one.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "stratagem"
FOLLOWED = {"service": PACKAGE / "service.py", "api": PACKAGE / "api.py"}
DECORATOR_KINDS = {"http", "cloud_event", "typed", "errorhandler"}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _decorator_kind(dec: ast.expr, ff_aliases: set[str], ff_names: dict[str, str]) -> str | None:
    node = dec.func if isinstance(dec, ast.Call) else dec
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ff_aliases:
        return node.attr
    if isinstance(node, ast.Name) and node.id in ff_names:
        return ff_names[node.id]
    return None


def entry_points(main_py: Path) -> dict[str, list[str]]:
    """Module-level functions of ``main_py`` -> the Functions Framework decorators on each."""
    tree = _parse(main_py)
    ff_aliases: set[str] = set()
    ff_names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            ff_aliases |= {a.asname or a.name for a in node.names if a.name == "functions_framework"}
        elif isinstance(node, ast.ImportFrom) and node.module == "functions_framework":
            ff_names |= {a.asname or a.name: a.name for a in node.names if a.name in DECORATOR_KINDS}
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = [k for d in node.decorator_list if (k := _decorator_kind(d, ff_aliases, ff_names))]
    return out


# -- what a function publishes ------------------------------------------------------------------
def _topics_key(node: ast.Subscript) -> str | None:
    base = node.value
    named = (isinstance(base, ast.Name) and base.id == "TOPICS") or \
            (isinstance(base, ast.Attribute) and base.attr == "TOPICS")
    if named and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return None


@dataclass
class _Def:
    keys: set[str] = field(default_factory=set)          # TOPICS["key"] used directly
    refs: set[tuple[str, str]] = field(default_factory=set)  # (module, name) referenced


def _imports(tree: ast.AST) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Names bound by imports of the followed modules: ``{local: (module, name)}`` for
    ``from .service import x`` and ``{alias: module}`` for ``from stratagem import service``."""
    names: dict[str, tuple[str, str]] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        mod = (node.module or "").removeprefix("stratagem.").removeprefix("stratagem")
        package_level = node.level > 0 or (node.module or "").startswith("stratagem")
        if not package_level:
            continue
        for a in node.names:
            if mod in FOLLOWED:
                names[a.asname or a.name] = (mod, a.name)
            elif mod == "" and a.name in FOLLOWED:
                modules[a.asname or a.name] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                short = a.name.removeprefix("stratagem.")
                if a.name.startswith("stratagem.") and short in FOLLOWED and a.asname:
                    modules[a.asname] = short
    return names, modules


def _scan(body: ast.AST, module: str, local: set[str], names: dict, modules: dict) -> _Def:
    d = _Def()
    for node in ast.walk(body):
        if isinstance(node, ast.Subscript) and (k := _topics_key(node)):
            d.keys.add(k)
        elif isinstance(node, ast.Name):
            if node.id in names:
                d.refs.add(names[node.id])
            elif node.id in local:
                d.refs.add((module, node.id))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            d.refs.add((modules[node.value.id], node.attr))
    return d


class PublishScan:
    def __init__(self) -> None:
        self.defs: dict[tuple[str, str], _Def] = {}
        for mod, path in FOLLOWED.items():
            tree = _parse(path)
            names, modules = _imports(tree)
            local = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    self.defs[(mod, node.name)] = _scan(node, mod, local, names, modules)

    def keys(self, main_py: Path) -> set[str]:
        """Every ``TOPICS`` key reachable from ``main_py`` (its own uses included)."""
        tree = _parse(main_py)
        names, modules = _imports(tree)
        start = _scan(tree, "main", set(), names, modules)
        keys, seen, todo = set(start.keys), set(), list(start.refs)
        while todo:
            sym = todo.pop()
            if sym in seen or sym not in self.defs:
                continue
            seen.add(sym)
            keys |= self.defs[sym].keys
            todo.extend(self.defs[sym].refs)
        return keys


def roots(main_py: Path) -> set[tuple[str, str]]:
    """The ``(module, name)`` of service/api a function's ``main.py`` uses."""
    tree = _parse(main_py)
    names, modules = _imports(tree)
    return _scan(tree, "main", set(), names, modules).refs


def handlers(main_py: Path) -> set[str]:
    """The ``stratagem.service.handle_*`` functions a ``main.py`` uses."""
    return {name for mod, name in roots(main_py) if mod == "service" and name.startswith("handle_")}


def local_wiring() -> dict[str, str]:
    """``TOPICS`` key -> handler name, from the ``handlers`` dict of ``factory.wire_in_process``."""
    tree = _parse(PACKAGE / "factory.py")
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == "wire_in_process":
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and \
                        any(isinstance(t, ast.Name) and t.id == "handlers" for t in node.targets):
                    out = {}
                    for k, v in zip(node.value.keys, node.value.values, strict=True):
                        if isinstance(k, ast.Constant) and isinstance(v, (ast.Attribute, ast.Name)):
                            out[k.value] = v.attr if isinstance(v, ast.Attribute) else v.id
                    return out
    raise AssertionError("stratagem/factory.py: wire_in_process has no 'handlers = {...}' map to read")
