"""The live track record of a stored strategy: its logged alerts, their forward returns, and
the backtest they are compared with (the effects around :mod:`stratagem.engines.track`).

**The baseline a trader can trust.** Live alerts are compared with a backtest of the *same
strategy version* over the *same universe* (the strategy's alert universe, else the
dataset's symbols), computed by the same engine with the same return rule and windows, over
the two years of sessions that end the day before the first alert of that version. So the
backtest is exactly what the trader could have seen before switching the alert on, and the
two samples never overlap: live numbers are out of sample, and a difference is drift, not
the same days counted twice. A stored summary of some earlier run is not used: it may be of
another version, universe, entry rule or period.

The baseline is an ordinary backtest job (sharded like any other) whose id is derived from what
it computes, so asking again reuses it (a failed one is run again); its id is returned, and
passing it back (``backtestJobId``) names it explicitly.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from . import messages
from .engines import track
from .engines.backtest import prepare_backtest
from .engines.common import iso
from .errors import BadInput, StratagemError
from .jobs import Job

MAX_ALERTS = 1000


def market_closes(market: Any, live_bars: Any = None) -> track.CloseLookup:
    """A :data:`~stratagem.engines.track.CloseLookup` over a dataset's total-return adjusted
    closes, extended by the live bars that arrived beyond it (``stratagem.live``), so returns
    become known as the market moves on. A live bar's adjusted close is its raw close times the
    symbol's last dataset factor ``adj_close / close``: no corporate action is known after the
    dataset, and the feed's own adjusted prices may be on another basis."""

    def lookup(symbol: str) -> tuple[list[int], list[float]]:
        a, b = market.range(symbol)
        if b <= a:
            return [], []
        days = np.asarray(market.columns["date"][a:b]).astype(np.int64).tolist()
        adj = np.asarray(market.columns["adj_close"][a:b], dtype=np.float64).tolist()
        if live_bars is not None:
            from .live import overlay_for

            factor = adj[-1] / float(market.columns["close"][b - 1])
            for bar in overlay_for(live_bars, market, [symbol]).get(symbol, []):
                if bar.day > days[-1]:
                    days.append(int(bar.day))
                    adj.append(float(bar.close) * factor)
        return days, adj

    return lookup


def submit_baseline(svc: Any, user_id: str, strategy_id: int, version: int, symbols: list[str], start: int, end: int,
                    windows: list[int]) -> Job:
    """A backtest job pinned to ``version`` (``service.submit_backtest`` runs the latest); an
    existing job for the same inputs is returned instead of a new one."""
    import hashlib

    from .errors import NotFound
    from .service import TOPICS, _shards

    rec = svc.store.get(user_id, strategy_id, version)
    spec = prepare_backtest(svc.market, symbols, start=start, end=end, windows=windows)
    # One baseline per (user, strategy version, period, universe, windows, data): asking again
    # (a client polling the track record) reuses the job instead of running the backtest again.
    ident = json.dumps([user_id, rec.id, rec.version, spec.start, spec.end, spec.symbols, spec.windows,
                        getattr(svc.market, "version", None)], default=str)
    job_id = "baseline-" + hashlib.sha256(ident.encode()).hexdigest()[:32]
    try:
        existing = svc.jobs.get(user_id, job_id)
        if existing.status != "failed":
            return existing
    except NotFound:
        pass
    parts = _shards(spec.symbols)
    params = {"strategy_id": rec.id, "version": rec.version, "symbols": spec.symbols, "start": spec.start,
              "end": spec.end, "windows": spec.windows, "entry": spec.entry, "purpose": "track_record_baseline"}
    job = svc.jobs.create(Job(job_id, user_id, "backtest", shards=len(parts), params=params))
    for k, syms in enumerate(parts):
        svc.bus.publish(TOPICS["backtest"], messages.make(
            "stratagem.backtest_shard.v1", job_id=job.id, shard=k, shards=len(parts), user_id=user_id,
            strategy_id=rec.id, version=rec.version, symbols=syms, start=spec.start, end=spec.end,
            params={"windows": spec.windows, "entry": spec.entry}))
    return job


def _baseline_doc(job: Job) -> tuple[dict, dict | None]:
    p = job.params
    doc: dict = {"jobId": job.id, "status": job.status, "version": p.get("version"),
                 "start": iso(p["start"]) if isinstance(p.get("start"), int) else None,
                 "end": iso(p["end"]) if isinstance(p.get("end"), int) else None,
                 "symbols": len(p.get("symbols") or [])}
    if job.status == "failed":
        doc["error"] = job.error
    if job.status != "done":
        return doc, None
    pm = (job.result or {}).get("performance_metrics") or {}
    doc["signals"] = pm.get("signals")
    return doc, pm.get("by_window")


def track_record_for(svc: Any, user_id: str, strategy_id: int, *, version: int | None = None,
                     backtest_job_id: str | None = None, windows: list[int] | None = None,
                     run_baseline: bool = True) -> dict:
    """The track record of ``user_id``'s strategy (NotFound for another user's).

    ``version``: the version whose alerts are measured (default: the latest version that has
    alerts, else the latest). ``backtest_job_id``: reuse this baseline backtest job (the
    user's own, of this strategy). Otherwise, with ``run_baseline``, the baseline job is
    submitted (see the module docstring) and reported with its status."""
    windows = windows or list(track.DEFAULT_WINDOWS)
    rec = svc.store.get(user_id, strategy_id)
    logged = svc.alert_log.list(user_id, strategy_id, limit=MAX_ALERTS) if svc.alert_log is not None else []
    versions = sorted({int(a["strategy_version"]) for a in logged if a.get("strategy_version") is not None})
    if version is None:
        version = versions[-1] if versions else rec.version
    elif version > rec.version:
        raise BadInput(f"strategy {strategy_id} has versions 1..{rec.version}, not {version}")
    alerts = [a for a in logged if a.get("strategy_version") == version]
    doc = track.track_record(alerts, market_closes(svc.market, getattr(svc, "live_bars", None)), None, windows)
    backtest: dict | None = None
    by_window = None
    if backtest_job_id is not None:
        job = svc.jobs.get(user_id, backtest_job_id)  # NotFound for another user's job
        if job.kind != "backtest" or job.params.get("strategy_id") != strategy_id:
            raise BadInput(f"job {backtest_job_id} is not a backtest of strategy {strategy_id}")
        backtest, by_window = _baseline_doc(job)
        if job.params.get("version") != version:
            backtest["warning"] = (f"this backtest ran version {job.params.get('version')}, the alerts are of "
                                   f"version {version}")
    elif run_baseline:
        period = track.baseline_period(alerts)
        if period is None:
            backtest = {"status": "none", "reason": f"version {version} has no alerts yet"}
        else:
            symbols = list(rec.alert_universe or svc.market.symbols)
            try:
                job = submit_baseline(svc, user_id, strategy_id, version, symbols, period[0], period[1], windows)
                backtest, by_window = _baseline_doc(svc.jobs.get(user_id, job.id))
            except StratagemError as exc:
                if not isinstance(exc, BadInput):
                    raise
                backtest = {"status": "unavailable", "reason": exc.message}
    from .engines.metrics import nan_to_none

    doc["comparison"] = nan_to_none(track.compare(doc["live"], by_window, windows))
    return {"strategy": {"id": rec.id, "name": rec.name, "version": version, "latest_version": rec.version},
            "baseline_rule": ("backtest of the same version over the same universe, the two years before the "
                              "first alert; same return rule adj_close[t+w]/adj_close[t]-1 and windows"),
            "backtest": backtest, **doc}
