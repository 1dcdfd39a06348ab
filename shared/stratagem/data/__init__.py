"""Market data: the columnar store, imports, and the point-in-time view strategies read."""

from .store import MarketData, SymbolBars, build_store, day_to_iso, iso_to_day  # noqa: F401
