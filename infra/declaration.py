"""Load and check ``infra/stack.toml``: the one declaration everything else reads."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT = HERE / "stack.toml"


def load(path: Path = DEFAULT) -> dict[str, Any]:
    with open(path, "rb") as fh:
        decl = tomllib.load(fh)
    check(decl)
    return decl


def dead_letter_topic_of(decl: dict[str, Any], fn: dict[str, Any]) -> str | None:
    """Where ``fn``'s push subscription dead-letters: the project's dead-letter topic, except for
    the function that consumes that topic (a message it cannot handle must not loop back to it;
    Pub/Sub keeps retrying it instead, and the hold subscription keeps a copy)."""
    dl = decl.get("project", {}).get("dead_letter_topic")
    return None if fn.get("trigger") == dl else dl


def check(decl: dict[str, Any]) -> None:
    """Internal consistency: every trigger, publish, service subscription and scheduler target is a declared topic."""
    topics = {t["name"] for t in decl.get("topics", [])}
    problems = []
    for f in decl.get("functions", []):
        missing = [k for k in ("name", "entry_point", "trigger") if k not in f]
        if missing:
            problems.append(f"function {f.get('name', '?')} lacks {', '.join(missing)}")
            continue
        if f["trigger"] != "http" and f["trigger"] not in topics:
            problems.append(f"function {f['name']} is triggered by undeclared topic {f['trigger']}")
        for t in f.get("publishes", []):
            if t not in topics:
                problems.append(f"function {f['name']} publishes to undeclared topic {t}")
    for svc in decl.get("services", []):
        missing = [k for k in ("name", "subscribes") if k not in svc]
        if missing:
            problems.append(f"service {svc.get('name', '?')} lacks {', '.join(missing)}")
        elif svc["subscribes"] not in topics:
            problems.append(f"service {svc['name']} subscribes to undeclared topic {svc['subscribes']}")
    for j in decl.get("scheduler", []):
        if j["topic"] not in topics:
            problems.append(f"scheduler job {j['name']} targets undeclared topic {j['topic']}")
    dl = decl.get("project", {}).get("dead_letter_topic")
    if dl and dl not in topics:
        problems.append(f"dead-letter topic {dl} is not declared")
    if problems:
        raise ValueError("infra/stack.toml is inconsistent:\n  " + "\n  ".join(problems))
