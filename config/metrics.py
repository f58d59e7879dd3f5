"""Prometheus metrics: request latency per route, Celery tasks per queue, queue depth, and
per organization the disclosure requests not answered yet and those past their deadline.

Web and worker are several processes each (gunicorn workers, Celery's prefork pool). With
PROMETHEUS_MULTIPROC_DIR set (docker/entrypoint.sh sets it), every process writes its samples
there and one scrape adds them up: prometheus_client's multiprocess mode. The web's /metrics
answers for the web processes and what is counted at scrape time (queue depths, disclosure
requests); a worker started with
LEDGERFLOW_METRICS_PORT answers for its own tasks on that port.

Routes are the URL patterns ("api/v1/disclosures/<uuid:pk>/pdf"), and for the MLflow protocol
the RPC as registered ("mlflow/runs/get"): a bounded set, never a path with ids in it.
"""

import logging
import os
import secrets

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

from config.jobs.kinds import QUEUES

logger = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "ledgerflow_http_request_duration_seconds", "HTTP request latency by route",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TASKS = Counter("ledgerflow_celery_tasks_total", "Celery tasks finished, by queue and state",
                ["task", "queue", "state"])
TASK_SECONDS = Histogram(
    "ledgerflow_celery_task_duration_seconds", "Celery task run time by queue",
    ["task", "queue"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400),
)


def route_of(request) -> str:
    route = getattr(request, "metrics_route", None)  # set by the MLflow dispatcher
    if route:
        return route
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.route or match.view_name or "unnamed"


def observe_request(request, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route_of(request), request.method, str(status)).observe(seconds)


def observe_task(task_name: str, queue: str, state: str, seconds: float | None) -> None:
    TASKS.labels(task_name, queue, state).inc()
    if seconds is not None:
        TASK_SECONDS.labels(task_name, queue).observe(seconds)


class QueueDepthCollector:
    """Messages waiting in each queue, asked of the broker at scrape time."""

    def collect(self):
        from celery import current_app as app  # the project's app (config/celery.py)

        family = GaugeMetricFamily("ledgerflow_celery_queue_depth",
                                   "Messages waiting in a Celery queue", labels=["queue"])
        try:
            with app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                channel = conn.default_channel
                for queue in QUEUES:
                    try:
                        declared = channel.queue_declare(queue=queue, passive=True)
                    except Exception:  # a queue no one declared yet holds nothing
                        family.add_metric([queue], 0)
                        continue
                    family.add_metric([queue], declared.message_count)
        except Exception as exc:  # broker down: no depth rather than no metrics
            logger.warning("queue depth unavailable: %s", exc)
        yield family


class DisclosureRequestCollector:
    """Art. 15 requests with nothing delivered yet, and those of them past their deadline
    (reports.models.RequestQuerySet), per organization, counted at scrape time. Every
    organization has both series, 0 included, so an alert can tell none from no data."""

    def collect(self):
        from django.db import DatabaseError

        open_ = GaugeMetricFamily(
            "ledgerflow_disclosure_requests_open",
            "Art. 15 disclosure requests not answered yet (no version delivered)", labels=["org"])
        overdue = GaugeMetricFamily(
            "ledgerflow_disclosure_requests_overdue",
            "Art. 15 disclosure requests past their deadline with no version delivered",
            labels=["org"])
        try:
            for slug, pending, late in _disclosure_counts():
                open_.add_metric([slug], pending)
                overdue.add_metric([slug], late)
        except DatabaseError as exc:  # database down: no counts rather than no metrics
            logger.warning("disclosure request counts unavailable: %s", exc)
        yield open_
        yield overdue


def _disclosure_counts() -> list[tuple[str, int, int]]:
    """(organization slug, open requests, overdue requests) of every organization."""
    from django.db.models import Count

    from reports.models import DisclosureRequest
    from tenancy.models import Organization

    def per_org(requests) -> dict:
        return dict(requests.values("org__slug").annotate(n=Count("pk"))
                    .values_list("org__slug", "n"))

    pending = per_org(DisclosureRequest.objects.undelivered())
    late = per_org(DisclosureRequest.objects.overdue())
    return [(slug, pending.get(slug, 0), late.get(slug, 0))
            for slug in Organization.objects.values_list("slug", flat=True)]


_SCRAPE_TIME = CollectorRegistry(auto_describe=False)
_SCRAPE_TIME.register(QueueDepthCollector())
_SCRAPE_TIME.register(DisclosureRequestCollector())


def _process_registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@require_GET
def metrics(request):
    """Prometheus exposition; with LEDGERFLOW_METRICS_TOKEN set, only with that bearer token."""
    token = settings.LEDGERFLOW_METRICS_TOKEN
    if token:
        sent = request.META.get("HTTP_AUTHORIZATION", "")
        if not secrets.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("A metrics token is required.\n", status=401,
                                content_type="text/plain")
    body = generate_latest(_process_registry()) + generate_latest(_SCRAPE_TIME)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def start_worker_server(port: int) -> None:
    """The worker's own exposition (its pool's tasks), on LEDGERFLOW_METRICS_PORT."""
    start_http_server(port, registry=_process_registry())
