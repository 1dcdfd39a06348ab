"""Reference data: real static metadata, point-in-time demo fundamentals/earnings, scans."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stratagem.data.reference import (
    EARNINGS_FIELDS,
    SCAN_FILTER_KEYS,
    SECTORS,
    ReferenceData,
    canonical_sector,
)
from stratagem.data.store import day_to_iso, iso_to_day
from stratagem.errors import BadInput

REPO = Path(__file__).resolve().parents[2]
BUNDLED = ("AAPL", "GOOG", "IBM", "MSFT", "FB")


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return ReferenceData.load_default()


def _payload(demo: bool = True) -> dict:
    """A small hand-made payload whose dates the assertions below can name exactly."""
    return {
        "metadata": {
            "fields": ["name", "sector", "industry", "exchange"],
            "aliases": {"OLD": "NEW"},
            "symbols": {
                "AAA": ["Alpha Corp", "Information Technology", "Software", "NASDAQ"],
                "BBB": ["Beta Bank", "Financials", "Banks", "NYSE"],
                "NEW": ["Renamed Inc", "Communication Services", "Interactive Media", None],
                "CCC": ["Gamma Health", "Health Care", "Pharmaceuticals", "NYSE"],
            },
        },
        "demo": {
            "demo": demo,
            "note": "test data",
            "fundamentals": {
                "AAA": [
                    # Deliberately out of order: the loader must sort by known_date.
                    {"known_date": "2010-04-20", "market_cap": 2e9, "pe_ratio": 20.0, "eps": 1.0,
                     "debt_to_equity": 0.5, "shares_outstanding": 1e8},
                    {"known_date": "2010-01-20", "market_cap": 1e9, "pe_ratio": 10.0, "eps": 0.5,
                     "debt_to_equity": 0.4, "shares_outstanding": 1e8},
                ],
                "BBB": [{"known_date": "2010-02-01", "market_cap": 5e10, "pe_ratio": None, "eps": -1.0,
                         "debt_to_equity": 3.0, "shares_outstanding": 2e9}],
                "OLD": [{"known_date": "2011-01-01", "market_cap": 7e9, "pe_ratio": 30.0, "eps": 2.0,
                         "debt_to_equity": 0.0, "shares_outstanding": 1e9}],
            },
            "earnings": {
                "AAA": [
                    {"report_date": f"2010-{m:02d}-15", "fiscal_period": f"FY2010 Q{i + 1}",
                     "eps_actual": 0.1 * (i + 1), "eps_estimate": 0.1, "surprise_pct": 0.0,
                     "revenue": 1e8}
                    for i, m in enumerate((1, 4, 7, 10))
                ] + [{"report_date": "2011-01-15", "fiscal_period": "FY2010 Q4"}],  # missing keys -> None
            },
        },
    }


@pytest.fixture()
def small() -> ReferenceData:
    return ReferenceData.from_payload(_payload())


# --------------------------------------------------------------------------- real metadata

def test_metadata_has_real_sectors_for_bundled_symbols(ref: ReferenceData) -> None:
    assert ref.sector_of("MSFT") == "Technology"
    assert ref.sector_of("AAPL") == "Technology"
    assert ref.sector_of("IBM") == "Technology"
    assert ref.sector_of("GOOG") == "Communication Services"
    # FB is the bundled ticker; the source lists the company as META.
    assert ref.sector_of("FB") == ref.sector_of("META") == "Communication Services"
    for sym in BUNDLED:
        assert ref.industry_of(sym), sym
        assert ref.fundamentals(sym, iso_to_day("2013-03-01"))["name"]
    assert ref.name_of("MSFT") == "Microsoft"


def test_metadata_records_source_and_uses_fixed_vocabulary() -> None:
    from importlib import resources

    meta = json.loads(resources.files("stratagem").joinpath("resources/metadata.json").read_text())
    assert meta["source"]["package"] == "pytickersymbols"
    assert meta["source"]["version"]
    if importlib.util.find_spec("pytickersymbols"):
        import pytickersymbols
        assert meta["source"]["version"] == pytickersymbols.__version__
    assert len(meta["symbols"]) >= 500
    sectors = {row[1] for row in meta["symbols"].values()}
    assert sectors <= set(SECTORS) | {None}
    assert len(sectors - {None}) == len(SECTORS)  # every sector is populated


def test_unknown_symbol_is_empty(ref: ReferenceData) -> None:
    assert ref.fundamentals("NOPE", iso_to_day("2012-01-03")) == {}
    assert ref.earnings("NOPE", iso_to_day("2012-01-03")) == []
    assert ref.sector_of("NOPE") is None and ref.industry_of("NOPE") is None


# --------------------------------------------------------------------------- point in time

def test_fundamentals_switch_exactly_on_known_date(small: ReferenceData) -> None:
    jan, apr = iso_to_day("2010-01-20"), iso_to_day("2010-04-20")
    before = small.fundamentals("AAA", jan - 1)
    # Static metadata is known from the first date, numbers are not yet.
    assert before["sector"] == "Technology" and before["market_cap"] is None
    assert before["as_of"] is None and "demo" not in before
    assert small.fundamentals("AAA", jan)["market_cap"] == 1e9
    assert small.fundamentals("AAA", jan)["as_of"] == "2010-01-20"
    assert small.fundamentals("AAA", apr - 1)["market_cap"] == 1e9
    assert small.fundamentals("AAA", apr)["market_cap"] == 2e9
    assert small.fundamentals("AAA", apr + 1000)["pe_ratio"] == 20.0


def test_default_data_point_in_time(ref: ReferenceData) -> None:
    # FB had no report before its first post-IPO quarter in the demo file.
    assert ref.fundamentals("FB", iso_to_day("2012-05-18"))["market_cap"] is None
    assert ref.earnings("FB", iso_to_day("2012-05-18")) == []
    f = ref.fundamentals("FB", iso_to_day("2013-03-01"))
    assert f["market_cap"] and f["demo"] is True
    assert ref.earnings("GOOG", iso_to_day("2004-08-19")) == []


def test_earnings_order_and_limit(small: ReferenceData) -> None:
    day = iso_to_day("2010-12-31")
    rows = small.earnings("AAA", day)
    assert [r["report_date"] for r in rows] == ["2010-01-15", "2010-04-15", "2010-07-15", "2010-10-15"]
    assert [r["report_date"] for r in small.earnings("AAA", day, quarters=2)] == ["2010-07-15", "2010-10-15"]
    assert small.earnings("AAA", day, quarters=0) == []
    assert small.earnings("AAA", day, quarters=-3) == []
    assert small.earnings("AAA", iso_to_day("2010-01-14")) == []
    assert len(small.earnings("AAA", iso_to_day("2010-01-15"))) == 1  # visible on its release day
    last = small.earnings("AAA", iso_to_day("2011-06-01"))[-1]
    assert set(EARNINGS_FIELDS) <= set(last) and last["eps_actual"] is None
    with pytest.raises(BadInput):
        small.earnings("AAA", day, quarters=True)
    with pytest.raises(BadInput):
        small.earnings("AAA", day, quarters="8")


def test_default_earnings_shape(ref: ReferenceData) -> None:
    rows = ref.earnings("AAPL", iso_to_day("2013-03-01"), quarters=8)
    assert len(rows) == 8
    dates = [r["report_date"] for r in rows]
    assert dates == sorted(dates)
    for r in rows:
        assert set(EARNINGS_FIELDS) <= set(r) and r["demo"] is True


@settings(max_examples=300, deadline=None)
@given(day=st.integers(iso_to_day("1998-01-01"), iso_to_day("2014-12-31")),
       sym=st.sampled_from(BUNDLED + ("META", "GOOGL", "NOPE")),
       quarters=st.integers(-2, 70))
def test_never_returns_future_records(ref: ReferenceData, day: int, sym: str, quarters: int) -> None:
    f = ref.fundamentals(sym, day)
    if f.get("as_of") is not None:
        assert iso_to_day(f["as_of"]) <= day
    rows = ref.earnings(sym, day, quarters)
    assert len(rows) <= max(quarters, 0)
    assert all(iso_to_day(r["report_date"]) <= day for r in rows)
    assert [r["report_date"] for r in rows] == sorted(r["report_date"] for r in rows)


@settings(max_examples=200, deadline=None)
@given(day=st.integers(iso_to_day("2009-12-01"), iso_to_day("2011-03-01")))
def test_fundamentals_pick_latest_visible_record(day: int) -> None:
    small = ReferenceData.from_payload(_payload())
    known = sorted(r["known_date"] for r in _payload()["demo"]["fundamentals"]["AAA"])
    visible = [d for d in known if iso_to_day(d) <= day]
    assert small.fundamentals("AAA", day)["as_of"] == (visible[-1] if visible else None)


def test_bad_day_type(small: ReferenceData) -> None:
    with pytest.raises(BadInput, match="asof_day"):
        small.fundamentals("AAA", "2010-01-01")  # type: ignore[arg-type]
    np = pytest.importorskip("numpy")
    assert small.fundamentals("AAA", np.int64(iso_to_day("2010-02-01")))["market_cap"] == 1e9


# --------------------------------------------------------------------------- demo labelling

def test_demo_flag_and_fields(small: ReferenceData, ref: ReferenceData) -> None:
    day = iso_to_day("2011-06-01")
    assert small.fundamentals("AAA", day)["demo"] is True
    assert all(r["demo"] is True for r in small.earnings("AAA", day))
    assert {"market_cap", "pe_ratio", "eps", "eps_actual", "revenue"} <= ref.demo_fields
    assert "sector" not in ref.demo_fields and "known_date" not in ref.demo_fields
    real = ReferenceData.from_payload(_payload(demo=False))
    assert "demo" not in real.fundamentals("AAA", day)
    assert all("demo" not in r for r in real.earnings("AAA", day))
    assert real.demo_fields == frozenset()


def test_default_demo_file_says_so() -> None:
    from importlib import resources

    demo = json.loads(resources.files("stratagem").joinpath("resources/demo_fundamentals.json").read_text())
    assert demo["demo"] is True and "not real" in demo["note"].lower()
    assert set(demo["fundamentals"]) == set(BUNDLED) == set(demo["earnings"])


def test_returned_values_are_copies(small: ReferenceData) -> None:
    day = iso_to_day("2011-06-01")
    small.fundamentals("AAA", day)["market_cap"] = -1
    small.earnings("AAA", day)[0]["eps_actual"] = -1
    assert small.fundamentals("AAA", day)["market_cap"] == 2e9
    assert small.earnings("AAA", day)[0]["eps_actual"] == pytest.approx(0.1)


# --------------------------------------------------------------------------- aliases, sectors

def test_alias_resolves_both_ways(small: ReferenceData) -> None:
    day = iso_to_day("2011-06-01")
    assert small.sector_of("OLD") == "Communication Services"
    assert small.fundamentals("OLD", day)["market_cap"] == 7e9
    assert small.fundamentals("NEW", day)["market_cap"] == 7e9  # series filed under the old ticker
    assert small.fundamentals("aaa", day)["market_cap"] == 2e9  # case-insensitive symbols


@pytest.mark.parametrize("name", ["Technology", "technology", "TECH", "tech", "Information Technology",
                                  "information-technology", " IT "])
def test_sector_synonyms(small: ReferenceData, name: str) -> None:
    assert small.sector_members(name, ["CCC", "AAA", "BBB", "AAA"]) == ["AAA"]


def test_sector_members_other_sectors(ref: ReferenceData, small: ReferenceData) -> None:
    assert small.sector_members("health care", ["AAA", "CCC"]) == ["CCC"]
    assert small.sector_members("Healthcare", ["AAA", "CCC"]) == ["CCC"]
    assert small.sector_members("financial services", ["BBB", "CCC"]) == ["BBB"]
    assert small.sector_members("No Such Sector", ["AAA", "BBB"]) == []
    assert ref.sector_members("Technology", BUNDLED) == ["AAPL", "IBM", "MSFT"]
    assert ref.sector_members("communication services", BUNDLED) == ["GOOG", "FB"]
    assert canonical_sector("Consumer Cyclical") == "Consumer Discretionary"
    assert canonical_sector("REITs") == "Real Estate"
    assert canonical_sector("Martian Mining") is None
    with pytest.raises(BadInput):
        small.sector_members(None, ["AAA"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- payload

def test_payload_round_trip(ref: ReferenceData) -> None:
    payload = ref.to_payload()
    text = json.dumps(payload)  # JSON-able, so it can cross into the sandbox worker
    again = ReferenceData.from_payload(json.loads(text))
    assert again.to_payload() == payload
    assert again.demo_fields == ref.demo_fields
    for sym in BUNDLED:
        for day in (iso_to_day("2005-06-01"), iso_to_day("2013-03-01")):
            assert again.fundamentals(sym, day) == ref.fundamentals(sym, day)
            assert again.earnings(sym, day) == ref.earnings(sym, day)


def test_payload_subset_keeps_aliases(ref: ReferenceData) -> None:
    payload = ref.to_payload(symbols=BUNDLED)
    # Only the requested companies' metadata travels (META comes along for FB).
    assert set(payload["metadata"]["symbols"]) == {"AAPL", "GOOG", "IBM", "MSFT", "META"}
    assert payload["metadata"]["aliases"] == {"FB": "META"}
    sub = ReferenceData.from_payload(payload)
    day = iso_to_day("2013-03-01")
    for sym in BUNDLED:
        assert sub.fundamentals(sym, day) == ref.fundamentals(sym, day)
    assert sub.sector_of("JPM") is None


def test_payload_errors() -> None:
    with pytest.raises(BadInput):
        ReferenceData.from_payload([])  # type: ignore[arg-type]
    bad = _payload()
    bad["demo"]["fundamentals"]["AAA"][0]["known_date"] = "20/04/2010"
    with pytest.raises(BadInput, match="known_date"):
        ReferenceData.from_payload(bad)
    bad = _payload()
    bad["metadata"]["symbols"]["AAA"] = ["too", "short"]
    with pytest.raises(BadInput, match="AAA"):
        ReferenceData.from_payload(bad)


# --------------------------------------------------------------------------- scan

PRICES = {"AAA": (50.0, 1e6), "BBB": (5.0, 5e7), "CCC": (None, None), "NEW": (120.0, 2e5)}


def _lookup(sym: str) -> tuple[float | None, float | None]:
    return PRICES.get(sym, (None, None))


def test_scan_filters(small: ReferenceData) -> None:
    day = iso_to_day("2011-06-01")
    syms = ["NEW", "CCC", "BBB", "AAA", "ZZZ"]
    assert small.scan({}, syms, day, _lookup) == ["AAA", "BBB", "CCC", "NEW", "ZZZ"]
    assert small.scan({"min_market_cap": 5e9}, syms, day, _lookup) == ["BBB", "NEW"]
    assert small.scan({"max_market_cap": 5e9}, syms, day, _lookup) == ["AAA"]  # CCC has no cap
    assert small.scan({"sector": "tech"}, syms, day, _lookup) == ["AAA"]
    assert small.scan({"industry": "pharma"}, syms, day, _lookup) == ["CCC"]
    assert small.scan({"min_price": 10}, syms, day, _lookup) == ["AAA", "NEW"]
    assert small.scan({"max_price": 60}, syms, day, _lookup) == ["AAA", "BBB"]
    assert small.scan({"min_avg_volume": 1e6}, syms, day, _lookup) == ["AAA", "BBB"]
    assert small.scan({"min_price": 10, "sector": "Technology", "min_market_cap": 1.5e9},
                      syms, day, _lookup) == ["AAA"]
    assert small.scan({"sector": None}, syms, day, _lookup, limit=2) == ["AAA", "BBB"]
    assert small.scan({}, syms, day, _lookup, limit=0) == []
    assert small.scan({}, syms, day, _lookup, limit=-5) == []


def test_scan_market_cap_is_point_in_time(small: ReferenceData) -> None:
    f = {"min_market_cap": 1.5e9}
    assert small.scan(f, ["AAA"], iso_to_day("2010-04-19"), _lookup) == []
    assert small.scan(f, ["AAA"], iso_to_day("2010-04-20"), _lookup) == ["AAA"]
    assert small.scan(f, ["NEW"], iso_to_day("2010-12-31"), _lookup) == []  # cap not known yet


def test_scan_price_lookup_only_when_needed(small: ReferenceData) -> None:
    def boom(sym: str) -> tuple[float | None, float | None]:
        raise AssertionError("price lookup should not be needed")

    assert small.scan({"sector": "Financials"}, ["AAA", "BBB"], iso_to_day("2011-01-01"), boom) == ["BBB"]


def test_scan_unknown_key_names_known_keys(small: ReferenceData) -> None:
    with pytest.raises(BadInput) as err:
        small.scan({"min_marketcap": 1, "sector": "tech"}, ["AAA"], 15000, _lookup)
    msg = err.value.message
    assert "min_marketcap" in msg
    for key in SCAN_FILTER_KEYS:
        assert key in msg
    assert err.value.exit_code == 2


@pytest.mark.parametrize("filters, expected", [
    ({"min_price": "10"}, "number"),
    ({"max_market_cap": True}, "number"),
    ({"min_avg_volume": float("nan")}, "number"),
    ({"sector": 5}, "string"),
    ({"industry": ""}, "string"),
    (["sector"], "dict"),
])
def test_scan_bad_value_types(small: ReferenceData, filters: object, expected: str) -> None:
    with pytest.raises(BadInput, match=expected):
        small.scan(filters, ["AAA"], 15000, _lookup)  # type: ignore[arg-type]


def test_scan_bad_limit(small: ReferenceData) -> None:
    with pytest.raises(BadInput, match="limit"):
        small.scan({}, ["AAA"], 15000, _lookup, limit="10")  # type: ignore[arg-type]


def test_scan_default_data(ref: ReferenceData) -> None:
    day = iso_to_day("2013-03-01")
    big = ref.scan({"min_market_cap": 2e11}, BUNDLED, day, lambda s: (None, None))
    assert big == sorted(big) and set(big) <= set(BUNDLED) and "AAPL" in big
    # Before GOOG's first demo report its market cap is unknown, so it cannot match.
    early = iso_to_day("2004-08-20")
    assert "GOOG" not in ref.scan({"min_market_cap": 1}, BUNDLED, early, lambda s: (None, None))


# --------------------------------------------------------------------------- build script

def test_resources_match_build_script() -> None:
    pytest.importorskip("pytickersymbols")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "build_metadata.py"), "--check"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_day_helpers_agree() -> None:
    # reference.py keeps its own ISO parser (no numpy in the worker); it must match store's.
    from stratagem.data import reference

    for iso in ("1970-01-01", "2000-02-29", "2013-03-01"):
        assert reference._iso_to_day(iso) == iso_to_day(iso)
        assert day_to_iso(iso_to_day(iso)) == iso
