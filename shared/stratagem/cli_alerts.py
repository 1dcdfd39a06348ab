"""``stratagem alerts log``, ``stratagem alerts track-record`` and ``stratagem telegram ...``.

The alert log and the track record of the configured user (``STRATAGEM_USER``, default
``local``), read through the same adapters as the service (SQLite under the Stratagem home,
or Firestore with ``STRATAGEM_BACKEND=gcp``), so what the CLI shows is what the API answers.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import BadInput
from .settings import Settings


def _emit(args: argparse.Namespace, doc: Any, human: str) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(doc, allow_nan=False, default=str) + "\n")
    else:
        sys.stdout.write(human.rstrip() + "\n")


def _alert_log(settings: Settings) -> Any:
    if settings.backend == "gcp":
        from .alertlog_firestore import FirestoreAlertLog

        return FirestoreAlertLog(project=settings.gcp_project)
    from .alertlog import SqliteAlertLog

    return SqliteAlertLog.in_home(settings.home)


def _ms(text: str | None, flag: str) -> int | None:
    from .engines.common import ms, parse_date

    day = parse_date(text, flag)
    return None if day is None else ms(day)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v * 100:+.2f}%"


def _rate(v: Any) -> str:
    return "-" if v is None else f"{v:.0%}"


def cmd_alerts_log(args: argparse.Namespace) -> int:
    """The user's alert log, newest bar first, with the delivery status per channel."""
    settings = Settings.from_env()
    sid = None
    if args.strategy is not None:
        if not args.strategy.isdigit():
            raise BadInput(f"--strategy must be a stored strategy id like 3, got {args.strategy!r}")
        sid = int(args.strategy)
    since, until = _ms(args.since, "--since"), _ms(args.until, "--until")
    if until is not None:
        until += 86_400_000 - 1  # --until is a date: include its whole day
    rows = _alert_log(settings).list(settings.user_id, sid, args.limit, since=since, until=until)
    for r in rows:
        r.pop("user_id", None)
    lines = [f"{len(rows)} alerts" + (f" of strategy {sid}" if sid else "")]
    for r in rows:
        delivery = ", ".join(f"{ch}={d.get('status')}" for ch, d in sorted(r.get("delivery", {}).items())) or "-"
        lines.append(f"[{r.get('date')}] {r.get('strategy_name', r['strategy_id'])} v{r.get('strategy_version')} "
                     f"{r['symbol']}  delivery: {delivery}")
    _emit(args, {"alerts": rows}, "\n".join(lines))
    return 0


def cmd_alerts_track_record(args: argparse.Namespace) -> int:
    """Live forward returns of a stored strategy's alerts next to its baseline backtest."""
    from .factory import build
    from .trackrecord import track_record_for

    ident, _, ver = args.strategy.partition("@")
    if not ident.isdigit() or (ver and not ver.isdigit()):
        raise BadInput(f"expected a stored strategy id like 3 or 3@2, got {args.strategy!r}")
    settings = Settings.from_env()
    svc = build(settings)
    try:
        doc = track_record_for(svc, settings.user_id, int(ident), version=int(ver) if ver else None,
                               backtest_job_id=args.backtest_job)
    finally:
        if svc._sandbox is not None:
            svc._sandbox.close()
    for a in doc["alerts"]:
        a.pop("user_id", None)
    s, bt = doc["strategy"], doc["backtest"] or {}
    lines = [f"track record of strategy {s['id']} ({s['name']}) version {s['version']}: {len(doc['alerts'])} alerts",
             f"baseline: {doc['baseline_rule']}",
             f"backtest: {bt.get('status')}" + (f", {bt.get('start')}..{bt.get('end')}, {bt.get('symbols')} symbols"
                                               if bt.get("start") else "") + (f" ({bt['reason']})" if bt.get("reason") else ""),
             "", (f"{'window':>6}  {'live n':>6} {'pending':>7} {'hit':>7} {'mean':>8}   {'bt n':>6} {'hit':>7} "
                  f"{'mean':>8}   {'t':>6}  drift")]
    for w, row in doc["comparison"].items():
        lv, b = row["live"], row["backtest"] or {}
        t = row.get("welch_t")
        drift = "-" if row["drift"] is None else ("YES" if row["drift"] else "no")
        lines.append(f"{w + 'd':>6}  {lv['count']:>6} {lv['pending']:>7} {_rate(lv['hit_rate']):>7} "
                     f"{_pct(lv['mean']):>8}   {b.get('count', '-'):>6} {_rate(b.get('hit_rate')):>7} "
                     f"{_pct(b.get('mean')):>8}   {'-' if t is None else format(t, '+.2f'):>6}  {drift}")
    _emit(args, doc, "\n".join(lines))
    return 0


def cmd_telegram(args: argparse.Namespace) -> int:
    """``link``: a one-time code to send the bot as /start CODE; ``set-webhook URL``: register it."""
    settings = Settings.from_env()
    if args.telegram_cmd == "link":
        from .telegram_webhook import build_webhook

        code = build_webhook(settings).directory.new_link_code(settings.user_id)
        doc = {"code": code, "send": f"/start {code}", "expires_in_s": 15 * 60}
        _emit(args, doc, f"send this to the bot within 15 minutes:  /start {code}")
        return 0
    from .telegram_webhook import register_webhook

    if not settings.telegram_token or not settings.telegram_webhook_secret:
        raise BadInput("set STRATAGEM_TELEGRAM_TOKEN and STRATAGEM_TELEGRAM_WEBHOOK_SECRET first")
    ok = register_webhook(settings.telegram_token, args.url, settings.telegram_webhook_secret,
                          base_url=settings.telegram_base_url)
    _emit(args, {"ok": ok, "url": args.url}, f"webhook {'set' if ok else 'NOT set'}: {args.url}")
    return 0 if ok else 3


def add_alert_parsers(asub: Any, common: Any) -> None:
    """``alerts log`` and ``alerts track-record`` under the ``alerts`` command."""
    lp = asub.add_parser("log", help="your alert log with delivery status per channel")
    lp.add_argument("--strategy", help="only this stored strategy id")
    lp.add_argument("--since", help="bars from this ISO date")
    lp.add_argument("--until", help="bars up to this ISO date")
    lp.add_argument("--limit", type=int, default=100, help="at most this many (1-1000, default 100)")
    common(lp)
    lp.set_defaults(func=cmd_alerts_log)
    tp = asub.add_parser("track-record", help="live forward returns of the alerts vs the backtest")
    tp.add_argument("strategy", metavar="ID[@VERSION]")
    tp.add_argument("--backtest-job", help="reuse this baseline backtest job id")
    common(tp)
    tp.set_defaults(func=cmd_alerts_track_record)


def add_telegram_parser(sub: Any, common: Any) -> None:
    sp = sub.add_parser("telegram", help="Telegram: link a chat, register the webhook")
    tsub = sp.add_subparsers(dest="telegram_cmd", required=True, metavar="SUBCOMMAND")
    lk = tsub.add_parser("link", help="a one-time code to send the bot as /start CODE")
    common(lk)
    wh = tsub.add_parser("set-webhook", help="tell Telegram to post updates to URL with the webhook secret")
    wh.add_argument("url")
    common(wh)
    sp.set_defaults(func=cmd_telegram)
