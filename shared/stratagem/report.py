"""A self-contained HTML report of a backtest (plus, optionally, a screen and an alert replay).

:func:`render_report` turns the JSON of ``stratagem backtest`` into ONE HTML document a
trader can open anywhere: inline CSS, inline SVG charts drawn here in Python, no external
URLs, no JavaScript (tooltips are SVG ``<title>`` elements). A Content-Security-Policy meta
tag forbids scripts and remote loads, as a second line of defence behind escaping.

Everything that comes from data or from a strategy (symbols, values, messages, even keys)
is untrusted and goes through :func:`html.escape` before it reaches the page. Long series
are downsampled (keeping each bucket's extremes) so the file stays small.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .data.store import MarketData

__all__ = ["render_report"]

MAX_LINE_POINTS = 640  # points kept per SVG line (min/max per bucket)
MAX_HOVER_COLUMNS = 240  # hover bands (tooltips) on the equity chart
MAX_SIGNAL_ROWS = 500  # rows of the signals table
MAX_TABLE_ROWS = 300  # rows of the screen / replay / example tables
MAX_VALUE_CHARS = 160  # one strategy value, rendered
MAX_VALUE_COLUMNS = 8  # strategy value columns in a table (the rest go to "other")
MAX_MESSAGE_CHARS = 2000
HUGE = 1e4  # above this (as a fraction: 1,000,000%), numbers are shown in exponent form
RETURN_CLIP = 1e4  # histogram range limit (a return of +-1,000,000%)

DASH = "\u2014"
ELLIPSIS = " \u2026"
MIDDOT = " \u00b7 "
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = _dt.date(1970, 1, 1)

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; "
        "base-uri 'none'; form-action 'none'")

_CSS = """
:root{--fg:#1f2933;--muted:#5f6b7a;--faint:#9aa5b1;--line:#e4e7eb;--bg:#fff;--panel:#f6f7f9;
--strat:#2457d6;--bench:#d97706;--pos:#1a7f44;--neg:#c0362c;--warn-bg:#fff7e6;--warn:#f0a020;
--bad-bg:#fdeeee;--ok-bg:#ebf6ef}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif;
color:var(--fg);background:var(--bg)}
.wrap{max-width:1200px;margin:0 auto;padding:28px 24px 56px}
header .eyebrow{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);margin:0 0 4px}
h1{font-size:26px;line-height:1.25;margin:0 0 10px;display:flex;flex-wrap:wrap;align-items:center;gap:10px}
h2{font-size:19px;margin:0 0 4px}
h3{font-size:15px;margin:18px 0 8px}
section{margin-top:36px}
section>.lead{color:var(--muted);margin:0 0 14px;font-size:13px}
.hr{border:0;border-top:1px solid var(--line);margin:0 0 14px}
a{color:var(--strat)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;background:var(--panel);
padding:1px 4px;border-radius:3px}
.badge{display:inline-block;padding:2px 9px;border-radius:999px;font-size:12px;font-weight:700;letter-spacing:.03em;
vertical-align:middle;white-space:nowrap}
.badge.demo{background:#c0362c;color:#fff;font-size:14px;padding:4px 14px;letter-spacing:.08em}
.badge.ok{background:var(--ok-bg);color:var(--pos)}
.badge.bad{background:var(--bad-bg);color:var(--neg)}
.badge.muted{background:var(--panel);color:var(--muted)}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:6px 0 16px;font-size:13.5px}
.meta dt{color:var(--muted)}
.meta dd{margin:0}
.alert{border-left:4px solid;padding:9px 14px;border-radius:4px;margin:8px 0;font-size:13.5px}
.alert.warn{background:var(--warn-bg);border-color:var(--warn)}
.alert.bad{background:var(--bad-bg);border-color:var(--neg)}
.alert.ok{background:var(--ok-bg);border-color:var(--pos)}
.alert.info{background:var(--panel);border-color:var(--faint)}
.alert strong{margin-right:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px;margin:14px 0 4px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card .k{font-size:12px;color:var(--muted);white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.card .v{font-size:21px;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.3}
.card .s{font-size:12px;color:var(--muted);font-variant-numeric:tabular-nums}
nav.toc{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:13px;margin:18px 0 0;padding:8px 0;
border-top:1px solid var(--line);border-bottom:1px solid var(--line)}
nav.toc a{text-decoration:none}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-weight:600;color:var(--muted);background:var(--panel);border-bottom:1px solid #d5dae0;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody.group tr:first-child td{border-top:2px solid #d5dae0}
tr.strat td{font-weight:600}
tr.bench td{color:var(--muted)}
tr.excess td{background:#fafbfc}
td.win{font-weight:650;white-space:nowrap}
.pos{color:var(--pos)}
.neg{color:var(--neg)}
.sig{font-weight:700}
.muted{color:var(--muted)}
.small{font-size:12px}
.msg{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
font-size:12px;margin:0}
.msg,.vals{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace,"Apple Color Emoji","Segoe UI Emoji",
"Noto Color Emoji"}
.vals{font-size:12px;color:var(--muted);word-break:break-word}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:18px 22px}
.panel{border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.panel+.panel{margin-top:14px}
.grid>.panel+.panel{margin-top:0}
.panel h3{margin:0 0 2px}
.panel .sub{font-size:12px;color:var(--muted);margin:0 0 6px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:4px 0 0}
.sw{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:5px;border-radius:2px}
.sw.strat{background:var(--strat)}.sw.bench{background:var(--bench)}.sw.zero{background:#52606d}
.sw.pos{background:var(--pos);height:9px;width:9px}.sw.neg{background:var(--neg);height:9px;width:9px}
.sw.na{background:var(--faint);height:9px;width:9px}
.empty{color:var(--muted);font-style:italic;padding:10px 0}
details{margin-top:8px}
summary{cursor:pointer;color:var(--strat);font-size:13px}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:14px 24px}
footer{margin-top:44px;padding-top:10px;border-top:1px solid var(--line);font-size:12px;color:var(--muted)}
svg.chart{width:100%;height:auto;display:block;overflow:visible}
svg.chart text{font-size:11px;fill:var(--muted);font-family:inherit}
svg.chart.hist text{font-size:10.5px}
svg.chart .t-strong{fill:var(--fg);font-weight:600}
svg.chart .gl{stroke:var(--line);stroke-width:1}
svg.chart .ax{stroke:#9aa5b1;stroke-width:1}
svg.chart .base{stroke:#52606d;stroke-width:1;stroke-dasharray:3 3}
svg.chart .zero{stroke:#52606d;stroke-width:1.5}
svg.chart .ln{fill:none;stroke-width:1.8;stroke-linejoin:round;stroke-linecap:round}
svg.chart .ln.strat{stroke:var(--strat)}
svg.chart .ln.bench{stroke:var(--bench);stroke-width:1.5}
svg.chart .ln.price{stroke:#3e4c59;stroke-width:1.3}
svg.chart .mk-strat{stroke:var(--strat);stroke-width:2}
svg.chart .mk-bench{stroke:var(--bench);stroke-width:2;stroke-dasharray:5 3}
svg.chart .dd{fill:var(--neg);fill-opacity:.22;stroke:var(--neg);stroke-width:1}
svg.chart .bar{stroke:#fff;stroke-width:.5}
svg.chart .bar.pos{fill:var(--pos);fill-opacity:.75}
svg.chart .bar.neg{fill:var(--neg);fill-opacity:.75}
svg.chart .bar:hover{fill-opacity:1}
svg.chart .sw-strat{fill:var(--strat)} svg.chart .sw-bench{fill:var(--bench)}
svg.chart .hov{fill:transparent}
svg.chart .hov:hover{fill:rgba(36,87,214,.08)}
svg.chart .sg{stroke:#fff;stroke-width:.8}
svg.chart .sg.pos{fill:var(--pos)} svg.chart .sg.neg{fill:var(--neg)} svg.chart .sg.na{fill:var(--faint)}
svg.chart .sg:hover{stroke:#1f2933;stroke-width:1.5}
@media (max-width:640px){.wrap{padding:16px 12px 40px}h1{font-size:21px}.meta{grid-template-columns:1fr}
.meta dt{margin-top:4px}}
@media print{nav.toc{display:none}section{break-inside:avoid-page}}
"""


# --------------------------------------------------------------------------- small helpers


def _esc(x: object) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape("" if x is None else str(x), quote=True)


def _d(x: object) -> dict:
    return x if isinstance(x, dict) else {}


def _l(x: object) -> list:
    return x if isinstance(x, list) else []


def _num(x: object) -> float | None:
    """A finite float, or None for anything else (None, NaN, strings, bools...)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _pct(x: object, signed: bool = True, digits: int = 2) -> str:
    v = _num(x)
    if v is None:
        return DASH
    if abs(v) >= HUGE:
        return f"{v * 100:+.3g}%" if signed else f"{v * 100:.3g}%"
    return f"{v * 100:+.{digits}f}%" if signed else f"{v * 100:.{digits}f}%"


def _fixed(x: object, digits: int = 2, signed: bool = False) -> str:
    v = _num(x)
    if v is None:
        return DASH
    if abs(v) >= HUGE * 100:
        return f"{v:+.3g}" if signed else f"{v:.3g}"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _count(x: object) -> str:
    v = _num(x)
    return DASH if v is None else f"{int(v):,}"


def _sign_cls(x: object) -> str:
    v = _num(x)
    if v is None or v == 0:
        return ""
    return "pos" if v > 0 else "neg"


def _price(x: object) -> str:
    v = _num(x)
    if v is None:
        return DASH
    if abs(v) >= HUGE * 1e4:
        return f"{v:.4g}"
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.4g}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _value_text(v: object) -> str:
    """A strategy value as plain (unescaped) text: numbers to 4 significant digits."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"
    if isinstance(v, str):
        return _clip(v, MAX_VALUE_CHARS)
    try:
        return _clip(json.dumps(v, default=str, ensure_ascii=False), MAX_VALUE_CHARS)
    except (TypeError, ValueError):  # pragma: no cover - exotic objects
        return _clip(repr(v), MAX_VALUE_CHARS)


def _value(v: object) -> str:
    return _esc(_value_text(v))


def _date(text: object) -> _dt.date | None:
    if not isinstance(text, str):
        return None
    try:
        return _dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _day_iso(day: int) -> str:
    return (_EPOCH + _dt.timedelta(days=int(day))).isoformat()


def _window_label(w: object, short: bool = False) -> str:
    s = str(w)
    if short:
        return f"{s}d"
    return f"{s} session" if s == "1" else f"{s} sessions"


def _window_sort_key(w: str) -> tuple[int, float, str]:
    try:
        return (0, float(w), w)
    except ValueError:
        return (1, 0.0, w)


# --------------------------------------------------------------------------- scales & ticks


def _nice_step(span: float, n: int) -> float:
    if not (span > 0 and math.isfinite(span)):
        return 1.0
    raw = span / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10 * mag


def _ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], float]:
    step = _nice_step(hi - lo, n)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], step
    first = math.ceil(lo / step - 1e-9)
    out = []
    k = first
    while k * step <= hi + step * 1e-9 and len(out) < 50:
        out.append(k * step)
        k += 1
    return out, step


def _nice_domain(lo: float, hi: float, n: int = 5) -> tuple[float, float, list[float], float]:
    """Extend [lo, hi] to tick boundaries; returns (lo, hi, ticks, step)."""
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(hi - lo)):
        lo, hi = 0.0, 1.0
    if hi - lo <= abs(hi) * 1e-12 or hi <= lo:
        pad = abs(hi) * 0.05 or 0.01
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, n)
    lo2 = float(math.floor(lo / step + 1e-9) * step)
    hi2 = float(math.ceil(hi / step - 1e-9) * step)
    count = round((hi2 - lo2) / step) + 1
    if not 1 <= count <= 50:  # degenerate (huge or tiny numbers): plain ends, no rounding
        return lo, hi, [lo, hi], hi - lo
    ticks = [lo2 + i * step for i in range(count)]
    return lo2, hi2, ticks, step


def _step_digits(step: float, scale: float = 1.0) -> int:
    s = abs(step * scale)
    if not (math.isfinite(s) and 1e-12 < s < 1e15):
        return 0
    for d in range(6):
        if abs(round(s, d) - s) <= s * 1e-6:
            return d
    return 6


def _pct_tick(v: float, step: float) -> str:
    if abs(v) < step * 1e-6:
        return "0%"
    if abs(v) >= HUGE:
        return f"{v * 100:+.3g}%"
    return f"{v * 100:+.{_step_digits(step, 100)}f}%"


def _num_tick(v: float, step: float) -> str:
    d = _step_digits(step)
    if abs(v) < step * 1e-6:
        v = 0.0
    if abs(v) >= HUGE * 1e4:
        return f"{v:.3g}"
    return f"{v:,.{d}f}"


def _date_ticks(d0: int, d1: int, max_ticks: int = 9) -> list[tuple[int, str]]:
    """Calendar ticks (day ordinals since 1970) between d0 and d1 with short labels."""
    if d1 < d0:
        return []
    a, b = _EPOCH + _dt.timedelta(days=d0), _EPOCH + _dt.timedelta(days=d1)
    span = d1 - d0
    if span < 62:
        step = max(1, math.ceil(span / max_ticks / 7)) * 7
        out = []
        k = d0
        while k <= d1:
            dd = _EPOCH + _dt.timedelta(days=k)
            out.append((k, f"{_MONTHS[dd.month - 1]} {dd.day}"))
            k += step
        return out
    months = (b.year - a.year) * 12 + (b.month - a.month)
    for mstep in (1, 2, 3, 6, 12, 24, 60, 120):
        if months / mstep <= max_ticks:
            break
    out = []
    y, m = a.year, a.month
    while True:
        if (y * 12 + m - 1) % mstep == 0:
            dd = _dt.date(y, m, 1)
            k = (dd - _EPOCH).days
            if k > d1:
                break
            if k >= d0:
                out.append((k, str(y) if mstep >= 12 or m == 1 else _MONTHS[m - 1]))
        m += 1
        if m > 12:
            y, m = y + 1, 1
        if y > b.year + 1:
            break
    return out


class _Lin:
    """Linear map from a data domain to a pixel range."""

    def __init__(self, d0: float, d1: float, r0: float, r1: float) -> None:
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1
        self.k = (r1 - r0) / (d1 - d0) if d1 != d0 else 0.0

    def __call__(self, v: float) -> float:
        return self.r0 + (v - self.d0) * self.k


def _f(v: float) -> str:
    """Compact coordinate (clamped, so bad data cannot produce 'nan' or 'inf' in the SVG)."""
    v = min(max(v, -1e6), 1e6) if math.isfinite(v) else 0.0
    s = f"{v:.1f}"
    return s.removesuffix(".0")


def _path(xs: Sequence[float], ys: Sequence[float | None]) -> str:
    """SVG path data for a polyline, broken where y is None."""
    parts: list[str] = []
    pen = False
    for x, y in zip(xs, ys):
        if y is None:
            pen = False
            continue
        parts.append(("L" if pen else "M") + _f(x) + " " + _f(y))
        pen = True
    return "".join(parts)


def _downsample(n: int, series: Sequence[Sequence[float | None]], max_points: int = MAX_LINE_POINTS) -> list[int]:
    """Indices to keep: first/last plus, per bucket, each series' min and max."""
    if n <= max_points:
        return list(range(n))
    per_bucket = 1 + 2 * max(1, len(series))
    buckets = max(1, max_points // per_bucket)
    edges = np.linspace(0, n, buckets + 1).round().astype(int)
    keep = {0, n - 1}
    arrs = [np.array([np.nan if v is None else v for v in s], dtype=float) for s in series]
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist()):
        if b <= a:
            continue
        keep.add(a)
        for arr in arrs:
            seg = arr[a:b]
            if np.isfinite(seg).any():
                keep.add(a + int(np.nanargmin(seg)))
                keep.add(a + int(np.nanargmax(seg)))
    return sorted(keep)


def _svg_open(w: int, h: int, label: str, cls: str = "chart") -> str:
    return (f'<svg class="{cls}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{_esc(label)}" preserveAspectRatio="xMidYMid meet">')


def _x_axis(ticks: list[tuple[int, str]], sx: _Lin, y0: float, y1: float, label_y: float | None) -> str:
    """Vertical grid lines from y0 to y1 at the ticks; tick marks and labels when label_y is given."""
    out = []
    for k, lab in ticks:
        x = _f(sx(k))
        out.append(f'<line class="gl" x1="{x}" x2="{x}" y1="{_f(y0)}" y2="{_f(y1)}"/>')
        if label_y is not None:
            out.append(f'<line class="ax" x1="{x}" x2="{x}" y1="{_f(y1)}" y2="{_f(y1 + 4)}"/>')
            out.append(f'<text x="{x}" y="{_f(label_y)}" text-anchor="middle">{_esc(lab)}</text>')
    return "".join(out)


def _y_axis(ticks: list[float], sy: _Lin, x0: float, x1: float, fmt, cls: str = "gl") -> str:
    out = []
    for t in ticks:
        y = _f(sy(t))
        out.append(f'<line class="{cls}" x1="{_f(x0)}" x2="{_f(x1)}" y1="{y}" y2="{y}"/>')
        out.append(f'<text x="{_f(x0 - 6)}" y="{y}" dy="0.32em" text-anchor="end">{_esc(fmt(t))}</text>')
    return "".join(out)


# --------------------------------------------------------------------------- charts


def _histogram_svg(rets: list[float], w: str, strat_mean: float | None, bench_mean: float | None) -> str:
    """Histogram of forward returns with zero, the strategy mean and the benchmark mean marked."""
    W, H = 360, 220
    L, R, T, B = 36, 8, 24, 30
    # anything beyond +-1,000,000% is bad data: fold it into the edge bins, keep the axis sane
    a = np.clip(np.asarray(rets, dtype=float), -RETURN_CLIP, RETURN_CLIP)
    n = a.size
    lo, hi = (float(np.percentile(a, 1)), float(np.percentile(a, 99))) if n >= 60 else (float(a.min()), float(a.max()))
    if strat_mean is not None:
        strat_mean = min(max(strat_mean, -RETURN_CLIP), RETURN_CLIP)
    if bench_mean is not None:
        bench_mean = min(max(bench_mean, -RETURN_CLIP), RETURN_CLIP)
    for v in (0.0, strat_mean, bench_mean):
        if v is not None:
            lo, hi = min(lo, v), max(hi, v)
    if hi - lo < 1e-6:
        lo, hi = lo - 0.005, hi + 0.005
    nbins = int(min(40, max(8, round(math.sqrt(n) * 1.6))))
    step = _nice_step(hi - lo, nbins)
    e0 = float(math.floor(lo / step + 1e-9) * step)
    e1 = float(math.ceil(hi / step - 1e-9) * step)
    if e1 <= e0:
        e1 = e0 + step
    k = round((e1 - e0) / step) if math.isfinite((e1 - e0) / step) else 0
    if not 1 <= k <= 4 * nbins:  # degenerate range: plain equal-width bins
        e0, e1, k = lo, hi, nbins
        step = (e1 - e0) / k
    edges = e0 + step * np.arange(k + 1)
    pos = np.clip((a - e0) / step, -1.0, k + 1.0)
    idx = np.clip(np.floor(pos + 1e-9).astype(int), 0, k - 1)
    counts = np.bincount(idx, minlength=k)
    clipped_lo = int((a < e0).sum())
    clipped_hi = int((a > e1).sum())
    sx = _Lin(e0, e1, L + 3, W - R)
    cmax = int(counts.max()) if counts.size else 1
    _ylo, yhi, yt, _ystep = _nice_domain(0, max(cmax, 1), 4)
    yt = [t for t in yt if float(t).is_integer()] or [0.0, float(yhi)]
    sy = _Lin(0, yhi, H - B, T)
    out = [_svg_open(W, H, f"distribution of {_window_label(w)} forward returns", "chart hist")]
    out.append(_y_axis(yt, sy, L, W - R, lambda t: f"{int(t)}"))
    for i in range(k):
        c = int(counts[i])
        if c == 0:
            continue
        x0, x1 = sx(edges[i]), sx(edges[i + 1])
        mid = (edges[i] + edges[i + 1]) / 2
        cls = "neg" if mid < 0 else "pos"
        y = sy(c)
        lab_lo = ("\u2264 " if i == 0 and clipped_lo else "") + _pct(edges[i])
        lab_hi = ("\u2265 " if i == k - 1 and clipped_hi else "") + _pct(edges[i + 1])
        tip = f"{lab_lo} to {lab_hi}: {c} signal{'s' if c != 1 else ''}"
        if i == 0 and clipped_lo:
            tip += f" (incl. {clipped_lo} below {_pct(edges[0])})"
        if i == k - 1 and clipped_hi:
            tip += f" (incl. {clipped_hi} above {_pct(edges[-1])})"
        out.append(f'<rect class="bar {cls}" x="{_f(x0)}" y="{_f(y)}" width="{_f(max(x1 - x0, 0.5))}" '
                   f'height="{_f(sy(0) - y)}"><title>{_esc(tip)}</title></rect>')
    out.append(f'<line class="ax" x1="{L}" x2="{W - R}" y1="{_f(sy(0))}" y2="{_f(sy(0))}"/>')
    xt, xstep = _ticks(e0, e1, 6)
    for t in xt:
        x = _f(sx(t))
        out.append(f'<line class="ax" x1="{x}" x2="{x}" y1="{_f(sy(0))}" y2="{_f(sy(0) + 4)}"/>')
        out.append(f'<text x="{x}" y="{_f(H - B + 15)}" text-anchor="middle">{_esc(_pct_tick(t, xstep))}</text>')
    out.append(f'<line class="zero" x1="{_f(sx(0))}" x2="{_f(sx(0))}" y1="{T - 4}" y2="{_f(sy(0))}"/>')
    if bench_mean is not None:
        x = _f(sx(bench_mean))
        out.append(f'<line class="mk-bench" x1="{x}" x2="{x}" y1="{T - 4}" y2="{_f(sy(0))}">'
                   f'<title>benchmark mean {_esc(_pct(bench_mean))}</title></line>')
    if strat_mean is not None:
        x = _f(sx(strat_mean))
        out.append(f'<line class="mk-strat" x1="{x}" x2="{x}" y1="{T - 4}" y2="{_f(sy(0))}">'
                   f'<title>strategy mean {_esc(_pct(strat_mean))}</title></line>')
    out.append(f'<text x="{L - 30}" y="12">signals</text>')
    out.append(f'<text x="{W - R}" y="12" text-anchor="end">{_esc(_window_label(w))} forward return</text>')
    out.append("</svg>")
    return "".join(out)


def _equity_svg(dates: list, strat: list, bench: list) -> str:
    """Equity of the rule vs the benchmark, with a drawdown panel under it."""
    rows = []
    for d, s, b in zip(dates, strat, bench):
        dd = _date(d)
        if dd is not None:
            rows.append(((dd - _EPOCH).days, _num(s), _num(b)))
    rows = [r for r in rows if r[1] is not None or r[2] is not None]
    if len(rows) < 2:
        return ""
    xs_all = [r[0] for r in rows]
    s_all = [r[1] for r in rows]
    b_all = [r[2] for r in rows]

    def drawdown(vals: list[float | None]) -> list[float | None]:
        peak, out = -math.inf, []
        for v in vals:
            if v is None:
                out.append(None)
                continue
            peak = max(peak, v)
            out.append(v / peak - 1 if peak > 0 else None)
        return out

    sdd, bdd = drawdown(s_all), drawdown(b_all)
    keep = _downsample(len(rows), [s_all, b_all, sdd])
    xs = [xs_all[i] for i in keep]
    ss = [s_all[i] for i in keep]
    bs = [b_all[i] for i in keep]
    sdds = [sdd[i] for i in keep]
    bdds = [bdd[i] for i in keep]

    W, L, R = 960, 58, 120
    T, H1 = 34, 250  # main panel: y in [T, T+H1]
    G, H2 = 34, 100  # drawdown panel below
    B = 30
    H = T + H1 + G + H2 + B
    sx = _Lin(xs[0], xs[-1], L, W - R)
    vals = [v for v in ss + bs if v is not None] + [1.0]
    lo, hi, yt, ystep = _nice_domain(min(vals), max(vals), 5)
    sy = _Lin(lo, hi, T + H1, T)
    dvals = [v for v in sdds + bdds if v is not None] + [0.0]
    dlo, _dhi, dt, dstep = _nice_domain(min(min(dvals), -0.01), 0.0, 3)
    y2 = T + H1 + G
    sy2 = _Lin(dlo, 0.0, y2 + H2, y2)
    out = [_svg_open(W, H, "equity curve of the strategy rule against the benchmark, with drawdowns")]
    out.append(_y_axis(yt, sy, L, W - R, lambda v: _pct_tick(v - 1.0, ystep)))
    out.append(_y_axis(dt, sy2, L, W - R, lambda v: _pct_tick(v, dstep)))
    xt = _date_ticks(xs[0], xs[-1])
    out.append(_x_axis(xt, sx, T, T + H1, None))
    out.append(_x_axis(xt, sx, y2, y2 + H2, y2 + H2 + 16))
    out.append(f'<line class="base" x1="{L}" x2="{W - R}" y1="{_f(sy(1.0))}" y2="{_f(sy(1.0))}"/>')
    out.append(f'<line class="ax" x1="{L}" x2="{W - R}" y1="{_f(T + H1)}" y2="{_f(T + H1)}"/>')
    out.append(f'<line class="ax" x1="{L}" x2="{W - R}" y1="{_f(y2 + H2)}" y2="{_f(y2 + H2)}"/>')
    px = [sx(x) for x in xs]
    out.append(f'<path class="ln bench" d="{_path(px, [None if v is None else sy(v) for v in bs])}"/>')
    out.append(f'<path class="ln strat" d="{_path(px, [None if v is None else sy(v) for v in ss])}"/>')
    # drawdown: strategy as an area, benchmark as a line
    pts = [(x, sy2(v)) for x, v in zip(px, sdds) if v is not None]
    if pts:
        area = "M" + _f(pts[0][0]) + " " + _f(sy2(0)) + "".join(f"L{_f(x)} {_f(y)}" for x, y in pts)
        area += f"L{_f(pts[-1][0])} {_f(sy2(0))}Z"
        out.append(f'<path class="dd" d="{area}"/>')
    out.append(f'<path class="ln bench" d="{_path(px, [None if v is None else sy2(v) for v in bdds])}"/>')
    # end labels
    last_s = next((v for v in reversed(ss) if v is not None), None)
    last_b = next((v for v in reversed(bs) if v is not None), None)
    ends = []
    if last_s is not None:
        ends.append((sy(last_s), "sw-strat", f"Strategy {_pct(last_s - 1, digits=1)}"))
    if last_b is not None:
        ends.append((sy(last_b), "sw-bench", f"Benchmark {_pct(last_b - 1, digits=1)}"))
    if len(ends) == 2 and abs(ends[0][0] - ends[1][0]) < 14:  # keep the labels apart
        ends.sort()
        mid = (ends[0][0] + ends[1][0]) / 2
        ends = [(mid - 7, ends[0][1], ends[0][2]), (mid + 7, ends[1][1], ends[1][2])]
    for y, cls, text in ends:
        out.append(f'<rect class="{cls}" x="{W - R + 6}" y="{_f(y - 1.5)}" width="8" height="3"/>')
        out.append(f'<text x="{W - R + 18}" y="{_f(y)}" dy="0.32em" class="t-strong">{_esc(text)}</text>')
    # legend + panel titles
    out.append(f'<rect class="sw-strat" x="{L}" y="10" width="16" height="3"/>'
               f'<text x="{L + 22}" y="15" class="t-strong">Strategy rule</text>'
               f'<rect class="sw-bench" x="{L + 130}" y="10" width="16" height="3"/>'
               f'<text x="{L + 152}" y="15" class="t-strong">Benchmark (equal-weight universe)</text>'
               f'<text x="{W - R}" y="15" text-anchor="end">cumulative return (growth of 1)</text>')
    out.append(f'<text x="{L}" y="{_f(y2 - 8)}" class="t-strong">Drawdown from peak</text>'
               f'<text x="{W - R}" y="{_f(y2 - 8)}" text-anchor="end">strategy shaded, benchmark line</text>')
    # hover bands with the values (native tooltips)
    nh = min(len(xs), MAX_HOVER_COLUMNS)
    hover_idx = sorted({round(float(v)) for v in np.linspace(0, len(rows) - 1, nh)})
    hx = [sx(xs_all[i]) for i in hover_idx]
    for j, i in enumerate(hover_idx):
        left = L if j == 0 else (hx[j - 1] + hx[j]) / 2
        right = (W - R) if j == len(hover_idx) - 1 else (hx[j] + hx[j + 1]) / 2
        tip = (f"{_day_iso(xs_all[i])}\nstrategy {_fixed(s_all[i], 3)} ({_pct(None if s_all[i] is None else s_all[i] - 1)}), "
               f"drawdown {_pct(sdd[i])}\nbenchmark {_fixed(b_all[i], 3)} "
               f"({_pct(None if b_all[i] is None else b_all[i] - 1)}), drawdown {_pct(bdd[i])}")
        out.append(f'<rect class="hov" x="{_f(left)}" y="{T}" width="{_f(max(right - left, 0.5))}" '
                   f'height="{_f(H1 + G + H2)}"><title>{_esc(tip)}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def _price_svg(sym: str, days: np.ndarray, prices: np.ndarray, marks: list[tuple[int, float, str, str]]) -> str:
    """Price line with signal markers (triangles under the bar, coloured by outcome)."""
    W, H = 960, 250
    L, R, T, B = 58, 20, 22, 30
    n = days.shape[0]
    ys_all = [float(p) if math.isfinite(p) else None for p in prices.tolist()]
    keep = _downsample(n, [ys_all])
    xs = [int(days[i]) for i in keep]
    ys = [ys_all[i] for i in keep]
    vals = [v for v in ys if v is not None] + [m[1] for m in marks]
    if not vals or len(xs) < 2:
        return ""
    lo, hi, yt, ystep = _nice_domain(min(vals), max(vals), 5)
    sx = _Lin(xs[0], xs[-1], L, W - R)
    sy = _Lin(lo, hi, H - B, T)
    out = [_svg_open(W, H, f"adjusted close of {sym} with signal days marked")]
    out.append(_y_axis(yt, sy, L, W - R, lambda v: _num_tick(v, ystep)))
    out.append(_x_axis(_date_ticks(xs[0], xs[-1]), sx, T, H - B, H - B + 16))
    out.append(f'<line class="ax" x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}"/>')
    out.append(f'<path class="ln price" d="{_path([sx(x) for x in xs], [None if v is None else sy(v) for v in ys])}"/>')
    for day, price, cls, tip in marks:
        x, y = sx(day), sy(price) + 4
        out.append(f'<path class="sg {cls}" d="M{_f(x)} {_f(y)}l-4.5 8h9z"><title>{_esc(tip)}</title></path>')
    out.append(f'<text x="{L - 50}" y="12">adjusted close</text>')
    out.append("</svg>")
    return "".join(out)


# --------------------------------------------------------------------------- HTML pieces


def _table(head: list[tuple[str, str]], rows: Iterable[str], cls: str = "") -> str:
    """head: (already-escaped label, css class); rows: already-rendered <tr>...</tr>."""
    th = "".join(f'<th class="{c}">{label}</th>' if c else f"<th>{label}</th>" for label, c in head)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _td(text: str, cls: str = "", title: str | None = None) -> str:
    attrs = f' class="{cls}"' if cls else ""
    if title:
        attrs += f' title="{_esc(title)}"'
    return f"<td{attrs}>{text}</td>"


def _value_columns(records: Iterable[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        for k in _d(r.get("values")):
            seen.setdefault(str(k), None)
            if len(seen) > MAX_VALUE_COLUMNS:
                break
    return list(seen)[:MAX_VALUE_COLUMNS]


def _value_cells(values: object, cols: list[str]) -> str:
    v = _d(values)
    cells = []
    for c in cols:
        x = v.get(c)
        cells.append(_td(_value(x), "num" if _num(x) is not None else "") if c in v else _td(DASH, "muted"))
    rest = {k: x for k, x in v.items() if str(k) not in cols}
    if rest:
        text = ", ".join(f"{k}={_value_text(x)}" for k, x in list(rest.items())[:10])
        cells.append(_td(_esc(_clip(text, MAX_VALUE_CHARS * 2)), "vals"))
    else:
        cells.append(_td(""))
    return "".join(cells)


def _examples_table(examples: list, empty: str) -> str:
    """Rows of {symbol, date, message, ...} (untrusted)."""
    rows = []
    for e in examples[:MAX_TABLE_ROWS]:
        e = _d(e)
        msg = e.get("message", e.get("reason", ""))
        extra = {k: v for k, v in e.items() if k not in ("symbol", "date", "message", "reason")}
        text = _clip(msg if isinstance(msg, str) else _value_text(msg), MAX_MESSAGE_CHARS)
        if extra:
            text += ("\n" if text else "") + ", ".join(f"{k}: {_value_text(v)}" for k, v in extra.items())
        rows.append("<tr>" + _td(_esc(e.get("symbol") if e.get("symbol") is not None else DASH))
                    + _td(_esc(e.get("date") or DASH), "num") + _td(f'<pre class="msg">{_esc(text)}</pre>') + "</tr>")
    if not rows:
        return f'<p class="empty">{_esc(empty)}</p>'
    return _table([("Symbol", ""), ("Date", "num"), ("Detail", "")], rows)


def _section(sid: str, title: str, lead: str, body: str) -> str:
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section id="{sid}"><h2>{_esc(title)}</h2>{lead_html}<hr class="hr">{body}</section>'


def _card(k: str, v: str, s: str = "", cls: str = "") -> str:
    """k: plain text (escaped here); v and s: already-escaped HTML."""
    return (f'<div class="card"><div class="k">{_esc(k)}</div><div class="v {cls}">{v}</div>'
            f'<div class="s">{s}</div></div>')


# --------------------------------------------------------------------------- sections


def _strategy_name(bt: dict) -> str:
    st = _d(bt.get("strategy"))
    for k in ("name", "id", "sha256"):
        if st.get(k):
            return str(st[k])
    return "strategy"


def _is_demo(*docs: dict) -> bool:
    for doc in docs:
        if doc.get("demo_data") is True or _d(doc.get("dataset")).get("demo") is True:
            return True
        if str(_d(doc.get("dataset")).get("name", "")).lower() == "demo":
            return True
    return False


def _key_window(bt: dict, windows: list[str]) -> str | None:
    hold = _d(bt.get("equity")).get("hold")
    if hold is not None and str(hold) in windows:
        return str(hold)
    return windows[len(windows) // 2] if windows else None


def _header(bt: dict, title: str, demo: bool, windows: list[str]) -> str:
    st = _d(bt.get("strategy"))
    ds = _d(bt.get("dataset"))
    pm = _d(bt.get("performance_metrics"))
    eq = _d(bt.get("equity"))
    bias = _d(bt.get("bias"))
    symbols = [str(s) for s in _l(bt.get("symbols"))]
    universe = _d(bias.get("survivorship")).get("universe")
    badge = '<span class="badge demo" title="results depend on illustrative data">DEMO DATA</span>' if demo else ""
    out = ['<header><p class="eyebrow">Stratagem backtest report</p>', f"<h1>{_esc(title)}{badge}</h1>"]

    meta: list[tuple[str, str]] = []
    sname = _strategy_name(bt)
    extra = ", ".join(f"{k} {_value_text(v)}" for k, v in st.items() if k in ("id", "version", "sha256") and v is not None)
    meta.append(("Strategy", f"<strong>{_esc(sname)}</strong>" + (f' <span class="muted">({_esc(extra)})</span>' if extra else "")))
    if ds:
        ds_text = f"{_esc(ds.get('name', DASH))}"
        if ds.get("version"):
            ds_text += f' <span class="muted">version <code>{_esc(ds.get("version"))}</code></span>'
        if ds.get("demo") is True:
            ds_text += ' <span class="badge bad">demo dataset</span>'
        meta.append(("Dataset", ds_text))
    if bt.get("start") or bt.get("end"):
        meta.append(("Range", f"{_esc(bt.get('start') or DASH)} \u2192 {_esc(bt.get('end') or DASH)}"))
    if symbols or universe:
        shown = ", ".join(symbols[:30]) + (f", \u2026 (+{len(symbols) - 30})" if len(symbols) > 30 else "")
        uni = (f"<strong>{_esc(universe)}</strong> \u2014 " if universe else "")
        meta.append(("Universe", f"{uni}{len(symbols)} symbol{'s' if len(symbols) != 1 else ''}"
                                 + (f': <span class="muted">{_esc(shown)}</span>' if shown else "")))
    entry = bt.get("entry")
    if entry is not None:
        text = {"close": "at the signal day's close", "next_open": "at the next session's open"}.get(str(entry))
        meta.append(("Entry", (f"{_esc(text)} <code>{_esc(entry)}</code>" if text else f"<code>{_esc(entry)}</code>")))
    if windows:
        meta.append(("Forward windows", ", ".join(_esc(_window_label(w)) for w in windows)))
    if pm.get("returns_rule"):
        meta.append(("Return", f"<code>{_esc(pm['returns_rule'])}</code>"))
    if eq.get("rule"):
        meta.append(("Equity rule", _esc(eq["rule"])))
    out.append('<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta) + "</dl>")

    warnings = [w if isinstance(w, str) else _value_text(w) for w in _l(bt.get("warnings"))]
    if demo and not any(w.upper().startswith("DEMO") for w in warnings):
        why = []
        if ds.get("demo") is True or str(ds.get("name", "")).lower() == "demo":
            why.append("the dataset is marked demo")
        if bt.get("demo_data") is True:
            why.append("the strategy read the bundled illustrative fundamentals/earnings")
        text = "; ".join(why) or "demo data was used"
        out.append('<div class="alert bad"><strong>DEMO DATA.</strong>'
                   f"{_esc(text[:1].upper() + text[1:])}: results that depend on it are not real.</div>")
    for text in warnings:
        cls = "bad" if text.upper().startswith(("LOOK-AHEAD", "DEMO")) else "warn"
        out.append(f'<div class="alert {cls}"><strong>Warning.</strong>{_esc(text)}</div>')

    # key numbers
    bw = _d(pm.get("by_window"))
    kw = _key_window(bt, windows)
    cards = []
    signals = pm.get("signals", len(_l(bt.get("instances"))))
    cards.append(_card("Signals", _esc(_count(signals)),
                       f"{_esc(_pct(pm.get('signal_rate'), False))} of {_esc(_count(pm.get('evaluated')))} evaluated"))
    if kw is not None:
        m = _d(bw.get(kw))
        b = _d(m.get("benchmark"))
        short = _window_label(kw, True)
        cards.append(_card(f"Mean {short} return", _esc(_pct(m.get("mean"))),
                           f"bench {_esc(_pct(b.get('mean')))}<br>excess {_esc(_pct(m.get('excess_mean')))}",
                           _sign_cls(m.get("mean"))))
        cards.append(_card(f"Hit rate {short}", _esc(_pct(m.get("hit_rate"), False, 1)),
                           f"bench {_esc(_pct(b.get('hit_rate'), False, 1))}<br>"
                           f"t-stat {_esc(_fixed(m.get('t_stat'), signed=True))}"))
    if eq:
        for label, key, fmt, colour in (("Total return", "total_return", lambda x: _pct(x, digits=1), True),
                                        ("CAGR", "cagr", lambda x: _pct(x, digits=1), True),
                                        ("Sharpe", "sharpe", _fixed, False),
                                        ("Max drawdown", "max_drawdown", lambda x: _pct(x, digits=1), False)):
            cls = _sign_cls(eq.get(key)) if colour else ("neg" if key == "max_drawdown" and _num(eq.get(key)) else "")
            cards.append(_card(label, _esc(fmt(eq.get(key))), f"bench {_esc(fmt(eq.get(f'benchmark_{key}')))}", cls))
    probe = _d(bias.get("lookahead_probe"))
    if probe:
        if probe.get("identical") is True:
            cards.append(_card("Look-ahead", "passed", f"identical on {len(_l(probe.get('days')))} days", "pos"))
        elif probe.get("identical") is False:
            cards.append(_card("Look-ahead", "FAILED", f"{len(_l(probe.get('mismatches')))} mismatch(es)", "neg"))
        else:
            cards.append(_card("Look-ahead", "skipped", "probe not run"))
    out.append('<div class="cards">' + "".join(cards) + "</div>")
    return "".join(out)


def _metrics_section(bt: dict, windows: list[str]) -> str:
    bw = _d(_d(bt.get("performance_metrics")).get("by_window"))
    pm = _d(bt.get("performance_metrics"))
    head = [("Window", ""), ("Series", ""), ("Count", "num"), ("Mean", "num"), ("Median", "num"), ("Std", "num"),
            ("Hit rate", "num"), ("t-stat", "num"), ("Best", "num"), ("Worst", "num")]
    groups = []
    for w in windows:
        m = _d(bw.get(w))
        b = _d(m.get("benchmark"))

        def row(cls: str, label: str, s: dict, first: bool, w: str = w) -> str:
            t = _num(s.get("t_stat"))
            tcls = "num sig" if t is not None and abs(t) >= 1.96 else "num"
            cells = [
                _td(_esc(_window_label(w)) if first else "", "win"),
                _td(_esc(label)),
                _td(_esc(_count(s.get("count"))), "num"),
                _td(_esc(_pct(s.get("mean"))), f"num {_sign_cls(s.get('mean'))}"),
                _td(_esc(_pct(s.get("median"))), f"num {_sign_cls(s.get('median'))}"),
                _td(_esc(_pct(s.get("std"), signed=False)), "num"),
                _td(_esc(_pct(s.get("hit_rate"), signed=False, digits=1)), "num"),
                _td(_esc(_fixed(s.get("t_stat"), signed=True)), tcls, "|t| \u2265 1.96" if "sig" in tcls else None),
                _td(_esc(_pct(s.get("best"))), "num"),
                _td(_esc(_pct(s.get("worst"))), "num"),
            ]
            return f'<tr class="{cls}">' + "".join(cells) + "</tr>"

        ex = m.get("excess_mean")
        excess = ('<tr class="excess">' + _td("", "win") + _td("Excess (strategy \u2212 benchmark)")
                  + _td("", "num") + _td(_esc(_pct(ex)), f"num sig {_sign_cls(ex)}") + "".join(_td("", "num") for _ in range(6))
                  + "</tr>")
        groups.append(f'<tbody class="group">{row("strat", "Strategy", m, True)}{row("bench", "Benchmark", b, False)}'
                      f"{excess}</tbody>")
    if not groups:
        body = '<p class="empty">No metrics: the backtest has no forward windows.</p>'
    else:
        th = "".join(f'<th class="{c}">{label}</th>' if c else f"<th>{label}</th>" for label, c in head)
        body = (f'<div class="scroll"><table id="metrics-table" class="metrics"><thead><tr>{th}</tr></thead>'
                f'{"".join(groups)}</table></div>')
    lead = ("Forward return of every signal, per window, beside the benchmark: "
            f"{_esc(pm.get('benchmark_rule') or 'the equal-weight universe on the same signal days')}. "
            "Hit rate = share of positive returns; t-stat of the mean (bold when |t| \u2265 1.96).")
    return _section("metrics", "Forward returns by window", lead, body)


def _distributions_section(bt: dict, windows: list[str]) -> str:
    bw = _d(_d(bt.get("performance_metrics")).get("by_window"))
    panels = []
    instances = _l(bt.get("instances"))
    for w in windows:
        rets = [v for v in (_num(_d(_d(i).get("returns")).get(w)) for i in instances) if v is not None]
        m = _d(bw.get(w))
        b = _d(m.get("benchmark"))
        smean = _num(m.get("mean"))
        if smean is None and rets:
            smean = float(np.mean(rets))
        bmean = _num(b.get("mean"))
        pending = sum(1 for i in instances if _num(_d(_d(i).get("returns")).get(w)) is None)
        sub = (f"{len(rets):,} returns \u00b7 mean <span class='{_sign_cls(smean)}'>{_esc(_pct(smean))}</span>"
               f" \u00b7 median {_esc(_pct(m.get('median')))} \u00b7 hit rate {_esc(_pct(m.get('hit_rate'), False, 1))}")
        if pending:
            sub += f" \u00b7 {pending:,} not yet complete (past the data)"
        chart = (_histogram_svg(rets, w, smean, bmean) if rets
                 else '<p class="empty">No completed forward returns for this window.</p>')
        panels.append(f'<div class="panel"><h3>{_esc(_window_label(w))}</h3><p class="sub">{sub}</p>{chart}</div>')
    if not panels:
        return _section("distributions", "Distribution of forward returns", "",
                        '<p class="empty">No forward windows.</p>')
    legend = ('<div class="legend"><span><i class="sw neg"></i>losing bins</span><span><i class="sw pos"></i>winning bins'
              '</span><span><i class="sw strat"></i>strategy mean</span><span><i class="sw bench"></i>benchmark mean '
              '(dashed)</span><span><i class="sw zero"></i>zero</span></div>')
    lead = ("One bar per return bucket (hover for counts). Outliers beyond the 1st/99th percentile are folded "
            "into the edge bins when there are 60 or more returns.")
    return _section("distributions", "Distribution of forward returns", lead,
                    f'<div class="grid">{"".join(panels)}</div>{legend}')


def _equity_section(bt: dict) -> str:
    eq = _d(bt.get("equity"))
    if not eq:
        return _section("equity", "Equity curve", "", '<p class="empty">No equity curve: no sessions in the range.</p>')
    chart = _equity_svg(_l(eq.get("dates")), _l(eq.get("strategy")), _l(eq.get("benchmark")))
    if not chart:
        chart = '<p class="empty">The equity curve has fewer than two points.</p>'
    rows = []
    for label, key, fmt in (("Total return", "total_return", lambda x: _pct(x, digits=1)),
                            ("CAGR", "cagr", lambda x: _pct(x, digits=1)),
                            ("Sharpe (annualised)", "sharpe", lambda x: _fixed(x)),
                            ("Max drawdown", "max_drawdown", lambda x: _pct(x, digits=1)),
                            ("Exposure (days invested)", "exposure", lambda x: _pct(x, signed=False, digits=1))):
        s, b = eq.get(key), eq.get(f"benchmark_{key}")
        bench_text = _esc(fmt(b)) if key != "exposure" else _esc(_pct(1.0 if eq.get("dates") else None, False, 1))
        cls_s = _sign_cls(s) if key in ("total_return", "cagr") else ""
        cls_b = _sign_cls(b) if key in ("total_return", "cagr") else ""
        rows.append("<tr>" + _td(_esc(label)) + _td(_esc(fmt(s)), f"num {cls_s}") + _td(bench_text, f"num {cls_b}") + "</tr>")
    table = _table([("", ""), ('<span class="sw strat"></span>Strategy rule', "num"),
                    ('<span class="sw bench"></span>Benchmark', "num")], rows, "equity-stats")
    dates = _l(eq.get("dates"))
    span = f"{_esc(dates[0])} \u2192 {_esc(dates[-1])}, {len(dates):,} sessions" if dates else ""
    rule = (f'<p class="small"><strong>Rule:</strong> {_esc(eq.get("rule") or DASH)}'
            + (f" (hold {_esc(eq.get('hold'))} sessions)" if eq.get("hold") is not None else "") + "</p>")
    body = (f'{chart}<div class="two" style="margin-top:14px"><div>{table}</div><div>{rule}'
            f'<p class="small muted">{span}. Daily returns, no costs or slippage; Sharpe uses a zero risk-free rate; '
            "the benchmark is always invested.</p></div></div>")
    return _section("equity", "Equity curve", "Growth of 1 invested in the stated rule vs the benchmark "
                    "(hover the chart for daily values).", body)


def _price_section(bt: dict, market: MarketData | None, top: int, windows: list[str]) -> str:
    title = "Signals on the price chart"
    instances = [_d(i) for i in _l(bt.get("instances"))]
    if market is None:
        return _section("prices", title, "", '<p class="empty">No market data was given to the report, so price '
                        "charts are not shown.</p>")
    counts = Counter(str(i.get("ticker")) for i in instances if i.get("ticker") is not None)
    picks = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, top)]
    if not picks:
        return _section("prices", title, "", '<p class="empty">No signals to show.</p>')
    start, end = _date(bt.get("start")), _date(bt.get("end"))
    kw = _key_window(bt, windows)
    maxw = max((int(float(w)) for w in windows if _window_sort_key(w)[0] == 0), default=0)
    panels = []
    for sym, n in picks:
        a, b = market.range(sym)
        if b <= a:
            panels.append(f'<div class="panel"><h3>{_esc(sym)}</h3><p class="empty">Not in the dataset.</p></div>')
            continue
        days = np.asarray(market.columns["date"][a:b], dtype=np.int64)
        adj = np.asarray(market.columns["adj_close"][a:b], dtype=np.float64)
        close = np.asarray(market.columns["close"][a:b], dtype=np.float64)
        lo = 0 if start is None else int(np.searchsorted(days, (start - _EPOCH).days, "left"))
        hi = len(days) if end is None else int(np.searchsorted(days, (end - _EPOCH).days, "right"))
        hi = min(len(days), hi + maxw)  # show the forward windows of the last signals
        if hi - lo < 2:
            panels.append(f'<div class="panel"><h3>{_esc(sym)}</h3><p class="empty">No bars in the range.</p></div>')
            continue
        days, adj, close = days[lo:hi], adj[lo:hi], close[lo:hi]
        k = close[-1] / adj[-1] if adj[-1] and math.isfinite(adj[-1]) and math.isfinite(close[-1]) else 1.0
        px = adj * k
        pos = {int(d): j for j, d in enumerate(days.tolist())}
        marks = []
        for inst in instances:
            if str(inst.get("ticker")) != sym:
                continue
            dd = _date(inst.get("date"))
            j = pos.get((dd - _EPOCH).days) if dd else None
            if j is None or not math.isfinite(px[j]):
                continue
            rets = _d(inst.get("returns"))
            r = _num(rets.get(kw)) if kw else None
            cls = "na" if r is None else ("pos" if r > 0 else "neg")
            tip = [f"{inst.get('date')} {sym} \u00b7 close {_price(close[j])} (adjusted {_price(px[j])})"]
            if _num(inst.get("score")) is not None or inst.get("score") is not None:
                tip.append(f"score {_value_text(inst.get('score'))}")
            tip.append(" \u00b7 ".join(f"{_window_label(w, True)} {_pct(rets.get(w))}" for w in windows))
            vals = _d(inst.get("values"))
            if vals:
                tip.append(_clip(", ".join(f"{k2} {_value_text(v)}" for k2, v in list(vals.items())[:6]), 300))
            marks.append((int(days[j]), float(px[j]), cls, "\n".join(tip)))
        chart = _price_svg(sym, days, px, marks)
        wins = sum(1 for m in marks if m[2] == "pos")
        losses = sum(1 for m in marks if m[2] == "neg")
        sub = (f"{n:,} signal{'s' if n != 1 else ''} \u00b7 {wins} up / {losses} down after "
               f"{_esc(_window_label(kw) if kw else DASH)} \u00b7 last close {_esc(_price(close[-1]))} on "
               f"{_esc(_day_iso(int(days[-1])))}")
        panels.append(f'<div class="panel"><h3>{_esc(sym)}</h3><p class="sub">{sub}</p>'
                      f'{chart or "<p class=empty>No prices.</p>"}</div>')
    legend = (f'<div class="legend"><span><i class="sw pos"></i>signal, up after {_esc(_window_label(kw) if kw else "")}'
              f'</span><span><i class="sw neg"></i>signal, down</span><span><i class="sw na"></i>not yet known</span></div>')
    lead = (f"The {len(picks)} symbol{'s' if len(picks) != 1 else ''} with the most signals. Prices are the total-return "
            "adjusted close (splits and dividends), rescaled so the last point shown equals that day's actual close: "
            "a continuous series, adjusted as of the last date shown. Markers sit under the signal-day bar; hover them "
            "for the score, values and forward returns.")
    return _section("prices", title, lead, "".join(panels) + legend)


def _bias_section(bt: dict) -> str:
    bias = _d(bt.get("bias"))
    errors = _d(bt.get("errors"))
    parts = []
    # look-ahead
    probe = _d(bias.get("lookahead_probe"))
    parts.append("<h3>Look-ahead probe</h3>")
    if not probe or probe.get("skipped"):
        parts.append('<div class="alert info"><strong>Skipped.</strong>The look-ahead probe was not run.</div>')
    else:
        days = [_d(x) for x in _l(probe.get("days"))]
        mism = [_d(x) for x in _l(probe.get("mismatches"))]
        ident = probe.get("identical")
        if ident is True:
            parts.append(f'<div class="alert ok"><strong>Identical: yes.</strong>Signals and scores matched on all '
                         f"{len(days)} probed day{'s' if len(days) != 1 else ''} with the future removed.</div>")
        elif ident is False:
            parts.append(f'<div class="alert bad"><strong>Identical: NO.</strong>{len(mism)} mismatch'
                         f"{'es' if len(mism) != 1 else ''}: the strategy behaves differently when it cannot see "
                         "the future. Treat every number in this report as suspect.</div>")
        else:
            parts.append('<div class="alert info"><strong>Unknown.</strong>The probe did not report a result.</div>')
        if probe.get("method"):
            parts.append(f'<p class="small muted">Method: {_esc(probe["method"])}.</p>')
        if days:
            chips = ", ".join(f"{_esc(d.get('date'))} ({_esc(_count(d.get('symbols')))} symbols)" for d in days)
            parts.append(f'<p class="small"><strong>Days checked ({len(days)}):</strong> {chips}</p>')
        if mism:
            rows = []
            for m in mism[:MAX_TABLE_ROWS]:
                rows.append("<tr>" + _td(_esc(m.get("symbol"))) + _td(_esc(m.get("date")), "num")
                            + _td(f'<pre class="msg">{_esc(_value_text(m.get("full")))}</pre>')
                            + _td(f'<pre class="msg">{_esc(_value_text(m.get("truncated")))}</pre>') + "</tr>")
            parts.append(_table([("Symbol", ""), ("Date", "num"), ("Full data", ""), ("Data cut at the day", "")], rows))
    # survivorship
    surv = _d(bias.get("survivorship"))
    parts.append("<h3>Survivorship</h3>")
    if surv.get("warning"):
        parts.append(f'<div class="alert warn"><strong>Survivorship bias.</strong>{_esc(surv["warning"])}</div>')
    else:
        parts.append('<p class="empty">No survivorship note.</p>')
    early = [str(s) for s in _l(surv.get("symbols_ending_early"))]
    if early:
        parts.append(f'<p class="small"><strong>Symbols ending early ({len(early)}):</strong> '
                     f"{_esc(', '.join(early[:50]))}{ELLIPSIS if len(early) > 50 else ''}</p>")
    # data quality
    two = []
    for key, label, empty in (("missing_sessions", "Missing sessions", "No missing sessions."),
                              ("zero_volume_days", "Zero-volume days", "No zero-volume days.")):
        q = _d(bias.get(key))
        if not q:
            empty = "Not reported."
        cnt = _num(q.get("count"))
        ex = _l(q.get("examples"))
        head = f"<h3>{label}: {_esc(_count(cnt) if cnt is not None else DASH)}</h3>"
        note = (f'<p class="small muted">First {len(ex)} example{"s" if len(ex) != 1 else ""}:</p>'
                if ex and cnt and cnt > len(ex) else "")
        two.append(f"<div>{head}{note}{_examples_table(ex, empty)}</div>")
    parts.append(f'<div class="two">{"".join(two)}</div>')
    # skipped symbols
    skipped = _l(bias.get("skipped_symbols")) or _l(bt.get("skipped"))
    parts.append(f"<h3>Skipped symbols: {len(skipped)}</h3>")
    parts.append(_examples_table([s if isinstance(s, dict) else {"symbol": s} for s in skipped], "No symbols were skipped."))
    # strategy errors
    cnt = _num(errors.get("count"))
    ex = _l(errors.get("examples"))
    parts.append(f"<h3>Strategy errors: {_esc(_count(cnt) if cnt is not None else len(ex))}</h3>")
    if ex and cnt and cnt > len(ex):
        parts.append(f'<p class="small muted">First {len(ex)} examples:</p>')
    parts.append(_examples_table(ex, "The strategy raised no errors."))
    sb = _d(bt.get("sandbox"))
    if sb:
        parts.append(f'<p class="small muted">Sandbox: {_esc(_count(sb.get("worker_restarts")))} worker restart(s), '
                     f"{_esc(_fixed(sb.get('cpu_seconds'), 2))} CPU seconds.</p>")
    return _section("bias", "Bias report", "Checks that the numbers above are not flattered by look-ahead, "
                    "survivorship or bad data.", "".join(parts))


def _signals_section(bt: dict, windows: list[str]) -> str:
    instances = [_d(i) for i in _l(bt.get("instances"))]
    if not instances:
        return _section("signals", "Signals", "", '<p class="empty">The strategy produced no signals in this range.</p>')
    cols = _value_columns(instances)
    rows = []
    for inst in instances[:MAX_SIGNAL_ROWS]:
        rets = _d(inst.get("returns"))
        cells = [_td(_esc(inst.get("date")), "num"), _td(f"<strong>{_esc(inst.get('ticker'))}</strong>"),
                 _td(_value(inst.get("score")) if inst.get("score") is not None else DASH, "num")]
        cells += [_td(_esc(_pct(rets.get(w))), f"num {_sign_cls(rets.get(w))}") for w in windows]
        rows.append("<tr>" + "".join(cells) + _value_cells(inst.get("values"), cols) + "</tr>")
    head = ([("Date", "num"), ("Symbol", ""), ("Score", "num")] + [(_esc(_window_label(w, True)), "num") for w in windows]
            + [(_esc(c), "num") for c in cols] + [("Other values", "")])
    more = (f'<p class="small muted">Showing the first {MAX_SIGNAL_ROWS:,} of {len(instances):,} signals.</p>'
            if len(instances) > MAX_SIGNAL_ROWS else "")
    body = (f"<details><summary>Show all {min(len(instances), MAX_SIGNAL_ROWS):,} signal rows</summary>{more}"
            f"{_table(head, rows, 'signals')}</details>")
    return _section("signals", "Signals", f"{len(instances):,} signals with their forward returns and the values the "
                    "strategy reported.", body)


def _screen_section(sc: dict) -> str:
    results = [_d(r) for r in _l(sc.get("ranked_results"))]
    meta = []
    if sc.get("asof"):
        meta.append(f"as of <strong>{_esc(sc['asof'])}</strong>")
    st = _d(sc.get("strategy"))
    if st.get("name"):
        meta.append(f"strategy {_esc(st['name'])}")
    for k, label in (("evaluated", "evaluated"), ("universe_size", "in the universe"), ("listed", "listed")):
        if sc.get(k) is not None:
            meta.append(f"{_esc(_count(sc.get(k)))} {label}")
    ds = _d(sc.get("dataset"))
    if ds.get("name"):
        meta.append(f"dataset {_esc(ds['name'])}" + (f" <code>{_esc(ds.get('version'))}</code>" if ds.get("version") else ""))
    if sc.get("ranking"):
        meta.append(f"ranking: {_esc(sc['ranking'])}")
    badge = ' <span class="badge demo">DEMO DATA</span>' if _is_demo(sc) else ""
    parts = [f'<p class="small">{MIDDOT.join(meta)}{badge}</p>']
    if results:
        cols = _value_columns(results)
        rows = []
        for i, r in enumerate(results[:MAX_TABLE_ROWS], 1):
            rows.append("<tr>" + _td(str(i), "num") + _td(f"<strong>{_esc(r.get('symbol'))}</strong>")
                        + _td(_value(r.get("score")) if r.get("score") is not None else DASH, "num")
                        + _value_cells(r.get("values"), cols) + "</tr>")
        head = [("#", "num"), ("Symbol", ""), ("Score", "num")] + [(_esc(c), "num") for c in cols] + [("Other values", "")]
        parts.append(_table(head, rows, "screen"))
    else:
        parts.append('<p class="empty">No symbol passed the screen.</p>')
    errs = sc.get("errors")
    ex = _l(errs) if isinstance(errs, list) else _l(_d(errs).get("examples"))
    if ex:
        parts.append(f"<h3>Screen errors: {len(ex)}</h3>{_examples_table(ex, '')}")
    return _section("screen", "Screen", "Symbols ranked by the strategy on one day.", "".join(parts))


def _replay_section(rp: dict) -> str:
    alerts = [_d(a) for a in _l(rp.get("alerts"))]
    st = _d(rp.get("strategy"))
    meta = []
    if st.get("name"):
        meta.append(f"strategy {_esc(st['name'])}" + (f" v{_esc(st.get('version'))}" if st.get("version") is not None else ""))
    if rp.get("start") or rp.get("end"):
        meta.append(f"{_esc(rp.get('start') or DASH)} \u2192 {_esc(rp.get('end') or DASH)}")
    if rp.get("sessions") is not None:
        meta.append(f"{_esc(_count(rp.get('sessions')))} sessions")
    meta.append(f"{len(alerts):,} alert{'s' if len(alerts) != 1 else ''}")
    ds = _d(rp.get("dataset"))
    if ds.get("name"):
        meta.append(f"dataset {_esc(ds['name'])}")
    badge = ' <span class="badge demo">DEMO DATA</span>' if _is_demo(rp) else ""
    parts = [f'<p class="small">{MIDDOT.join(meta)}{badge}</p>']
    if alerts:
        rows = []
        for a in alerts[:MAX_TABLE_ROWS]:
            msg = a.get("message")
            msg = msg if isinstance(msg, str) else _value_text(msg)
            rows.append("<tr>" + _td(_esc(a.get("date")), "num") + _td(f"<strong>{_esc(a.get('symbol'))}</strong>")
                        + _td(_esc(_price(a.get("close"))), "num")
                        + _td(_value(a.get("score")) if a.get("score") is not None else DASH, "num")
                        + _td(f'<pre class="msg">{_esc(_clip(msg, MAX_MESSAGE_CHARS))}</pre>') + "</tr>")
        head = [("Date", "num"), ("Symbol", ""), ("Close", "num"), ("Score", "num"), ("Message", "")]
        more = (f'<p class="small muted">Showing the first {MAX_TABLE_ROWS} of {len(alerts):,} alerts.</p>'
                if len(alerts) > MAX_TABLE_ROWS else "")
        parts.append(more + _table(head, rows, "replay"))
    else:
        parts.append('<p class="empty">No alerts fired in this period.</p>')
    errs = rp.get("errors")
    ex = _l(errs) if isinstance(errs, list) else _l(_d(errs).get("examples"))
    if ex:
        parts.append(f"<h3>Replay errors: {len(ex)}</h3>{_examples_table(ex, '')}")
    return _section("replay", "Alert replay", "The alerts the strategy would have sent, day by day, with their text.",
                    "".join(parts))


# --------------------------------------------------------------------------- entry point


def render_report(backtest: dict, *, market: MarketData | None = None, screen: dict | None = None,
                  replay: dict | None = None, title: str | None = None, top_symbols: int = 3) -> str:
    """Render a backtest result (the JSON of ``stratagem backtest``) as ONE self-contained HTML page.

    ``market`` adds price charts of the ``top_symbols`` symbols with the most signals;
    ``screen`` (``stratagem screen`` JSON) and ``replay`` (alert replay JSON) add their own
    sections. Every string from data or strategies is escaped; missing or null fields are
    shown as a dash, so partial or empty results still render.
    """
    bt = _d(backtest)
    by_window = _d(_d(bt.get("performance_metrics")).get("by_window"))
    windows = [str(w) for w in _l(bt.get("windows"))] or list(by_window)
    windows = sorted(dict.fromkeys(windows), key=_window_sort_key)
    title = title or f"{_strategy_name(bt)} \u2014 backtest"
    demo = _is_demo(bt)

    sections = [
        ("metrics", "Metrics", _metrics_section(bt, windows)),
        ("distributions", "Distributions", _distributions_section(bt, windows)),
        ("equity", "Equity", _equity_section(bt)),
    ]
    if top_symbols > 0:
        sections.append(("prices", "Price charts", _price_section(bt, market, top_symbols, windows)))
    sections.append(("bias", "Bias report", _bias_section(bt)))
    sections.append(("signals", "Signals", _signals_section(bt, windows)))
    if screen is not None:
        sections.append(("screen", "Screen", _screen_section(_d(screen))))
    if replay is not None:
        sections.append(("replay", "Alert replay", _replay_section(_d(replay))))
    toc = '<nav class="toc">' + "".join(f'<a href="#{sid}">{_esc(label)}</a>' for sid, label, _ in sections) + "</nav>"
    ds = _d(bt.get("dataset"))
    footer = (f"<footer>Stratagem backtest report \u00b7 {_esc(_strategy_name(bt))} \u00b7 dataset "
              f"{_esc(ds.get('name', DASH))} {_esc(ds.get('version', ''))} \u00b7 past performance on point-in-time "
              "daily data; no costs, slippage or taxes. Self-contained file: no external resources.</footer>")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light">',
        f"<title>{_esc(title)}{' [DEMO DATA]' if demo else ''}</title>",
        f"<style>{_CSS}</style></head>\n<body><div class=\"wrap\">",
        _header(bt, title, demo, windows), toc,
        *(html_ for _sid, _label, html_ in sections),
        footer, "</div></body></html>\n",
    ])
