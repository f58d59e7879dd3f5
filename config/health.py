"""Liveness (`/health`, the plain "OK" MLflow answers) and readiness (`/ready`)."""

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection

from config.addresses import client_address, is_loopback


@require_GET
def health(request):
    return HttpResponse("OK", content_type="text/plain")


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    # A fresh connection each time: a pooled one could hide a broker that went away.
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    with Connection(settings.CELERY_BROKER_URL, transport_options=options,
                    connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


@require_GET
def ready(request):
    """Which dependency is down, for anyone (a balancer needs no more); why (the error, which
    can name hosts, ports and users), only for a caller on this machine."""
    checks, healthy = {}, True
    detailed = is_loopback(client_address(request))
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            checks[name] = check()
        except Exception as exc:  # any failure means "not ready"; say which and why
            checks[name] = f"error: {exc.__class__.__name__}: {exc}" if detailed else "error"
            healthy = False
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status=200 if healthy else 503)


def probe_middleware(get_response):
    """Load balancers, orchestrators and Prometheus call by IP address, a Host header that
    ALLOWED_HOSTS rightly refuses for everything else: the probes answer before the host check
    (and stay out of the access log and the latency metrics)."""
    from config.metrics import metrics

    probes = {"/health": health, "/ready": ready, "/metrics": metrics}

    def middleware(request):
        view = probes.get(request.path_info)
        return view(request) if view is not None else get_response(request)

    return middleware
