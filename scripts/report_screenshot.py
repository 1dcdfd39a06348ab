#!/usr/bin/env python
"""Open an HTML report in a real headless Chromium and save a full-page screenshot.

Usage::

    python scripts/report_screenshot.py IN.html OUT.png [--dom OUT.dom.html] [--expect TEXT ...]

Three runs of Debian's ``chromium``, each with a fresh profile directory:

1. ``--dump-dom``: the DOM after parsing, checked for the report's key headings (and the
   metrics table), so a document that does not parse fails loudly.
2. The page height is measured over the DevTools pipe (``--remote-debugging-pipe``,
   ``Page.getLayoutMetrics``) so the screenshot covers the whole page; if that fails the
   window falls back to 1280x4000.
3. ``--screenshot=OUT.png --window-size=1280,<height>``.

Exit status: 0 on success, 1 when Chromium ran but the output is wrong (missing PNG,
missing headings), 2 when Chromium is not available (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_EXPECT = ("Forward returns by window", 'id="metrics-table"', "Equity curve", "Bias report")
DEFAULT_HEIGHT = 4000
MAX_HEIGHT = 16000  # GPU texture limits make taller windows unreliable
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ChromiumMissing(RuntimeError):
    pass


def find_chromium(explicit: str | None = None) -> str:
    for cand in ((explicit,) if explicit else CANDIDATES):
        path = cand if os.path.isabs(cand) else shutil.which(cand)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ChromiumMissing(
        (f"chromium not found at {explicit}" if explicit else "chromium is not installed (looked for "
         + ", ".join(CANDIDATES) + ")") + "; install it with: apt-get install -y chromium")


def base_flags(profile: str) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}"]


def run_chromium(exe: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="stratagem-chromium-") as profile:
        return subprocess.run([exe, *base_flags(profile), *args], capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)


def dump_dom(exe: str, url: str, width: int, timeout: float) -> str:
    proc = run_chromium(exe, [f"--window-size={width},{DEFAULT_HEIGHT}", "--dump-dom", url], timeout)
    dom = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0 or not dom.strip():
        raise RuntimeError(f"chromium --dump-dom failed (exit {proc.returncode}): "
                           f"{proc.stderr.decode('utf-8', 'replace')[-2000:]}")
    return dom


def measure_height(exe: str, url: str, width: int, timeout: float) -> int:
    """Full content height in CSS pixels, over the DevTools pipe (fd 3 in, fd 4 out)."""
    cmd_r, cmd_w = os.pipe()  # we write commands; chromium reads fd 3
    out_r, out_w = os.pipe()  # chromium writes fd 4; we read
    # park the child's ends above 3/4 so the dup2 below can never clobber one with the other
    hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
    hi_w = fcntl.fcntl(out_w, fcntl.F_DUPFD_CLOEXEC, 10)

    def child() -> None:
        os.dup2(hi_r, 3)
        os.dup2(hi_w, 4)

    profile = tempfile.mkdtemp(prefix="stratagem-chromium-")
    proc = None
    try:
        proc = subprocess.Popen([exe, *base_flags(profile), "--remote-debugging-pipe",
                                 f"--window-size={width},800", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=child, pass_fds=(3, 4))  # noqa: PLW1509 - single-threaded script
        for fd in (cmd_r, out_w, hi_r, hi_w):
            os.close(fd)
        cmd_r = out_w = hi_r = hi_w = -1
        deadline = time.monotonic() + timeout
        buf = b""
        events: list[dict] = []
        next_id = 0

        def read_message() -> dict:
            nonlocal buf
            while b"\0" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out talking to chromium over the DevTools pipe")
                ready, _, _ = select.select([out_r], [], [], left)
                if ready:
                    chunk = os.read(out_r, 1 << 16)
                    if not chunk:
                        raise RuntimeError("chromium closed the DevTools pipe")
                    buf += chunk
            raw, buf = buf.split(b"\0", 1)
            return json.loads(raw)

        def call(method: str, params: dict | None = None, session: str | None = None) -> dict:
            nonlocal next_id
            next_id += 1
            msg: dict = {"id": next_id, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            os.write(cmd_w, json.dumps(msg).encode() + b"\0")
            while True:
                reply = read_message()
                if reply.get("id") == next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                events.append(reply)

        def wait_event(name: str, session: str) -> None:
            while True:
                for i, ev in enumerate(events):
                    if ev.get("method") == name and ev.get("sessionId") == session:
                        del events[: i + 1]
                        return
                events.clear()
                events.append(read_message())

        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        call("Page.enable", session=session)
        call("Page.navigate", {"url": url}, session)
        wait_event("Page.loadEventFired", session)
        metrics = call("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
        try:
            call("Browser.close")
        except (RuntimeError, OSError, TimeoutError):
            pass
        return int(float(size["height"]) + 0.999)
    finally:
        for fd in (cmd_r, cmd_w, out_r, out_w, hi_r, hi_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(exe: str, url: str, out: Path, width: int, height: int, timeout: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    proc = run_chromium(exe, [f"--screenshot={out}", f"--window-size={width},{height}", url], timeout)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium --screenshot failed (exit {proc.returncode}): "
                           f"{proc.stderr.decode('utf-8', 'replace')[-2000:]}")


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the report (HTML file)")
    ap.add_argument("png", type=Path, help="where to save the screenshot")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=0, help="window height (default: the measured page height)")
    ap.add_argument("--dom", type=Path, help="also save the dumped DOM here")
    ap.add_argument("--expect", action="append", help="text the DOM must contain (repeatable; "
                    "default: the report's key headings)")
    ap.add_argument("--chromium", help="path to the chromium binary")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per chromium run")
    args = ap.parse_args(argv)

    if not args.html.is_file():
        print(f"error: {args.html} does not exist", file=sys.stderr)
        return 1
    try:
        exe = find_chromium(args.chromium)
    except ChromiumMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = args.html.resolve().as_uri()
    try:
        dom = dump_dom(exe, url, args.width, args.timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.dom:
        args.dom.parent.mkdir(parents=True, exist_ok=True)
        args.dom.write_text(dom, encoding="utf-8")
    missing = [t for t in (args.expect or DEFAULT_EXPECT) if t not in dom]
    if missing:
        print(f"error: the rendered DOM lacks {missing!r} ({len(dom)} characters)", file=sys.stderr)
        return 1

    height = args.height
    if height <= 0:
        try:
            height = measure_height(exe, url, args.width, args.timeout)
        except (RuntimeError, OSError, TimeoutError, KeyError, ValueError) as exc:
            print(f"warning: could not measure the page ({exc}); using a {DEFAULT_HEIGHT}px window", file=sys.stderr)
            height = DEFAULT_HEIGHT
    if height > MAX_HEIGHT:
        print(f"warning: the page is {height}px tall; the screenshot stops at {MAX_HEIGHT}px", file=sys.stderr)
    height = max(200, min(height, MAX_HEIGHT))
    try:
        screenshot(exe, url, args.png, args.width, height, args.timeout)
        w, h = png_size(args.png)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"png": str(args.png), "width": w, "height": h, "bytes": args.png.stat().st_size,
                      "dom_chars": len(dom), "chromium": exe}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
