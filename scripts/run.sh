#!/usr/bin/env bash
# `make run`: the embedded default (SQLite, local files, filesystem broker), a gunicorn web
# server and a real Celery worker process. Ctrl-C (or SIGTERM) stops both cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
export LEDGERFLOW_PUBLIC_URL="${LEDGERFLOW_PUBLIC_URL:-http://$HOST:$PORT}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost,[::1],$HOST}"
PY=.venv/bin/python

$PY manage.py migrate --noinput -v0
seed="$($PY manage.py demo_seed)"
token="$(tail -n1 <<<"$seed")"

pids=()
stop() {
  trap - INT TERM
  echo "Stopping (web and worker)..."
  # Note the pool processes too: a master can exit a moment before its children do.
  local all=("${pids[@]}") pid child alive
  for pid in "${pids[@]}"; do
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do all+=("$child"); done
  done
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 150); do
    alive=0
    for pid in "${all[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  echo "Stopped."
}
trap 'stop; exit 0' INT TERM

# One worker with an embedded beat (audit checkpoints); production runs beat on its own.
.venv/bin/celery -A config worker --loglevel INFO --concurrency 2 \
  --queues default,packaging,projects,reports --hostname "ledgerflow@%h" \
  --beat --schedule "${LEDGERFLOW_DATA_DIR:-var}/celerybeat-schedule" &
pids+=($!)
.venv/bin/gunicorn config.wsgi --bind "$HOST:$PORT" --worker-class gthread --workers 2 \
  --threads 4 --graceful-timeout 10 --log-level warning &
pids+=($!)

url="http://$HOST:$PORT"
for _ in $(seq 1 100); do
  if $PY - "$url/health" <<<'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' 2>/dev/null; then
    break
  fi
  sleep 0.2
done

cat <<BANNER

Ledgerflow is running.
  URL:    $url/
$(sed -n '1,2s/^/  /p' <<<"$seed")
  Token:  $token
  MLflow: export MLFLOW_TRACKING_URI=$url MLFLOW_TRACKING_TOKEN=$token
Press Ctrl-C to stop.

BANNER

# Either process dying takes the other down with it (a Ctrl-C is handled by the trap).
status=0
wait -n "${pids[@]}" || status=$?
stop
exit "$status"
