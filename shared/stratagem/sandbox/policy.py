"""RestrictedPython compilation with Stratagem's transformer.

RestrictedPython rejects ``a[i] += 1`` and ``obj.n += 1``; generated and hand-written
strategies use both (counters, grids, accumulators). We rewrite them into calls of trusted
helpers (``_inplace_item_``/``_inplace_attr_``) that apply the same write guard as plain
assignment, instead of loosening anything else.
"""

from __future__ import annotations

import ast
from types import CodeType

from RestrictedPython import compile_restricted_exec
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

from ..errors import StrategyRejected
from .validator import Finding, validate

FILENAME = "<strategy>"


class StrategyTransformer(RestrictingNodeTransformer):
    def _slice_expr(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Slice):
            parts = [self.visit(p) if p is not None else ast.Constant(None) for p in (node.lower, node.upper, node.step)]
            return ast.Call(func=ast.Name("slice", ast.Load()), args=parts, keywords=[])
        return self.visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        """``x: float = 1.0`` runs as ``x = 1.0`` (RestrictedPython rejects every annotated
        assignment; generated code often has them). The annotation is never evaluated; a bare
        ``x: float`` does nothing. The validator has already checked the annotation's names."""
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        new = ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)
        ast.fix_missing_locations(new)
        return self.visit(new)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        target = node.target
        op = IOPERATOR_TO_STR[type(node.op)]
        if isinstance(target, ast.Subscript):
            # _inplace_item_(_inplace_read_item_(obj, key), op, value) keeps Python's order: container,
            # key, old value, then the right-hand side, then the write.
            read = ast.Call(func=ast.Name("_inplace_read_item_", ast.Load()),
                            args=[self.visit(target.value), self._slice_expr(target.slice)], keywords=[])
            call = ast.Call(func=ast.Name("_inplace_item_", ast.Load()),
                            args=[read, ast.Constant(op), self.visit(node.value)], keywords=[])
        elif isinstance(target, ast.Attribute):
            if target.attr.startswith("_"):
                self.error(node, f'"{target.attr}" is an invalid attribute name because it starts with "_".')
                return node
            read = ast.Call(func=ast.Name("_inplace_read_attr_", ast.Load()),
                            args=[self.visit(target.value), ast.Constant(target.attr)], keywords=[])
            call = ast.Call(func=ast.Name("_inplace_attr_", ast.Load()),
                            args=[read, ast.Constant(op), self.visit(node.value)], keywords=[])
        else:
            return super().visit_AugAssign(node)
        new = ast.Expr(value=call)
        ast.copy_location(new, node)
        ast.fix_missing_locations(new)
        return new


def compile_strategy(source: str) -> CodeType:
    """Validate and compile ``source``; raises :class:`StrategyRejected` listing every finding."""
    findings = validate(source)
    if findings:
        raise StrategyRejected(_summary(findings), details=[f.to_json() for f in findings])
    result = compile_restricted_exec(source, filename=FILENAME, policy=StrategyTransformer)
    if result.errors or result.code is None:
        found = [_parse_rp_error(e) for e in result.errors] or [Finding(1, 1, "compilation failed")]
        raise StrategyRejected(_summary(found), details=[f.to_json() for f in found])
    return result.code


def check(source: str) -> list[Finding]:
    """Findings of both layers (validator, then RestrictedPython) without raising."""
    try:
        compile_strategy(source)
    except StrategyRejected as exc:
        return [Finding(d["line"], d.get("col", 1), d["message"]) for d in (exc.details or [])]
    return []


def _parse_rp_error(text: str) -> Finding:
    # RestrictedPython reports "Line 3: <message>" (and "Line None:" for module-level issues).
    line = 1
    msg = text
    if text.startswith("Line "):
        head, _, rest = text.partition(":")
        try:
            line = int(head[5:])
        except ValueError:
            pass
        msg = rest.strip()
    return Finding(line, 1, msg)


def _summary(findings: list[Finding]) -> str:
    head = "strategy rejected: " + ("1 problem" if len(findings) == 1 else f"{len(findings)} problems")
    return head + "\n" + "\n".join(f"  {f}" for f in findings[:50])
