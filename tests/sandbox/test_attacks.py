"""Containment proven from outside, through the real CLI, for every attack sample.

For each hostile strategy (the team's samples and our own corpus in ``tests/attacks``) the
placeholders become a canary path in an empty folder, a file holding a random secret and a
listening TCP port; the CLI runs with another secret in its environment. Contained means:
the canary does not exist, neither secret appears in stdout/stderr, nothing connected to the
port, no sandbox process outlived the command, and stdout is exactly one JSON document.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

OURS = Path(__file__).resolve().parents[1] / "attacks"
SAMPLES = sorted((EXAMPLES / "attacks").glob("*.py")) if (EXAMPLES / "attacks").exists() else []
CORPUS = SAMPLES + sorted(OURS.glob("*.py"))


class Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        self.t.join(1)
        self.sock.close()


def _pids_mentioning(marker: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "cmdline").read_bytes():
                    out.append(int(p.name))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_attack_is_contained(path: Path, tmp_path: Path, settings, market) -> None:
    canary_dir = tmp_path / "canary"
    canary_dir.mkdir()
    canary = canary_dir / "pwned"
    file_secret = str(secrets.randbelow(10**17) + 10**17)
    env_secret = str(secrets.randbelow(10**17) + 10**17)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(file_secret)
    listener = Listener()
    src = (path.read_text().replace("__CANARY__", str(canary)).replace("__SECRET_FILE__", str(secret_file))
           .replace("__CANARY_PORT__", str(listener.port)))
    strategy = tmp_path / "strategy.py"
    strategy.write_text(src)
    home = tmp_path / "home"
    env = dict(os.environ, STRATAGEM_HOME=str(home), STRATAGEM_CANARY_SECRET=env_secret,
               STRATAGEM_SANDBOX_CALL_SECONDS="2", STRATAGEM_SANDBOX_CPU_SECONDS="10")
    # Reuse the already-converted sample dataset (a symlink keeps the run fast).
    (home / "data").mkdir(parents=True)
    os.symlink(settings.data_dir / "sample", home / "data" / "sample")
    try:
        runs = [
            ["screen", str(strategy), "--symbols", "AAPL,MSFT", "--json"],
            ["backtest", str(strategy), "--symbols", "AAPL,MSFT", "--start", "2012-12-17", "--end", "2012-12-31", "--json"],
        ]
        for args in runs:
            proc = subprocess.run([sys.executable, "-m", "stratagem.cli", *args], env=env, capture_output=True,
                                  text=True, timeout=120, cwd=tmp_path)
            out, err = proc.stdout, proc.stderr
            assert proc.returncode in (0, 1), (proc.returncode, err[-2000:])
            assert out.strip(), f"no JSON on stdout; stderr: {err[-3000:]}"
            doc = json.loads(out)  # exactly one JSON document (json.loads rejects trailing data)
            assert out.count("\n") == 1
            assert not canary.exists() and not list(canary_dir.iterdir()), "canary written: sandbox escaped"
            for secret in (file_secret, env_secret):
                assert secret not in out and secret not in err, "secret leaked"
            assert listener.connections == 0, "a connection reached the canary port"
            assert not _pids_mentioning(str(home)), "a sandbox process outlived the command"
            if "error" in doc:
                assert proc.returncode == 1 and doc["error"]["message"]
            else:
                # exit 1 with a result document means every evaluation failed, each with a reason
                errs = doc["errors"] if isinstance(doc["errors"], list) else doc["errors"]["examples"]
                assert proc.returncode == 0 or all(e["message"] for e in errs)
                assert "ranked_results" in doc or "instances" in doc
                if "ranked_results" in doc:
                    assert all(r["symbol"] in ("AAPL", "MSFT") for r in doc["ranked_results"])
    finally:
        listener.close()
