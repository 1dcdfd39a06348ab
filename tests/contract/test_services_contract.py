"""Cloud Run services ([[services]] in infra/stack.toml, the WebSocket gateway) against their
code, the rendered Terraform, the gcloud deploy plan and the local stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from stratagem import service

from infra import declaration
from infra.deploy_plan import plan
from infra.render_terraform import render, service_id

from .test_infra_contract import _block, _broken_copy, _ref_label, _unq, tf  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
DECL = declaration.load()
SERVICES = DECL.get("services", [])


def test_the_websocket_gateway_is_declared_on_the_alerts_topic():
    [gw] = [s for s in SERVICES if s["name"] == "ws_gateway"]
    assert gw["subscribes"] == service.TOPICS["alerts"]


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s["name"])
def test_service_source_has_an_entry_point_and_a_dockerfile(svc):
    folder = ROOT / "functions" / svc["name"]
    main = folder / "main.py"
    tree = ast.parse(main.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
    assert 'if __name__ == "__main__"' in main.read_text()
    docker = (folder / "Dockerfile").read_text()
    assert "requirements.txt" in docker and 'CMD ["python", "main.py"]' in docker


def test_the_gateway_code_listens_to_the_declared_topic():
    from stratagem.gateway import build_gateway  # noqa: F401 - importable without any client library call
    src = (ROOT / "shared" / "stratagem" / "gateway.py").read_text()
    assert 'TOPICS["alerts"]' in src


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s["name"])
def test_terraform_declares_each_service(tf, svc):  # noqa: F811 - pytest fixture
    name = svc["name"]
    run = tf["google_cloud_run_v2_service"][name]
    assert _unq(run["name"]) == service_id(name)
    tmpl = _block(run["template"])
    assert _unq(tmpl["timeout"]) == f"{svc['timeout_s']}s"
    assert int(tmpl["max_instance_request_concurrency"]) == svc["concurrency"]
    scaling = _block(tmpl["scaling"])
    assert (int(scaling["min_instance_count"]), int(scaling["max_instance_count"])) == \
        (svc["min_instances"], svc["max_instances"])
    container = _block(tmpl["containers"])
    assert _unq(_block(container["resources"])["limits"]["memory"]) == svc["memory"]
    assert _ref_label(tmpl["service_account"], "google_service_account") == f"svc_{name}"
    roles = {_unq(b["role"]) for lbl, b in tf["google_project_iam_member"].items() if lbl.startswith(f"svc_{name}_")}
    assert roles == {"roles/datastore.user", "roles/pubsub.editor"}
    [public] = [b for b in tf["google_cloud_run_v2_service_iam_member"].values()
                if _ref_label(b["name"], "google_cloud_run_v2_service") == name]
    assert _unq(public["member"]) == "allUsers"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s["name"])
def test_deploy_plan_deploys_each_service(svc):
    [step] = [s for s in plan(DECL, "test-proj") if s.kind == "service" and s.name == svc["name"]]
    flags = step.flags()
    assert step.argv[:4] == ["gcloud", "run", "deploy", service_id(svc["name"])]
    assert Path(flags["source"]).name == svc["name"]
    assert flags["timeout"] == f"{svc['timeout_s']}s" and flags["memory"] == svc["memory"]
    assert flags["allow-unauthenticated"] is True and flags["session-affinity"] is True
    assert step.meta["subscribes"] == svc["subscribes"]


def test_a_service_on_an_undeclared_topic_fails_the_declaration(tmp_path):
    broken = _broken_copy(tmp_path, 'subscribes = "stratagem-alerts"', 'subscribes = "stratagem-nowhere"')
    with pytest.raises(ValueError, match="service ws_gateway subscribes to undeclared topic stratagem-nowhere"):
        declaration.check(broken)
    render(DECL)  # the real declaration renders


def test_the_local_stack_starts_every_service():
    src = (ROOT / "emulators" / "stack.py").read_text()
    assert 'decl.get("services"' in src
