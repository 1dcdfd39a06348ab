#!/usr/bin/env bash
# Deploy Stratagem to Google Cloud with gcloud, from infra/stack.toml.
#
#   infra/deploy.sh --project P [--region R] [--dry-run]
#
# Same topology as infra/terraform/main.tf (use one or the other for a project): topics, the
# dead-letter topic, per-function service accounts and IAM, functions deployed from a staged
# source directory (functions/<name> + the shared stratagem package + requirements.txt), a push
# subscription with retry and dead-letter policy per topic-triggered function, scheduler jobs and
# Firestore indexes. The commands come from infra/deploy_plan.py; re-running converges.
#
#   --dry-run   print the commands and change nothing (no staging, no gcloud calls)
#
# Secrets are created empty; before the first real run add their values, e.g.
#   printf %s "$GEMINI_API_KEY" | gcloud secrets versions add stratagem-gemini-api-key --data-file=-
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

PROJECT="${GOOGLE_CLOUD_PROJECT:-}"
REGION=""
DRY_RUN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --project) PROJECT="${2:?--project needs a value}"; shift 2 ;;
    --project=*) PROJECT="${1#*=}"; shift ;;
    --region) REGION="${2:?--region needs a value}"; shift 2 ;;
    --region=*) REGION="${1#*=}"; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ -z "$PROJECT" ]]; then
  if [[ $DRY_RUN -eq 1 ]]; then PROJECT="PROJECT_ID"; else
    echo "deploy.sh: --project (or GOOGLE_CLOUD_PROJECT) is required" >&2; exit 2
  fi
fi

STAGE="${STRATAGEM_STAGE_DIR:-$ROOT/build/functions}"  # staged sources (gitignored build/)
args=(script --project "$PROJECT" --source-dir "$STAGE")
[[ -n "$REGION" ]] && args+=(--region "$REGION")

if [[ $DRY_RUN -eq 1 ]]; then
  exec "$PYTHON" "$ROOT/infra/deploy_plan.py" "${args[@]}"
fi

command -v gcloud >/dev/null || { echo "deploy.sh: gcloud is not installed" >&2; exit 1; }
"$PYTHON" "$ROOT/infra/deploy_plan.py" stage --out "$STAGE"
PLAN="$(dirname "$STAGE")/deploy-plan.sh"
"$PYTHON" "$ROOT/infra/deploy_plan.py" "${args[@]}" > "$PLAN"
echo "deploy.sh: running $PLAN" >&2
bash -x "$PLAN"
