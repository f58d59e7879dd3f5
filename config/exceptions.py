"""One domain error type, and the one DRF handler that turns every failure into a response.

Native API errors look like `{"code": "...", "detail": "...", "fields": {...}}`; the MLflow
adapter maps the same ApplicationError kinds onto MLflow's `error_code`s instead.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A domain rule refused the operation. `kind` decides the HTTP status."""

    STATUS = {
        "invalid": status.HTTP_400_BAD_REQUEST,
        "already_exists": status.HTTP_409_CONFLICT,
        "not_found": status.HTTP_404_NOT_FOUND,
        "permission_denied": status.HTTP_403_FORBIDDEN,
        "conflict": status.HTTP_409_CONFLICT,
        "model_failed": status.HTTP_422_UNPROCESSABLE_ENTITY,  # the model's code raised
        "unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,   # its scorer crashed, timed out
    }

    def __init__(self, message: str, *, kind: str = "invalid", fields: dict | None = None):
        if kind not in self.STATUS:
            raise ValueError(f"unknown ApplicationError kind {kind!r}")
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.fields = fields or {}


def _body(code: str, detail, fields=None) -> dict:
    body = {"code": code, "detail": str(detail)}
    if fields:
        body["fields"] = fields
    return body


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(_body(exc.kind, exc.message, exc.fields), status=exc.STATUS[exc.kind])
    if isinstance(exc, DjangoValidationError):
        fields = getattr(exc, "message_dict", None)
        return Response(_body("invalid", "; ".join(exc.messages), fields), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _body("invalid", "The request has invalid fields.", exc.detail)
    else:
        codes = exc.get_codes()
        response.data = _body(codes if isinstance(codes, str) else "error", exc.detail)
    return response
