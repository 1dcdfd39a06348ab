"""The gcloud deployment of ``infra/stack.toml``: the same topology as ``infra/terraform/main.tf``.

    python infra/deploy_plan.py script --project P [--region R]   # print the deploy script (bash)
    python infra/deploy_plan.py stage [--out build/functions] [--zip]

``script`` prints a bash script of gcloud commands, one resource per line, in dependency order:
APIs, secrets (containers only), topics, dead-letter plumbing, Redis and the VPC connector,
service accounts and their IAM, functions, push subscriptions, scheduler jobs, Firestore
indexes and TTL fields. Creating commands tolerate "already exists" (``ensure``);
subscriptions and scheduler jobs are updated when they exist, so re-running converges.
``infra/deploy.sh`` stages the sources, writes this script and runs it (``--dry-run`` only
prints it).

``stage`` builds one source directory per function: ``functions/<name>/*`` plus the shared
``stratagem`` package and a ``requirements.txt``; ``--zip`` also writes ``<name>.zip`` with fixed
timestamps (same content, same bytes, so Terraform redeploys only what changed). Cloud Run
services (``[[services]]``, the WebSocket gateway) are staged the same way next to them and
deployed with ``gcloud run deploy --source`` (Cloud Build builds their Dockerfile).

Delivery is by explicit push subscriptions with a dead-letter policy, not ``--trigger-topic``:
see ``infra/render_terraform.py`` for why. Every function is deployed ``--trigger-http``; the
topic-triggered ones are private (only the push identity may invoke them).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: make ``infra`` importable
    sys.path.insert(0, str(ROOT))

from infra.declaration import DEFAULT, dead_letter_topic_of, load  # noqa: E402
from infra.render_terraform import (APIS, COMMON_ENV, RETRY_MAX_BACKOFF, RETRY_MIN_BACKOFF,  # noqa: E402
                                    SERVICE_DEFAULTS, check_renderable, function_env, function_id,
                                    function_secrets, payload_schema, push_subscription, secrets,
                                    service_account_id, service_account_id_of_service, service_id)

SHARED = ROOT / "shared" / "stratagem"
FUNCTIONS = ROOT / "functions"
DEFAULT_STAGE = ROOT / "build" / "functions"
REDIS = "stratagem-cache"
CONNECTOR = "stratagem-connector"
PUSH_SA = "stratagem-pubsub-push"


class Expand(str):
    """An argument that expands shell variables (``${REDIS_HOST}``): written in double quotes."""


def sh(arg: str) -> str:
    if isinstance(arg, Expand):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'
    return shlex.quote(arg)


@dataclass
class Step:
    """One resource: ``argv`` creates (or deploys) it.

    mode ``run``: run as is; ``ensure``: an "already exists" failure is success; ``upsert``: run
    ``update`` if ``describe`` succeeds, else ``argv``; ``assign``: ``var=$(argv)``.
    """

    kind: str
    name: str
    argv: list[str]
    mode: str = "run"
    update: list[str] | None = None
    describe: list[str] | None = None
    var: str | None = None
    meta: dict = field(default_factory=dict)
    group: str = ""

    def shell(self) -> str:
        cmd = " ".join(sh(a) for a in self.argv)
        if self.mode == "ensure":
            return "ensure " + cmd
        if self.mode == "assign":
            return f'{self.var}="$({cmd})"'
        if self.mode == "upsert":
            assert self.update and self.describe
            return (f"if {' '.join(sh(a) for a in self.describe)} >/dev/null 2>&1; then "
                    f"{' '.join(sh(a) for a in self.update)}; else {cmd}; fi")
        return cmd

    def flags(self) -> dict[str, str | bool]:
        """``--key=value`` (and bare ``--flag``) of ``argv``; repeated flags keep the last value."""
        out: dict[str, str | bool] = {}
        for a in self.argv:
            if a.startswith("--"):
                k, eq, v = a[2:].partition("=")
                out[k] = v if eq else True
        return out


def _sa_email(account: str, project: str) -> str:
    return f"{account}@{project}.iam.gserviceaccount.com"


def plan(decl: dict, project: str, region: str | None = None, source_dir: Path | str = DEFAULT_STAGE) -> list[Step]:
    check_renderable(decl)
    proj = decl["project"]
    region = region or proj["region"]
    runtime = proj.get("runtime", "python311")
    dl = proj["dead_letter_topic"]
    P, R = f"--project={project}", f"--region={region}"
    agent = Expand("serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com")
    push_sa = _sa_email(PUSH_SA, project)
    steps: list[Step] = []
    group = ""

    def add(step: Step) -> None:
        step.group = group
        steps.append(step)

    group = "APIs and project number"

    add(Step("apis", "apis", ["gcloud", "services", "enable", *APIS, P]))
    add(Step("lookup", "PROJECT_NUMBER", ["gcloud", "projects", "describe", project, "--format=value(projectNumber)"],
             mode="assign", var="PROJECT_NUMBER"))

    group = "secrets (containers only; values are added out of band)"
    for s in secrets(decl):
        add(Step("secret", s["name"], ["gcloud", "secrets", "create", s["name"], "--replication-policy=automatic", P],
                 mode="ensure"))
        add(Step("secret_check", s["name"], ["require_secret_version", s["name"], P]))

    group = "topics"
    for t in decl["topics"]:
        labels = [f"--labels=schema={t['schema'].replace('.', '-').lower()}"] if t.get("schema") else []
        add(Step("topic", t["name"], ["gcloud", "pubsub", "topics", "create", t["name"], *labels, P], mode="ensure",
                 meta={"schema": t.get("schema")}))

    group = f"dead letters: Pub/Sub may publish to {dl}; a hold subscription keeps them 7 days"
    add(Step("iam", f"{dl} publisher", ["gcloud", "pubsub", "topics", "add-iam-policy-binding", dl,
                                        Expand(f"--member={agent}"), "--role=roles/pubsub.publisher", P]))
    hold = dl + "-hold"
    add(Step("subscription", hold, ["gcloud", "pubsub", "subscriptions", "create", hold, f"--topic={dl}",
                                    "--message-retention-duration=7d", "--expiration-period=never", P], mode="ensure"))

    group = "Redis (private IP) and the VPC connector the functions reach it through"
    add(Step("redis", REDIS, ["gcloud", "redis", "instances", "create", REDIS, "--tier=basic", "--size=1",
                              "--redis-version=redis_7_0", "--network=default", "--connect-mode=direct-peering", R, P],
             mode="ensure"))
    add(Step("lookup", "REDIS_HOST", ["gcloud", "redis", "instances", "describe", REDIS, R, P, "--format=value(host)"],
             mode="assign", var="REDIS_HOST"))
    add(Step("lookup", "REDIS_PORT", ["gcloud", "redis", "instances", "describe", REDIS, R, P, "--format=value(port)"],
             mode="assign", var="REDIS_PORT"))
    add(Step("connector", CONNECTOR, ["gcloud", "compute", "networks", "vpc-access", "connectors", "create", CONNECTOR,
                                      "--network=default", "--range=10.8.0.0/28", "--min-instances=2",
                                      "--max-instances=3", R, P], mode="ensure"))

    group = "push identity: the only caller of the topic-triggered functions"
    add(Step("account", PUSH_SA, ["gcloud", "iam", "service-accounts", "create", PUSH_SA,
                                  "--display-name=Stratagem Pub/Sub push invoker", P], mode="ensure"))
    add(Step("iam", f"{PUSH_SA} token creator", ["gcloud", "iam", "service-accounts", "add-iam-policy-binding", push_sa,
                                                 Expand(f"--member={agent}"),
                                                 "--role=roles/iam.serviceAccountTokenCreator", P]))

    for fn in decl["functions"]:
        name, trig = fn["name"], fn["trigger"]
        fid, acct = function_id(name), service_account_id(name)
        email = _sa_email(acct, project)
        member = f"--member=serviceAccount:{email}"
        group = f"function {name}: " + ("HTTP" if trig == "http" else f"push subscription on {trig}")
        add(Step("account", acct, ["gcloud", "iam", "service-accounts", "create", acct,
                                   f"--display-name=Stratagem function {name}", P], mode="ensure"))
        add(Step("iam", f"{acct} firestore", ["gcloud", "projects", "add-iam-policy-binding", project, member,
                                              "--role=roles/datastore.user", "--condition=None"]))
        for t in fn.get("publishes", []):
            add(Step("iam", f"{acct} publishes {t}", ["gcloud", "pubsub", "topics", "add-iam-policy-binding", t, member,
                                                      "--role=roles/pubsub.publisher", P],
                     meta={"function": name, "topic": t}))
        fsecrets = function_secrets(decl, fn)
        for s in fsecrets:
            add(Step("iam", f"{acct} reads {s['name']}", ["gcloud", "secrets", "add-iam-policy-binding", s["name"],
                                                          member, "--role=roles/secretmanager.secretAccessor", P]))
        env = {**COMMON_ENV, "GOOGLE_CLOUD_PROJECT": project,
               "STRATAGEM_REDIS_URL": "redis://${REDIS_HOST}:${REDIS_PORT}/0", **function_env(decl, fn)}
        argv = ["gcloud", "functions", "deploy", fid, "--gen2", P, R, f"--runtime={runtime}",
                f"--source={Path(source_dir) / name}", f"--entry-point={fn['entry_point']}", "--trigger-http",
                f"--memory={fn['memory']}", f"--timeout={fn['timeout_s']}s", f"--service-account={email}",
                "--ingress-settings=all", "--allow-unauthenticated" if trig == "http" else "--no-allow-unauthenticated",
                f"--vpc-connector={CONNECTOR}", "--egress-settings=private-ranges-only",
                Expand("--set-env-vars=" + ",".join(f"{k}={v}" for k, v in env.items()))]
        if fsecrets:
            argv.append("--set-secrets=" + ",".join(f"{s['env']}={s['name']}:latest" for s in fsecrets))
        add(Step("function", name, argv, meta={"trigger": trig, "id": fid}))
        if trig == "http":
            continue
        var = "URL_" + name.upper()
        add(Step("iam", f"{fid} invoker", ["gcloud", "run", "services", "add-iam-policy-binding", fid, R,
                                           f"--member=serviceAccount:{push_sa}", "--role=roles/run.invoker", P]))
        add(Step("lookup", var, ["gcloud", "functions", "describe", fid, R, P,
                                 "--format=value(serviceConfig.uri)"], mode="assign", var=var))
        sub = push_subscription(name)
        fdl = dead_letter_topic_of(decl, fn)  # None for the dead-letter function itself (no loop)
        common = [Expand(f"--push-endpoint=${{{var}}}"), f"--push-auth-service-account={push_sa}",
                  f"--ack-deadline={min(600, max(10, fn['timeout_s']))}", f"--min-retry-delay={RETRY_MIN_BACKOFF}",
                  f"--max-retry-delay={RETRY_MAX_BACKOFF}",
                  *([f"--dead-letter-topic={fdl}", f"--max-delivery-attempts={proj['max_delivery_attempts']}"]
                    if fdl else []), P]
        add(Step("subscription", sub, ["gcloud", "pubsub", "subscriptions", "create", sub, f"--topic={trig}",
                                       "--expiration-period=never", *common],
                 mode="upsert", update=["gcloud", "pubsub", "subscriptions", "update", sub, *common,
                                        *([] if fdl else ["--clear-dead-letter-policy"])],
                 describe=["gcloud", "pubsub", "subscriptions", "describe", sub, P],
                 meta={"function": name, "topic": trig}))
        if fdl:
            add(Step("iam", f"{sub} dead letters", ["gcloud", "pubsub", "subscriptions", "add-iam-policy-binding",
                                                    sub, Expand(f"--member={agent}"), "--role=roles/pubsub.subscriber",
                                                    P]))

    for svc in decl.get("services", []):
        name, cfg = svc["name"], {**SERVICE_DEFAULTS, **svc}
        acct = service_account_id_of_service(name)
        email = _sa_email(acct, project)
        member = f"--member=serviceAccount:{email}"
        group = f"service {name}: Cloud Run, one subscription per instance on {svc['subscribes']}"
        add(Step("account", acct, ["gcloud", "iam", "service-accounts", "create", acct,
                                   f"--display-name=Stratagem service {name}", P], mode="ensure"))
        add(Step("iam", f"{acct} firestore", ["gcloud", "projects", "add-iam-policy-binding", project, member,
                                              "--role=roles/datastore.user", "--condition=None"]))
        # creating its instances' subscriptions needs a project-level permission only pubsub.editor grants
        add(Step("iam", f"{acct} pubsub", ["gcloud", "projects", "add-iam-policy-binding", project, member,
                                           "--role=roles/pubsub.editor", "--condition=None"]))
        env = {**COMMON_ENV, "GOOGLE_CLOUD_PROJECT": project, "STRATAGEM_REDIS_URL": "redis://${REDIS_HOST}:${REDIS_PORT}/0"}
        add(Step("service", name, [
            "gcloud", "run", "deploy", service_id(name), P, R, f"--source={Path(source_dir) / name}",
            f"--service-account={email}", f"--memory={cfg['memory']}", f"--cpu={cfg['cpu']}",
            f"--timeout={int(cfg['timeout_s'])}s", f"--concurrency={int(cfg['concurrency'])}",
            f"--min-instances={int(cfg['min_instances'])}", f"--max-instances={int(cfg['max_instances'])}",
            f"--port={int(cfg['port'])}", "--session-affinity", "--allow-unauthenticated",
            f"--vpc-connector={CONNECTOR}", "--vpc-egress=private-ranges-only",
            Expand("--set-env-vars=" + ",".join(f"{k}={v}" for k, v in env.items()))],
            meta={"subscribes": svc["subscribes"], "id": service_id(name)}))

    group = "scheduler"
    loc = f"--location={region}"
    for job in decl.get("scheduler", []):
        schema = payload_schema(job)
        common = [f"--schedule={job['schedule']}", f"--topic={job['topic']}", f"--message-body={job['payload']}",
                  f"--time-zone={job.get('time_zone', 'Etc/UTC')}", loc, P]
        add(Step("scheduler", job["name"],
                 ["gcloud", "scheduler", "jobs", "create", "pubsub", job["name"], *common,
                  *([f"--attributes=schema={schema}"] if schema else [])],
                 mode="upsert",
                 update=["gcloud", "scheduler", "jobs", "update", "pubsub", job["name"], *common,
                         *([f"--update-attributes=schema={schema}"] if schema else [])],
                 describe=["gcloud", "scheduler", "jobs", "describe", job["name"], loc, P]))

    group = "Firestore composite indexes and TTL fields"
    for ix in decl.get("firestore_indexes", []):
        fields = [f"--field-config=field-path={f},order={o.lower()}" for f, o in ix["fields"]]
        add(Step("index", ix["collection"] + "(" + ",".join(f for f, _ in ix["fields"]) + ")",
                 ["gcloud", "firestore", "indexes", "composite", "create", f"--collection-group={ix['collection']}",
                  "--query-scope=collection", *fields, "--database=(default)", P], mode="ensure",
                 meta={"collection": ix["collection"], "fields": [list(f) for f in ix["fields"]]}))
    for ttl in decl.get("firestore_ttl", []):
        add(Step("ttl", f"{ttl['collection_group']}.{ttl['field']}",
                 ["gcloud", "firestore", "fields", "ttls", "update", ttl["field"],
                  f"--collection-group={ttl['collection_group']}", "--enable-ttl", "--database=(default)", P]))
    return steps


PREAMBLE = r"""#!/usr/bin/env bash
# Generated by infra/deploy_plan.py from infra/stack.toml (project {project}, region {region}).
set -euo pipefail

ensure() {{  # run a creating command; "already exists" counts as success
  local out
  if out=$("$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
  if grep -qiE 'already.?exists' <<<"$out"; then echo "exists: ${{*:1:6}}"; return 0; fi
  printf '%s\n' "$out" >&2; return 1
}}

require_secret_version() {{  # Cloud Run refuses to start a function whose secret has no version
  if ! gcloud secrets versions list "$1" "${{@:2}}" --limit=1 --format='value(name)' | grep -q .; then
    echo "secret $1 has no value yet: printf %s \"\$VALUE\" | gcloud secrets versions add $1 --data-file=-" >&2
    return 1
  fi
}}
"""


def script(steps: list[Step], project: str, region: str) -> str:
    lines = [PREAMBLE.format(project=project, region=region)]
    group = None
    for s in steps:
        if s.group != group:
            lines.append(f"\n# ---- {s.group}")
            group = s.group
        lines.append(s.shell())
    return "\n".join(lines) + "\n"


# -- staging ---------------------------------------------------------------------------------------
def requirements() -> list[str]:
    """The package's dependencies plus its ``gcp`` extra (the functions' runtime libraries)."""
    with open(ROOT / "pyproject.toml", "rb") as fh:
        meta = tomllib.load(fh)["project"]
    extra = meta.get("optional-dependencies", {}).get("gcp")
    if not extra:
        raise ValueError("pyproject.toml has no 'gcp' extra: the functions' runtime libraries are listed there")
    return list(dict.fromkeys(meta.get("dependencies", []) + extra))


def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}


def stage(decl: dict, out: Path = DEFAULT_STAGE, *, make_zip: bool = False) -> list[Path]:
    """One deployable directory per function (and ``<name>.zip`` with ``make_zip``)."""
    out.mkdir(parents=True, exist_ok=True)
    reqs = "\n".join(requirements()) + "\n"
    made = []
    for fn in decl["functions"]:
        src, dst = FUNCTIONS / fn["name"], out / fn["name"]
        if not (src / "main.py").is_file():
            raise FileNotFoundError(f"function {fn['name']} has no {src / 'main.py'}")
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=_ignore)
        shutil.copytree(SHARED, dst / "stratagem", ignore=_ignore)
        (dst / "requirements.txt").write_text(reqs)
        made.append(dst)
        if make_zip:
            _zip(dst, out / f"{fn['name']}.zip")
    for svc in decl.get("services", []):  # Cloud Run: built from its Dockerfile by Cloud Build, no zip
        src, dst = FUNCTIONS / svc["name"], out / svc["name"]
        for needed in ("main.py", "Dockerfile"):
            if not (src / needed).is_file():
                raise FileNotFoundError(f"service {svc['name']} has no {src / needed}")
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=_ignore)
        shutil.copytree(SHARED, dst / "stratagem", ignore=_ignore)
        (dst / "requirements.txt").write_text(reqs)
        made.append(dst)
    return made


def _zip(src: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(src).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="gcloud deployment of infra/stack.toml")
    ap.add_argument("--stack", type=Path, default=DEFAULT)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("script", help="print the deploy script")
    sp.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT") or "PROJECT_ID")
    sp.add_argument("--region", default=None, help="default: [project].region of stack.toml")
    sp.add_argument("--source-dir", type=Path, default=DEFAULT_STAGE)
    st = sub.add_parser("stage", help="build the functions' source directories")
    st.add_argument("--out", type=Path, default=DEFAULT_STAGE)
    st.add_argument("--zip", action="store_true", help="also write <name>.zip per function (for Terraform)")
    args = ap.parse_args(argv)
    decl = load(args.stack)
    if args.cmd == "stage":
        for d in stage(decl, args.out, make_zip=args.zip):
            print(d)
        return 0
    region = args.region or decl["project"]["region"]
    sys.stdout.write(script(plan(decl, args.project, region, args.source_dir), args.project, region))
    return 0


if __name__ == "__main__":
    sys.exit(main())
