"""The MLflow wire protocol: one Django view that authenticates, routes `/api/2.0/mlflow/<rpc>`
(and the /ajax-api and /api/3.0 variants) to handlers, and speaks MLflow's error format.

Handlers are adapters: they read the request, call tracking services/selectors, and return a
dict. No business rule lives here (STYLE.md, "Where this project goes further").
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from mlflow.exceptions import MlflowException

from audit.actors import Actor
from config.exceptions import ApplicationError
from tenancy.authentication import (
    WORKSPACE_HEADER,
    Access,
    AuthenticationError,
    WorkspaceNotFound,
    authenticate_token_header,
    session_access,
)
from tenancy.roles import Capability
from tenancy.throttling import LockedOut, rate_check
from tracking.mlflow_api import scope
from tracking.mlflow_api.errors import MlflowError
from tracking.mlflow_api.request import MlflowRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """Who calls, in which organization; handed to every handler."""

    access: Access
    request: object

    @property
    def org(self):
        return self.access.org

    def actor(self) -> Actor:
        return Actor.from_request(self.request, token=self.access.token)


@dataclass(frozen=True)
class Route:
    handler: Callable
    capability: Capability
    pattern: re.Pattern
    path: str  # as registered, "runs/get": the route's name in metrics


ROUTES: dict[str, list[Route]] = {}


def rpc(method: str, path: str, capability: Capability = Capability.READ):
    """Register a handler for `METHOD mlflow/<path>`; `{name}` in the path is an argument."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")

    def register(handler):
        ROUTES.setdefault(method, []).append(Route(handler, capability, regex, path))
        return handler

    return register


def json_response(body: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                        status=status, content_type="application/json")


def error_response(exc: MlflowError) -> HttpResponse:
    response = json_response({"error_code": exc.error_code, "message": exc.message}, exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _match(method: str, path: str):
    for route in ROUTES.get(method, ()):
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None, None


def mlflow_access(request) -> Access:
    """Token (Bearer or Basic) or, for the UI's /ajax-api, the browser session."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header:
        try:
            user, access = authenticate_token_header(header, request.META.get(WORKSPACE_HEADER),
                                                     request)
        except AuthenticationError as exc:
            raise MlflowError(str(exc), "UNAUTHENTICATED") from None
        except LockedOut as exc:
            raise MlflowError(str(exc), "REQUEST_LIMIT_EXCEEDED", exc.retry_after) from None
        except WorkspaceNotFound as exc:
            raise MlflowError(str(exc), "RESOURCE_DOES_NOT_EXIST") from None
        request.user = user
        return access
    if request.path.startswith("/ajax-api/") and getattr(request, "user", None) is not None:
        access = session_access(request)
        if access is not None:
            return access
    raise MlflowError("Authentication required: send 'Authorization: Bearer <token>' "
                      "(MLFLOW_TRACKING_TOKEN) or HTTP Basic with your email and a token.",
                      "UNAUTHENTICATED")


@csrf_exempt
def mlflow_endpoint(request, rpc_path: str):
    try:
        route, args = _match(request.method, rpc_path)
        if route is None:
            raise MlflowError(f"No endpoint {request.method} {request.path}", "ENDPOINT_NOT_FOUND")
        request.metrics_route = f"mlflow/{route.path}"
        access = authorize(request, route.capability)
        # A project run's token: dead once its run ended (401), and an allow-list for reads
        # and writes alike (403, before the handler: nothing is written). Other tokens skip it.
        run_scope = scope.RunScope(access) if access.run_scope else None
        req = MlflowRequest(request, args)
        if run_scope is not None:
            scope.check_rpc(run_scope, request.method, route.path, req.data,
                            request.body if request.method != "GET" else b"")
        result = route.handler(Context(access, request), req)
    except MlflowError as exc:
        return error_response(exc)
    except ApplicationError as exc:
        return error_response(MlflowError.from_application_error(exc))
    except ValidationError as exc:
        return error_response(MlflowError("; ".join(exc.messages)))
    except MlflowException as exc:  # raised by MLflow's own validators we call
        return error_response(MlflowError(exc.message, exc.error_code))
    except Exception:  # the client expects JSON even then (and retries 5xx)
        logger.exception("MLflow endpoint %s %s failed", request.method, request.path)
        return error_response(MlflowError("Internal error; see the server log for the "
                                          "request id.", "INTERNAL_ERROR"))
    if isinstance(result, HttpResponse):
        return result
    return json_response(result if result is not None else {})


def authorize(request, capability: Capability) -> Access:
    """Who calls (token, or the browser session on /ajax-api with CSRF for writes) and whether
    they may do what `capability` names; raises MlflowError otherwise."""
    access = mlflow_access(request)
    request.org = access.org
    if request.path.startswith("/ajax-api/") and not request.META.get("HTTP_AUTHORIZATION") \
            and request.method != "GET":
        _check_csrf(request)
    if not access.can(capability):
        raise MlflowError(_denied(access, capability), "PERMISSION_DENIED")
    if (wait := rate_check(request, access)) is not None:
        raise MlflowError(f"Too many requests: at most {settings.LEDGERFLOW_API_RATE} a minute "
                          f"per token (LEDGERFLOW_API_RATE); retry in {wait} s.",
                          "REQUEST_LIMIT_EXCEEDED", wait)
    return access


def _denied(access: Access, capability: Capability) -> str:
    if access.token is not None and access.token.read_only:
        return "This token is read-only."
    return f"Your role '{access.role}' does not allow this ({capability} needed)."


def _check_csrf(request) -> None:
    from django.middleware.csrf import CsrfViewMiddleware

    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if reason is not None:
        raise MlflowError("CSRF check failed.", "PERMISSION_DENIED")
