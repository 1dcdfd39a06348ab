"""Named datasets under ``<home>/data``: the bundled real sample and users' imports.

The bundled dataset ``sample`` is converted once from the ``bokeh-sampledata`` package
(public-domain Quandl WIKI daily prices, raw OHLCV plus adjusted close) and rebuilt when
the package's file changes. It is real market data, not demo data.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import BadInput, NotFound
from ..settings import Settings
from .store import FORMAT, MarketData, SymbolBars, build_store, iso_to_day

SAMPLE = "sample"
_SAMPLE_DESCRIPTION = ("Real daily OHLCV (unadjusted) plus adjusted close for AAPL, GOOG, IBM, MSFT "
                       "(2000-2013) and FB (2012-2013), public domain (Quandl WIKI), from the "
                       "bokeh-sampledata package.")


def _sample_source() -> Path:
    try:
        import bokeh_sampledata  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - it is a hard dependency
        raise NotFound("the bundled data needs the 'bokeh-sampledata' package: pip install bokeh-sampledata") from None
    path = Path(bokeh_sampledata.__file__).parent / "_data" / "stocks.csv.gz"
    if not path.exists():
        raise NotFound(f"bokeh-sampledata is installed but {path} is missing")
    return path


def read_sample(path: Path) -> dict[str, SymbolBars]:
    """Parse bokeh's ``stocks.csv.gz`` (Ticker,Date,Open,High,Low,Close,Volume,Adj Close)."""
    rows: dict[str, list[tuple]] = {}
    with gzip.open(path, "rt", newline="") as fh:
        for rec in csv.DictReader(fh):
            rows.setdefault(rec["Ticker"].strip().upper(), []).append((
                iso_to_day(rec["Date"]), float(rec["Open"]), float(rec["High"]), float(rec["Low"]),
                float(rec["Close"]), float(rec["Volume"]), float(rec["Adj Close"])))
    out = {}
    for sym, recs in rows.items():
        recs.sort()
        a = np.array(recs, dtype=np.float64)
        out[sym] = SymbolBars(sym, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6])
    return out


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def ensure_sample(settings: Settings) -> MarketData:
    """Return the bundled dataset, converting it on first use (or when the source changed)."""
    src = _sample_source()
    dest = settings.data_dir / SAMPLE
    meta = dest / "meta.json"
    src_hash = _file_hash(src)
    if meta.exists():
        try:
            m = json.loads(meta.read_text())
            if m.get("source_hash") == src_hash and m.get("format") == FORMAT:
                return MarketData(dest)
        except (OSError, ValueError):
            pass  # a damaged dataset is rebuilt below
    build_store(read_sample(src), dest, source=f"bokeh-sampledata:{src.name}", description=_SAMPLE_DESCRIPTION)
    m = json.loads(meta.read_text())
    m["source_hash"] = src_hash
    meta.write_text(json.dumps(m, indent=1, sort_keys=True))
    return MarketData(dest)


def list_datasets(settings: Settings) -> list[str]:
    ensure_sample(settings)
    root = settings.data_dir
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").exists() and not p.name.startswith("."))


def open_dataset(settings: Settings, name: str | None = None) -> MarketData:
    """Open dataset ``name`` (default: the settings' dataset, normally the bundled sample)."""
    name = name or settings.dataset
    if name == SAMPLE:
        return ensure_sample(settings)
    _check_name(name)
    path = settings.data_dir / name
    if not (path / "meta.json").exists():
        known = ", ".join(list_datasets(settings))
        raise NotFound(f"unknown dataset {name!r}; known datasets: {known} (import one with 'stratagem data import PATH')")
    return MarketData(path)


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name) or name.startswith(("-", "_", ".")):
        raise BadInput(f"dataset name must be letters, digits, '-' or '_' (not starting with '-' or '_'), got {name!r}")


def import_dataset(settings: Settings, path: Path, name: str) -> MarketData:
    """Validate every file under ``path`` first, then write the dataset atomically."""
    from .importer import read_bars

    _check_name(name)
    if name == SAMPLE:
        raise BadInput("the name 'sample' is reserved for the bundled data; choose another --name")
    bars = read_bars(path)
    build_store(bars, settings.data_dir / name, source=f"import:{Path(path).resolve()}",
                description=f"imported from {path}")
    return MarketData(settings.data_dir / name)
