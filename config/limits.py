"""Request body limits: a body whose Content-Length is past its view's limit is answered 413
before anything reads it (settings in config/settings/fragments/quotas.py).

It checks in process_view, once the URL is resolved (the view decides the limit) and before
any view or CsrfViewMiddleware.process_view reads the body, so it must come before
CsrfViewMiddleware in MIDDLEWARE. A body without a Content-Length (chunked) is read by no
Django view: Django reads CONTENT_LENGTH bytes, none without it. The one view that reads a
chunked body, the artifact upload, counts it as it streams (tracking/artifacts.py).
"""

import logging
import re

import orjson
from django.conf import settings
from django.http import HttpResponse

logger = logging.getLogger(__name__)

MLFLOW_PATH = re.compile(r"^/(?:ajax-)?api/(?:2\.0|3\.0)/mlflow(?:-artifacts)?/")
MIB = 1024 * 1024


def body_limit(request) -> tuple[int, str]:
    """The most bytes the body of `request` may have (0: no limit) and the setting saying so."""
    general = settings.LEDGERFLOW_MAX_REQUEST_BYTES
    match = getattr(request, "resolver_match", None)
    upload = settings.LEDGERFLOW_UPLOAD_VIEWS.get(match.url_name) if match else None
    if upload is None:
        return general, "LEDGERFLOW_MAX_REQUEST_BYTES"
    own = getattr(settings, upload)
    return (own + general if own and general else 0), upload


def _declared_length(request) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None  # Django reads nothing of a body it cannot delimit
    return length if length >= 0 else None


def _in_mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB" if size >= MIB else f"{size} bytes"


def too_large_response(request, message: str) -> HttpResponse:
    """413 in the format of the route: MLflow's, the native API's, or plain text."""
    if MLFLOW_PATH.match(request.path_info):
        body = {"error_code": "RESOURCE_EXHAUSTED", "message": message}
    elif request.path_info.startswith("/api/"):
        body = {"code": "request_too_large", "detail": message}
    else:
        return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
    return HttpResponse(orjson.dumps(body), status=413, content_type="application/json")


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        limit, setting = body_limit(request)
        length = _declared_length(request)
        if not limit or length is None or length <= limit:
            return None
        logger.warning("refused a body of %d bytes to %s %s: past %s (%d)", length,
                       request.method, request.path, setting, limit)
        return too_large_response(request, f"The request body ({_in_mib(length)}, {length} bytes) "
                                           f"is larger than this server accepts here "
                                           f"({limit} bytes).")
