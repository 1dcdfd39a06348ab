"""Point-in-time reference data: company metadata, fundamentals and earnings.

Two sources feed one :class:`ReferenceData`:

* ``resources/metadata.json`` - **real** static classification (name, sector, industry,
  exchange) extracted from the ``pytickersymbols`` package by ``scripts/build_metadata.py``.
  Sector and industry are treated as known from the first date: they are a classification,
  not a time series, so they carry no look-ahead in the sense that matters for backtests.
* ``resources/demo_fundamentals.json`` - **illustrative** fundamentals and earnings
  (``"demo": true``). There is no offline point-in-time fundamentals source, so these
  numbers only have plausible magnitudes. Every value taken from a demo source is returned
  with ``'demo': True`` so callers can label what they show.

Everything is evaluated as of an integer day (days since 1970-01-01, see
:func:`stratagem.data.store.iso_to_day`): a record is visible only when its ``known_date``
(fundamentals) or ``report_date`` (earnings) is on or before that day.

The object is built from plain JSON-able dicts (:meth:`ReferenceData.from_payload`) and
does no I/O afterwards, because it is shipped into a sandboxed worker that cannot open
files. All returned dicts and lists are fresh copies: a strategy mutating what it got back
must not change what the next call (or the next strategy in the same worker) sees.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from ..errors import BadInput

__all__ = [
    "EARNINGS_FIELDS",
    "FUNDAMENTAL_FIELDS",
    "SCAN_FILTER_KEYS",
    "SECTORS",
    "ReferenceData",
    "canonical_sector",
]

_EPOCH = _dt.date(1970, 1, 1)

#: The fixed sector vocabulary (GICS-style names; "Technology" and "Healthcare" are the
#: spellings strategies use most, e.g. the CONTRACT default ``get_sector_data('Technology')``).
SECTORS: tuple[str, ...] = (
    "Technology",
    "Communication Services",
    "Healthcare",
    "Financials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Industrials",
    "Energy",
    "Materials",
    "Utilities",
    "Real Estate",
)

# Synonyms users, LLM-generated strategies and data vendors use for the same sectors.
# Keys are compared after :func:`_norm_sector_key`, so case, '&' vs 'and' and punctuation
# do not matter. The build script reuses this table to normalise the source's labels.
_SECTOR_SYNONYMS: dict[str, str] = {
    "technology": "Technology",
    "tech": "Technology",
    "information technology": "Technology",
    "info tech": "Technology",
    "it": "Technology",
    "communication services": "Communication Services",
    "communications services": "Communication Services",
    "communication": "Communication Services",
    "communications": "Communication Services",
    "telecommunication services": "Communication Services",
    "telecommunications services": "Communication Services",
    "telecommunications": "Communication Services",
    "telecom": "Communication Services",
    "media": "Communication Services",
    "healthcare": "Healthcare",
    "health care": "Healthcare",
    "health": "Healthcare",
    "financials": "Financials",
    "financial": "Financials",
    "financial services": "Financials",
    "finance": "Financials",
    "consumer discretionary": "Consumer Discretionary",
    "discretionary": "Consumer Discretionary",
    "consumer cyclical": "Consumer Discretionary",
    "consumer cyclicals": "Consumer Discretionary",
    "consumer staples": "Consumer Staples",
    "staples": "Consumer Staples",
    "consumer defensive": "Consumer Staples",
    "consumer non cyclical": "Consumer Staples",
    "consumer non cyclicals": "Consumer Staples",
    "industrials": "Industrials",
    "industrial": "Industrials",
    "industrial goods": "Industrials",
    "energy": "Energy",
    "oil and gas": "Energy",
    "materials": "Materials",
    "basic materials": "Materials",
    "utilities": "Utilities",
    "utility": "Utilities",
    "real estate": "Real Estate",
    "reit": "Real Estate",
    "reits": "Real Estate",
    "real estate investment trust": "Real Estate",
}

#: Numeric fundamentals fields carried by fundamentals records (besides ``known_date``).
FUNDAMENTAL_FIELDS: tuple[str, ...] = (
    "market_cap", "pe_ratio", "eps", "debt_to_equity", "shares_outstanding",
)
#: Keys of every earnings report (CONTRACT §2 ``get_earnings_data``).
EARNINGS_FIELDS: tuple[str, ...] = (
    "report_date", "fiscal_period", "eps_actual", "eps_estimate", "surprise_pct", "revenue",
)
#: Filter keys accepted by :meth:`ReferenceData.scan` (CONTRACT §2 ``scan_universe``).
SCAN_FILTER_KEYS: tuple[str, ...] = (
    "min_market_cap", "max_market_cap", "sector", "industry",
    "min_price", "max_price", "min_avg_volume",
)
_NUMERIC_FILTERS = frozenset(SCAN_FILTER_KEYS) - {"sector", "industry"}
_PRICE_FILTERS = frozenset({"min_price", "max_price", "min_avg_volume"})

_METADATA_RESOURCE = "metadata.json"
_DEMO_RESOURCE = "demo_fundamentals.json"


def _norm_sector_key(text: str) -> str:
    """Lower-case, '&' -> 'and', any run of non-alphanumerics -> one space."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower().replace("&", " and ")).strip()


_SYNONYM_INDEX: dict[str, str] = {_norm_sector_key(k): v for k, v in _SECTOR_SYNONYMS.items()}
_SYNONYM_INDEX.update({_norm_sector_key(s): s for s in SECTORS})


def canonical_sector(name: str) -> str | None:
    """Map a sector name or common synonym to the fixed vocabulary, else ``None``.

    >>> canonical_sector("tech"), canonical_sector("Information Technology")
    ('Technology', 'Technology')
    """
    if not isinstance(name, str):
        return None
    return _SYNONYM_INDEX.get(_norm_sector_key(name))


def _iso_to_day(text: str) -> int:
    # Local copy of store.iso_to_day: keeps this module free of numpy for the worker.
    return (_dt.date.fromisoformat(text) - _EPOCH).days


def _is_number(value: object) -> bool:
    # bool is an int subclass; True as a market-cap bound is a bug, not a number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` when missing / not a number / NaN."""
    if not _is_number(value):
        return None
    f = float(value)  # type: ignore[arg-type]
    return f if math.isfinite(f) else None


class ReferenceData:
    """Static metadata plus point-in-time fundamentals and earnings for a set of symbols.

    Immutable after construction; safe to share between threads and calls.
    """

    def __init__(self, metadata: Mapping[str, Any], demo: Mapping[str, Any]) -> None:
        self._metadata_payload = json.loads(json.dumps(metadata))  # deep, JSON-clean copy
        self._demo_payload = json.loads(json.dumps(demo))
        self._build_metadata(self._metadata_payload)
        self._build_series(self._demo_payload)

    # ------------------------------------------------------------------ construction
    def _build_metadata(self, meta: dict[str, Any]) -> None:
        if not isinstance(meta, dict):
            raise BadInput("reference payload: 'metadata' must be an object")
        fields = meta.get("fields", ["name", "sector", "industry", "exchange"])
        rows = meta.get("symbols", {})
        if not isinstance(rows, dict) or not isinstance(fields, list):
            raise BadInput("reference payload: metadata needs 'fields' (list) and 'symbols' (object)")
        self._meta: dict[str, dict[str, str | None]] = {}
        for sym, row in rows.items():
            if isinstance(row, list):
                if len(row) != len(fields):
                    raise BadInput(f"reference payload: metadata row for {sym!r} has {len(row)} "
                                   f"values, expected {len(fields)} ({', '.join(fields)})")
                rec = dict(zip(fields, row))
            elif isinstance(row, dict):
                rec = dict(row)
            else:
                raise BadInput(f"reference payload: metadata row for {sym!r} must be a list or object")
            # Normalise once here so every lookup compares canonical sector names.
            if rec.get("sector") is not None:
                rec["sector"] = canonical_sector(str(rec["sector"])) or str(rec["sector"])
            self._meta[sym.upper()] = rec
        aliases = meta.get("aliases", {})
        if not isinstance(aliases, dict):
            raise BadInput("reference payload: metadata 'aliases' must be an object")
        # Old ticker -> current ticker (FB traded as FB in the bundled data, META today).
        self._aliases: dict[str, str] = {str(k).upper(): str(v).upper() for k, v in aliases.items()}

    def _build_series(self, demo: dict[str, Any]) -> None:
        if not isinstance(demo, dict):
            raise BadInput("reference payload: 'demo' must be an object")
        self._is_demo = bool(demo.get("demo", False))
        # Per symbol: parallel (sorted days, records) so bisect finds the latest visible one.
        self._fund: dict[str, tuple[list[int], list[dict[str, Any]]]] = {}
        self._earn: dict[str, tuple[list[int], list[dict[str, Any]]]] = {}
        seen_fields: set[str] = set()
        for key, date_key, target in (("fundamentals", "known_date", self._fund),
                                      ("earnings", "report_date", self._earn)):
            table = demo.get(key, {})
            if not isinstance(table, dict):
                raise BadInput(f"reference payload: demo '{key}' must be an object of symbol -> list")
            for sym, records in table.items():
                if not isinstance(records, list):
                    raise BadInput(f"reference payload: {key} of {sym!r} must be a list")
                dated: list[tuple[int, dict[str, Any]]] = []
                for rec in records:
                    if not isinstance(rec, dict) or not isinstance(rec.get(date_key), str):
                        raise BadInput(f"reference payload: every {key} record of {sym!r} needs "
                                       f"an ISO '{date_key}'")
                    try:
                        day = _iso_to_day(rec[date_key])
                    except ValueError:
                        raise BadInput(f"reference payload: {key} record of {sym!r} has "
                                       f"{date_key}={rec[date_key]!r}, expected YYYY-MM-DD") from None
                    dated.append((day, rec))
                    seen_fields.update(rec)
                # Stable sort: with equal dates the later record in the file wins (bisect_right).
                dated.sort(key=lambda t: t[0])
                target[sym.upper()] = ([d for d, _ in dated], [r for _, r in dated])
        # Derived from the data rather than hard-coded, so a future real (non-demo) source
        # yields an empty set and nothing gets labelled demo by mistake.
        fields = (seen_fields | {"as_of"}) - {"known_date"}
        self.demo_fields: frozenset[str] = frozenset(fields) if self._is_demo else frozenset()

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ReferenceData:
        """Build from ``{"metadata": {...}, "demo": {...}}`` (the output of :meth:`to_payload`)."""
        if not isinstance(payload, Mapping):
            raise BadInput("reference payload must be an object with 'metadata' and 'demo'")
        return cls(payload.get("metadata", {}), payload.get("demo", {}))

    def to_payload(self, symbols: Iterable[str] | None = None) -> dict[str, Any]:
        """Plain JSON-able dict that :meth:`from_payload` turns back into an equal object.

        ``symbols`` restricts the payload to those symbols (and their aliases), which keeps
        what is shipped to a sandbox worker small; ``None`` keeps everything.
        """
        meta = json.loads(json.dumps(self._metadata_payload))
        demo = json.loads(json.dumps(self._demo_payload))
        if symbols is not None:
            wanted = {s.upper() for s in symbols}
            wanted |= {self._aliases[s] for s in wanted if s in self._aliases}
            meta["symbols"] = {k: v for k, v in meta.get("symbols", {}).items() if k.upper() in wanted}
            meta["aliases"] = {k: v for k, v in meta.get("aliases", {}).items() if k.upper() in wanted}
            for key in ("fundamentals", "earnings"):
                if isinstance(demo.get(key), dict):
                    demo[key] = {k: v for k, v in demo[key].items()
                                 if k.upper() in wanted or self._aliases.get(k.upper()) in wanted}
        return {"metadata": meta, "demo": demo}

    @classmethod
    def load_default(cls) -> ReferenceData:
        """The bundled metadata and demo fundamentals (read once per process, then cached)."""
        return _load_default()

    # ------------------------------------------------------------------ lookups
    def _meta_of(self, symbol: str) -> dict[str, str | None] | None:
        if not isinstance(symbol, str):
            return None
        sym = symbol.upper()
        rec = self._meta.get(sym)
        if rec is None and sym in self._aliases:
            rec = self._meta.get(self._aliases[sym])
        return rec

    def _series(self, table: dict[str, tuple[list[int], list[dict[str, Any]]]],
                symbol: str) -> tuple[list[int], list[dict[str, Any]]] | None:
        if not isinstance(symbol, str):
            return None
        sym = symbol.upper()
        found = table.get(sym)
        if found is None:
            # Either direction of a rename: META -> FB's series, FB -> META's series.
            current = self._aliases.get(sym, sym)
            for old, new in self._aliases.items():
                if new == current and old in table:
                    return table[old]
            found = table.get(current)
        return found

    @staticmethod
    def _day(asof_day: int) -> int:
        # operator.index accepts int and numpy integers but not floats, strings or bools
        # (a bool day is always a caller bug).
        if isinstance(asof_day, bool):
            raise BadInput(f"asof_day must be an integer day number, got {asof_day!r}")
        try:
            return operator.index(asof_day)
        except TypeError:
            raise BadInput(f"asof_day must be an integer day number, got {asof_day!r}") from None

    def name_of(self, symbol: str) -> str | None:
        rec = self._meta_of(symbol)
        return rec.get("name") if rec else None

    def sector_of(self, symbol: str) -> str | None:
        """Canonical sector of ``symbol`` (static classification), ``None`` when unknown."""
        rec = self._meta_of(symbol)
        return rec.get("sector") if rec else None

    def industry_of(self, symbol: str) -> str | None:
        rec = self._meta_of(symbol)
        return rec.get("industry") if rec else None

    def fundamentals(self, symbol: str, asof_day: int) -> dict[str, Any]:
        """Fundamentals of ``symbol`` known on ``asof_day``.

        Numeric values come from the latest record with ``known_date <= asof_day``
        (``as_of`` names that date); before the first record they are ``None``. ``sector``,
        ``industry`` and ``name`` are static and present whenever the symbol is known.
        ``'demo': True`` is set when any value came from demo data. ``{}`` when nothing at
        all is known about the symbol as of that day.
        """
        day = self._day(asof_day)
        meta = self._meta_of(symbol)
        out: dict[str, Any] = {}
        record: dict[str, Any] | None = None
        series = self._series(self._fund, symbol)
        if series is not None:
            i = bisect.bisect_right(series[0], day)
            if i:
                record = series[1][i - 1]
        if meta is None and record is None:
            return {}
        for f in FUNDAMENTAL_FIELDS:
            out[f] = None
        if record is not None:
            for k, v in record.items():
                if k != "known_date":
                    out[k] = v
            out["as_of"] = record["known_date"]
            if self._is_demo:
                out["demo"] = True
        else:
            out["as_of"] = None
        out["name"] = meta.get("name") if meta else None
        out["sector"] = meta.get("sector") if meta else None
        out["industry"] = meta.get("industry") if meta else None
        if meta and meta.get("exchange") is not None:
            out["exchange"] = meta["exchange"]
        return out

    def earnings(self, symbol: str, asof_day: int, quarters: int = 8) -> list[dict[str, Any]]:
        """Earnings reports released on or before ``asof_day``, newest last, at most ``quarters``."""
        day = self._day(asof_day)
        if not isinstance(quarters, int) or isinstance(quarters, bool):
            raise BadInput(f"quarters must be an integer number of reports, got {quarters!r}")
        if quarters <= 0:
            return []
        series = self._series(self._earn, symbol)
        if series is None:
            return []
        stop = bisect.bisect_right(series[0], day)
        out: list[dict[str, Any]] = []
        for rec in series[1][max(0, stop - quarters):stop]:
            row = {k: rec.get(k) for k in EARNINGS_FIELDS}  # CONTRACT keys, None where unknown
            if self._is_demo:
                row["demo"] = True
            out.append(row)
        return out

    def sector_members(self, sector: str, symbols: Iterable[str]) -> list[str]:
        """Those of ``symbols`` (in their given order, deduplicated) classified in ``sector``.

        ``sector`` is matched case-insensitively and through common synonyms ('tech',
        'Information Technology', 'health care', ...). An unknown sector matches nothing.
        """
        if not isinstance(sector, str):
            raise BadInput(f"sector must be a string such as 'Technology', got {sector!r}")
        target = canonical_sector(sector) or sector.strip().lower()
        out: list[str] = []
        seen: set[str] = set()
        for sym in symbols:
            if sym in seen:
                continue
            seen.add(sym)
            own = self.sector_of(sym)
            if own is not None and (own == target or own.lower() == target):
                out.append(sym)
        return out

    @property
    def symbols(self) -> list[str]:
        """Every symbol with metadata (sorted)."""
        return sorted(self._meta)

    # ------------------------------------------------------------------ scan
    @staticmethod
    def validate_filters(filters: object) -> dict[str, Any]:
        """Check ``scan_universe`` filters; returns them as a dict or raises :class:`BadInput`.

        ``None`` as a value means "no constraint" (generated code often writes
        ``{'sector': None}``).
        """
        if filters is None:
            return {}
        if not isinstance(filters, Mapping):
            raise BadInput(f"filters must be a dict such as {{'sector': 'Technology', "
                           f"'min_price': 10}}, got {type(filters).__name__}")
        known = ", ".join(SCAN_FILTER_KEYS)
        unknown = sorted(str(k) for k in filters if k not in SCAN_FILTER_KEYS)
        if unknown:
            raise BadInput(f"unknown scan_universe filter key(s): {', '.join(unknown)}; "
                           f"known keys are: {known}")
        out: dict[str, Any] = {}
        for key, value in filters.items():
            if value is None:
                continue
            if key in _NUMERIC_FILTERS:
                if not _is_number(value) or math.isnan(float(value)):
                    raise BadInput(f"scan_universe filter {key!r} expects a number, "
                                   f"got {value!r} ({type(value).__name__})")
                out[key] = float(value)
            else:
                if not isinstance(value, str) or not value.strip():
                    raise BadInput(f"scan_universe filter {key!r} expects a non-empty string, "
                                   f"got {value!r} ({type(value).__name__})")
                out[key] = value
        return out

    def scan(self, filters: Mapping[str, Any] | None, symbols: Iterable[str], asof_day: int,
             price_lookup: Callable[[str], tuple[float | None, float | None]],
             limit: int = 100) -> list[str]:
        """Symbols matching every filter as of ``asof_day``, sorted, at most ``limit``.

        A symbol with missing data for a filter (no market cap yet, no price) does not
        match that filter. ``industry`` matches case-insensitively, as the whole name or a
        part of it ('software' matches 'Software & IT Services'). ``price_lookup(symbol)``
        returns (last close as of the day, average volume) and is only called when a price
        or volume filter is present.
        """
        day = self._day(asof_day)
        checked = self.validate_filters(filters)
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise BadInput(f"limit must be an integer, got {limit!r}")
        if limit <= 0:
            return []
        sector = None
        if "sector" in checked:
            sector = canonical_sector(checked["sector"]) or checked["sector"].strip().lower()
        industry = checked["industry"].strip().lower() if "industry" in checked else None
        need_price = any(k in checked for k in _PRICE_FILTERS)
        need_cap = "min_market_cap" in checked or "max_market_cap" in checked
        out: list[str] = []
        for sym in sorted({s for s in symbols if isinstance(s, str)}):
            if sector is not None:
                own = self.sector_of(sym)
                if own is None or (own != sector and own.lower() != sector):
                    continue
            if industry is not None:
                own_ind = self.industry_of(sym)
                if own_ind is None or industry not in own_ind.lower():
                    continue
            if need_cap:
                cap = _finite(self.fundamentals(sym, day).get("market_cap"))
                if cap is None:
                    continue
                if "min_market_cap" in checked and cap < checked["min_market_cap"]:
                    continue
                if "max_market_cap" in checked and cap > checked["max_market_cap"]:
                    continue
            if need_price:
                price, volume = price_lookup(sym)
                price, volume = _finite(price), _finite(volume)
                if "min_price" in checked and (price is None or price < checked["min_price"]):
                    continue
                if "max_price" in checked and (price is None or price > checked["max_price"]):
                    continue
                if "min_avg_volume" in checked and (volume is None or volume < checked["min_avg_volume"]):
                    continue
            out.append(sym)
            if len(out) >= limit:
                break
        return out


@lru_cache(maxsize=1)
def _load_default() -> ReferenceData:
    # Cached because the instance is immutable and metadata.json is ~100 KB of JSON.
    base = resources.files("stratagem").joinpath("resources")
    metadata = json.loads(base.joinpath(_METADATA_RESOURCE).read_text(encoding="utf-8"))
    demo = json.loads(base.joinpath(_DEMO_RESOURCE).read_text(encoding="utf-8"))
    return ReferenceData(metadata, demo)
