"""Run Google's official Firestore and Pub/Sub emulators on 127.0.0.1 (tests and the local stack).

Finding them: the Cloud SDK's ``platform/`` directory under ``/usr/lib/google-cloud-sdk``
(the Debian/Ubuntu ``google-cloud-cli`` packages) or under the SDK root ``gcloud`` reports
(``gcloud info --format='value(installation.sdk_root)'``, e.g. on a ``gcloud components``
install). Both emulators are Java programs started by a shell script, so each runs in its
own process group and :meth:`Emulator.stop` ends the whole group (the script and its JVM).

Example::

    >>> with FirestoreEmulator() as fs:                        # doctest: +SKIP
    ...     client = fs.client("demo-project")                # FIRESTORE_EMULATOR_HOST=fs.host
    ...     fs.reset("demo-project")                          # drop every document
    >>> with PubSubEmulator(port=free_port()) as ps:           # doctest: +SKIP
    ...     print(ps.host)                                    # PUBSUB_EMULATOR_HOST
    127.0.0.1:40123

Nothing starts at import; a missing SDK component or Java raises :class:`EmulatorMissing`
saying what to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Self

from .errors import InfraUnavailable

DEFAULT_SDK_ROOTS = (Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk"),
                     Path("/opt/google-cloud-sdk"), Path("~/google-cloud-sdk"))
FIRESTORE_RELATIVE = Path("platform/cloud-firestore-emulator/cloud_firestore_emulator")
PUBSUB_RELATIVE = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")

INSTALL_HINT = ("install the Google Cloud SDK components: `gcloud components install "
                "cloud-firestore-emulator pubsub-emulator` (or the Debian/Ubuntu packages "
                "google-cloud-cli-firestore-emulator and google-cloud-cli-pubsub-emulator) and Java 17+")


FAST_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
"""Client-compiler only and the serial collector: on a 2-CPU machine this roughly halves the
time to start and answer the first call (~8 s to ~4 s), and short test runs go no slower."""


class EmulatorMissing(InfraUnavailable):
    """The emulator (or the Java it runs on) is not installed here."""


# --- finding the binaries ---------------------------------------------------------------
@lru_cache(maxsize=1)
def gcloud_sdk_root() -> Path | None:
    """The SDK root ``gcloud`` reports, or None (no gcloud, or it failed)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        out = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True,
                             text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    root = out.stdout.strip()
    return Path(root) if out.returncode == 0 and root else None


def _find(relative: Path) -> Path | None:
    for root in DEFAULT_SDK_ROOTS:
        with contextlib.suppress(RuntimeError):  # "~" when no home directory can be determined
            root = root.expanduser()
        if (root / relative).is_file():
            return root / relative
    sdk = gcloud_sdk_root()
    if sdk is not None and (sdk / relative).is_file():
        return sdk / relative
    return None


def find_firestore_emulator() -> Path | None:
    """The ``cloud_firestore_emulator`` script of an installed Cloud SDK, or None."""
    return _find(FIRESTORE_RELATIVE)


def find_pubsub_emulator() -> Path | None:
    """The ``cloud-pubsub-emulator`` script of an installed Cloud SDK, or None."""
    return _find(PUBSUB_RELATIVE)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


# --- the process runner -------------------------------------------------------------------
class Emulator:
    """One emulator process on ``127.0.0.1:port``, started in its own process group.

    ``start()`` returns once the emulator answers HTTP ``GET /`` (both answer ``Ok``);
    ``stop()`` sends SIGTERM to the group, then SIGKILL, and waits until the port is free,
    so the same port can be started again at once. Usable as a context manager; ``start``
    after ``stop`` restarts on the same port (the emulators keep no data across a restart).
    """

    kind = "emulator"
    env_var = "EMULATOR_HOST"  # the variable client libraries read, e.g. FIRESTORE_EMULATOR_HOST

    def __init__(self, binary: str | os.PathLike[str] | None = None, port: int | None = None, *,
                 startup_timeout_s: float = 60.0, jvm_options: Sequence[str] = FAST_JVM_OPTIONS) -> None:
        self.port = port or free_port()
        self.bind = "127.0.0.1"
        self.startup_timeout_s = startup_timeout_s
        self.jvm_options = tuple(jvm_options)
        self._binary = Path(binary) if binary is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    # -- what subclasses say --
    def _default_binary(self) -> Path | None:  # pragma: no cover - subclasses
        raise NotImplementedError

    def command(self, binary: Path) -> list[str]:  # pragma: no cover - subclasses
        raise NotImplementedError

    def reset(self) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    # -- common --
    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the value of ``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST``."""
        return f"{self.bind}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def binary(self) -> Path:
        binary = self._binary or self._default_binary()
        if binary is None or not Path(binary).is_file():
            raise EmulatorMissing(f"{self.kind} emulator not found (looked under "
                                  f"{', '.join(str(r) for r in DEFAULT_SDK_ROOTS)} and gcloud's SDK root): "
                                  f"{INSTALL_HINT}")
        if shutil.which("java") is None:
            raise EmulatorMissing(f"{self.kind} emulator found at {binary} but no `java` on PATH: "
                                  "install Java 17+ (e.g. apt-get install openjdk-17-jre-headless)")
        return Path(binary)

    def start(self) -> Self:
        if self.running:
            return self
        cmd = self.command(self.binary())
        if _port_open(self.bind, self.port):
            raise InfraUnavailable(f"cannot start the {self.kind} emulator: port {self.port} is already in use")
        fd, name = tempfile.mkstemp(prefix=f"stratagem-{self.kind.lower().replace('/', '')}-emulator-",
                                    suffix=".log")
        self.log_path = Path(name)
        env = dict(os.environ)
        if self.jvm_options:  # both scripts run plain `java`, which reads JAVA_TOOL_OPTIONS
            env["JAVA_TOOL_OPTIONS"] = " ".join(filter(None, (env.get("JAVA_TOOL_OPTIONS"), *self.jvm_options)))
        with os.fdopen(fd, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(keep_log=True)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise InfraUnavailable(f"the {self.kind} emulator exited with code {self._proc.returncode} while "
                                       f"starting; its log ({self.log_path}) ends:\n{self.log_tail()}")
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise InfraUnavailable(f"the {self.kind} emulator did not answer on {self.url} within "
                                       f"{self.startup_timeout_s:.0f} s; its log ({self.log_path}) ends:\n"
                                       f"{self.log_tail()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1.0) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, *, keep_log: bool = False, timeout_s: float = 10.0) -> None:
        """End the emulator's whole process group (the script and its JVM): SIGTERM, wait up to
        ``timeout_s`` for the script to exit and the port to close, then SIGKILL the group so
        no JVM outlives it (the emulators keep everything in memory: nothing is lost)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            pgid = proc.pid  # start_new_session made the script a group leader
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and (proc.poll() is None or _port_open(self.bind, self.port)):
                time.sleep(0.05)
            _signal_group(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
            deadline = time.monotonic() + 5.0
            while _port_open(self.bind, self.port) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.log_path is not None and not keep_log:
            with contextlib.suppress(OSError):
                self.log_path.unlink()
            self.log_path = None

    def _request(self, method: str, path: str) -> None:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise InfraUnavailable(f"{method} {self.url}{path} failed: {exc}") from exc

    @contextlib.contextmanager
    def environ(self) -> Iterator[None]:
        """Set this emulator's ``*_EMULATOR_HOST`` variable for the duration (clients read it
        when they are built, so a client built inside keeps talking to this emulator)."""
        name = self.env_var
        old = os.environ.get(name)
        os.environ[name] = self.host
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}(port={self.port}, {state})"


class FirestoreEmulator(Emulator):
    """``cloud_firestore_emulator start --host=127.0.0.1 --port=P`` (in-memory, Native mode)."""

    kind = "Firestore"
    env_var = "FIRESTORE_EMULATOR_HOST"

    def __init__(self, port: int | None = None, *, binary: str | os.PathLike[str] | None = None,
                 project: str = "stratagem-local", startup_timeout_s: float = 60.0,
                 jvm_options: Sequence[str] = FAST_JVM_OPTIONS) -> None:
        super().__init__(binary, port, startup_timeout_s=startup_timeout_s, jvm_options=jvm_options)
        self.project = project

    def _default_binary(self) -> Path | None:
        return find_firestore_emulator()

    def command(self, binary: Path) -> list[str]:
        return [str(binary), "start", f"--host={self.bind}", f"--port={self.port}"]

    def reset(self, project: str | None = None) -> None:
        """Delete every document of ``project`` (default: this emulator's project)."""
        self._request("DELETE", f"/emulator/v1/projects/{project or self.project}/databases/(default)/documents")

    def client(self, project: str | None = None) -> Any:
        """A ``google.cloud.firestore.Client`` bound to this emulator (no credentials needed)."""
        from google.cloud import firestore

        with self.environ():
            return firestore.Client(project=project or self.project)


class PubSubEmulator(Emulator):
    """``cloud-pubsub-emulator --host=127.0.0.1 --port=P`` (in-memory)."""

    kind = "Pub/Sub"
    env_var = "PUBSUB_EMULATOR_HOST"

    def __init__(self, port: int | None = None, *, binary: str | os.PathLike[str] | None = None,
                 startup_timeout_s: float = 60.0, jvm_options: Sequence[str] = FAST_JVM_OPTIONS) -> None:
        super().__init__(binary, port, startup_timeout_s=startup_timeout_s, jvm_options=jvm_options)

    def _default_binary(self) -> Path | None:
        return find_pubsub_emulator()

    def command(self, binary: Path) -> list[str]:
        return [str(binary), f"--host={self.bind}", f"--port={self.port}"]

    def reset(self) -> None:
        """Drop every topic and subscription."""
        self._request("POST", "/reset")
