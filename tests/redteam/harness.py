"""Red-team harness: run one hostile strategy and judge containment from outside.

Each attack in ``tests/redteam/attacks/<class>/`` is a strategy file with a header:

- ``# technique:`` what it tries, ``# expect:`` how it should be stopped;
- ``# run: screen|backtest|screen,backtest`` which CLI commands run it (default ``screen``);
- ``# state: true`` also run it before a benign strategy in one sandbox (state tampering);
- ``# assert: no_signals`` the attack only signals when it succeeded (look-ahead);
- ``# expand: N`` / ``# nest: N`` grow the source mechanically (huge or deeply nested programs).

Placeholders ``__CANARY__``, ``__SECRET_FILE__`` and ``__CANARY_PORT__`` become a path in an empty
folder, a file holding a random secret and a listening port; the process running the attack also
holds another secret in ``STRATAGEM_CANARY_SECRET``. Contained means: the canary does not exist,
neither secret appears in any output, nothing connected to the port, no process outlived the
command, and every output is the documented JSON.

Two paths prove it:

1. ``run_cli``: the real ``stratagem`` CLI in a subprocess (``validate``, ``screen``, ``backtest``).
2. ``run_unvalidated``: for attacks the validator refuses, the same source with the validator
   switched off, compiled by RestrictedPython and run against the runtime guards in a forked child
   *without* seccomp or the worker's rlimits on files - so what stops it there is the next layer
   alone, and a guard failure would show as a canary or a leaked secret.
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.sandbox.test_attacks import Listener, _pids_mentioning

ATTACKS = Path(__file__).resolve().parent / "attacks"
CLASSES = {
    "frames": "attribute and frame traversal",
    "format": "format-string access",
    "imports": "import and builtins tricks",
    "codeobj": "code-object construction",
    "numpy": "numpy escapes",
    "serialisation": "serialisation hooks on returned objects",
    "exceptions": "exceptions carrying objects out",
    "resources": "resource exhaustion",
    "state": "state tampering",
    "unicode": "unicode identifier tricks",
    "cve": "known RestrictedPython CVEs",
}


def all_attacks() -> list[Path]:
    """Every attack file, class by class."""
    return sorted(p for c in CLASSES for p in (ATTACKS / c).glob("*.py"))


def header(src: str, key: str, default: str = "") -> str:
    m = re.search(rf"^# {key}: *(.+)$", src, re.MULTILINE)
    return m.group(1).strip() if m else default


@dataclass
class Arena:
    """The outside world an attack is judged against (one per attack)."""

    root: Path
    canary_dir: Path = field(init=False)
    canary: Path = field(init=False)
    secret_file: Path = field(init=False)
    file_secret: str = field(init=False)
    env_secret: str = field(init=False)
    listener: Listener = field(init=False)

    def __post_init__(self) -> None:
        self.canary_dir = self.root / "canary"
        self.canary_dir.mkdir()
        self.canary = self.canary_dir / "pwned"
        self.file_secret = str(secrets.randbelow(10**17) + 10**17)
        self.env_secret = str(secrets.randbelow(10**17) + 10**17)
        self.secret_file = self.root / "secret.txt"
        self.secret_file.write_text(self.file_secret)
        self.listener = Listener()

    def source(self, path: Path) -> str:
        src = path.read_text()
        src = (src.replace("__CANARY__", str(self.canary)).replace("__SECRET_FILE__", str(self.secret_file))
               .replace("__CANARY_PORT__", str(self.listener.port)))
        n = header(src, "expand")
        if n:
            src += "\nY = [" + "1," * int(n) + "]\n"
        n = header(src, "nest")
        if n:
            src += "\nZ = " + "(" * int(n) + "1" + ")" * int(n) + "\n"
        return src

    def violations(self, *outputs: str, home: Path | None = None) -> list[str]:
        """Everything that shows the attack got out (empty list: contained)."""
        bad = []
        if self.canary.exists() or any(self.canary_dir.iterdir()):
            bad.append("canary written: a file was created outside the sandbox")
        for text in outputs:
            for name, secret in (("file", self.file_secret), ("environment", self.env_secret)):
                if secret in text:
                    bad.append(f"{name} secret leaked into the output")
        if self.listener.connections:
            bad.append("a connection reached the canary port")
        if home is not None and _pids_mentioning(str(home)):
            bad.append("a sandbox process outlived the command")
        return bad

    def close(self) -> None:
        self.listener.close()


# -- path 1: the real CLI ------------------------------------------------------------------------
def cli_env(arena: Arena, home: Path, dataset: Path) -> dict[str, str]:
    """Environment of a CLI run: a private home with the sample dataset linked in, a secret, short limits."""
    (home / "data").mkdir(parents=True, exist_ok=True)
    link = home / "data" / "sample"
    if not link.exists():
        os.symlink(dataset, link)
    return dict(os.environ, STRATAGEM_HOME=str(home), STRATAGEM_CANARY_SECRET=arena.env_secret,
                STRATAGEM_SANDBOX_CALL_SECONDS="2", STRATAGEM_SANDBOX_CPU_SECONDS="10")


CLI_ARGS = {
    "validate": ["validate", "{file}", "--json"],
    "screen": ["screen", "{file}", "--symbols", "AAPL,MSFT", "--json"],
    "backtest": ["backtest", "{file}", "--symbols", "AAPL,MSFT", "--start", "2012-12-17", "--end", "2012-12-31",
                 "--json"],
}


def run_cli(command: str, strategy: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    args = [a.format(file=strategy) for a in CLI_ARGS[command]]
    return subprocess.run([sys.executable, "-m", "stratagem.cli", *args], env=env, capture_output=True, text=True,
                          timeout=180, cwd=cwd, check=False)


def run_cli_inprocess(command: str, strategy: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The same CLI entry point (``stratagem.cli.main``) called in this interpreter.

    Argument parsing, settings from the environment, the engine, a fresh sandbox zygote started
    with a clean environment, and the JSON emitter are all the real ones; only the interpreter
    start-up (about 1 s per run on the CI machine) is saved. ``STRATAGEM_REDTEAM_FULL=1`` uses
    real subprocesses instead.
    """
    import contextlib
    import io

    from stratagem import cli

    args = [a.format(file=strategy) for a in CLI_ARGS[command]]
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(args)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def check_cli_document(command: str, proc: subprocess.CompletedProcess) -> tuple[dict, str]:
    """The CLI contract under attack: exit 0/1, exactly one JSON document; returns (doc, outcome)."""
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr[-2000:])
    out = proc.stdout
    assert out.strip(), f"no JSON on stdout; stderr: {proc.stderr[-2000:]}"
    doc = json.loads(out)  # exactly one document: json.loads rejects trailing data
    assert out.count("\n") == 1, "more than one line on stdout"
    if command == "validate":
        assert doc["valid"] == (proc.returncode == 0)
        for e in doc["errors"]:
            assert isinstance(e["line"], int) and e["line"] >= 1 and isinstance(e["col"], int) and e["message"]
        return doc, "rejected by validation" if not doc["valid"] else "valid"
    if "error" in doc:
        assert proc.returncode == 1 and doc["error"]["message"]
        return doc, "run refused: " + doc["error"].get("code", "error")
    errs = doc["errors"] if isinstance(doc["errors"], list) else doc["errors"].get("examples", [])
    assert proc.returncode == 0 or all(e["message"] for e in errs)
    assert "ranked_results" in doc or "instances" in doc
    if "ranked_results" in doc:
        assert all(r["symbol"] in ("AAPL", "MSFT") for r in doc["ranked_results"])
    return doc, "ran: per-call errors" if errs else "ran harmlessly"


def signals_of(doc: dict) -> int:
    return len(doc.get("ranked_results", [])) + len(doc.get("instances", []))


# -- path 2: validator off, RestrictedPython + guards alone ---------------------------------------
_TRUSTED_CALLS = {"classify_symbol": ("AAPL",), "run_screening": (["AAPL", "MSFT"], 5),
                  "run_batch_backtest": ("2012-12-01", "2012-12-31", ["AAPL"]), "run_realtime_scan": (["AAPL"],)}


def run_unvalidated(source: str, pit: Any, day: int, env_secret: str, *, seconds: int = 5,
                    memory_mb: int = 512, weaken_guards: bool = False) -> dict:
    """Run ``source`` with the AST validator switched off, in a forked child; return its report.

    The child has the env secret in its environment and can open files and sockets (no seccomp,
    no file-size limit): only RestrictedPython's compiler and our runtime guards stand between the
    strategy and the canary. ``weaken_guards`` hands the strategy the real builtins (a positive
    control proving the harness notices an escape). Returns ``{"stage": "compile"|"load"|"ran"|
    "killed", "detail": str, "results": {...}}``.
    """
    from stratagem.errors import StrategyRejected
    from stratagem.sandbox import guards, oslimits, policy
    from stratagem.sandbox.runtime import (
        LoadedStrategy,
        StrategyError,
        describe_exception,
        sanitize_result,
    )
    from stratagem.sandbox.worker import _jsonable

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        try:
            os.close(r)
            os.environ["STRATAGEM_CANARY_SECRET"] = env_secret
            os.setpgid(0, 0)
            base = oslimits.current_vm_data_bytes()
            resource.setrlimit(resource.RLIMIT_DATA, (base + (memory_mb << 20),) * 2)
            resource.setrlimit(resource.RLIMIT_CPU, (seconds + 2, seconds + 3))
            signal.alarm(seconds)
            policy.validate = lambda src: []  # the layer under test starts after the validator
            if weaken_guards:
                import builtins

                real = dict(vars(builtins))
                orig = guards.make_builtins
                guards.make_builtins = lambda modules: {**orig(modules), **real}
            report: dict[str, Any] = {"results": {}}
            try:
                strat = LoadedStrategy(source, pit.functions())
            except StrategyRejected as exc:
                report.update(stage="compile", detail=str(exc)[:2000])
            except StrategyError as exc:
                report.update(stage="load", detail=str(exc)[:2000])
            except BaseException as exc:  # noqa: BLE001 - the module body is hostile code
                report.update(stage="load", detail=describe_exception(exc))
            else:
                report["stage"] = "ran"
                pit.set_asof(day)
                for name, args in _TRUSTED_CALLS.items():
                    fn = strat.entry(name)
                    if fn is None:
                        continue
                    try:
                        value = fn(*args)
                        out = sanitize_result(value) if name == "classify_symbol" else _jsonable(value)
                        report["results"][name] = {"ok": json.loads(json.dumps(out, allow_nan=False, default=str))}
                    except BaseException as exc:  # noqa: BLE001
                        report["results"][name] = {"error": describe_exception(exc)}
            data = json.dumps(report, default=str).encode()
            os.write(w, data[: 1 << 20])
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + seconds + 10
    os.set_blocking(r, False)
    while True:
        try:
            chunk = os.read(r, 1 << 16)
        except BlockingIOError:
            chunk = None
        if chunk:
            chunks.append(chunk)
            continue
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            try:
                while chunk := os.read(r, 1 << 16):
                    chunks.append(chunk)
            except BlockingIOError:
                pass
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = -1
            break
        time.sleep(0.01)
    os.close(r)
    # Nothing the child started may survive it.
    try:
        os.killpg(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    if alive:
        os.killpg(pid, signal.SIGKILL)
    raw = b"".join(chunks)
    try:
        rep = json.loads(raw)
    except ValueError:
        rep = {"stage": "killed", "detail": f"child ended with status {status} (a limit)", "results": {}}
    rep["raw"] = raw.decode(errors="replace")
    rep["survivors"] = alive
    return rep


def unvalidated_outcome(rep: dict) -> str:
    """Which layer stopped the attack once the validator was out of the way."""
    stage = rep["stage"]
    if stage == "compile":
        return "RestrictedPython compiler"
    if stage == "killed":
        return "OS limit (child killed)"
    if stage == "load":
        return "runtime guard (module load failed)"
    errs = [v for v in rep["results"].values() if "error" in v]
    if errs and len(errs) == len(rep["results"]):
        return "runtime guard (every call failed)"
    return "ran harmlessly"
