"""The ``stratagem`` command line (CONTRACT §1).

Every result-producing command accepts ``--json`` and then prints exactly one JSON document
on stdout; progress and logs go to stderr. Exit codes: 0 success, 1 the strategy failed or
was rejected, 2 bad usage or input, 3 infrastructure unavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import BadInput, StratagemError, StrategyRejected
from .settings import Settings


# -- helpers -----------------------------------------------------------------------------------
def _emit(args: argparse.Namespace, doc: Any, human: str) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(doc, allow_nan=False) + "\n")
    else:
        sys.stdout.write(human.rstrip() + "\n")


def _log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _store(settings: Settings):
    from .store import SqliteStore

    return SqliteStore.in_home(settings.home)


def _read_strategy(ref: str, settings: Settings | None = None) -> tuple[str, dict]:
    """Source and description of FILE_OR_ID: a file, a stored strategy id (optionally
    ``ID@VERSION``), or ``builtin:NAME``."""
    if ref.startswith("builtin:"):
        name = ref.split(":", 1)[1]
        try:
            src = resources.files("stratagem.resources.strategies").joinpath(f"{name}.py").read_text()
        except (FileNotFoundError, OSError):
            raise BadInput(f"no built-in strategy {name!r}; built-ins: {', '.join(_builtin_names())}") from None
        return src, {"name": name, "source": ref}
    p = Path(ref)
    if p.is_file():
        try:
            return p.read_text(encoding="utf-8"), {"name": p.stem, "source": str(p)}
        except UnicodeDecodeError:
            raise BadInput(f"{ref} is not a UTF-8 text file") from None
    ident, _, ver = ref.partition("@")
    if ident.isdigit() and (not ver or ver.isdigit()):
        settings = settings or Settings.from_env()
        rec = _store(settings).get(settings.user_id, int(ident), int(ver) if ver else None)
        return rec.code, {"name": rec.name, "id": rec.id, "version": rec.version, "source": f"store:{rec.id}@{rec.version}"}
    raise BadInput(f"no such strategy file or id: {ref} (expected a Python file defining classify_symbol(symbol), "
                   "a strategy id like 3 or 3@2, or builtin:NAME)")


def _record_run(settings: Settings, info: dict, mode: str, params: dict, summary: dict) -> None:
    """Stored strategies remember each run and the version it used."""
    if "id" not in info:
        return
    import uuid

    from .store import RunRecord

    _store(settings).record_run(RunRecord(run_id=uuid.uuid4().hex, strategy_id=info["id"], version=info["version"],
                                          user_id=settings.user_id, mode=mode, params=params,
                                          result_summary=summary))


def _builtin_names() -> list[str]:
    folder = resources.files("stratagem.resources.strategies")
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".py") and not p.name.startswith("_"))


def _context(args: argparse.Namespace):
    from .data.catalog import open_dataset
    from .sandbox.pool import Sandbox

    settings = Settings.from_env()
    market = open_dataset(settings, getattr(args, "data", None))
    sandbox = Sandbox(market.path, settings.sandbox, settings.workers)
    return settings, market, sandbox


def _cached(settings: Settings, mode: str, source: str, market: Any, symbols: list[str], params: dict, run: Any) -> dict:
    """Serve a result from the cache (memory, then Redis when STRATAGEM_REDIS_URL is set)."""
    from .cache import make_cache, result_key

    cache = make_cache(settings.redis_url)
    key = result_key(mode, source, market.version, symbols, params)
    hit = cache.get_json(key)
    if hit is not None:
        _log(f"{mode}: served from the result cache")
        return hit
    result = run()
    cache.set_json(key, result)
    return result


def _write_report(path: str, backtest: dict, market: Any, screen: dict | None = None, replay: dict | None = None) -> None:
    from .report import render_report

    Path(path).write_text(render_report(backtest, market=market, screen=screen, replay=replay), encoding="utf-8")
    _log(f"report written to {path}")


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x * 100:+.{digits}f}%"


# -- commands ----------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from .sandbox.policy import check

    source, _ = _read_strategy(args.file)
    findings = check(source)
    doc = {"valid": not findings, "errors": [{"line": f.line, "col": f.col, "message": f.message} for f in findings]}
    human = "valid" if not findings else "invalid:\n" + "\n".join(f"  {args.file}:{f.line}:{f.col}: {f.message}" for f in findings)
    _emit(args, doc, human)
    return 0 if not findings else 1


def cmd_backtest(args: argparse.Namespace) -> int:
    from .engines.backtest import run_backtest
    from .engines.common import parse_date, parse_windows
    from .universe import resolve

    settings, market, sandbox = _context(args)
    source, info = _read_strategy(args.strategy, settings)
    start, end = parse_date(args.start, "--start"), parse_date(args.end, "--end")
    symbols, label = resolve(settings, market, args.symbols, args.universe, start)
    windows = parse_windows(args.windows)
    if args.hold is not None and args.hold <= 0:
        raise BadInput(f"--hold must be a positive number of sessions, got {args.hold}")
    params = {"start": start, "end": end, "windows": windows, "entry": args.entry, "hold": args.hold,
              "probe": args.probe, "universe": label}
    result = _cached(settings, "backtest", source, market, symbols, params, lambda: run_backtest(
        sandbox, market, source, symbols, start=start, end=end, windows=windows, entry=args.entry, hold=args.hold,
        strategy_info=info, universe_label=label, probe=args.probe, progress=_Progress("backtest"),
        tenant=settings.user_id))
    if args.report:
        _write_report(args.report, result, market)
    _record_run(settings, info, "backtest", {k: v for k, v in params.items() if k != "universe"} | {"symbols": len(symbols)},
                {"signals": result["performance_metrics"]["signals"], "evaluated": result["performance_metrics"]["evaluated"]})
    _emit(args, result, _backtest_text(result))
    sandbox.close()
    return _status(result["performance_metrics"]["evaluated"], result["errors"]["count"])


def _status(evaluated: int, errors: int) -> int:
    """Exit 1 when the strategy failed on every evaluation (it is broken, not the data)."""
    return 1 if evaluated and errors >= evaluated else 0


def _backtest_text(r: dict) -> str:
    pm = r["performance_metrics"]
    lines = [f"Backtest {r['strategy'].get('name', '')} on {', '.join(r['symbols'])} "
             f"{r['start']}..{r['end']} (dataset {r['dataset']['name']} {r['dataset']['version']})",
             f"evaluated {pm['evaluated']} symbol-days, {pm['signals']} signals, {r['errors']['count']} errors",
             f"{'window':>6} {'count':>6} {'mean':>9} {'median':>9} {'hit':>7} {'t':>6} {'bench':>9} {'excess':>9}"]
    for w, m in pm["by_window"].items():
        t = "n/a" if m["t_stat"] is None else f"{m['t_stat']:.2f}"
        hit = "n/a" if m["hit_rate"] is None else f"{m['hit_rate'] * 100:.1f}%"
        lines.append(f"{w + 'd':>6} {m['count']:>6} {_pct(m['mean']):>9} {_pct(m['median']):>9} {hit:>7} {t:>6} "
                     f"{_pct(m['benchmark']['mean']):>9} {_pct(m['excess_mean']):>9}")
    for e in r["errors"]["examples"][:5]:
        lines.append(f"  error {e['symbol']} {e['date']}: {e['message']}")
    lines.extend(f"WARNING: {w}" for w in r.get("warnings", []))
    return "\n".join(lines)


def cmd_screen(args: argparse.Namespace) -> int:
    from .engines.common import parse_date
    from .engines.screen import run_screen
    from .universe import resolve

    settings, market, sandbox = _context(args)
    source, info = _read_strategy(args.strategy, settings)
    asof = parse_date(args.asof, "--asof")
    symbols, label = resolve(settings, market, args.symbols, args.universe, asof)
    params = {"asof": asof, "limit": args.limit, "universe": label}
    result = _cached(settings, "screen", source, market, symbols, params, lambda: run_screen(
        sandbox, market, source, symbols, asof=asof, limit=args.limit, strategy_info=info,
        tenant=settings.user_id))
    _record_run(settings, info, "screen", {"asof": asof, "limit": args.limit, "symbols": len(symbols)},
                {"results": len(result["ranked_results"]), "evaluated": result["evaluated"]})
    _emit(args, result, _screen_text(result))
    sandbox.close()
    return _status(result["evaluated"], len([e for e in result["errors"] if e.get("date")]))


def cmd_alerts(args: argparse.Namespace) -> int:
    from .engines.alerts import replay_alerts
    from .engines.common import parse_date
    from .universe import resolve

    settings, market, sandbox = _context(args)
    source, info = _read_strategy(args.strategy, settings)
    start, end = parse_date(args.start, "--start"), parse_date(args.end, "--end")
    if start > end:
        raise BadInput(f"--start ({args.start}) is after --end ({args.end})")
    symbols, _label = resolve(settings, market, args.symbols, args.universe, start)
    result = replay_alerts(sandbox, market, source, symbols, start, end, strategy_id=info.get("id", "local"),
                           name=info.get("name", "strategy"), version=info.get("version", 1),
                           progress=_Progress("replay"))
    _record_run(settings, info, "replay", {"start": start, "end": end, "symbols": len(symbols)},
                {"alerts": len(result["alerts"])})
    human = [f"{len(result['alerts'])} alerts over {result['sessions']} sessions ({result['start']}..{result['end']})"]
    for a in result["alerts"]:
        human.append(f"[{a['date']}] " + a["message"].replace("\n", " | "))
    _emit(args, result, "\n".join(human))
    sandbox.close()
    return 0


def cmd_market(args: argparse.Namespace) -> int:
    """``stratagem market replay``: publish history as live ``stratagem.bars.v1`` events."""
    from dataclasses import replace

    from . import factory, live
    from .data.catalog import open_dataset
    from .engines.common import parse_date
    from .service import TOPICS

    settings = Settings.from_env()
    if args.dataset:
        settings = replace(settings, dataset=args.dataset)
    market = open_dataset(settings)
    cal = market.calendar()
    end = parse_date(args.end, "--end") if args.end else int(cal[-1])
    start = parse_date(args.start, "--start") if args.start else int(cal[max(0, int(cal.searchsorted(end, "right")) - 5)])
    if start > end:
        raise BadInput(f"--start ({args.start}) is after --end ({args.end})")
    if args.symbols:
        symbols = sorted({s.strip().upper() for s in args.symbols.split(",") if s.strip()})
        unknown = [s for s in symbols if s not in market.ranges]
        if unknown or not symbols:
            raise BadInput(f"--symbols: unknown in dataset {market.name}: {', '.join(unknown) or '(none given)'}; "
                           f"known: {', '.join(market.symbols)}")
    else:
        symbols = market.symbols
    if args.speed is not None and args.speed < 0:
        raise BadInput(f"--speed must be >= 0 bars per second, got {args.speed}")
    topic = args.topic or TOPICS["bars"]
    fired: list[dict] = []
    if settings.backend == "gcp":
        from .bus import PubSubBus

        bus: Any = PubSubBus(settings.gcp_project)
        where = f"Pub/Sub topic {topic} (project {settings.gcp_project})"
    else:
        # The embedded topology: the bars are handled in this process, by the same handlers
        # the functions run. Live bars are kept in memory so a replay can be run again.
        svc = factory.build(settings)
        svc.live_bars = live.MemoryLiveBars()
        bus = svc.bus
        bus.subscribe(TOPICS["alerts"], lambda m, mid: fired.append(m["alert"]))
        where = f"the in-process bus, topic {topic}"
    _log(f"replaying {len(symbols)} symbol(s) {live._iso(start)}..{live._iso(end)} from {market.name} to {where}"
         + (f" at {args.speed:g} bar(s)/s per symbol" if args.speed else ""))
    out = live.replay_bars(market, symbols, start, end, lambda m: bus.publish(topic, m), speed=args.speed,
                           source=f"replay:{market.name}")
    doc = {"dataset": {"name": market.name, "version": market.version}, "topic": topic, "symbols": symbols,
           "start": live._iso(start), "end": live._iso(end), **out}
    if settings.backend != "gcp":
        doc["alerts"] = fired
        if svc._sandbox is not None:
            svc.sandbox.close()
    human = [f"published {out['bars']} bars in {out['messages']} message(s) over {out['sessions']} session(s) "
             f"in {out['seconds']:.1f} s"]
    if settings.backend != "gcp":
        human.append(f"{len(fired)} alert(s) fired")
        human += [f"[{a['date']}] " + a["message"].replace("\n", " | ") for a in fired]
    _emit(args, doc, "\n".join(human))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from .data.catalog import open_dataset
    from .generation import make_generator
    from .generation.pipeline import create
    from .sandbox.pool import Sandbox

    settings = Settings.from_env()
    if args.generator:
        from dataclasses import replace

        settings = replace(settings, generator=args.generator)
    market = open_dataset(settings, "sample")
    sandbox = Sandbox(market.path, settings.sandbox, settings.workers)
    try:
        made = create(args.prompt, make_generator(settings), sandbox, market, max_attempts=args.attempts)
    finally:
        sandbox.close()
    g = made.strategy
    store = _store(settings)
    params = {p.name: {"value": p.value, "meaning": p.meaning} for p in g.parameters}
    if args.update is not None:
        rec = store.save(settings.user_id, args.update, name=g.name, description=g.description, prompt=args.prompt,
                         code=g.code, parameters=params, explanation=g.explanation)
    else:
        rec = store.create(settings.user_id, name=g.name, description=g.description, prompt=args.prompt, code=g.code,
                           parameters=params, explanation=g.explanation)
    doc = {"id": rec.id, "version": rec.version, "name": rec.name, "description": rec.description, "code": rec.code,
           "parameters": params, "explanation": g.explanation, "back_translation": made.back_translation,
           "generator": g.generator or settings.generator, "attempts": made.attempts, "smoke_run": made.smoke}
    human = [f"strategy {rec.id} (version {rec.version}): {rec.name}", rec.description, "",
             "What will run (read from the code): " + (made.back_translation.get("summary") or g.explanation), ""]
    human += [f"  {k} = {v['value']!r}  ({v['meaning']})" for k, v in params.items()]
    human += ["", rec.code]
    _emit(args, doc, "\n".join(human))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    recs = _store(settings).list(settings.user_id)
    docs = [r.to_json() for r in recs]
    for d in docs:
        d.pop("code", None)
    human = "\n".join(f"{r.id:>4}  v{r.version:<3} {'[alert] ' if r.is_alert_active else ''}{r.name}: {r.description}"
                      for r in recs) or "no strategies yet: stratagem create \"stocks that gap up 3% on high volume\""
    _emit(args, {"strategies": docs}, human)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    ident, _, ver = args.id.partition("@")
    if not ident.isdigit() or (ver and not ver.isdigit()):
        raise BadInput(f"expected a strategy id like 3 or 3@2, got {args.id!r}")
    store = _store(settings)
    rec = store.get(settings.user_id, int(ident), int(ver) if ver else None)
    doc = rec.to_json()
    doc["versions"] = [v.to_json() for v in store.versions(settings.user_id, rec.id)]
    doc["runs"] = [r.to_json() for r in store.runs(settings.user_id, rec.id)]
    human = [f"strategy {rec.id} v{rec.version}: {rec.name}", rec.description, f"prompt: {rec.prompt}",
             f"versions: {', '.join(str(v['version']) for v in doc['versions'])}; runs: {len(doc['runs'])}", "", rec.code]
    _emit(args, doc, "\n".join(human))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from emulators.stack import serve
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        sys.path.insert(0, str(root))
        try:
            from emulators.stack import serve
        except ImportError:
            raise BadInput("stratagem serve needs the repository checkout (emulators/, functions/, infra/)") from None
    settings = Settings.from_env()
    return serve(settings.home, use_emulators=not args.no_emulators, seconds=args.seconds)


def cmd_universe(args: argparse.Namespace) -> int:
    from .universe import list_universes, load_universe, parse_symbols, save_universe

    settings = Settings.from_env()
    if args.universe_cmd == "save":
        text = Path(args.symbols).read_text() if Path(args.symbols).is_file() else args.symbols
        symbols = parse_symbols(text)
        path = save_universe(settings, args.name, symbols)
        _emit(args, {"name": args.name, "symbols": symbols, "path": str(path)},
              f"saved universe {args.name!r}: {len(symbols)} symbols")
        return 0
    if args.universe_cmd == "show":
        symbols = load_universe(settings, args.name)
        _emit(args, {"name": args.name, "symbols": symbols}, " ".join(symbols))
        return 0
    names = list_universes(settings)
    _emit(args, {"universes": ["demo", "all"] + names}, "\n".join(["demo (bundled)", "all (whole dataset)"] + names))
    return 0


def _screen_text(r: dict) -> str:
    lines = [f"Screen as of {r['asof']}: {len(r['ranked_results'])} of {r['evaluated']} symbols signal"]
    for i, row in enumerate(r["ranked_results"], 1):
        score = "n/a" if row["score"] is None else f"{row['score']:.4g}"
        vals = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(row["values"].items())[:5])
        lines.append(f"{i:>3}. {row['symbol']:<8} score {score:>10}  {vals}")
    for e in r["errors"][:5]:
        lines.append(f"  error {e.get('symbol')}: {e['message']}")
    lines.extend(f"WARNING: {w}" for w in r.get("warnings", []))
    return "\n".join(lines)


def cmd_data(args: argparse.Namespace) -> int:
    from .data.catalog import import_dataset, list_datasets, open_dataset

    settings = Settings.from_env()
    if args.data_cmd == "import":
        name = args.name or Path(args.path).stem.split(".")[0].lower().replace(" ", "-")
        market = import_dataset(settings, Path(args.path), name)
        info = market.info()
        _emit(args, info, f"imported dataset {market.name!r}: {len(info['symbols'])} symbols, {info['bars']} bars, "
                          f"{info['first_date']}..{info['last_date']}, version {info['version']}")
        return 0
    if args.data_cmd == "list":
        docs = []
        for name in list_datasets(settings):
            m = open_dataset(settings, name)
            i = m.info()
            docs.append({k: i[k] for k in ("name", "version", "first_date", "last_date", "bars", "demo", "source")}
                        | {"symbols": len(i["symbols"])})
        human = "\n".join(f"{d['name']:<16} {d['symbols']:>5} symbols {d['bars']:>9} bars {d['first_date']}..{d['last_date']} "
                          f"v{d['version']}{' (demo data)' if d['demo'] else ''}" for d in docs)
        _emit(args, {"datasets": docs}, human)
        return 0
    market = open_dataset(settings, args.name)
    info = market.info()
    human = [f"dataset {info['name']} version {info['version']} ({'demo data' if info['demo'] else 'real data'})",
             f"source: {info['source']}", info.get("description", "")]
    for s, v in info["symbols"].items():
        human.append(f"  {s:<8} {v['bars']:>6} bars {v['first']}..{v['last']}")
    splits = [a for a in info["actions"] if a["kind"] == "split"]
    human.append(f"corporate actions: {len(info['actions'])} ({len(splits)} splits: "
                 + ", ".join(f"{a['symbol']} {a['date']} {a['ratio']:g}:1" for a in splits) + ")")
    _emit(args, info, "\n".join(human))
    return 0


DEMO_STRATEGIES = ("gap_up_volume", "momentum_5d", "value_pe", "rsi_oversold", "golden_cross")


def cmd_demo(args: argparse.Namespace) -> int:
    from .data.catalog import open_dataset
    from .engines.alerts import replay_alerts
    from .engines.backtest import run_backtest
    from .engines.screen import run_screen
    from .sandbox.policy import check
    from .sandbox.pool import Sandbox

    settings = Settings.from_env()
    t0 = time.perf_counter()
    market = open_dataset(settings, "sample")
    info = market.info()
    _log(f"dataset: {info['name']} v{info['version']} - REAL daily prices ({info['description']})")
    sandbox = Sandbox(market.path, settings.sandbox, settings.workers)
    sandbox.start()
    _log(f"sandbox zygote warm in {sandbox.startup_seconds:.2f} s")
    out: dict[str, Any] = {"dataset": {k: info[k] for k in ("name", "version", "source", "demo")},
                           "strategies": []}
    text = [f"Stratagem demo on {info['name']} (real data: {', '.join(info['symbols'])}; "
            f"{info['first_date']}..{info['last_date']})", ""]
    symbols = market.symbols
    last = int(market.calendar()[-1])
    report_dir = settings.home / "demo"
    report_dir.mkdir(parents=True, exist_ok=True)
    best_report: tuple[int, dict, dict, dict] | None = None
    for name in DEMO_STRATEGIES:
        source, meta = _read_strategy(f"builtin:{name}")
        findings = check(source)
        doc: dict[str, Any] = {"name": name, "valid": not findings}
        if findings:
            doc["errors"] = [str(f) for f in findings]
            out["strategies"].append(doc)
            continue
        bt = run_backtest(sandbox, market, source, symbols, strategy_info=meta, universe_label="demo",
                          progress=_Progress(f"backtest {name}"))
        sc = run_screen(sandbox, market, source, symbols, limit=5, strategy_info=meta)
        rp = replay_alerts(sandbox, market, source, symbols, last - 91, last, name=name)
        doc["backtest"] = {k: bt[k] for k in ("start", "end", "performance_metrics", "errors", "demo_data")}
        doc["backtest"]["equity"] = {k: v for k, v in bt["equity"].items() if k not in ("dates", "strategy", "benchmark")}
        doc["backtest"]["lookahead_probe_identical"] = bt["bias"]["lookahead_probe"].get("identical")
        doc["backtest"]["instances"] = bt["instances"][-5:]
        doc["screen"] = sc
        doc["alerts_last_quarter"] = rp["alerts"]
        out["strategies"].append(doc)
        text.append(f"== {name}: {source.strip().splitlines()[0].strip(chr(34))}")
        text.append(_backtest_text(bt))
        eq = bt["equity"]
        if eq:
            text.append(f"equity (hold {eq['hold']}d): total {_pct(eq['total_return'])} vs benchmark "
                        f"{_pct(eq['benchmark_total_return'])}, max drawdown {_pct(eq['max_drawdown'])}, "
                        f"exposure {eq['exposure'] * 100:.0f}%; look-ahead probe: "
                        f"{'identical' if bt['bias']['lookahead_probe'].get('identical') else 'MISMATCH'}")
        text.append(_screen_text(sc))
        recent = rp["alerts"][-3:]
        text.append(f"alerts replayed over the last quarter: {len(rp['alerts'])}"
                    + "".join(f"\n  [{a['date']}] {a['message'].splitlines()[0]}" for a in recent))
        text.append("")
        if not bt["demo_data"] and (best_report is None or len(bt["instances"]) > best_report[0]):
            best_report = (len(bt["instances"]), bt, sc, rp)
    hostile = "import os\n\ndef classify_symbol(symbol):\n    return os.system('id') == 0\n"
    rejected = check(hostile)
    out["sandbox_check"] = {"source": hostile, "rejected": bool(rejected), "errors": [str(f) for f in rejected]}
    text.append("Sandbox check: a strategy that imports os is rejected -> " + (str(rejected[0]) if rejected else "NOT REJECTED"))
    if best_report is not None:
        try:
            path = report_dir / "report.html"
            _write_report(str(path), best_report[1], market, screen=best_report[2], replay=best_report[3])
            out["report"] = str(path)
            text.append(f"HTML report ({best_report[1]['strategy']['name']}): {path}")
        except ImportError:
            pass
    out["seconds"] = round(time.perf_counter() - t0, 2)
    text.append(f"done in {out['seconds']} s")
    (report_dir / "demo.json").write_text(json.dumps(out, indent=1, allow_nan=False))
    text.append(f"full results: {report_dir / 'demo.json'}")
    sandbox.close()
    _emit(args, out, "\n".join(text))
    return 0


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stratagem", description="Plain-English trading ideas as sandboxed strategies.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")

    sp = sub.add_parser("demo", help="run the main job on embedded defaults (no keys, no services)")
    common(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("create", help="plain English to a validated, stored strategy")
    sp.add_argument("prompt")
    sp.add_argument("--generator", choices=("offline", "gemini"), help="default: STRATAGEM_GENERATOR or offline")
    sp.add_argument("--attempts", type=int, default=3, help="generation attempts with repair feedback (default 3)")
    sp.add_argument("--update", type=int, metavar="ID", help="store as a new version of strategy ID")
    common(sp)
    sp.set_defaults(func=cmd_create)

    sp = sub.add_parser("list", help="your stored strategies")
    common(sp)
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("show", help="a stored strategy with its versions and runs (ID or ID@VERSION)")
    sp.add_argument("id")
    common(sp)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("validate", help="validate a strategy file")
    sp.add_argument("file")
    common(sp)
    sp.set_defaults(func=cmd_validate)

    for name, fn, helptext in (("backtest", cmd_backtest, "backtest a strategy"), ("screen", cmd_screen, "rank a universe")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("strategy", metavar="FILE_OR_ID")
        grp = sp.add_mutually_exclusive_group()
        grp.add_argument("--symbols", help="comma-separated tickers, e.g. AAPL,MSFT")
        grp.add_argument("--universe", help="demo/all (the whole dataset), a saved list, or scan:key=value,...")
        sp.add_argument("--data", help="dataset name (default: the bundled 'sample')")
        if name == "backtest":
            sp.add_argument("--start", help="first session, ISO date (default: 2 years before --end)")
            sp.add_argument("--end", help="last session, ISO date (default: the last in the data)")
            sp.add_argument("--windows", help="forward-return windows in trading days (default 1,5,10)")
            sp.add_argument("--entry", choices=("close", "next_open"), default="close",
                            help="enter at the signal day's close (default) or the next session's open")
            sp.add_argument("--hold", type=int, help="sessions each position is held in the equity curve (default 5)")
            sp.add_argument("--probe", type=int, default=3, help="days re-run on truncated data (look-ahead probe)")
            sp.add_argument("--report", metavar="OUT.html", help="write a self-contained HTML report")
        else:
            sp.add_argument("--asof", help="as-of date (default: the latest session)")
            sp.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")
        common(sp)
        sp.set_defaults(func=fn)

    sp = sub.add_parser("alerts", help="alerts: replay history as if live, the alert log, the live track record")
    asub = sp.add_subparsers(dest="alerts_cmd", required=True, metavar="SUBCOMMAND")
    rp = asub.add_parser("replay", help="run the alert path over history, day by day")
    rp.add_argument("strategy", metavar="FILE_OR_ID")
    grp = rp.add_mutually_exclusive_group()
    grp.add_argument("--symbols", help="comma-separated tickers")
    grp.add_argument("--universe", help="demo/all, a saved list, or scan:key=value,...")
    rp.add_argument("--data", help="dataset name (default: the bundled 'sample')")
    rp.add_argument("--start", required=True, help="first session, ISO date")
    rp.add_argument("--end", required=True, help="last session, ISO date")
    common(rp)
    rp.set_defaults(func=cmd_alerts)
    from .cli_alerts import add_alert_parsers, add_telegram_parser

    add_alert_parsers(asub, common)
    add_telegram_parser(sub, common)

    sp = sub.add_parser("market", help="market data events: replay history as live bars")
    msub = sp.add_subparsers(dest="market_cmd", required=True, metavar="SUBCOMMAND")
    mp = msub.add_parser("replay", help="publish bundled history as stratagem.bars.v1 events (one per session)")
    mp.add_argument("--dataset", help="dataset name (default: the bundled 'sample')")
    mp.add_argument("--symbols", help="comma-separated tickers (default: every symbol of the dataset)")
    mp.add_argument("--start", help="first session, ISO date (default: the last 5 sessions)")
    mp.add_argument("--end", help="last session, ISO date (default: the dataset's last)")
    mp.add_argument("--speed", type=float, default=None,
                    help="bars per second per symbol (1 = one session of bars each second); default: as fast as possible")
    mp.add_argument("--topic", help="topic to publish to (default: stratagem-bars)")
    common(mp)
    sp.set_defaults(func=cmd_market)

    sp = sub.add_parser("serve", help="the local stack: emulators, valkey, every function, push subscriptions")
    sp.add_argument("--no-emulators", action="store_true", help="embedded adapters only")
    sp.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("universe", help="saved symbol lists")
    usub = sp.add_subparsers(dest="universe_cmd", required=True, metavar="SUBCOMMAND")
    up = usub.add_parser("save", help="save a list: NAME A,B,C (or a file with one symbol per line)")
    up.add_argument("name")
    up.add_argument("symbols")
    common(up)
    up = usub.add_parser("show", help="print a saved list")
    up.add_argument("name")
    common(up)
    up = usub.add_parser("list", help="list universes")
    common(up)
    sp.set_defaults(func=cmd_universe)

    sp = sub.add_parser("data", help="market data: import, list, info")
    dsub = sp.add_subparsers(dest="data_cmd", required=True, metavar="SUBCOMMAND")
    ip = dsub.add_parser("import", help="import CSV/Parquet files (a file or a folder)")
    ip.add_argument("path")
    ip.add_argument("--name", help="dataset name (default: the file or folder name)")
    common(ip)
    lp = dsub.add_parser("list", help="list datasets")
    common(lp)
    nf = dsub.add_parser("info", help="describe a dataset")
    nf.add_argument("name", nargs="?", default="sample")
    common(nf)
    sp.set_defaults(func=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StratagemError as exc:
        if getattr(args, "json", False):
            sys.stdout.write(json.dumps(exc.to_json()) + "\n")
        _log(f"error: {exc.message}")
        if isinstance(exc, StrategyRejected) and exc.details:
            pass  # the message already lists every finding
        return exc.exit_code
    except KeyboardInterrupt:
        _log("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug of ours still yields one JSON document
        import traceback

        traceback.print_exc(file=sys.stderr)
        if getattr(args, "json", False):
            sys.stdout.write(json.dumps({"error": {"code": "internal_error",
                                                   "message": f"{type(exc).__name__}: {exc}"}}) + "\n")
        return 3


if __name__ == "__main__":
    sys.exit(main())
