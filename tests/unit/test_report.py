"""The HTML report: structure, number formatting, escaping, empty results, size, and a real
headless-Chromium render (skipped when /usr/bin/chromium is absent)."""

from __future__ import annotations

import copy
import json
import re
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stratagem import report
from stratagem.data.store import MarketData, day_to_iso
from stratagem.report import render_report

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "report_screenshot.py"
CHROMIUM = Path("/usr/bin/chromium")
EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture()
def backtest() -> dict:
    return load("sample_backtest.json")


@pytest.fixture()
def screen() -> dict:
    return load("sample_screen.json")


@pytest.fixture()
def replay() -> dict:
    return load("sample_replay.json")


@pytest.fixture()
def full(backtest: dict, screen: dict, replay: dict, market: MarketData) -> str:
    return render_report(backtest, market=market, screen=screen, replay=replay)


class Tags(HTMLParser):
    """Collects start tags and their attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(doc: str) -> Tags:
    p = Tags()
    p.feed(doc)
    p.close()
    return p


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "div", "header", "p", "h1", "h2", "h3", "span",
                "strong", "dl", "dt", "dd", "code", "nav", "a", "section", "hr", "table", "thead", "tbody", "tr",
                "th", "td", "i", "pre", "details", "summary", "footer", "svg", "line", "text", "rect", "path", "br"}


# --------------------------------------------------------------------------- structure


def test_one_self_contained_document_with_all_sections(full: str) -> None:
    assert full.startswith("<!DOCTYPE html>")
    assert full.count("<html") == 1 and full.rstrip().endswith("</html>")
    for sid in ("metrics", "distributions", "equity", "prices", "bias", "signals", "screen", "replay"):
        assert f'<section id="{sid}">' in full, sid
        assert f'href="#{sid}"' in full, sid  # table of contents
    for heading in ("Forward returns by window", "Distribution of forward returns", "Equity curve",
                    "Signals on the price chart", "Bias report", "Look-ahead probe", "Survivorship",
                    "Missing sessions", "Zero-volume days", "Skipped symbols", "Strategy errors", "Screen",
                    "Alert replay"):
        assert f">{heading}" in full, heading
    assert '<table id="metrics-table"' in full
    tags = {t for t, _a in parse(full).tags}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS


def test_header_shows_strategy_dataset_range_universe_entry_rule(full: str, backtest: dict) -> None:
    assert "<title>rsi_oversold \u2014 backtest</title>" in full
    assert "d5c27ab34fec8555" in full and ">sample " in full
    assert "2011-03-02 \u2192 2013-03-01" in full
    assert "<strong>demo</strong> \u2014 5 symbols" in full and "AAPL, FB, GOOG, IBM, MSFT" in full
    assert "at the signal day&#x27;s close" in full
    assert "holds it 5 sessions" in full  # the stated equity rule
    assert "DEMO DATA" not in full  # the fixture is real data
    assert "adj_close[t+w] / adj_close[t] - 1" in full


def test_metrics_table_formats_percentages_with_sign(full: str, backtest: dict) -> None:
    table = full[full.index('<table id="metrics-table"'):]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table)
    cells = [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)] for r in rows]
    assert cells[0] == ["Window", "Series", "Count", "Mean", "Median", "Std", "Hit rate", "t-stat", "Best", "Worst"]
    # 1 session: strategy, benchmark, excess (values from the fixture)
    assert cells[1] == ["1 session", "Strategy", "72", "+0.48%", "+0.12%", "2.45%", "52.8%", "+1.67", "+7.21%", "-6.22%"]
    assert cells[2] == ["", "Benchmark", "72", "+0.40%", "+0.36%", "1.29%", "56.9%", "+2.61", "+3.69%", "-3.20%"]
    assert cells[3][1].startswith("Excess") and cells[3][3] == "+0.09%"
    # every window is there, each with its three rows
    assert [c[0] for c in cells[1:] if c[0]] == ["1 session", "5 sessions", "10 sessions"]
    bw = backtest["performance_metrics"]["by_window"]
    for w, row in zip(("1", "5", "10"), (cells[1], cells[4], cells[7])):
        assert row[3] == f"{bw[w]['mean'] * 100:+.2f}%"
        assert row[9] == f"{bw[w]['worst'] * 100:+.2f}%"


def test_equity_section_has_chart_stats_and_rule(full: str, backtest: dict) -> None:
    eq = backtest["equity"]
    sec = full[full.index('<section id="equity">'): full.index('<section id="prices">')]
    assert sec.count("<svg") == 1
    assert 'class="ln strat"' in sec and 'class="ln bench"' in sec and 'class="dd"' in sec
    assert "Strategy rule" in sec and "Benchmark (equal-weight universe)" in sec  # legend
    for label in ("2012", "2013", "Jul"):  # date axis
        assert f">{label}</text>" in sec
    for v in (eq["total_return"], eq["benchmark_total_return"], eq["cagr"], eq["max_drawdown"]):
        assert f"{v * 100:+.1f}%" in sec
    assert f"{eq['sharpe']:.2f}" in sec and f"{eq['exposure'] * 100:.1f}%" in sec
    assert eq["rule"] in sec.replace("&#x27;", "'")
    assert "<title>2011-03-03" in sec  # hover tooltips carry the daily values


def test_histograms_one_per_window_with_zero_and_means(full: str, backtest: dict) -> None:
    sec = full[full.index('<section id="distributions">'): full.index('<section id="equity">')]
    assert sec.count("<svg") == 3
    for svg in re.findall(r"<svg.*?</svg>", sec, flags=re.DOTALL):
        assert 'class="zero"' in svg and 'class="mk-bench"' in svg and 'class="mk-strat"' in svg
        counts = [int(m) for m in re.findall(r"(\d+) signals?(?: \(incl|</title>)", svg)]
        assert sum(counts) == 72  # every completed return lands in a bar
    assert "benchmark mean" in sec


def test_price_charts_mark_signal_days_on_adjusted_close(full: str, backtest: dict, market: MarketData) -> None:
    sec = full[full.index('<section id="prices">'): full.index('<section id="bias">')]
    # top 3 symbols by number of signals: GOOG 23, FB 19, MSFT 12
    assert [m for m in re.findall(r"<h3>(\w+)</h3>", sec)] == ["GOOG", "FB", "MSFT"]
    assert sec.count("<svg") == 3
    assert len(re.findall(r'<path class="sg ', sec)) == 23 + 19 + 12
    assert "adjusted close" in sec and "adjusted as of the last date shown" in sec
    # a marker's tooltip: raw close and the adjusted close rescaled to the last close shown
    inst = next(i for i in backtest["instances"] if i["ticker"] == "MSFT")
    a, b = market.range("MSFT")
    dates = np.asarray(market.columns["date"][a:b])
    j = int(np.searchsorted(dates, (np.datetime64(inst["date"]) - np.datetime64("1970-01-01")).astype(int)))
    adj, close = market.columns["adj_close"][a:b], market.columns["close"][a:b]
    last = int(np.searchsorted(dates, (np.datetime64(backtest["end"]) - np.datetime64("1970-01-01")).astype(int),
                               "right")) - 1 + 10  # the chart runs 10 sessions (the longest window) past the end
    last = min(last, len(dates) - 1)
    rescaled = adj[j] * close[last] / adj[last]
    assert f"{inst['date']} MSFT \u00b7 close {close[j]:,.2f} (adjusted {rescaled:,.2f})" in sec


def test_bias_report_contents(full: str, backtest: dict) -> None:
    sec = full[full.index('<section id="bias">'): full.index('<section id="signals">')]
    assert "Identical: yes." in sec
    assert "Days checked (5):" in sec and "2011-03-07 (4 symbols)" in sec
    assert "Survivorship bias." in sec and "delisted" in sec
    assert "Missing sessions: 0" in sec and "Zero-volume days: 0" in sec
    assert "Skipped symbols: 0" in sec and "Strategy errors: 0" in sec


def test_bias_problems_are_shown(backtest: dict) -> None:
    bt = copy.deepcopy(backtest)
    probe = bt["bias"]["lookahead_probe"]
    probe["identical"] = False
    probe["mismatches"] = [{"symbol": "AAPL", "date": "2011-03-07", "full": {"signal": True, "score": 1.5},
                            "truncated": {"signal": False, "score": None}}]
    bt["bias"]["missing_sessions"] = {"count": 14, "examples": [{"symbol": "FB", "date": "2012-06-01"}]}
    bt["bias"]["zero_volume_days"] = {"count": 2, "examples": [{"symbol": "IBM", "date": "2011-05-02"},
                                                               {"symbol": "IBM", "date": "2011-05-03"}]}
    bt["bias"]["skipped_symbols"] = [{"symbol": "ZZZ", "reason": "no data in dataset 'sample'"}]
    bt["errors"] = {"count": 7, "examples": [{"symbol": "AAPL", "date": "2011-03-04",
                                              "message": "ZeroDivisionError: division by zero"}]}
    bt["warnings"] = ["LOOK-AHEAD: the strategy gave different signals when the future was removed from the data"]
    doc = render_report(bt)
    assert "Identical: NO." in doc and "1 mismatch" in doc and "FAILED" in doc
    assert "{&quot;signal&quot;: false, &quot;score&quot;: null}" in doc
    assert "Missing sessions: 14" in doc and "First 1 example:" in doc and "2012-06-01" in doc
    assert "Zero-volume days: 2" in doc and "2011-05-03" in doc
    assert "Skipped symbols: 1" in doc and "ZZZ" in doc
    assert "Strategy errors: 7" in doc and "ZeroDivisionError: division by zero" in doc
    assert '<div class="alert bad"><strong>Warning.</strong>LOOK-AHEAD' in doc


def test_screen_and_replay_tables(full: str, screen: dict, replay: dict) -> None:
    sec = full[full.index('<section id="screen">'): full.index('<section id="replay">')]
    for r in screen["ranked_results"]:
        assert f"<strong>{r['symbol']}</strong>" in sec
        assert f"{r['values']['rsi']:.4g}" in sec
    assert ">rsi</th>" in sec and "as of <strong>2012-11-15</strong>" in sec
    sec = full[full.index('<section id="replay">'):]
    assert sec.count('<pre class="msg">') == len(replay["alerts"]) == 23
    first = replay["alerts"][0]["message"]
    assert first.split("\n")[0] in sec  # message text, line breaks kept by the <pre>


def test_no_external_references_and_no_script(full: str) -> None:
    assert "http://" not in full and "https://" not in full
    assert "//" not in re.sub(r"<style>.*?</style>", "", full, flags=re.DOTALL).replace("</", "")
    assert "<script" not in full.lower() and "@import" not in full and "url(" not in full
    for tag, attrs in parse(full).tags:
        assert "src" not in attrs, tag
        if "href" in attrs:
            assert attrs["href"].startswith("#"), attrs
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
    assert "default-src &#x27;none&#x27;" in full or "default-src 'none'" in full  # CSP meta


# --------------------------------------------------------------------------- escaping


def test_untrusted_strings_are_inert(backtest: dict, screen: dict, replay: dict, market: MarketData) -> None:
    bt = copy.deepcopy(backtest)
    bt["strategy"]["name"] = EVIL
    bt["dataset"]["name"] = EVIL
    bt["warnings"] = [EVIL]
    bt["instances"][0]["values"] = {"rsi": EVIL, EVIL: 1.0, "nested": {"x": EVIL}}
    bt["instances"][1]["score"] = EVIL
    gi = next(i for i in bt["instances"] if i["ticker"] == "GOOG")
    gi["values"] = {"note": EVIL}  # shows in a price-chart tooltip
    bt["errors"] = {"count": 1, "examples": [{"symbol": EVIL, "date": "2011-03-04",
                                              "message": f"Traceback\n{EVIL}<img src=x onerror=alert(2)>"}]}
    bt["bias"]["skipped_symbols"] = [{"symbol": EVIL, "reason": EVIL}]
    bt["bias"]["survivorship"]["warning"] = EVIL
    bt["bias"]["lookahead_probe"]["mismatches"] = [{"symbol": EVIL, "date": EVIL, "full": EVIL, "truncated": EVIL}]
    bt["equity"]["rule"] = EVIL
    sc = copy.deepcopy(screen)
    sc["ranked_results"][0]["values"] = {"rsi": EVIL}
    sc["ranked_results"][1]["symbol"] = EVIL
    sc["errors"] = [{"symbol": None, "message": EVIL}]
    rp = copy.deepcopy(replay)
    rp["alerts"][0]["message"] = EVIL
    rp["alerts"][1]["symbol"] = EVIL
    doc = render_report(bt, market=market, screen=sc, replay=rp, title=EVIL)
    assert EVIL not in doc
    assert "<img" not in doc and "<script" not in doc.lower()
    assert doc.count(EVIL_ESCAPED) >= 15
    assert "&lt;img src=x onerror=alert(2)&gt;" in doc
    p = parse(doc)
    assert {t for t, _a in p.tags} <= ALLOWED_TAGS
    assert not any(k.startswith("on") for _t, a in p.tags for k in a)
    # the text a reader sees still says what the strategy sent
    assert EVIL in "".join(p.text)


def test_escape_in_attributes_and_long_values(backtest: dict) -> None:
    bt = copy.deepcopy(backtest)
    bt["strategy"]["name"] = 'x" onmouseover="alert(1)'
    bt["instances"][0]["values"] = {"blob": "A" * 10_000}
    doc = render_report(bt)
    assert 'x" onmouseover' not in doc and "x&quot; onmouseover=&quot;alert(1)" in doc
    assert "A" * 200 not in doc  # long values are clipped
    assert not any(k.startswith("on") for _t, a in parse(doc).tags for k in a)


# --------------------------------------------------------------------------- demo, empty, size


def test_demo_badge(backtest: dict) -> None:
    for mutate in (lambda b: b.__setitem__("demo_data", True),
                   lambda b: b["dataset"].__setitem__("demo", True),
                   lambda b: b["dataset"].__setitem__("name", "demo")):
        bt = copy.deepcopy(backtest)
        mutate(bt)
        doc = render_report(bt)
        assert '<span class="badge demo"' in doc and ">DEMO DATA</span>" in doc
        assert "[DEMO DATA]</title>" in doc
    bt = copy.deepcopy(backtest)
    bt["demo_data"] = True
    bt["warnings"] = [("DEMO DATA: the strategy used the bundled illustrative fundamentals/earnings; results "
                       "that depend on them are not real")]
    doc = render_report(bt)
    assert doc.count("DEMO DATA: the strategy used") == 1 and ">DEMO DATA</span>" in doc
    assert ">DEMO DATA</span>" not in render_report(backtest)


def test_empty_backtest_renders() -> None:
    for bt in ({}, {"instances": None, "equity": None, "performance_metrics": None, "bias": None}):
        doc = render_report(bt)
        assert doc.startswith("<!DOCTYPE html>") and "Forward returns by window" in doc
        assert "No equity curve" in doc and "produced no signals" in doc
        assert "No market data was given" in doc


def test_no_signals_and_null_metrics(backtest: dict, market: MarketData) -> None:
    nulls = {k: None for k in ("mean", "median", "std", "hit_rate", "t_stat", "best", "worst")}
    bt = copy.deepcopy(backtest)
    bt["instances"] = []
    bt["performance_metrics"].update(signals=0, signal_rate=0.0, by_window={
        w: {"count": 0, **nulls, "benchmark": {"count": 0, **nulls}, "excess_mean": None} for w in ("1", "5", "10")})
    bt["equity"].update(strategy=[1.0] * len(bt["equity"]["dates"]), total_return=0.0, cagr=0.0, sharpe=None,
                        max_drawdown=0.0, exposure=0.0)
    doc = render_report(bt, market=market)
    assert doc.count("No completed forward returns for this window.") == 3
    assert "No signals to show." in doc and "produced no signals" in doc
    row = re.search(r'<tr class="strat">(.*?)</tr>', doc).group(1)
    assert row.count("\u2014") == 7  # every metric but the count is a dash


def test_instances_with_pending_returns(backtest: dict) -> None:
    bt = copy.deepcopy(backtest)
    for inst in bt["instances"][-5:]:
        inst["returns"]["10"] = None
    doc = render_report(bt)
    assert "5 not yet complete" in doc


def _synthetic_backtest(market: MarketData, years: int = 5) -> dict:
    """Five years of signals on every symbol (about one day in four), with a daily equity curve."""
    rng = np.random.default_rng(7)
    last = max(int(market.dates(s)[-1]) for s in market.symbols)
    start = last - 365 * years
    instances = []
    for sym in market.symbols:
        a, b = market.range(sym)
        d = np.asarray(market.columns["date"][a:b])
        adj = np.asarray(market.columns["adj_close"][a:b])
        for i in np.flatnonzero((d >= start) & (rng.random(d.size) < 0.25)).tolist():
            rets = {str(w): (float(adj[i + w] / adj[i] - 1) if i + w < d.size else None) for w in (1, 5, 10)}
            instances.append({"ticker": sym, "date": day_to_iso(int(d[i])), "timestamp": int(d[i]) * 86_400_000,
                              "classification": True, "score": float(rng.normal()),
                              "values": {"rsi": float(rng.uniform(10, 40)), "sma": float(adj[i])}, "returns": rets})
    cal = market.calendar()
    cal = cal[cal > start]
    strat = np.cumprod(1 + rng.normal(0.0004, 0.01, cal.size))
    bench = np.cumprod(1 + rng.normal(0.0003, 0.009, cal.size))
    bt = load("sample_backtest.json")
    bt.update(start=day_to_iso(start), end=day_to_iso(last), instances=instances)
    bt["equity"].update(dates=[day_to_iso(int(x)) for x in cal], strategy=strat.tolist(), benchmark=bench.tolist())
    return bt


def test_five_years_five_symbols_stays_small(market: MarketData) -> None:
    bt = _synthetic_backtest(market)
    assert len(bt["instances"]) > 1000 and len(bt["equity"]["dates"]) > 1200
    doc = render_report(bt, market=market, top_symbols=5)
    assert len(doc.encode()) < 2_000_000
    # long series are downsampled for the SVG
    for d in re.findall(r'<path class="ln (?:strat|bench|price)" d="([^"]+)"', doc):
        assert d.count("L") + d.count("M") <= report.MAX_LINE_POINTS
    assert f"Showing the first {report.MAX_SIGNAL_ROWS:,} of {len(bt['instances']):,} signals" in doc


# --------------------------------------------------------------------------- helpers


def test_formatting_helpers() -> None:
    assert report._pct(0.004820357) == "+0.48%"
    assert report._pct(-0.0622) == "-6.22%"
    assert report._pct(0.5277, signed=False, digits=1) == "52.8%"
    for bad in (None, float("nan"), float("inf"), "x", True):
        assert report._pct(bad) == "\u2014"
    assert report._fixed(1.6728, signed=True) == "+1.67"
    assert report._value_text(28.540189) == "28.54" and report._value_text(True) == "true"
    assert report._pct_tick(0.05, 0.05) == "+5%" and report._pct_tick(0.0, 0.05) == "0%"
    assert report._pct_tick(-0.025, 0.025) == "-2.5%"


def test_downsample_keeps_extremes_and_ends() -> None:
    n = 5000
    s = np.sin(np.linspace(0, 20, n)).tolist()
    s[1234] = 9.0
    s[4321] = -9.0
    keep = report._downsample(n, [s], 300)
    assert len(keep) <= 300 and keep[0] == 0 and keep[-1] == n - 1
    assert 1234 in keep and 4321 in keep
    assert report._downsample(10, [s[:10]], 300) == list(range(10))


def test_date_ticks_pick_readable_steps() -> None:
    def day(text: str) -> int:
        return int((np.datetime64(text) - np.datetime64("1970-01-01")).astype(int))

    years = report._date_ticks(day("2008-03-01"), day("2013-03-01"))
    assert [lab for _d, lab in years] == ["2009", "2010", "2011", "2012", "2013"]
    two = report._date_ticks(day("2011-03-02"), day("2013-03-01"))
    assert "2012" in [lab for _d, lab in two] and "Jul" in [lab for _d, lab in two]
    short = report._date_ticks(day("2012-10-01"), day("2012-10-31"))
    assert short and short[0][1] == "Oct 1"


# --------------------------------------------------------------------------- real browser


def test_screenshot_script_reports_missing_chromium(tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    page.write_text(render_report({}))
    proc = subprocess.run([sys.executable, str(SCRIPT), str(page), str(tmp_path / "r.png"),
                           "--chromium", str(tmp_path / "no-such-chromium")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "chromium" in proc.stderr and "apt-get install -y chromium" in proc.stderr
    assert not (tmp_path / "r.png").exists()


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium) to render the report in a real headless browser")
def test_real_browser_screenshot(full: str, tmp_path: Path) -> None:
    page, png, dom = tmp_path / "report.html", tmp_path / "report.png", tmp_path / "report.dom.html"
    page.write_text(full, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(page), str(png), "--dom", str(dom)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert png.exists() and png.stat().st_size > 100_000
    head = png.read_bytes()[:24]
    assert head.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", head[16:24])
    assert width == 1280 and height > 3000  # the full page, not just the first screen
    assert json.loads(proc.stdout)["height"] == height
    text = dom.read_text(encoding="utf-8")
    for heading in ("Forward returns by window", "Distribution of forward returns", "Equity curve",
                    "Signals on the price chart", "Bias report", "Screen", "Alert replay"):
        assert f">{heading}</h2>" in text, heading
    assert '<table id="metrics-table"' in text and text.count("<svg") == 7
    assert "+0.48%" in text


# --------------------------------------------------------------------------- robustness

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([EVIL, "", "2012-01-03", "1"]),
                     st.text(max_size=20))
_json = st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                      st.dictionaries(st.text(max_size=8) | st.just(EVIL), kids,
                                                                      max_size=4)), max_leaves=12)
_ret = st.one_of(st.none(), st.floats(-1, 5), st.floats(allow_nan=True, allow_infinity=True), st.just(EVIL))
_instance = st.fixed_dictionaries({"ticker": st.sampled_from(["AAPL", "GOOG", EVIL, "ZZZ"]) | _scalars,
                                   "date": st.dates().map(str) | _scalars, "score": _scalars,
                                   "values": _json, "returns": st.dictionaries(st.sampled_from(["1", "5", "x"]), _ret)})
_curve = st.lists(st.floats(0.01, 10) | st.none() | st.floats(allow_nan=True), min_size=0, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_garbage_input_never_breaks_the_page(data: st.DataObject, market: MarketData) -> None:
    bt = load("sample_backtest.json")
    for key in data.draw(st.sets(st.sampled_from(sorted(bt)), max_size=6)):
        bt[key] = data.draw(_json)
    bt["instances"] = data.draw(st.lists(_instance, max_size=30)) if data.draw(st.booleans()) else bt["instances"]
    if isinstance(bt.get("equity"), dict) and data.draw(st.booleans()):
        n = data.draw(st.integers(0, 40))
        bt["equity"]["dates"] = data.draw(st.lists(st.dates().map(str) | _scalars, min_size=n, max_size=n))
        bt["equity"]["strategy"] = data.draw(_curve)
        bt["equity"]["benchmark"] = data.draw(_curve)
    doc = render_report(bt, market=market, screen=data.draw(_json | st.just({"ranked_results": [{"symbol": EVIL}]})),
                        replay=data.draw(_json), title=data.draw(st.none() | st.text(max_size=30)))
    assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    assert EVIL not in doc and "<script" not in doc.lower()
    assert {t for t, _a in parse(doc).tags} <= ALLOWED_TAGS


def test_extreme_numbers_keep_the_svg_valid(backtest: dict) -> None:
    bt = copy.deepcopy(backtest)
    for inst, r in zip(bt["instances"], (1e308, -1e308, 1e-300, 5e15)):
        inst["returns"]["1"] = r
    bt["performance_metrics"]["by_window"]["1"]["mean"] = 1e308
    bt["performance_metrics"]["by_window"]["1"]["benchmark"]["mean"] = -1e300
    bt["equity"]["strategy"][10] = 1e300
    bt["equity"]["benchmark"][11] = 1e-300
    doc = render_report(bt)
    svgs = re.findall(r"<svg.*?</svg>", doc, flags=re.DOTALL)
    assert len(svgs) == 4
    for svg in svgs:
        assert "nan" not in svg.lower() and "inf" not in svg.lower()
        assert max(len(t) for t in re.findall(r">([^<>]*)</text>", svg)) < 60  # no 300-digit tick labels
