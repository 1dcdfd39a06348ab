"""The structured spec the offline generator parses a prompt into.

A :class:`Spec` is a boolean expression over :class:`Condition` leaves (combined with
:class:`AllOf`, :class:`AnyOf` and :class:`Not`), plus optional restrictions (tickers,
sectors) and an optional :class:`Ranking`. Every condition is *measure* ``kind`` with its
``params`` compared (``op``) against a ``threshold``; boolean patterns (crosses, candles,
new highs) have ``op``/``threshold`` ``None``.

Sign conventions: thresholds are on the signed measure, so "gap down by 3%" is
``Condition('gap', {}, '<=', -3.0)`` and "down 5% today" is
``Condition('return', {'lookback': 1}, '<=', -5.0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

#: comparison operators a condition may use
OPS = (">", ">=", "<", "<=")


@dataclass(frozen=True, eq=False)
class Condition:
    """One measurable condition: ``measure(kind, params) op threshold`` (or a boolean pattern)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    op: str | None = None
    threshold: float | None = None
    text: str = ""  # the (normalised) phrase it was read from

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return (self.kind, self.params, self.op, self.threshold) == (other.kind, other.params, other.op, other.threshold)

    def __hash__(self) -> int:
        return hash((self.kind, tuple(sorted(self.params.items())), self.op, self.threshold))

    @property
    def measure_key(self) -> tuple:
        """Identity of the measured quantity (conditions on the same measure share its code)."""
        return (self.kind, tuple(sorted(self.params.items())))

    def __repr__(self) -> str:
        tail = "" if self.op is None else f", {self.op!r}, {self.threshold!r}"
        return f"Condition({self.kind!r}, {self.params!r}{tail})"


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Union[Condition, AllOf, AnyOf, Not]  # noqa: UP007 - a runtime alias of forward-referenced classes


@dataclass(frozen=True, eq=False)
class Ranking:
    """Rank symbols by a measure; ``limit`` is the requested top-N (None = rank only)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    descending: bool = True
    limit: int | None = None
    text: str = ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ranking):
            return NotImplemented
        return (self.kind, self.params, self.descending, self.limit) == (other.kind, other.params, other.descending,
                                                                         other.limit)

    def __hash__(self) -> int:
        return hash((self.kind, tuple(sorted(self.params.items())), self.descending, self.limit))

    @property
    def measure_key(self) -> tuple:
        return (self.kind, tuple(sorted(self.params.items())))


@dataclass
class Spec:
    """What the offline generator understood from a prompt."""

    prompt: str
    expr: Node | None = None
    tickers: tuple[str, ...] = ()
    excluded_tickers: tuple[str, ...] = ()  # "all stocks except AAPL"
    sectors: tuple[str, ...] = ()
    excluded_sectors: tuple[str, ...] = ()  # "non-tech", "excluding financials"
    ranking: Ranking | None = None
    defaults: tuple[str, ...] = ()  # defaults that were applied, in words
    ignored: tuple[str, ...] = ()  # words that were not understood (reported, not used)
    normalized: str = ""

    def conditions(self) -> list[Condition]:
        """Every condition leaf, in prompt order."""
        out: list[Condition] = []

        def walk(node: Node | None) -> None:
            if node is None:
                return
            if isinstance(node, Condition):
                out.append(node)
            elif isinstance(node, Not):
                walk(node.item)
            else:
                for item in node.items:
                    walk(item)

        walk(self.expr)
        return out

    @property
    def condition(self) -> Condition:
        """The single condition of a one-condition spec (convenience for tests)."""
        conds = self.conditions()
        if len(conds) != 1:
            raise ValueError(f"spec has {len(conds)} conditions")
        return conds[0]

    def kinds(self) -> list[str]:
        return [c.kind for c in self.conditions()]
