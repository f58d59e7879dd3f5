#!/usr/bin/env bash
# Ledgerflow's process roles, the same in the container image and on a plain machine:
#
#   entrypoint.sh migrate                  apply database migrations
#   entrypoint.sh collectstatic            collect static files for WhiteNoise (each release)
#   entrypoint.sh check                    manage.py check --deploy, warnings fail
#   entrypoint.sh create-bucket            create AWS_STORAGE_BUCKET_NAME if it is missing
#   entrypoint.sh web [GUNICORN ARGS]      gunicorn, configured by docker/gunicorn.conf.py
#   entrypoint.sh worker QUEUE [ARGS]      a Celery worker for one queue only
#   entrypoint.sh beat [ARGS]              Celery beat (run exactly one)
#   entrypoint.sh probe [PATH]             exit 0 when the local web answers PATH with 200
#   entrypoint.sh COMMAND [ARGS]           anything else runs as given
#
# Python, gunicorn and celery come from $LEDGERFLOW_VENV/bin, else <repo>/.venv/bin, else PATH.
# Long-running roles `exec`, so SIGTERM reaches gunicorn or Celery, which shut down gracefully.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if [ -n "${LEDGERFLOW_VENV:-}" ]; then
  BIN="$LEDGERFLOW_VENV/bin/"
elif [ -x "$ROOT/.venv/bin/python" ]; then
  BIN="$ROOT/.venv/bin/"
else
  BIN=""
fi
[ -n "$BIN" ] && export PATH="${BIN%/}:$PATH"

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.production}"
export LEDGERFLOW_DATA_DIR="${LEDGERFLOW_DATA_DIR:-/var/lib/ledgerflow}"

# Prometheus multiprocess mode (config/metrics.py): the processes of one gunicorn or Celery
# master write their samples into one directory of their own, which must start empty.
metrics_dir() {
  if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    PROMETHEUS_MULTIPROC_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ledgerflow-metrics-$1.XXXXXX")"
    export PROMETHEUS_MULTIPROC_DIR
  fi
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
}

role="${1:-}"
[ $# -gt 0 ] && shift

case "$role" in
  migrate)
    exec "${BIN}python" manage.py migrate --noinput "$@"
    ;;
  collectstatic)
    # Not served: plotly's Jupyter widget bundle and sample data, the ReDoc UI (the API docs
    # page is Swagger UI). Half the time, since WhiteNoise compresses every file it collects.
    exec "${BIN}python" manage.py collectstatic --noinput --ignore widgetbundle.js \
      --ignore datasets --ignore redoc "$@"
    ;;
  check)
    exec "${BIN}python" manage.py check --deploy --fail-level WARNING "$@"
    ;;
  create-bucket)
    exec "${BIN}python" - "$@" <<'PY'
import os
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

bucket = os.environ["AWS_STORAGE_BUCKET_NAME"]
secret_file = os.environ.get("AWS_SECRET_ACCESS_KEY_FILE")
if secret_file:
    os.environ["AWS_SECRET_ACCESS_KEY"] = Path(secret_file).read_text().strip()
region = os.environ.get("AWS_S3_REGION_NAME") or None
s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_S3_ENDPOINT_URL") or None,
                  region_name=region)
try:
    s3.head_bucket(Bucket=bucket)
    print(f"bucket {bucket} exists")
except ClientError as exc:
    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
        raise
    where = {} if region in (None, "us-east-1") else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **where)
    print(f"bucket {bucket} created")
PY
    ;;
  web)
    metrics_dir web
    exec "${BIN}gunicorn" config.wsgi -c "$ROOT/docker/gunicorn.conf.py" "$@"
    ;;
  worker)
    queue="${1:-}"
    # per queue: concurrency, hard and soft time limit (seconds)
    case "$queue" in
      default)   defaults=(4 660 600) ;;
      packaging) defaults=(2 1200 900) ;;
      reports)   defaults=(2 1200 900) ;;
      # a project run enforces its own timeout (LEDGERFLOW_PROJECT_MAX_TIMEOUT, up to 24 h)
      projects)  defaults=(2 90000 86400) ;;
      *)
        echo "entrypoint.sh worker: unknown queue '${queue}'; use one of: default, packaging, projects, reports" >&2
        exit 2
        ;;
    esac
    shift
    [ -n "${LEDGERFLOW_METRICS_PORT:-}" ] && metrics_dir "worker-$queue"
    exec "${BIN}celery" -A config worker --queues "$queue" --hostname "$queue@%h" \
      --loglevel INFO \
      --concurrency "${CELERY_CONCURRENCY:-${defaults[0]}}" \
      --time-limit "${CELERY_TIME_LIMIT:-${defaults[1]}}" \
      --soft-time-limit "${CELERY_SOFT_TIME_LIMIT:-${defaults[2]}}" \
      "$@"
    ;;
  beat)
    mkdir -p "$LEDGERFLOW_DATA_DIR"
    exec "${BIN}celery" -A config beat --loglevel INFO \
      --schedule "$LEDGERFLOW_DATA_DIR/celerybeat-schedule" "$@"
    ;;
  probe)
    # The request carries an allowed Host (Django answers 400 to any other), to the port of
    # LEDGERFLOW_BIND on loopback. Used by the image's HEALTHCHECK and the compose file.
    exec "${BIN}python" - "${1:-/health}" <<'PY'
import os
import sys
import urllib.request

port = os.environ.get("LEDGERFLOW_BIND", "0.0.0.0:8000").rsplit(":", 1)[-1]
hosts = [h.strip().lstrip(".") for h in os.environ.get("ALLOWED_HOSTS", "").split(",")]
host = next((h for h in hosts if h and h != "*"), "localhost")
request = urllib.request.Request(f"http://127.0.0.1:{port}{sys.argv[1]}", headers={"Host": host})
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:
    sys.exit(f"probe {sys.argv[1]}: {exc}")
PY
    ;;
  "")
    echo "usage: entrypoint.sh migrate|collectstatic|check|create-bucket|web|worker QUEUE|beat|probe [PATH]|COMMAND..." >&2
    exit 2
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
