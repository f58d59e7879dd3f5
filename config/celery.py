"""The Celery application; tasks live in each app's tasks.py."""

import os
import time

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("ledgerflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="ledgerflow.ping")
def ping(payload: str) -> str:
    """Round trip for readiness checks and `manage.py worker_ping`: proves a worker consumes."""
    return f"pong:{payload}"


# Prometheus (config/metrics.py): every task's outcome and run time, labelled with its queue.
_started: dict[str, float] = {}


@signals.task_prerun.connect
def _task_started(task_id=None, **_kwargs):
    _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **_kwargs):
    from config.metrics import observe_task

    started = _started.pop(task_id, None)
    delivery = getattr(task.request, "delivery_info", None) or {}
    queue = delivery.get("routing_key") or task.queue or "default"
    observe_task(task.name, queue, state or "UNKNOWN",
                 None if started is None else time.monotonic() - started)


@signals.worker_init.connect
def _worker_metrics_server(**_kwargs):
    port = os.environ.get("LEDGERFLOW_METRICS_PORT")
    if port:
        from config.metrics import start_worker_server

        start_worker_server(int(port))


@signals.worker_ready.connect
def _sandbox_announced(sender=None, **_kwargs):
    """Say at every start where untrusted code runs on this worker: loudly when nowhere safe
    (LEDGERFLOW_SANDBOX=none) or when the host cannot make a sandbox (those jobs then fail,
    naming what is missing; they never run unsandboxed)."""
    import logging

    from config.sandbox import SandboxUnavailable, backend

    log = logging.getLogger("config.sandbox")
    try:
        chosen = backend()
        chosen.check()
    except SandboxUnavailable as exc:
        log.error("NO SANDBOX: this worker will refuse project runs, environment builds and "
                  "model loading: %s", exc)
        return
    if chosen.name == "none":
        log.warning("SANDBOX DISABLED (LEDGERFLOW_SANDBOX=none): project code and models on "
                    "this worker run with the worker's own rights. Never in production.")
    else:
        log.info("Untrusted code on this worker runs in the %s sandbox.", chosen.name)
