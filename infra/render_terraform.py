"""Render ``infra/terraform/main.tf`` from ``infra/stack.toml``.

    python infra/render_terraform.py            # (re)write infra/terraform/main.tf
    python infra/render_terraform.py --check    # exit 1 if the committed file is stale
    python infra/render_terraform.py --stdout   # print instead of writing

The output is plain HCL, committed, reviewed like code and never edited by hand. Every
resource is written out (no ``for_each`` over the declaration) so a reviewer, ``terraform
plan`` and the contract tests all see the same names.

Delivery and dead-lettering: topic-triggered functions get no ``event_trigger`` (Eventarc's
subscription is not Terraform's to give a dead-letter policy) but an explicit push subscription
with retry and dead-letter policy; :data:`HEADER` (written at the top of main.tf) says how.

Naming: Cloud Functions (2nd gen) ids are 4-63 characters of ``[a-z0-9-]``, so the function
``alert_tick`` is deployed as ``stratagem-alert-tick`` (:func:`function_id`); its source folder
and entry point keep the declared names.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: make ``infra`` importable
    sys.path.insert(0, str(HERE.parent))

from infra.declaration import DEFAULT, dead_letter_topic_of, load  # noqa: E402

OUTPUT = HERE / "terraform" / "main.tf"
PREFIX = "stratagem-"

# Runtime wiring that stack.toml does not declare (yet). A function's own ``secrets`` / ``env``
# keys in stack.toml, and a top-level ``[[secrets]]`` table, override these defaults.
DEFAULT_SECRETS = [  # Secret Manager secrets: containers only, values are added out of band
    {"name": "stratagem-gemini-api-key", "env": "GEMINI_API_KEY"},
    # the names stratagem.settings reads
    {"name": "stratagem-telegram-bot-token", "env": "STRATAGEM_TELEGRAM_TOKEN"},
    {"name": "stratagem-telegram-webhook-secret", "env": "STRATAGEM_TELEGRAM_WEBHOOK_SECRET"},
]
DEFAULT_FUNCTION_SECRETS = {"generate": ["GEMINI_API_KEY"], "notify": ["STRATAGEM_TELEGRAM_TOKEN"],
                            "telegram_webhook": ["STRATAGEM_TELEGRAM_TOKEN", "STRATAGEM_TELEGRAM_WEBHOOK_SECRET"]}
DEFAULT_FUNCTION_ENV = {"generate": {"STRATAGEM_GENERATOR": "gemini"}}
APIS = ["cloudbuild.googleapis.com", "cloudfunctions.googleapis.com", "cloudscheduler.googleapis.com",
        "firestore.googleapis.com", "pubsub.googleapis.com", "redis.googleapis.com", "run.googleapis.com",
        "secretmanager.googleapis.com", "vpcaccess.googleapis.com", "artifactregistry.googleapis.com"]
# Environment of every function besides GOOGLE_CLOUD_PROJECT and STRATAGEM_REDIS_URL (stratagem.settings
# reads it). Only /tmp is writable in Cloud Functions: the bundled sample dataset is unpacked there.
COMMON_ENV = {"STRATAGEM_BACKEND": "gcp", "STRATAGEM_HOME": "/tmp/stratagem"}
RETRY_MIN_BACKOFF = "10s"
RETRY_MAX_BACKOFF = "600s"


# -- names shared with deploy_plan.py and the contract tests -------------------------------------
REQUIRED_FUNCTION_KEYS = ("name", "entry_point", "trigger", "memory", "timeout_s")
# Sections of stack.toml the renderer (and deploy_plan.py) turn into resources; a new section
# must be taught to both before it can be deployed, so an unknown one is an error, not a no-op.
SECTIONS = {"project", "topics", "functions", "scheduler", "firestore_indexes", "firestore_ttl", "secrets",
            "services"}


def check_renderable(decl: dict) -> None:
    """What rendering needs beyond ``declaration.check``: every function fully declared."""
    problems = [f"[[{k}]] is not rendered by infra/render_terraform.py or infra/deploy_plan.py"
                for k in sorted(set(decl) - SECTIONS)]
    for i, fn in enumerate(decl.get("functions", [])):
        missing = [k for k in REQUIRED_FUNCTION_KEYS if k not in fn]
        if missing:
            problems.append(f"function {fn.get('name', f'#{i + 1}')} has no {', '.join(missing)}")
    if problems:
        raise ValueError("infra/stack.toml cannot be deployed:\n  " + "\n  ".join(problems))


def function_id(name: str) -> str:
    """Cloud Functions id of a declared function: ``alert_tick`` -> ``stratagem-alert-tick``."""
    slug = name.replace("_", "-").lower()
    return slug if slug.startswith(PREFIX) else PREFIX + slug


def label(name: str) -> str:
    """Terraform resource label: ``stratagem-alert-tick`` -> ``alert_tick``."""
    return name.removeprefix(PREFIX).replace("-", "_").replace(".", "_").lower()


def service_account_id(fn: str) -> str:
    return f"stratagem-fn-{fn.replace('_', '-')}"[:30]


def push_subscription(fn: str) -> str:
    return function_id(fn) + "-push"


def index_label(index: dict) -> str:
    return "_".join([index["collection"]] + [f[0] for f in index["fields"]]).lower()


def ttl_label(ttl: dict) -> str:
    return f"{ttl['collection_group']}_{ttl['field']}_ttl".lower()


def schema_label(schema: str) -> str:
    """Pub/Sub label values allow ``[a-z0-9_-]``: ``stratagem.tick.v1`` -> ``stratagem-tick-v1``."""
    return schema.replace(".", "-").lower()


def secrets(decl: dict) -> list[dict]:
    return decl.get("secrets") or DEFAULT_SECRETS


def function_secrets(decl: dict, fn: dict) -> list[dict]:
    """The secrets a function reads, as ``{"name", "env"}``, in declaration order."""
    by_env = {s["env"]: s for s in secrets(decl)}
    wanted = fn.get("secrets", DEFAULT_FUNCTION_SECRETS.get(fn["name"], []))
    unknown = [e for e in wanted if e not in by_env]
    if unknown:
        raise ValueError(f"function {fn['name']} reads undeclared secret(s) {', '.join(unknown)}")
    return [by_env[e] for e in wanted]


def function_env(decl: dict, fn: dict) -> dict[str, str]:
    return dict(fn.get("env", DEFAULT_FUNCTION_ENV.get(fn["name"], {})))


def payload_b64(job: dict) -> str:
    return base64.b64encode(job["payload"].encode()).decode()


def payload_schema(job: dict) -> str | None:
    try:
        doc = json.loads(job["payload"])
    except ValueError:
        return None
    return doc.get("schema") if isinstance(doc, dict) else None


# -- a tiny HCL writer -----------------------------------------------------------------------------
class Ref(str):
    """An HCL expression written as is (``google_pubsub_topic.generate.id``)."""


class Tmpl(str):
    """A string template whose ``${...}`` interpolations are kept: written as ``"<text>"``."""


def lit(v: Any) -> str:
    if isinstance(v, Ref):
        return str(v)
    if isinstance(v, Tmpl):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        # JSON escaping is valid HCL; ``${``/``%{`` would start a template, so double them.
        return json.dumps(v).replace("${", "$${").replace("%{", "%%{")
    if isinstance(v, list):
        return "[" + ", ".join(lit(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {lit(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as HCL")


class Block:
    """``head { attr = value ... nested blocks }``; attributes are aligned like ``terraform fmt``."""

    def __init__(self, head: str, *items: Any, comment: str = "") -> None:
        self.head = head
        self.items = list(items)
        self.comment = comment

    def render(self, indent: int = 0) -> list[str]:
        pad = "  " * indent
        out = [pad + "# " + c if c else pad + "#" for c in self.comment.splitlines()] if self.comment else []
        if not any(i is not None for i in self.items):
            return out + [pad + self.head + " {}"]
        out.append(pad + self.head + " {")
        run: list[tuple[str, Any]] = []

        def flush() -> None:
            width = max((len(k) for k, _ in run), default=0)
            out.extend(f"{pad}  {k.ljust(width)} = {lit(v)}" for k, v in run)
            run.clear()

        for item in self.items:
            if item is None:
                continue
            if isinstance(item, tuple) and "\n" in lit(item[1]):
                flush()  # terraform fmt aligns a multi-line value with nothing
                out.append(f"{pad}  {item[0]} = {lit(item[1])}")
            elif isinstance(item, tuple):
                run.append(item)
            elif isinstance(item, Comment):
                flush()
                out.extend(f"{pad}  # {line}" for line in item.text.splitlines())
            else:
                flush()
                out.extend(item.render(indent + 1))
        flush()
        out.append(pad + "}")
        return out


class Comment:
    def __init__(self, text: str) -> None:
        self.text = text


def resource(kind: str, name: str, *items: Any, comment: str = "") -> Block:
    return Block(f'resource "{kind}" "{name}"', *items, comment=comment)


def section(title: str, text: str = "") -> str:
    bar = "# " + "=" * 96
    lines = [bar, f"# {title}"] + [f"# {t}" if t else "#" for t in text.splitlines()] + [bar]
    return "\n".join(lines)


APIS_DEP = ("depends_on", Ref("[google_project_service.apis]"))


# -- the document ----------------------------------------------------------------------------------
def render(decl: dict) -> str:
    check_renderable(decl)
    proj = decl["project"]
    topics = decl["topics"]
    dl = proj["dead_letter_topic"]
    parts: list[str] = [HEADER.strip()]

    def add(*blocks: Any) -> None:
        for b in blocks:
            parts.append(b if isinstance(b, str) else "\n".join(b.render()))

    # provider and variables ------------------------------------------------------------------
    add(section("Provider and variables"))
    add(Block("terraform",
              ("required_version", ">= 1.5"),
              Block("required_providers",
                    ("google", {"source": "hashicorp/google", "version": ">= 5.0, < 7.0"}))))
    add(Block('provider "google"', ("project", Ref("var.project")), ("region", Ref("var.region"))))
    add(Block('variable "project"', ("type", Ref("string")), ("description", "Google Cloud project id.")),
        Block('variable "region"', ("type", Ref("string")), ("default", proj["region"]),
              ("description", "Region of functions, scheduler jobs, Redis and the VPC connector (stack.toml).")),
        Block('variable "source_bucket"', ("type", Ref("string")),
              ("description", "Existing GCS bucket that holds the functions' source zips.")),
        Block('variable "source_dir"', ("type", Ref("string")), ("default", Ref("null")),
              ("description", ("Directory with one <function>.zip per function, built by "
                               "'python infra/deploy_plan.py stage --zip' (default: <repo>/build/functions)."))),
        Block('variable "network"', ("type", Ref("string")), ("default", "default"),
              ("description", "VPC network shared by Redis and the serverless VPC connector.")),
        Block('variable "connector_cidr"', ("type", Ref("string")), ("default", "10.8.0.0/28"),
              ("description", "Unused /28 range in the network for the serverless VPC connector.")),
        Block('variable "redis_memory_gb"', ("type", Ref("number")), ("default", 1),
              ("description", "Memorystore size (result cache).")))
    add(Block('data "google_project" "this"'))
    env = {**COMMON_ENV, "GOOGLE_CLOUD_PROJECT": Ref("var.project"),
           "STRATAGEM_REDIS_URL": Tmpl("redis://${google_redis_instance.cache.host}:${google_redis_instance.cache.port}/0")}
    add(Block("locals",
              Comment("Pub/Sub's service agent forwards dead letters and mints the push subscriptions' OIDC tokens."),
              ("pubsub_agent", Tmpl("serviceAccount:service-${data.google_project.this.number}"
                                    "@gcp-sa-pubsub.iam.gserviceaccount.com")),
              ("source_dir", Ref('coalesce(var.source_dir, "${path.module}/../../build/functions")')),
              Comment("Environment common to every function (stratagem.settings reads it)."),
              ("function_env", Ref(_map_expr(env)))))
    add(resource("google_project_service", "apis",
                 ("for_each", Ref("toset([\n" + "".join(f"    {lit(a)},\n" for a in APIS) + "  ])")),
                 ("service", Ref("each.value")),
                 ("disable_on_destroy", False)))

    # topics --------------------------------------------------------------------------------------
    add(section("Pub/Sub topics", "One per [[topics]] entry; the label names the message schema (stratagem.messages)."))
    for t in topics:
        items: list[Any] = [("name", t["name"])]
        if t.get("schema"):
            items.append(("labels", {"schema": schema_label(t["schema"])}))
        items.append(APIS_DEP)
        add(resource("google_pubsub_topic", label(t["name"]), *items,
                     comment=f"schema {t['schema']}" if t.get("schema") else "dead letters of every push subscription"))

    # dead letters ----------------------------------------------------------------------------------
    dlr = label(dl)
    add(section("Dead letters",
                f"Every push subscription below but the dead-letter function's dead-letters to {dl} after "
                f"{proj['max_delivery_attempts']} delivery\nattempts. Pub/Sub's service agent must be able to publish there (and to acknowledge on the source "
                "subscription,\ngranted next to each subscription). Without a subscription a topic drops messages, "
                "so a hold\nsubscription keeps dead letters for 7 days for inspection and replay."))
    add(resource("google_pubsub_topic_iam_member", f"{dlr}_publisher",
                 ("topic", Ref(f"google_pubsub_topic.{dlr}.name")),
                 ("role", "roles/pubsub.publisher"),
                 ("member", Ref("local.pubsub_agent"))),
        resource("google_pubsub_subscription", f"{dlr}_hold",
                 ("name", dl + "-hold"),
                 ("topic", Ref(f"google_pubsub_topic.{dlr}.id")),
                 ("message_retention_duration", "604800s"),
                 ("ack_deadline_seconds", 60),
                 Block("expiration_policy", ("ttl", ""))))

    # push identity -----------------------------------------------------------------------------
    add(section("Push identity",
                "Push subscriptions call the functions as this service account (OIDC token, audience = the\n"
                "function's URL); it is the only identity allowed to invoke the topic-triggered functions."))
    add(resource("google_service_account", "pubsub_push",
                 ("account_id", "stratagem-pubsub-push"),
                 ("display_name", "Stratagem Pub/Sub push invoker"),
                 APIS_DEP),
        resource("google_service_account_iam_member", "pubsub_push_token_creator",
                 ("service_account_id", Ref("google_service_account.pubsub_push.name")),
                 ("role", "roles/iam.serviceAccountTokenCreator"),
                 ("member", Ref("local.pubsub_agent"))))

    # secrets ---------------------------------------------------------------------------------------
    add(section("Secrets",
                "Containers only: values never appear in Terraform (or its state). Add a version before the first\n"
                "apply of the functions that read it (Cloud Run refuses a 'latest' that does not exist):\n"
                "  printf %s \"$KEY\" | gcloud secrets versions add SECRET --data-file=-"))
    for s in secrets(decl):
        add(resource("google_secret_manager_secret", label(s["name"]),
                     ("secret_id", s["name"]),
                     Block("replication", Block("auto")),
                     APIS_DEP,
                     comment=f"read by functions as ${s['env']}"))

    # redis ---------------------------------------------------------------------------------------
    add(section("Redis (result cache) and the VPC connector",
                "Memorystore has only a private IP inside the VPC network. Functions reach it through the\n"
                "Serverless VPC Access connector below, with egress PRIVATE_RANGES_ONLY so calls to public APIs\n"
                "(Gemini, Telegram) still leave directly. Cloud Run services ([[services]], the WebSocket\n"
                "gateway) use the same connector."))
    add(resource("google_redis_instance", "cache",
                 ("name", "stratagem-cache"),
                 ("tier", "BASIC"),
                 ("memory_size_gb", Ref("var.redis_memory_gb")),
                 ("region", Ref("var.region")),
                 ("redis_version", "REDIS_7_0"),
                 ("connect_mode", "DIRECT_PEERING"),
                 ("authorized_network", Tmpl("projects/${var.project}/global/networks/${var.network}")),
                 APIS_DEP),
        resource("google_vpc_access_connector", "connector",
                 ("name", "stratagem-connector"),
                 ("region", Ref("var.region")),
                 ("network", Ref("var.network")),
                 ("ip_cidr_range", Ref("var.connector_cidr")),
                 ("min_instances", 2),
                 ("max_instances", 3),
                 APIS_DEP))

    # functions ------------------------------------------------------------------------------------
    add(section("Cloud Functions (2nd gen)",
                "Per function: its own service account (Firestore, exactly the topics it publishes to, the secrets\n"
                "it reads), its source zip, the function, and for topic-triggered functions the push\n"
                "subscription with retry and dead-letter policy. The 'publishes' list of stack.toml is thus\n"
                "enforced by IAM: publishing anywhere else is denied."))
    for fn in decl["functions"]:
        for block in _function_blocks(decl, fn):
            add(block)
    add(_services(decl))

    # scheduler ------------------------------------------------------------------------------------
    add(section("Cloud Scheduler"))
    for job in decl.get("scheduler", []):
        attrs = {"schema": s} if (s := payload_schema(job)) else None
        add(resource("google_cloud_scheduler_job", label(job["name"]),
                     ("name", job["name"]),
                     ("region", Ref("var.region")),
                     ("schedule", job["schedule"]),
                     ("time_zone", job.get("time_zone", "Etc/UTC")),
                     Block("pubsub_target",
                           ("topic_name", Ref(f"google_pubsub_topic.{label(job['topic'])}.id")),
                           Comment(job["payload"]),
                           ("data", payload_b64(job)),
                           ("attributes", attrs) if attrs else None),
                     APIS_DEP))

    # firestore ------------------------------------------------------------------------------------
    add(section("Firestore composite indexes and TTL fields",
                "In the project's (default) database, which must already exist."))
    for ix in decl.get("firestore_indexes", []):
        add(resource("google_firestore_index", index_label(ix),
                     ("project", Ref("var.project")),
                     ("database", "(default)"),
                     ("collection", ix["collection"]),
                     *[Block("fields", ("field_path", f), ("order", o)) for f, o in ix["fields"]],
                     APIS_DEP))

    for ttl in decl.get("firestore_ttl", []):
        add(resource("google_firestore_field", ttl_label(ttl),
                     Comment("documents expire once this timestamp field is in the past"),
                     ("project", Ref("var.project")),
                     ("database", "(default)"),
                     ("collection", ttl["collection_group"]),
                     ("field", ttl["field"]),
                     Block("ttl_config"),
                     APIS_DEP))

    # outputs --------------------------------------------------------------------------------------
    add(section("Outputs"))
    api = [f for f in decl["functions"] if f["trigger"] == "http"]
    for fn in api:
        uri = Ref(f"google_cloudfunctions2_function.{fn['name']}.service_config[0].uri")
        add(Block(f'output "{fn["name"]}_url"', ("value", uri)))
    add(Block('output "redis_host"', ("value", Ref("google_redis_instance.cache.host"))))
    return "\n\n".join(parts) + "\n"


def _map_expr(d: dict) -> str:
    width = max(len(k) for k in d)
    body = "\n".join(f"    {k.ljust(width)} = {lit(v)}" for k, v in d.items())
    return "{\n" + body + "\n  }"


def _function_blocks(decl: dict, fn: dict) -> list[Any]:
    name, trig = fn["name"], fn["trigger"]
    sa = f"google_service_account.fn_{name}"
    member = Tmpl(f"serviceAccount:${{{sa}.email}}")
    http = trig == "http"
    fsecrets = function_secrets(decl, fn)
    title = f"# ---- function {name}: {'HTTP' if http else 'pushed from ' + trig} "
    out: list[Any] = [title + "-" * max(4, 98 - len(title))]
    out.append(resource("google_service_account", f"fn_{name}",
                        ("account_id", service_account_id(name)),
                        ("display_name", f"Stratagem function {name}"),
                        APIS_DEP))
    out.append(resource("google_project_iam_member", f"fn_{name}_firestore",
                        ("project", Ref("var.project")),
                        ("role", "roles/datastore.user"),
                        ("member", member)))
    for t in fn.get("publishes", []):
        out.append(resource("google_pubsub_topic_iam_member", f"fn_{name}_publishes_{label(t)}",
                            ("topic", Ref(f"google_pubsub_topic.{label(t)}.name")),
                            ("role", "roles/pubsub.publisher"),
                            ("member", member)))
    for s in fsecrets:
        out.append(resource("google_secret_manager_secret_iam_member", f"fn_{name}_reads_{label(s['name'])}",
                            ("secret_id", Ref(f"google_secret_manager_secret.{label(s['name'])}.id")),
                            ("role", "roles/secretmanager.secretAccessor"),
                            ("member", member)))
    zip_path = f"${{local.source_dir}}/{name}.zip"
    out.append(resource("google_storage_bucket_object", f"src_{name}",
                        Comment("content-addressed: a new zip is a new object, which redeploys the function"),
                        ("bucket", Ref("var.source_bucket")),
                        ("name", Tmpl(f'stratagem/functions/{name}-${{filemd5("{zip_path}")}}.zip')),
                        ("source", Tmpl(zip_path))))
    env = function_env(decl, fn)
    env_expr = Ref("local.function_env") if not env else Ref(f"merge(local.function_env, {lit(env)})")
    deps = [f"google_project_iam_member.fn_{name}_firestore"] + \
           [f"google_secret_manager_secret_iam_member.fn_{name}_reads_{label(s['name'])}" for s in fsecrets]
    out.append(resource(
        "google_cloudfunctions2_function", name,
        ("name", function_id(name)),
        ("location", Ref("var.region")),
        ("description", f"Stratagem {name}: " + ("HTTP API" if http else f"push subscription on {trig}")),
        Block("build_config",
              ("runtime", decl["project"].get("runtime", "python311")),
              ("entry_point", fn["entry_point"]),
              Block("source", Block("storage_source",
                                    ("bucket", Ref("var.source_bucket")),
                                    ("object", Ref(f"google_storage_bucket_object.src_{name}.name"))))),
        Block("service_config",
              ("available_memory", fn["memory"]),
              ("timeout_seconds", fn["timeout_s"]),
              ("service_account_email", Ref(f"{sa}.email")),
              ("ingress_settings", "ALLOW_ALL"),
              ("all_traffic_on_latest_revision", True),
              ("vpc_connector", Ref("google_vpc_access_connector.connector.id")),
              ("vpc_connector_egress_settings", "PRIVATE_RANGES_ONLY"),
              ("environment_variables", env_expr),
              *[Block("secret_environment_variables",
                      ("key", s["env"]),
                      ("project_id", Ref("var.project")),
                      ("secret", Ref(f"google_secret_manager_secret.{label(s['name'])}.secret_id")),
                      ("version", "latest")) for s in fsecrets]),
        ("depends_on", Ref("[" + ", ".join(deps) + "]")),
        comment=("HTTP trigger; public at the network and IAM level because the API authenticates every call\n"
                 "itself (Firebase ID token, stratagem.api.FirebaseAuth)." if http else
                 f"Triggered by {trig} through the push subscription below\n(no event_trigger: see the header).")))
    run_service = (("location", Ref(f"google_cloudfunctions2_function.{name}.location")),
                   ("service", Ref(f"google_cloudfunctions2_function.{name}.name")),
                   ("role", "roles/run.invoker"))
    if http:
        out.append(resource("google_cloud_run_service_iam_member", f"{name}_public", *run_service,
                            ("member", "allUsers")))
        return out
    proj = decl["project"]
    dl = dead_letter_topic_of(decl, fn)
    out.append(resource("google_cloud_run_service_iam_member", f"{name}_invoker", *run_service,
                        ("member", Tmpl("serviceAccount:${google_service_account.pubsub_push.email}"))))
    if dl is None:
        policy: list[Any] = [Comment("The dead-letter consumer: no dead-letter policy (it would loop back here); "
                                     "Pub/Sub retries until it succeeds.")]
        deps = f"[google_cloud_run_service_iam_member.{name}_invoker]"
    else:
        dlr = label(dl)
        policy = [Block("dead_letter_policy",
                        ("dead_letter_topic", Ref(f"google_pubsub_topic.{dlr}.id")),
                        ("max_delivery_attempts", proj["max_delivery_attempts"]))]
        deps = f"[google_cloud_run_service_iam_member.{name}_invoker, google_pubsub_topic_iam_member.{dlr}_publisher]"
    out.append(resource(
        "google_pubsub_subscription", f"{name}_push",
        ("name", push_subscription(name)),
        ("topic", Ref(f"google_pubsub_topic.{label(trig)}.id")),
        Comment("Pub/Sub waits this long for the function's answer: its timeout (Pub/Sub allows at most 600 s)."),
        ("ack_deadline_seconds", min(600, max(10, fn["timeout_s"]))),
        Block("push_config",
              ("push_endpoint", Ref(f"google_cloudfunctions2_function.{name}.service_config[0].uri")),
              Block("oidc_token", ("service_account_email", Ref("google_service_account.pubsub_push.email")))),
        Block("retry_policy", ("minimum_backoff", RETRY_MIN_BACKOFF), ("maximum_backoff", RETRY_MAX_BACKOFF)),
        *policy,
        Block("expiration_policy", ("ttl", "")),
        ("depends_on", Ref(deps))))
    if dl is not None:
        out.append(resource("google_pubsub_subscription_iam_member", f"{name}_push_dead_letter",
                            ("subscription", Ref(f"google_pubsub_subscription.{name}_push.name")),
                            ("role", "roles/pubsub.subscriber"),
                            ("member", Ref("local.pubsub_agent"))))
    return out


def service_id(name: str) -> str:
    """Cloud Run id of a declared service: ``ws_gateway`` -> ``stratagem-ws-gateway``."""
    return function_id(name)


def service_account_id_of_service(name: str) -> str:
    return f"stratagem-svc-{name.replace('_', '-')}"[:30]


def image_variable(name: str) -> str:
    return f"{name}_image"


SERVICE_DEFAULTS = {"memory": "512Mi", "cpu": "1", "timeout_s": 3600, "concurrency": 1000, "min_instances": 0,
                    "max_instances": 10, "port": 8080}


def _services(decl: dict) -> str:
    """Cloud Run services ([[services]], e.g. the WebSocket gateway): their own section.

    Per service: an image variable (built from ``build/services/<name>``, see deploy_plan.py), a
    service account with Firestore access (the alert log) and Pub/Sub editor (each instance
    creates and deletes its own subscription on the topic it ``subscribes`` to; creating a
    subscription needs a project-level permission that no narrower role grants), the
    google_cloud_run_v2_service itself (session affinity so a reconnecting browser tends to
    return to the same instance; the same environment and VPC connector as the functions), and
    public invocation (the service authenticates every socket itself)."""
    text = [section("Cloud Run services", "Long-lived services of [[services]] in stack.toml (Cloud Functions cannot "
                    "hold sockets).")]
    if not decl.get("services"):
        return text[0]
    blocks: list[Any] = []
    for svc in decl["services"]:
        name = svc["name"]
        cfg = {**SERVICE_DEFAULTS, **svc}
        sa = f"google_service_account.svc_{name}"
        member = Tmpl(f"serviceAccount:${{{sa}.email}}")
        blocks.append(Block(f'variable "{image_variable(name)}"', ("type", Ref("string")),
                            ("description", f"Container image of the {name} service (gcloud builds submit "
                                            f"build/functions/{name} --tag IMAGE).")))
        blocks.append(resource("google_service_account", f"svc_{name}",
                               ("account_id", service_account_id_of_service(name)),
                               ("display_name", f"Stratagem service {name}"),
                               APIS_DEP))
        blocks.append(resource("google_project_iam_member", f"svc_{name}_firestore",
                               ("project", Ref("var.project")),
                               ("role", "roles/datastore.user"),
                               ("member", member)))
        blocks.append(resource("google_project_iam_member", f"svc_{name}_pubsub",
                               Comment(f"creates, pulls and deletes its instances' subscriptions on {svc['subscribes']}"),
                               ("project", Ref("var.project")),
                               ("role", "roles/pubsub.editor"),
                               ("member", member)))
        blocks.append(resource(
            "google_cloud_run_v2_service", name,
            ("name", service_id(name)),
            ("location", Ref("var.region")),
            ("description", f"Stratagem {name}: pulls {svc['subscribes']} through a subscription per instance"),
            ("ingress", "INGRESS_TRAFFIC_ALL"),
            ("deletion_protection", False),
            Block("template",
                  ("service_account", Ref(f"{sa}.email")),
                  ("timeout", f"{int(cfg['timeout_s'])}s"),
                  ("max_instance_request_concurrency", int(cfg["concurrency"])),
                  ("session_affinity", True),
                  Block("scaling", ("min_instance_count", int(cfg["min_instances"])),
                        ("max_instance_count", int(cfg["max_instances"]))),
                  Block("vpc_access", ("connector", Ref("google_vpc_access_connector.connector.id")),
                        ("egress", "PRIVATE_RANGES_ONLY")),
                  Block("containers",
                        ("image", Ref(f"var.{image_variable(name)}")),
                        Block("ports", ("container_port", int(cfg["port"]))),
                        Block("resources", ("limits", {"cpu": str(cfg["cpu"]), "memory": cfg["memory"]})),
                        Block('dynamic "env"', ("for_each", Ref("local.function_env")),
                              Block("content", ("name", Ref("env.key")), ("value", Ref("env.value")))))),
            ("depends_on", Ref(f"[google_project_iam_member.svc_{name}_firestore, "
                               f"google_project_iam_member.svc_{name}_pubsub]")),
            comment=f"source: functions/{name}/ (main.py, Dockerfile)"))
        blocks.append(resource("google_cloud_run_v2_service_iam_member", f"{name}_public",
                               Comment("public at the IAM level: the service authenticates every connection itself"),
                               ("location", Ref(f"google_cloud_run_v2_service.{name}.location")),
                               ("name", Ref(f"google_cloud_run_v2_service.{name}.name")),
                               ("role", "roles/run.invoker"),
                               ("member", "allUsers")))
        blocks.append(Block(f'output "{name}_url"', ("value", Ref(f"google_cloud_run_v2_service.{name}.uri"))))
    return "\n\n".join(text + ["\n".join(b.render()) for b in blocks])


HEADER = """
# GENERATED by infra/render_terraform.py from infra/stack.toml: do not edit by hand.
#   regenerate: python infra/render_terraform.py
#   check:      python infra/render_terraform.py --check
#
# Build the source zips first (python infra/deploy_plan.py stage --zip), then
#   terraform -chdir=infra/terraform apply -var project=P -var source_bucket=B
#
# Dead-letter policy: topic-triggered functions are NOT given an event_trigger. An Eventarc
# trigger creates its own push subscription that Terraform does not own, so a dead-letter policy
# could only be patched onto it afterwards and would be lost whenever the trigger is recreated.
# Instead each such function is deployed with an HTTP endpoint (its entry point stays a
# @functions_framework.cloud_event: the framework converts a Pub/Sub push body into the
# CloudEvent Eventarc would deliver) and gets an explicit google_pubsub_subscription that pushes
# to its URL with an OIDC token, retries with exponential backoff (retry_policy, the push
# equivalent of RETRY_POLICY_RETRY) and dead-letters after max_delivery_attempts. The function
# answers non-2xx exactly when stratagem.function_runtime re-raises a transient error; malformed
# and permanently failing messages are acknowledged and logged.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed main.tf differs")
    ap.add_argument("--stdout", action="store_true", help="print the rendering instead of writing it")
    ap.add_argument("--stack", type=Path, default=DEFAULT, help="the declaration (default infra/stack.toml)")
    ap.add_argument("--output", type=Path, default=OUTPUT)
    args = ap.parse_args(argv)
    text = render(load(args.stack))
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python infra/render_terraform.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
