#!/usr/bin/env python
"""Build the reference-data resources under ``shared/stratagem/resources/``.

``metadata.json``
    Real company metadata (name, sector, industry, exchange) for the US index members
    shipped offline by the ``pytickersymbols`` PyPI package (S&P 500, S&P 600, S&P 100,
    NASDAQ 100, Dow Jones). The package tags each company with a loose list of labels that
    mixes GICS sector names, TRBC-style industries and free text, so this script reduces
    them to one sector from the fixed vocabulary in :mod:`stratagem.data.reference` and
    one industry label. The source package and version are recorded in the file.

``demo_fundamentals.json``
    Illustrative (NOT real) point-in-time fundamentals and quarterly earnings for the
    bundled price symbols, generated deterministically from rough yearly anchors typed
    below. Marked ``"demo": true``; every value served from it is labelled demo.

Run from the repository root::

    python scripts/build_metadata.py            # both files
    python scripts/build_metadata.py --check    # exit 1 if the files on disk are stale
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "shared" / "stratagem" / "resources"
sys.path.insert(0, str(REPO / "shared"))

from stratagem.data.reference import SECTORS, canonical_sector

# ----------------------------------------------------------------------------- metadata

# US indices in priority order: when a company appears in several with different tags
# (163 do), the S&P 500/600 entries win because their tags are the cleanest (one GICS
# sector name each); the S&P 100 / NASDAQ 100 entries carry extra, sometimes wrong tags
# (e.g. AMD tagged "Industrials").
US_INDICES = ("S&P 500", "S&P 600", "S&P 100", "NASDAQ 100", "DOW JONES")

# Exact GICS sector names as the package spells them -> our vocabulary.
GICS_SECTORS: dict[str, str] = {
    "Information Technology": "Technology",
    "Communication Services": "Communication Services",
    "Health Care": "Healthcare",
    "Financials": "Financials",
    "Consumer Discretionary": "Consumer Discretionary",
    "Consumer Staples": "Consumer Staples",
    "Industrials": "Industrials",
    "Energy": "Energy",
    "Materials": "Materials",
    "Utilities": "Utilities",
    "Real Estate": "Real Estate",
}

# When one entry carries two sector names (17 companies: utilities also tagged Energy,
# REITs also tagged Financials, MSCI/MCO also tagged Industrials, ...), the narrower sector
# wins over the broad catch-alls; this order reproduces the actual GICS sector for all of
# them (AES/DUK -> Utilities, EQIX/PSA -> Real Estate, MCO -> Financials, GEV -> Industrials).
SECTOR_PRECEDENCE: tuple[str, ...] = (
    "Real Estate", "Healthcare", "Utilities", "Financials", "Consumer Discretionary",
    "Communication Services", "Technology", "Consumer Staples", "Materials",
    "Industrials", "Energy",
)

# Last resort for companies with no sector-level tag at all (13, mostly NASDAQ 100 ADRs):
# keywords found in their industry tags. Checked in this order, first hit wins.
KEYWORD_SECTORS: tuple[tuple[str, str], ...] = (
    ("semiconductor", "Technology"),
    ("software", "Technology"),
    ("computer", "Technology"),
    ("security", "Technology"),
    ("cloud", "Technology"),
    ("biotech", "Healthcare"),
    ("pharma", "Healthcare"),
    ("medical", "Healthcare"),
    ("beverage", "Consumer Staples"),
    ("soft drinks", "Consumer Staples"),
    ("food", "Consumer Staples"),
    ("e-commerce", "Consumer Discretionary"),
    ("retail", "Consumer Discretionary"),
    ("bank", "Financials"),
    ("insurance", "Financials"),
    ("oil", "Energy"),
    ("internet", "Communication Services"),
    ("media", "Communication Services"),
    ("chemical", "Materials"),
    ("machinery", "Industrials"),
)

# Renamed tickers: the bundled price data uses the old symbol, the package the new one.
ALIASES: dict[str, str] = {"FB": "META"}

# Symbols the tests and the demo rely on; the build fails loudly if the source drops one.
REQUIRED = ("AAPL", "GOOG", "IBM", "MSFT", "META")


def _is_sector_label(tag: str) -> bool:
    return tag in GICS_SECTORS or canonical_sector(tag) is not None


def _pick(sectors: list[str]) -> str:
    return min(sectors, key=SECTOR_PRECEDENCE.index)


def _sector(entries: list[dict[str, Any]]) -> tuple[str | None, str, list[str]]:
    """(sector, basis, tags of the entry that decided it) for one company."""
    for st in entries:
        tags = list(st.get("industries") or [])
        exact = [GICS_SECTORS[t] for t in tags if t in GICS_SECTORS]
        if exact:
            return _pick(exact), "gics", tags
    union = [t for st in entries for t in (st.get("industries") or [])]
    syn = [c for c in (canonical_sector(t) for t in union) if c]
    if syn:
        return _pick(syn), "synonym", union
    for keyword, sector in KEYWORD_SECTORS:
        if any(keyword in t.lower() for t in union):
            return sector, "keyword", union
    return None, "none", union


def _industry(tags: list[str], frequency: Counter[str]) -> str | None:
    # The most common non-sector label wins: it is the vocabulary shared across companies
    # (so an industry filter finds peers) rather than a one-off free-text description.
    cands = [t for t in tags if not _is_sector_label(t)]
    if not cands:
        return None
    return max(cands, key=lambda t: (frequency[t], -cands.index(t)))


def _exchange(st: dict[str, Any]) -> str | None:
    for listing in st.get("symbols") or []:
        google = str(listing.get("google") or "")
        venue, _, ticker = google.partition(":")
        if listing.get("currency") == "USD" and venue in ("NASDAQ", "NYSE") and ticker == st["symbol"]:
            return venue
    traded = str((st.get("metadata") or {}).get("traded_as") or "")
    m = re.search(r"\b(Nasdaq|NASDAQ|NYSE American|NYSE)\b", traded)
    return m.group(1).upper() if m else None


def build_metadata() -> dict[str, Any]:
    import pytickersymbols
    from pytickersymbols import PyTickerSymbols

    source = PyTickerSymbols()
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for index in US_INDICES:
        for st in source.get_stocks_by_index(index):
            by_symbol.setdefault(st["symbol"].upper(), []).append(st)
    frequency: Counter[str] = Counter()
    for entries in by_symbol.values():
        for t in {t for st in entries for t in (st.get("industries") or [])}:
            frequency[t] += 1

    rows: dict[str, list[str | None]] = {}
    basis: Counter[str] = Counter()
    for sym in sorted(by_symbol):
        entries = by_symbol[sym]
        sector, how, tags = _sector(entries)
        basis[how] += 1
        exchange = next((e for e in map(_exchange, entries) if e), None)
        rows[sym] = [entries[0]["name"], sector, _industry(tags, frequency), exchange]
    missing = [s for s in REQUIRED if s not in rows or rows[s][1] is None]
    if missing:
        raise SystemExit(f"source lacks sector data for required symbols: {missing}")
    return {
        "source": {
            "package": "pytickersymbols",
            "version": pytickersymbols.__version__,
            "license": "MIT",
            "indices": list(US_INDICES),
            "sector_basis": dict(sorted(basis.items())),
        },
        "generated_by": "scripts/build_metadata.py",
        "note": ("Real static classification from the source package's current data, applied "
                 "to every date (sector/industry are not time-varying here). Current GICS "
                 "sectors are used even for past dates: e.g. GOOG and META are 'Communication "
                 "Services' (a sector created in 2018). FB is an alias of META."),
        "sectors": list(SECTORS),
        "fields": ["name", "sector", "industry", "exchange"],
        "aliases": dict(ALIASES),
        "symbols": rows,
    }


# ----------------------------------------------------------------------------- demo data

# Rough year-end anchors per symbol, ILLUSTRATIVE ONLY (plausible orders of magnitude):
# year: (market cap USD bn, trailing EPS USD, shares bn, debt/equity, revenue USD bn/yr).
# EPS and shares are "as reported at the time", i.e. not restated for later splits.
ANCHORS: dict[str, dict[int, tuple[float, float, float, float, float]]] = {
    "AAPL": {
        1999: (16, 0.9, 0.33, 0.1, 6.1), 2000: (5, 1.2, 0.34, 0.1, 8.0),
        2001: (8, -0.1, 0.35, 0.1, 5.4), 2002: (5, 0.1, 0.36, 0.0, 5.7),
        2003: (8, 0.2, 0.37, 0.0, 6.2), 2004: (26, 0.7, 0.40, 0.0, 8.3),
        2005: (61, 1.6, 0.84, 0.0, 13.9), 2006: (73, 2.3, 0.86, 0.0, 19.3),
        2007: (174, 4.0, 0.87, 0.0, 24.0), 2008: (76, 5.4, 0.89, 0.0, 32.5),
        2009: (190, 9.1, 0.90, 0.0, 42.9), 2010: (296, 15.2, 0.92, 0.0, 65.2),
        2011: (377, 27.7, 0.93, 0.0, 108.2), 2012: (500, 44.2, 0.94, 0.0, 156.5),
        2013: (418, 44.1, 0.94, 0.0, 170.9),
    },
    "MSFT": {
        1999: (600, 1.4, 5.2, 0.0, 19.7), 2000: (230, 1.7, 5.3, 0.0, 23.0),
        2001: (358, 1.3, 5.4, 0.0, 25.3), 2002: (276, 1.4, 5.4, 0.0, 28.4),
        2003: (295, 0.9, 10.8, 0.0, 32.2), 2004: (290, 0.8, 10.8, 0.0, 36.8),
        2005: (278, 1.1, 10.7, 0.0, 39.8), 2006: (293, 1.2, 9.9, 0.0, 44.3),
        2007: (333, 1.4, 9.4, 0.0, 51.1), 2008: (173, 1.9, 8.9, 0.0, 60.4),
        2009: (268, 1.6, 8.9, 0.1, 58.4), 2010: (239, 2.1, 8.6, 0.2, 62.5),
        2011: (218, 2.7, 8.4, 0.2, 69.9), 2012: (224, 2.0, 8.4, 0.2, 73.7),
        2013: (234, 2.0, 8.35, 0.2, 77.8),
    },
    "IBM": {
        1999: (195, 4.1, 1.80, 2.3, 87.5), 2000: (150, 4.4, 1.74, 2.4, 88.4),
        2001: (208, 4.4, 1.72, 2.4, 85.9), 2002: (132, 2.1, 1.72, 2.5, 81.2),
        2003: (158, 4.3, 1.70, 1.7, 89.1), 2004: (164, 4.9, 1.65, 1.5, 96.3),
        2005: (129, 4.9, 1.57, 1.5, 91.1), 2006: (146, 6.1, 1.50, 1.6, 91.4),
        2007: (150, 7.2, 1.39, 2.6, 98.8), 2008: (113, 8.9, 1.34, 2.8, 103.6),
        2009: (172, 10.0, 1.31, 2.4, 95.8), 2010: (180, 11.5, 1.23, 2.5, 99.9),
        2011: (216, 13.1, 1.16, 2.9, 106.9), 2012: (214, 14.4, 1.12, 3.1, 104.5),
        2013: (225, 14.5, 1.11, 3.0, 99.8),
    },
    "GOOG": {
        2004: (52, 2.1, 0.27, 0.0, 3.2), 2005: (123, 5.0, 0.30, 0.0, 6.1),
        2006: (141, 9.9, 0.31, 0.0, 10.6), 2007: (217, 13.3, 0.31, 0.0, 16.6),
        2008: (97, 13.3, 0.32, 0.0, 21.8), 2009: (197, 20.4, 0.32, 0.0, 23.7),
        2010: (191, 26.3, 0.32, 0.05, 29.3), 2011: (209, 29.8, 0.32, 0.05, 37.9),
        2012: (232, 32.3, 0.33, 0.08, 50.2), 2013: (265, 33.0, 0.33, 0.07, 59.8),
    },
    "FB": {
        2012: (63, 0.5, 2.7, 0.1, 5.1), 2013: (70, 0.6, 2.75, 0.1, 7.9),
    },
}

# Quarterly report calendar per symbol: (day of month in Jan/Apr/Jul/Oct, month the fiscal
# year ends, first report date, last report date). Illustrative, shaped like each company's
# usual cadence (AAPL's fiscal year ends in September, MSFT's in June).
CALENDAR: dict[str, tuple[int, int, str, str]] = {
    "AAPL": (22, 9, "2000-01-01", "2013-02-28"),
    "MSFT": (24, 6, "2000-01-01", "2013-02-28"),
    "IBM": (17, 12, "2000-01-01", "2013-02-28"),
    "GOOG": (19, 12, "2004-10-01", "2013-02-28"),
    "FB": (26, 12, "2012-07-01", "2013-02-28"),
}


def _weekday(day: dt.date) -> dt.date:
    # Reports come out on business days; move weekend dates to the next Monday.
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _interp(anchors: Mapping[int, tuple[float, ...]], when: dt.date) -> tuple[float, ...]:
    years = sorted(anchors)
    pos = when.year + (when.timetuple().tm_yday - 1) / 365.0 - 1  # anchors are year-end values
    lo = max([y for y in years if y <= pos], default=years[0])
    hi = min([y for y in years if y > pos], default=years[-1])
    if lo == hi:
        return anchors[lo]
    w = (pos - lo) / (hi - lo)
    return tuple(a + (b - a) * w for a, b in zip(anchors[lo], anchors[hi]))


def _fiscal_period(report: dt.date, fy_end_month: int) -> str:
    # The quarter being reported ended in the month before the report month.
    q_end = (report.replace(day=1) - dt.timedelta(days=1))
    months_into_fy = (q_end.month - fy_end_month - 1) % 12 + 1
    quarter = (months_into_fy + 2) // 3
    fiscal_year = q_end.year + (1 if q_end.month > fy_end_month else 0)
    return f"FY{fiscal_year} Q{quarter}"


def build_demo() -> dict[str, Any]:
    fundamentals: dict[str, list[dict[str, Any]]] = {}
    earnings: dict[str, list[dict[str, Any]]] = {}
    for sym, (dom, fy_end, first, last) in CALENDAR.items():
        # Seeded per symbol so reruns give byte-identical files.
        rng = random.Random(f"stratagem-demo-{sym}")
        start, stop = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        fund_rows: list[dict[str, Any]] = []
        earn_rows: list[dict[str, Any]] = []
        for year in range(start.year, stop.year + 1):
            for month in (1, 4, 7, 10):
                report = _weekday(dt.date(year, month, dom))
                if not (start <= report <= stop):
                    continue
                cap, eps_ttm, shares, de, revenue = _interp(ANCHORS[sym], report)
                eps_q = eps_ttm / 4 * rng.uniform(0.85, 1.15)
                surprise = rng.uniform(-0.06, 0.10)
                estimate = eps_q / (1 + surprise) if eps_q > 0 else eps_q * (1 + surprise)
                earn_rows.append({
                    "report_date": report.isoformat(),
                    "fiscal_period": _fiscal_period(report, fy_end),
                    "eps_actual": round(eps_q, 2),
                    "eps_estimate": round(estimate, 2),
                    "surprise_pct": (round((round(eps_q, 2) - round(estimate, 2))
                                           / abs(round(estimate, 2)) * 100, 2)
                                     if round(estimate, 2) != 0 else None),
                    "revenue": int(round(revenue / 4 * rng.uniform(0.9, 1.1) * 1e9, -6)),
                })
                market_cap = cap * 1e9
                fund_rows.append({
                    "known_date": report.isoformat(),
                    "market_cap": int(round(market_cap, -6)),
                    "pe_ratio": round(market_cap / (eps_ttm * shares * 1e9), 1) if eps_ttm > 0 else None,
                    "eps": round(eps_ttm, 2),
                    "debt_to_equity": round(de, 2),
                    "shares_outstanding": int(round(shares * 1e9, -6)),
                })
        fundamentals[sym] = fund_rows
        earnings[sym] = earn_rows
    return {
        "demo": True,
        "note": ("ILLUSTRATIVE DEMO DATA, NOT REAL: generated by scripts/build_metadata.py from "
                 "rough yearly anchors so that examples have plausible magnitudes. Do not use "
                 "for research or trading. Every value served from this file is marked "
                 "'demo': True."),
        "generated_by": "scripts/build_metadata.py",
        "units": {"market_cap": "USD", "revenue": "USD per quarter", "eps": "USD trailing 12 months",
                  "eps_actual": "USD per quarter", "shares_outstanding": "shares",
                  "surprise_pct": "percent"},
        "fundamentals": fundamentals,
        "earnings": earnings,
    }


# ----------------------------------------------------------------------------- output

def _dump(doc: dict[str, Any], list_key: str) -> str:
    """Compact JSON with one symbol per line: small, yet diffs stay readable."""
    head = {k: v for k, v in doc.items() if k not in list_key.split(",")}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    parts = [text]
    for key in list_key.split(","):
        table = doc[key]
        lines = [f"  {json.dumps(sym)}: {json.dumps(table[sym], ensure_ascii=False, separators=(',', ':'))}"
                 for sym in sorted(table)]
        parts.append(f',\n "{key}": {{\n' + ",\n".join(lines) + "\n }")
    return "".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with the files on disk")
    args = ap.parse_args(argv)
    outputs = {
        RESOURCES / "metadata.json": _dump(build_metadata(), "symbols"),
        RESOURCES / "demo_fundamentals.json": _dump(build_demo(), "fundamentals,earnings"),
    }
    for path, text in outputs.items():
        json.loads(text)  # never write a file we could not read back
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                print(f"stale: {path}", file=sys.stderr)
                return 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(text):,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
