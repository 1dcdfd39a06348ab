"""infra/stack.toml against the code (topics, schemas, functions, entry points, what each
function publishes) and against the committed Terraform."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from infra import declaration
from infra.render_terraform import (function_id, function_secrets, label, payload_schema, push_subscription,
                                    render, secrets)
from stratagem import messages, service

from . import codescan

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
MAIN_TF = ROOT / "infra" / "terraform" / "main.tf"
DECL = declaration.load()
DEAD_LETTER = DECL["project"]["dead_letter_topic"]
FUNCTION_NAMES = [f["name"] for f in DECL["functions"]]
KIND = {"http": "http"}  # trigger -> decorator kind; any topic trigger -> cloud_event


def expected_kind(trigger: str) -> str:
    return KIND.get(trigger, "cloud_event")


# -- the contract as a list of problems (so a broken copy of the declaration can be shown failing) --
def function_problems(decl: dict, functions_dir: Path = FUNCTIONS,
                      scan: codescan.PublishScan | None = None) -> list[str]:
    scan = scan or codescan.PublishScan()
    topics = {t["name"] for t in decl.get("topics", [])}
    problems = []
    for fn in decl.get("functions", []):
        name = fn.get("name", "?")
        trigger = fn.get("trigger")
        if not trigger:
            problems.append(f"function {name}: no trigger declared (http or a topic)")
        elif trigger != "http" and trigger not in topics:
            problems.append(f"function {name}: triggered by undeclared topic {trigger}")
        main = functions_dir / name / "main.py"
        if not main.is_file():
            problems.append(f"function {name}: {main.relative_to(functions_dir.parent)} does not exist")
            continue
        defs = codescan.entry_points(main)
        entry = fn.get("entry_point")
        if entry not in defs:
            problems.append(f"function {name}: main.py defines no entry point {entry!r} (has {sorted(defs)})")
            continue
        kinds = defs[entry]
        if trigger and kinds != [expected_kind(trigger)]:
            problems.append(f"function {name}: entry point {entry} is decorated {kinds or 'with nothing'}, "
                            f"a {trigger!r} trigger needs @functions_framework.{expected_kind(trigger)}")
        code = {service.TOPICS[k] for k in scan.keys(main)}
        declared = set(fn.get("publishes", []))
        if code - declared:
            problems.append(f"function {name}: publishes to {sorted(code - declared)} without declaring it")
        if declared - code:
            problems.append(f"function {name}: declares publishing to {sorted(declared - code)}, "
                            "which its code never does (IAM would grant it for nothing)")
    return problems


def test_code_topics_are_the_declared_topics():
    declared = {t["name"] for t in DECL["topics"]}
    code = set(service.TOPICS.values())
    assert code - declared == set(), "service.TOPICS names topics that infra/stack.toml does not declare"
    assert declared - code == set(), "infra/stack.toml declares topics the code never uses"
    # exactly one function consumes the dead letters (service.handle_dead_letter)
    assert [f["name"] for f in DECL["functions"] if f["trigger"] == DEAD_LETTER] == ["dead_letter"]


def test_declared_schemas_exist():
    for t in DECL["topics"]:
        if t["name"] == DEAD_LETTER:
            assert "schema" not in t, "the dead-letter topic carries every schema"
            continue
        assert t.get("schema") in messages.SCHEMAS, f"topic {t['name']}: unknown schema {t.get('schema')!r}"


def test_every_function_directory_is_declared():
    on_disk = {p.parent.name for p in FUNCTIONS.glob("*/main.py")}
    services = {s["name"] for s in DECL.get("services", [])}  # Cloud Run services live there too
    assert on_disk == set(FUNCTION_NAMES) | services
    assert not services & set(FUNCTION_NAMES)


def test_declared_functions_match_the_code():
    assert function_problems(DECL) == []


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_entry_point_and_decorator(name):
    fn = next(f for f in DECL["functions"] if f["name"] == name)
    defs = codescan.entry_points(FUNCTIONS / name / "main.py")
    assert defs.get(fn["entry_point"]) == [expected_kind(fn["trigger"])]


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_published_topics_are_declared(name):
    fn = next(f for f in DECL["functions"] if f["name"] == name)
    code = {service.TOPICS[k] for k in codescan.PublishScan().keys(FUNCTIONS / name / "main.py")}
    assert code == set(fn["publishes"])


def test_topic_functions_run_the_handler_the_local_bus_wires_to_their_topic():
    """The deployed topology (trigger -> function -> handler) equals the embedded one
    (``factory.wire_in_process``: topic -> handler)."""
    wired = {service.TOPICS[k]: h for k, h in codescan.local_wiring().items()}
    for fn in DECL["functions"]:
        if fn["trigger"] == "http":
            continue
        used = codescan.handlers(FUNCTIONS / fn["name"] / "main.py")
        assert used == {wired[fn["trigger"]]}, f"function {fn['name']} on {fn['trigger']}"
    triggered = {f["trigger"] for f in DECL["functions"]}
    assert set(wired) <= triggered, "a topic handled locally has no function in the cloud"


def test_the_publish_scan_follows_helpers_and_direct_uses(tmp_path):
    scan = codescan.PublishScan()
    main = tmp_path / "main.py"
    main.write_text("def f(e):\n    from stratagem.service import handle_validate\n    handle_validate(None, e)\n")
    assert scan.keys(main) == {"generate"}  # through _retry_or_fail
    main.write_text("from stratagem import service\ndef f(e):\n    bus.publish(service.TOPICS['bars'], e)\n")
    assert scan.keys(main) == {"bars"}


def _broken_copy(tmp_path: Path, old: str, new: str) -> dict:
    text = declaration.DEFAULT.read_text()
    assert old in text
    path = tmp_path / "stack.toml"
    path.write_text(text.replace(old, new, 1))
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def test_a_function_without_a_trigger_fails_the_contract(tmp_path):
    broken = _broken_copy(tmp_path, 'trigger = "stratagem-generate"\n', "")
    assert any(p.startswith("function generate: no trigger") for p in function_problems(broken))
    with pytest.raises(ValueError, match="function generate has no trigger"):
        render(broken)


def test_a_wrong_trigger_kind_or_undeclared_publish_fails_the_contract(tmp_path):
    broken = _broken_copy(tmp_path, 'trigger = "stratagem-validate"', 'trigger = "http"')
    assert any("function validate: entry point validate is decorated ['cloud_event']" in p
               for p in function_problems(broken))
    broken = _broken_copy(tmp_path, 'publishes = ["stratagem-validate", "stratagem-generate"]',
                          'publishes = ["stratagem-validate"]')
    assert function_problems(broken) == [
        "function generate: publishes to ['stratagem-generate'] without declaring it"]


def test_scheduler_payloads_are_valid_messages_for_their_topic():
    schemas = {t["name"]: t.get("schema") for t in DECL["topics"]}
    for job in DECL["scheduler"]:
        msg = messages.validate(json.loads(job["payload"]))
        assert msg["schema"] == schemas[job["topic"]], job["name"]


# -- push delivery: the dead-letter design's assumption ------------------------------------------
def test_a_pubsub_push_body_reaches_a_cloud_event_entry_point(monkeypatch):
    """Topic-triggered functions are fed by plain push subscriptions (not Eventarc): the
    Functions Framework must turn the raw push body into the CloudEvent ``run_handler`` reads,
    acknowledge (2xx) handled and malformed messages, and answer 5xx on a transient error so
    Pub/Sub retries and finally dead-letters."""
    ff = pytest.importorskip("functions_framework")
    from stratagem import factory
    from stratagem.errors import InfraUnavailable

    seen = []

    def handler(svc, msg, event_id):
        seen.append((msg, event_id))
        if msg["alert"].get("fail"):
            raise InfraUnavailable("telegram is down")

    monkeypatch.setattr(service, "handle_notify", handler)
    monkeypatch.setattr(factory, "_services", object())
    client = ff.create_app(target="notify", source=str(FUNCTIONS / "notify" / "main.py"),
                           signature_type="cloudevent").test_client()

    def push(msg: dict | bytes, mid: str) -> int:
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        body = {"message": {"data": base64.b64encode(data).decode(), "messageId": mid,
                            "publishTime": "2024-01-02T03:04:05Z", "attributes": {"schema": "stratagem.alert.v1"}},
                "subscription": "projects/p/subscriptions/stratagem-notify-push"}
        return client.post("/", json=body).status_code

    ok = messages.make("stratagem.alert.v1", alert={"symbol": "AAPL"}, user_id="alice")
    assert push(ok, "m-1") == 200
    assert seen == [(ok, "notify/m-1@2024-01-02T03:04:05Z")]  # duplicate key: function/messageId@publishTime
    assert push(b"not json", "m-2") == 200 and len(seen) == 1  # malformed: acknowledged, never retried
    failing = messages.make("stratagem.alert.v1", alert={"fail": True}, user_id="alice")
    assert push(failing, "m-3") >= 500  # transient: nack -> retry -> dead letter


# -- Terraform -----------------------------------------------------------------------------------
def test_committed_terraform_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "infra" / "render_terraform.py"), "--check"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr + "\nrun: python infra/render_terraform.py"


def test_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "main.tf"
    stale.write_text(MAIN_TF.read_text().replace("512Mi", "256Mi"))
    r = subprocess.run([sys.executable, str(ROOT / "infra" / "render_terraform.py"), "--check", "--output", str(stale)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "stale" in r.stderr


def test_terraform_is_formatted():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    r = subprocess.run([terraform, "fmt", "-check", "-diff", "-no-color", str(MAIN_TF)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _unq(v):
    """python-hcl2 keeps the quotes of string literals (v7+) and wraps expressions in ${...}."""
    if isinstance(v, str):
        if len(v) >= 2 and v[0] == v[-1] == '"':
            return v[1:-1]
        if v.startswith("${") and v.endswith("}"):
            return v[2:-1]
    return v


def _block(v):
    return v[0] if isinstance(v, list) else v


@pytest.fixture(scope="module")
def tf() -> dict[str, dict[str, dict]]:
    hcl2 = pytest.importorskip("hcl2")
    with open(MAIN_TF) as fh:
        doc = hcl2.load(fh)
    out: dict[str, dict[str, dict]] = {}
    for entry in doc.get("resource", []):
        for kind, named in entry.items():
            for name, body in named.items():
                out.setdefault(_unq(kind), {})[_unq(name)] = body
    return out


def _ref_label(expr: str, kind: str) -> str:
    """``google_pubsub_topic.alerts.id`` -> ``alerts``."""
    expr = _unq(expr)
    assert expr.startswith(kind + "."), f"{expr!r} is not a reference to a {kind}"
    return expr.split(".")[1]


def test_terraform_declares_the_topics(tf):
    topics = {label: _unq(b["name"]) for label, b in tf["google_pubsub_topic"].items()}
    assert set(topics.values()) == {t["name"] for t in DECL["topics"]}
    for t in DECL["topics"]:
        body = tf["google_pubsub_topic"][label(t["name"])]
        if t.get("schema"):
            assert _unq(body["labels"]["schema"]) == t["schema"].replace(".", "-")


def test_terraform_declares_the_functions(tf):
    fns = tf["google_cloudfunctions2_function"]
    assert {_unq(b["name"]) for b in fns.values()} == {function_id(n) for n in FUNCTION_NAMES}
    for f in DECL["functions"]:
        body = fns[f["name"]]
        build, svc = _block(body["build_config"]), _block(body["service_config"])
        assert _unq(build["entry_point"]) == f["entry_point"]
        assert _unq(build["runtime"]) == DECL["project"]["runtime"]
        assert _block(_block(build["source"])["storage_source"])["object"]  # a zip in the source bucket
        assert _unq(svc["available_memory"]) == f["memory"]
        assert int(svc["timeout_seconds"]) == f["timeout_s"]
        assert _ref_label(svc["service_account_email"], "google_service_account") == f"fn_{f['name']}"
        assert "event_trigger" not in body, "delivery is by explicit push subscriptions (dead-letter policy)"
        env = [_unq(s["key"]) for s in svc.get("secret_environment_variables", [])]
        assert env == [s["env"] for s in function_secrets(DECL, f)]


def test_terraform_push_subscriptions_carry_the_dead_letter_policy(tf):
    subs = tf["google_pubsub_subscription"]
    push = {lbl: b for lbl, b in subs.items() if "push_config" in b}
    topic_fns = [f for f in DECL["functions"] if f["trigger"] != "http"]
    assert {_unq(b["name"]) for b in push.values()} == {push_subscription(f["name"]) for f in topic_fns}
    topic_names = {lbl: _unq(b["name"]) for lbl, b in tf["google_pubsub_topic"].items()}
    for f in topic_fns:
        body = push[f"{f['name']}_push"]
        assert topic_names[_ref_label(body["topic"], "google_pubsub_topic")] == f["trigger"]
        endpoint = _unq(_block(body["push_config"])["push_endpoint"])
        assert endpoint == f"google_cloudfunctions2_function.{f['name']}.service_config[0].uri"
        assert _block(_block(body["push_config"])["oidc_token"])["service_account_email"]
        if f["trigger"] == DEAD_LETTER:
            assert "dead_letter_policy" not in body  # the dead-letter function: no loop back to itself
        else:
            dlp = _block(body["dead_letter_policy"])
            assert topic_names[_ref_label(dlp["dead_letter_topic"], "google_pubsub_topic")] == DEAD_LETTER
            assert int(dlp["max_delivery_attempts"]) == DECL["project"]["max_delivery_attempts"]
        assert _block(body["retry_policy"])["minimum_backoff"]
        assert int(body["ack_deadline_seconds"]) == min(600, f["timeout_s"])
    # Pub/Sub may publish the dead letters and acknowledge them on every source subscription
    dl_pub = [b for b in tf["google_pubsub_topic_iam_member"].values()
              if topic_names[_ref_label(b["topic"], "google_pubsub_topic")] == DEAD_LETTER]
    assert [_unq(b["role"]) for b in dl_pub] == ["roles/pubsub.publisher"]
    acks = {_ref_label(b["subscription"], "google_pubsub_subscription")
            for b in tf["google_pubsub_subscription_iam_member"].values()}
    assert acks == {f"{f['name']}_push" for f in topic_fns if f["trigger"] != DEAD_LETTER}
    held = [b for b in subs.values() if "push_config" not in b]
    assert [topic_names[_ref_label(b["topic"], "google_pubsub_topic")] for b in held] == [DEAD_LETTER]


def test_terraform_grants_exactly_the_declared_publishes(tf):
    topic_names = {lbl: _unq(b["name"]) for lbl, b in tf["google_pubsub_topic"].items()}
    grants = set()
    for b in tf["google_pubsub_topic_iam_member"].values():
        member = _unq(b["member"])
        if "google_service_account.fn_" in member:
            fn = member.split("google_service_account.fn_")[1].split(".")[0]
            grants.add((fn, topic_names[_ref_label(b["topic"], "google_pubsub_topic")]))
    assert grants == {(f["name"], t) for f in DECL["functions"] for t in f["publishes"]}


def test_terraform_declares_the_scheduler_jobs(tf):
    jobs = tf.get("google_cloud_scheduler_job", {})
    topic_names = {lbl: _unq(b["name"]) for lbl, b in tf["google_pubsub_topic"].items()}
    got = {}
    for b in jobs.values():
        target = _block(b["pubsub_target"])
        topic = topic_names[_ref_label(target["topic_name"], "google_pubsub_topic")]
        got[_unq(b["name"])] = (_unq(b["schedule"]), topic,
                                base64.b64decode(_unq(target["data"])).decode(),
                                _unq(target.get("attributes", {}).get("schema")))
    assert got == {j["name"]: (j["schedule"], j["topic"], j["payload"], payload_schema(j)) for j in DECL["scheduler"]}


def test_terraform_declares_the_firestore_indexes(tf):
    got = sorted((_unq(b["collection"]), tuple((_unq(x["field_path"]), _unq(x["order"])) for x in b["fields"]))
                 for b in tf.get("google_firestore_index", {}).values())
    want = sorted((ix["collection"], tuple(tuple(f) for f in ix["fields"])) for ix in DECL["firestore_indexes"])
    assert got == want


def test_terraform_declares_the_firestore_ttl_fields(tf):
    got = sorted((_unq(b["collection"]), _unq(b["field"])) for b in tf.get("google_firestore_field", {}).values()
                 if "ttl_config" in b)
    assert got == sorted((t["collection_group"], t["field"]) for t in DECL.get("firestore_ttl", []))


def test_an_unknown_section_is_not_silently_dropped(tmp_path):
    new = '[[firestore_backups]]\nretention = "7d"\n\n[[firestore_ttl]]'
    broken = _broken_copy(tmp_path, "[[firestore_ttl]]", new)
    with pytest.raises(ValueError, match=r"\[\[firestore_backups\]\] is not rendered"):
        render(broken)


def test_terraform_declares_secrets_and_redis_without_values(tf):
    assert {_unq(b["secret_id"]) for b in tf["google_secret_manager_secret"].values()} == \
        {s["name"] for s in secrets(DECL)}
    assert "google_secret_manager_secret_version" not in tf, "secret values never go through Terraform"
    redis = tf["google_redis_instance"]["cache"]
    assert _unq(redis["tier"]) == "BASIC"
    for f in DECL["functions"]:  # Redis has a private IP only: every function egresses through the connector
        svc = _block(tf["google_cloudfunctions2_function"][f["name"]]["service_config"])
        assert _ref_label(svc["vpc_connector"], "google_vpc_access_connector") == "connector"


def test_only_the_http_function_is_public(tf):
    iam = tf["google_cloud_run_service_iam_member"]
    public = {_ref_label(b["service"], "google_cloudfunctions2_function") for b in iam.values()
              if _unq(b["member"]) == "allUsers"}
    assert public == {f["name"] for f in DECL["functions"] if f["trigger"] == "http"}
    invokers = {_ref_label(b["service"], "google_cloudfunctions2_function") for b in iam.values()
                if "google_service_account.pubsub_push" in _unq(b["member"])}
    assert invokers == {f["name"] for f in DECL["functions"] if f["trigger"] != "http"}
