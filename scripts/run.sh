#!/usr/bin/env bash
# `make run`: the embedded default (SQLite, local files, filesystem broker), a gunicorn web
# server and a real Celery worker process, restarted whenever it dies. Ctrl-C (or SIGTERM or
# SIGHUP) stops both cleanly. Their output goes to $DATA/log/web.log and worker.log, so the
# banner stays on screen; LEDGERFLOW_LOG_TO_CONSOLE=1 shows it here instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
export LEDGERFLOW_PUBLIC_URL="${LEDGERFLOW_PUBLIC_URL:-http://$HOST:$PORT}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost,[::1],$HOST}"
PY=.venv/bin/python
DATA="${LEDGERFLOW_DATA_DIR:-var}"
mkdir -p "$DATA/log"
if [ "${LEDGERFLOW_LOG_TO_CONSOLE:-0}" = 1 ]; then
  web_log=/dev/stdout worker_log=/dev/stdout
else
  web_log="$DATA/log/web.log" worker_log="$DATA/log/worker.log"
fi

$PY manage.py migrate --noinput -v0
seed="$($PY manage.py demo_seed)"

web="" worker="" worker_since=0 restart_delay=1 napping=""
# setsid is util-linux's; elsewhere the worker stays in this script's process group.
SETSID="$(command -v setsid || true)"

start_worker() {
  # One worker with an embedded beat (audit checkpoints, the jobs sweep); production runs beat
  # on its own. A session of its own, so that its pool and beat go with it when it dies.
  $SETSID .venv/bin/celery -A config worker --loglevel INFO --concurrency 2 \
    --queues default,packaging,projects,reports --hostname "ledgerflow@%h" \
    --beat --schedule "$DATA/celerybeat-schedule" >>"$worker_log" 2>&1 &
  worker=$!
  worker_since=$SECONDS
}

end_worker_group() {
  # What is left of a worker that died (a beat or pool process outliving its master would
  # send and take messages beside the next one): its whole process group.
  [ -n "$SETSID" ] && kill -TERM -- "-$worker" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    pgrep -g "$worker" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  kill -KILL -- "-$worker" 2>/dev/null || true
}

stop() {
  trap - INT TERM HUP
  echo "Stopping (web and worker)..."
  # Note the pool processes too: a master can exit a moment before its children do.
  local all=() pid child alive
  for pid in $web $worker; do
    all+=("$pid")
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do all+=("$child"); done
  done
  [ -n "$web$worker" ] && kill -TERM $web $worker 2>/dev/null || true
  for _ in $(seq 1 150); do
    alive=0
    for pid in "${all[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  [ -n "$worker" ] && end_worker_group
  [ -n "$napping" ] && kill "$napping" 2>/dev/null
  wait $web $worker $napping 2>/dev/null || true
  echo "Stopped."
}
trap 'stop; exit 0' INT TERM HUP

start_worker
.venv/bin/gunicorn config.wsgi --bind "$HOST:$PORT" --worker-class gthread --workers 2 \
  --threads 4 --graceful-timeout 10 --log-level warning >>"$web_log" 2>&1 &
web=$!

web_died() {
  # Ctrl-C reaches gunicorn and this script together; gunicorn may be gone before the signal
  # is handled here. Give the trap its turn (it stops everything and exits 0) before calling
  # this a crash.
  sleep 0.5
  echo "The web server exited with status $1; the end of $web_log:"
  [ -f "$web_log" ] && tail -n 20 "$web_log"
  stop
  exit "$(($1 == 0 ? 1 : $1))"
}

url="http://$HOST:$PORT"
for _ in $(seq 1 150); do
  kill -0 "$web" 2>/dev/null || { status=0; wait "$web" || status=$?; web_died "$status"; }
  if $PY - "$url/health" <<<'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' 2>/dev/null; then
    break
  fi
  sleep 0.2
done

logs="Logs: $web_log and $worker_log (LEDGERFLOW_LOG_TO_CONSOLE=1 shows them here)."
[ "${LEDGERFLOW_LOG_TO_CONSOLE:-0}" = 1 ] && logs="Logs: here (LEDGERFLOW_LOG_TO_CONSOLE=1)."
cat <<BANNER

Ledgerflow is running.
  URL:    $url/
$(sed '$d' <<<"$seed" | sed 's/^/  /')

  Shown again by \`.venv/bin/python manage.py demo_credentials\`, kept in $(tail -n1 <<<"$seed").
  $logs
  The worker packages the demo's credit-risk model in the background (building the runner
  environment first, a few minutes, on a fresh machine).
Press Ctrl-C to stop.

BANNER

# The web server dying ends `make run`; the worker dying, for any reason, only restarts it
# (after a pause that grows while it keeps dying young).
while true; do
  status=0
  wait -n "$web" "$worker" || status=$?
  if ! kill -0 "$web" 2>/dev/null; then
    web_died "$status"
  fi
  if ! kill -0 "$worker" 2>/dev/null; then
    lived=$((SECONDS - worker_since))
    end_worker_group
    if [ "$lived" -ge 60 ]; then restart_delay=1; fi
    echo "The worker exited with status $status after ${lived}s; restarting it in" \
      "${restart_delay}s (its log: $worker_log)."
    sleep "$restart_delay" &  # in the background: a trapped signal interrupts `wait` at once
    napping=$!
    wait "$napping" || true
    napping=""
    restart_delay=$((restart_delay < 32 ? restart_delay * 2 : 60))
    start_worker
  fi
done
