"""Universes: the bundled/dataset-wide one, saved lists, and filter scans (``scan_universe``).

``--universe`` accepts ``demo`` or ``all`` (every symbol of the dataset), the name of a list
saved with ``stratagem universe save NAME A,B,C`` (or imported from a file, one symbol per
line), or ``scan:key=value,...`` using the ``scan_universe`` filters, evaluated point in time
at the as-of date (screens) or the start date (backtests, replays).
"""

from __future__ import annotations

import re
from pathlib import Path

from .data.pit import PointInTime
from .data.store import MarketData, day_to_iso
from .errors import BadInput, NotFound
from .settings import Settings

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-^=_]{0,19}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
BUILTIN = ("demo", "all")


def _dir(settings: Settings) -> Path:
    return settings.home / "universes"


def parse_symbols(text: str | list[str]) -> list[str]:
    items = text if isinstance(text, list) else re.split(r"[,\s]+", text)
    out = []
    for raw in items:
        s = raw.strip().upper()
        if not s or s.startswith("#"):
            continue
        if not _SYMBOL.match(s):
            raise BadInput(f"not a ticker symbol: {raw.strip()!r} (expected letters/digits like AAPL or BRK.B)")
        out.append(s)
    if not out:
        raise BadInput("the symbol list is empty; expected a comma-separated list like AAPL,MSFT")
    return sorted(dict.fromkeys(out))


def save_universe(settings: Settings, name: str, symbols: list[str]) -> Path:
    if not _NAME.match(name) or name in BUILTIN:
        raise BadInput(f"universe name must be lower-case letters, digits, '-' or '_' (not demo/all), got {name!r}")
    path = _dir(settings) / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(symbols) + "\n")
    tmp.replace(path)
    return path


def load_universe(settings: Settings, name: str) -> list[str]:
    path = _dir(settings) / f"{name}.txt"
    if not _NAME.match(name) or not path.exists():
        known = ", ".join(list(BUILTIN) + list_universes(settings))
        raise NotFound(f"unknown universe {name!r}; known: {known}, or scan:key=value,... "
                       "(save one with 'stratagem universe save NAME A,B,C')")
    return parse_symbols(path.read_text().splitlines())


def list_universes(settings: Settings) -> list[str]:
    d = _dir(settings)
    return sorted(p.stem for p in d.glob("*.txt")) if d.exists() else []


def parse_scan(spec: str) -> dict:
    """``sector=Technology,min_price=10`` -> filters dict (numbers where they parse)."""
    filters: dict = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise BadInput(f"scan filters look like key=value, got {part!r} (e.g. scan:sector=Technology,min_price=10)")
        k, v = (x.strip() for x in part.split("=", 1))
        try:
            filters[k] = float(v.replace("_", "")) if re.match(r"^-?[\d_.]+(e-?\d+)?$", v, re.I) else v
        except ValueError:
            filters[k] = v
    return filters


def resolve(settings: Settings, market: MarketData, symbols: str | list[str] | None, universe: str | None,
            asof_day: int | None = None) -> tuple[list[str], str]:
    """(symbols, label) for ``--symbols``/``--universe``; default: the whole dataset."""
    if symbols and universe:
        raise BadInput("give either --symbols or --universe, not both")
    if symbols:
        return parse_symbols(symbols), "explicit symbol list"
    if universe is None or universe.lower() in BUILTIN:
        label = "demo" if market.name == "sample" else f"all symbols of dataset {market.name!r}"
        return market.symbols, label
    if universe.startswith("scan:"):
        from .data.reference import ReferenceData

        filters = parse_scan(universe[5:])
        pit = PointInTime(market, ReferenceData.load_default())
        day = asof_day if asof_day is not None else int(market.calendar()[-1])
        pit.set_asof(day)
        syms = pit.scan(filters, limit=100_000)
        if not syms:
            raise BadInput(f"the scan {universe!r} matched no symbols as of {day_to_iso(day)}")
        return syms, f"{universe} as of {day_to_iso(day)}"
    return load_universe(settings, universe), f"saved list {universe!r}"
