"""Settings: the only place that reads ``os.environ``.

Explicit argument beats environment variable beats default. Built once per process with
:meth:`Settings.from_env` and passed down; nothing else in the package looks at the
environment, so tests construct ``Settings(...)`` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_HOME = "STRATAGEM_HOME"
ENV_DATASET = "STRATAGEM_DATASET"
ENV_SANDBOX_MEMORY_MB = "STRATAGEM_SANDBOX_MEMORY_MB"
ENV_SANDBOX_CPU_SECONDS = "STRATAGEM_SANDBOX_CPU_SECONDS"
ENV_SANDBOX_CALL_SECONDS = "STRATAGEM_SANDBOX_CALL_SECONDS"
ENV_SANDBOX_WORKERS = "STRATAGEM_SANDBOX_WORKERS"
ENV_REDIS_URL = "STRATAGEM_REDIS_URL"
ENV_FIRESTORE_TIMEOUT_S = "STRATAGEM_FIRESTORE_TIMEOUT_S"
ENV_PUBSUB_TIMEOUT_S = "STRATAGEM_PUBSUB_TIMEOUT_S"
ENV_USER = "STRATAGEM_USER"
ENV_GENERATOR = "STRATAGEM_GENERATOR"
ENV_BACKEND = "STRATAGEM_BACKEND"
ENV_PROJECT = "GOOGLE_CLOUD_PROJECT"
ENV_API_KEYS = "STRATAGEM_API_KEYS"
ENV_TELEGRAM_TOKEN = "STRATAGEM_TELEGRAM_TOKEN"
ENV_TELEGRAM_BASE_URL = "STRATAGEM_TELEGRAM_BASE_URL"
ENV_TELEGRAM_WEBHOOK_SECRET = "STRATAGEM_TELEGRAM_WEBHOOK_SECRET"
GEMINI_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "STRATAGEM_GEMINI_MODEL", "STRATAGEM_GEMINI_TEMPERATURE", "STRATAGEM_GEMINI_TIMEOUT_S",
              "STRATAGEM_GEMINI_BASE_URL")


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "stratagem"


@dataclass(frozen=True)
class SandboxLimits:
    """OS and runtime limits for one sandboxed strategy run.

    ``memory_mb`` is what the strategy may allocate on top of the warm worker's baseline;
    ``cpu_seconds`` is the CPU budget of one run (one worker process serves one run);
    ``call_seconds`` bounds one ``classify_symbol`` call in wall-clock time so one symbol
    cannot stall a whole screen.
    """

    memory_mb: int = 128
    cpu_seconds: float = 30.0
    call_seconds: float = 5.0
    max_output_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration, immutable once built."""

    home: Path = field(default_factory=_default_home)
    dataset: str = "sample"
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    workers: int = 2
    redis_url: str | None = None
    user_id: str = "local"
    generator: str = "offline"
    backend: str = "local"  # local (SQLite, in-process bus) | gcp (Firestore, Pub/Sub)
    gcp_project: str = "stratagem-local"
    # How long one Firestore operation (with its retries) or one Pub/Sub publish may take before
    # it counts as "unavailable" (a handler then re-raises so Pub/Sub redelivers; the API answers 503).
    firestore_timeout_s: float = 20.0
    pubsub_timeout_s: float = 30.0
    # API keys -> user ids for local/dev auth ("key1:alice,key2:bob"); secrets, never in repr().
    api_keys: dict = field(default_factory=dict, repr=False)
    telegram_token: str | None = field(default=None, repr=False)
    telegram_base_url: str | None = None
    # Telegram echoes it in X-Telegram-Bot-Api-Secret-Token on every webhook call; a secret.
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    # Gemini settings as given in the environment; the key is a secret, so never in repr().
    gemini: dict = field(default_factory=dict, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """Build settings from ``env`` (default ``os.environ``); keyword overrides win."""
        from .errors import BadInput

        env = dict(os.environ if env is None else env)
        s = cls()
        if env.get(ENV_HOME):
            s = replace(s, home=Path(env[ENV_HOME]).expanduser())
        if env.get(ENV_DATASET):
            s = replace(s, dataset=env[ENV_DATASET])
        limits = s.sandbox
        if env.get(ENV_SANDBOX_MEMORY_MB):
            limits = replace(limits, memory_mb=_positive(env, ENV_SANDBOX_MEMORY_MB, int))
        if env.get(ENV_SANDBOX_CPU_SECONDS):
            limits = replace(limits, cpu_seconds=_positive(env, ENV_SANDBOX_CPU_SECONDS, float))
        if env.get(ENV_SANDBOX_CALL_SECONDS):
            limits = replace(limits, call_seconds=_positive(env, ENV_SANDBOX_CALL_SECONDS, float))
        s = replace(s, sandbox=limits)
        if env.get(ENV_GENERATOR):
            if env[ENV_GENERATOR] not in ("offline", "gemini"):
                raise BadInput(f"{ENV_GENERATOR} must be 'offline' or 'gemini', got {env[ENV_GENERATOR]!r}")
            s = replace(s, generator=env[ENV_GENERATOR])
        gemini = {k: env[k] for k in GEMINI_ENV if env.get(k)}
        if gemini:
            s = replace(s, gemini=gemini)
        if env.get(ENV_BACKEND):
            if env[ENV_BACKEND] not in ("local", "gcp"):
                raise BadInput(f"{ENV_BACKEND} must be 'local' or 'gcp', got {env[ENV_BACKEND]!r}")
            s = replace(s, backend=env[ENV_BACKEND])
        if env.get(ENV_PROJECT):
            s = replace(s, gcp_project=env[ENV_PROJECT])
        if env.get(ENV_API_KEYS):
            pairs = [p.split(":", 1) for p in env[ENV_API_KEYS].split(",") if p.strip()]
            if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
                raise BadInput(f"{ENV_API_KEYS} must look like 'key1:user1,key2:user2'")
            s = replace(s, api_keys={k.strip(): u.strip() for k, u in pairs})
        if env.get(ENV_TELEGRAM_TOKEN):
            s = replace(s, telegram_token=env[ENV_TELEGRAM_TOKEN])
        if env.get(ENV_TELEGRAM_BASE_URL):
            s = replace(s, telegram_base_url=env[ENV_TELEGRAM_BASE_URL])
        if env.get(ENV_TELEGRAM_WEBHOOK_SECRET):
            s = replace(s, telegram_webhook_secret=env[ENV_TELEGRAM_WEBHOOK_SECRET])
        if env.get(ENV_USER):
            s = replace(s, user_id=env[ENV_USER])
        if env.get(ENV_REDIS_URL):
            s = replace(s, redis_url=env[ENV_REDIS_URL])
        if env.get(ENV_SANDBOX_WORKERS):
            s = replace(s, workers=_positive(env, ENV_SANDBOX_WORKERS, int))
        if env.get(ENV_FIRESTORE_TIMEOUT_S):
            s = replace(s, firestore_timeout_s=_positive(env, ENV_FIRESTORE_TIMEOUT_S, float))
        if env.get(ENV_PUBSUB_TIMEOUT_S):
            s = replace(s, pubsub_timeout_s=_positive(env, ENV_PUBSUB_TIMEOUT_S, float))
        return replace(s, **overrides) if overrides else s


def _positive(env: dict[str, str], name: str, kind: type) -> int | float:
    from .errors import BadInput

    raw = env[name]
    try:
        value = kind(raw)
    except ValueError:
        raise BadInput(f"{name} must be a positive {kind.__name__}, got {raw!r}") from None
    if value <= 0:
        raise BadInput(f"{name} must be a positive {kind.__name__}, got {raw!r}")
    return value
