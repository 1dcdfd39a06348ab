"""infra/deploy_plan.py and infra/deploy.sh: one command per declared resource, with the declared
settings; ``--dry-run`` prints and calls nothing."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import declaration
from infra.deploy_plan import plan, script, stage
from infra.render_terraform import function_id, function_secrets, push_subscription

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy.sh"
DECL = declaration.load()
PROJ = DECL["project"]
STEPS = plan(DECL, "test-proj")
BASH = shutil.which("bash")


def of(kind: str) -> list:
    return [s for s in STEPS if s.kind == kind]


def test_one_topic_command_per_topic():
    assert sorted(s.name for s in of("topic")) == sorted(t["name"] for t in DECL["topics"])
    for s in of("topic"):
        assert s.argv[:5] == ["gcloud", "pubsub", "topics", "create", s.name]


@pytest.mark.parametrize("fn", DECL["functions"], ids=lambda f: f["name"])
def test_one_deploy_per_function_with_the_declared_settings(fn):
    [step] = [s for s in of("function") if s.name == fn["name"]]
    flags = step.flags()
    assert step.argv[:4] == ["gcloud", "functions", "deploy", function_id(fn["name"])]
    assert flags["gen2"] is True and flags["runtime"] == PROJ["runtime"]
    assert flags["entry-point"] == fn["entry_point"]
    assert flags["memory"] == fn["memory"]
    assert flags["timeout"] == f"{fn['timeout_s']}s"
    assert Path(flags["source"]).name == fn["name"]
    assert flags["trigger-http"] is True and "trigger-topic" not in flags
    public = fn["trigger"] == "http"
    assert ("allow-unauthenticated" in flags) is public and ("no-allow-unauthenticated" in flags) is not public
    want = [f"{s['env']}={s['name']}:latest" for s in function_secrets(DECL, fn)]
    if want:
        assert flags["set-secrets"].split(",") == want
    else:
        assert "set-secrets" not in flags


@pytest.mark.parametrize("fn", [f for f in DECL["functions"] if f["trigger"] != "http"], ids=lambda f: f["name"])
def test_topic_triggers_are_push_subscriptions_with_dead_letter_policy(fn):
    [sub] = [s for s in of("subscription") if s.meta.get("function") == fn["name"]]
    flags = sub.flags()
    assert sub.name == push_subscription(fn["name"])
    assert flags["topic"] == fn["trigger"]
    grants = [s for s in of("iam") if s.name == f"{sub.name} dead letters"]
    if fn["trigger"] == PROJ["dead_letter_topic"]:
        # the dead-letter function: no policy (it would loop back to itself), cleared on update
        assert "dead-letter-topic" not in flags and "max-delivery-attempts" not in flags and grants == []
        assert "--clear-dead-letter-policy" in sub.update
    else:
        assert flags["dead-letter-topic"] == PROJ["dead_letter_topic"]
        assert flags["max-delivery-attempts"] == str(PROJ["max_delivery_attempts"])
        assert len(grants) == 1 and "--clear-dead-letter-policy" not in sub.update
    assert flags["push-endpoint"] == "${URL_" + fn["name"].upper() + "}"
    assert sub.update and "--topic" not in " ".join(sub.update)  # an update keeps the subscription's topic
    lookups = [s for s in of("lookup") if s.var == "URL_" + fn["name"].upper()]
    assert len(lookups) == 1 and function_id(fn["name"]) in lookups[0].argv
    assert STEPS.index(lookups[0]) < STEPS.index(sub)


def test_publish_grants_are_the_declared_publishes():
    grants = {(s.meta["function"], s.meta["topic"]) for s in of("iam") if "topic" in s.meta}
    assert grants == {(f["name"], t) for f in DECL["functions"] for t in f["publishes"]}


def test_one_command_per_scheduler_job():
    jobs = {s.name: s.flags() for s in of("scheduler")}
    assert set(jobs) == {j["name"] for j in DECL["scheduler"]}
    for j in DECL["scheduler"]:
        assert jobs[j["name"]]["topic"] == j["topic"]
        assert jobs[j["name"]]["schedule"] == j["schedule"]
        assert jobs[j["name"]]["message-body"] == j["payload"]


def test_one_command_per_firestore_index():
    got = [(s.flags()["collection-group"], [a.split("=", 1)[1] for a in s.argv if a.startswith("--field-config=")])
           for s in of("index")]
    want = [(ix["collection"], [f"field-path={f},order={o.lower()}" for f, o in ix["fields"]])
            for ix in DECL["firestore_indexes"]]
    assert got == want


def test_one_command_per_firestore_ttl_field():
    got = [(s.flags()["collection-group"], s.argv[5], s.flags().get("enable-ttl")) for s in of("ttl")]
    assert got == [(t["collection_group"], t["field"], True) for t in DECL.get("firestore_ttl", [])]


def test_resources_come_before_their_users():
    order = {(s.kind, s.name): i for i, s in enumerate(STEPS)}
    first_function = min(i for (k, _), i in order.items() if k == "function")
    assert max(order[("topic", t["name"])] for t in DECL["topics"]) < first_function
    assert max(i for (k, _), i in order.items() if k == "secret") < first_function
    assert order[("redis", "stratagem-cache")] < first_function


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_dry_run_prints_every_command_and_calls_nothing(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    called = tmp_path / "called"
    (fake / "gcloud").write_text(f"#!/bin/sh\necho \"$@\" >> {called}\nexit 1\n")
    (fake / "gcloud").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run([BASH, str(DEPLOY), "--dry-run", "--project", "test-proj"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not called.exists(), "--dry-run must not call gcloud"
    assert not (tmp_path / "build").exists()
    lines = r.stdout.splitlines()
    stage_dir = ROOT / "build" / "functions"
    for s in plan(DECL, "test-proj", source_dir=stage_dir):
        assert s.shell() in lines, s.shell()
    deploys = [shlex.split(line) for line in lines if line.startswith("gcloud functions deploy ")]
    assert [d[3] for d in deploys] == [function_id(f["name"]) for f in DECL["functions"]]
    syntax = subprocess.run([BASH, "-n"], input=r.stdout, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_the_script_runs_every_command_in_order(tmp_path):
    """Through a stand-in gcloud that records its calls: the generated bash (helpers, lookups,
    upserts) runs end to end and issues every planned command once."""
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "calls"
    (fake / "gcloud").write_text(
        "#!/bin/sh\n"
        f"echo \"$*\" >> {log}\n"
        'case "$*" in *" describe "*" --format="*) echo value ;; *" describe "*) exit 1 ;; '
        '*"versions list"*) echo v1 ;; esac\n')
    (fake / "gcloud").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}",
               STRATAGEM_STAGE_DIR=str(tmp_path / "build" / "functions"))
    r = subprocess.run([BASH, str(DEPLOY), "--project", "test-proj"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    calls = log.read_text().splitlines()
    deployed = [c.split()[2] for c in calls if c.startswith("functions deploy ")]
    assert deployed == [function_id(f["name"]) for f in DECL["functions"]]
    created = [c.split()[3] for c in calls if c.startswith("pubsub subscriptions create ")]
    assert created == [f"{PROJ['dead_letter_topic']}-hold"] + \
        [push_subscription(f["name"]) for f in DECL["functions"] if f["trigger"] != "http"]
    assert any("--push-endpoint=value" in c for c in calls)  # the looked-up URL reached the subscription
    assert sum(c.startswith("scheduler jobs create pubsub ") for c in calls) == len(DECL["scheduler"])
    assert sum(c.startswith("firestore indexes composite create ") for c in calls) == len(DECL["firestore_indexes"])


def test_staged_sources_and_reproducible_zips(tmp_path):
    out = tmp_path / "stage"
    made = stage(DECL, out, make_zip=True)
    assert [p.name for p in made] == [f["name"] for f in DECL["functions"]] + [s["name"] for s in DECL.get("services", [])]
    for fn in DECL["functions"]:
        d = out / fn["name"]
        assert (d / "main.py").read_text() == (ROOT / "functions" / fn["name"] / "main.py").read_text()
        assert (d / "stratagem" / "service.py").is_file()
        assert not list(d.rglob("__pycache__"))
        reqs = (d / "requirements.txt").read_text().split()
        assert any(r.startswith("functions-framework") for r in reqs)
    digest = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in out.glob("*.zip")}
    stage(DECL, out, make_zip=True)
    assert digest == {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in out.glob("*.zip")}


def test_script_header_names_project_and_region():
    text = script(STEPS, "test-proj", PROJ["region"])
    assert text.startswith("#!/usr/bin/env bash") and f"region {PROJ['region']}" in text.splitlines()[1]
