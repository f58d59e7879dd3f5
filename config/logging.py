"""Access log: one structured line per request, with the request id from django-guid, and
its latency in the Prometheus metrics (config/metrics.py)."""

import logging
import time

from config.metrics import observe_request

logger = logging.getLogger("ledgerflow.access")


def request_log_middleware(get_response):
    def middleware(request):
        started = time.perf_counter()
        response = get_response(request)
        seconds = time.perf_counter() - started
        observe_request(request, response.status_code, seconds)
        org = getattr(request, "org", None)
        user = getattr(request, "user", None)
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "org": org.slug if org is not None else None,
                "user_id": user.pk if user is not None and user.is_authenticated else None,
            },
        )
        return response

    return middleware
