"""The Celery application; tasks live in each app's tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("ledgerflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="ledgerflow.ping")
def ping(payload: str) -> str:
    """Round trip for readiness checks and `manage.py worker_ping`: proves a worker consumes."""
    return f"pong:{payload}"
