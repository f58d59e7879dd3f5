"""MLflow's artifact proxy: `/api/2.0/mlflow-artifacts/artifacts[/<path>]` (and /ajax-api),
plus the tracking RPC `artifacts/list`. Adapters over tracking/artifacts.py.

What the client sends (mlflow/store/artifact/http_artifact_repo.py): one PUT per file with the
file as a raw body and a Content-Length; `GET artifacts?path=<dir>` to list (it reads
`files`, each `{path, is_dir, file_size}` with `path` relative to the directory); a streamed GET
per file. Bodies stream both ways; nothing here holds a whole file.
"""

import logging
import mimetypes
import posixpath
import re

from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from audit.actors import Actor
from config.exceptions import ApplicationError
from tenancy.roles import Capability
from tracking.artifacts import (
    CHUNK_SIZE,
    artifact_delete,
    artifact_download_url,
    artifact_list,
    artifact_open,
    artifact_path_clean,
    artifact_path_of_uri,
    artifact_upload,
)
from tracking.mlflow_api import scope
from tracking.mlflow_api.errors import MlflowError, missing
from tracking.mlflow_api.request import MlflowRequest
from tracking.mlflow_api.views import (
    Context,
    authorize,
    error_response,
    json_response,
    rpc,
)
from tracking.selectors import logged_model_get, run_get

logger = logging.getLogger(__name__)

ENCODED_SEPARATOR = re.compile(r"%(2f|5c|2e)", re.IGNORECASE)
# Served as text/plain, as MLflow does (mlflow/utils/mime_type_utils.py).
TEXT_EXTENSIONS = frozenset([
    "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon",
    "toml", "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "ipynb",
    "MLmodel", "mlproject",
])


def _files(entries, prefix: str = "") -> list[dict]:
    """MLflow's FileInfo JSON: directories carry no file_size."""
    files = []
    for entry in entries:
        info = {"path": posixpath.join(prefix, entry.path) if prefix else entry.path,
                "is_dir": entry.is_dir}
        if entry.file_size is not None:
            info["file_size"] = entry.file_size
        files.append(info)
    return files


def _listing(request, access, _path: str) -> HttpResponse:
    files = _files(artifact_list(org=access.org, path=request.GET.get("path", "")))
    # Like MLflow (protobuf JSON drops empty lists): an empty or missing directory is {}.
    return json_response({"files": files} if files else {})


def _mime_type(name: str) -> str:
    extension = posixpath.splitext(name)[1].lstrip(".") or name
    if extension in TEXT_EXTENSIONS:
        return "text/plain"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _download(request, access, artifact_path: str) -> HttpResponse:
    if not artifact_path:
        return _listing(request, access, artifact_path)
    url = artifact_download_url(org=access.org, path=artifact_path)
    if url is not None:
        return HttpResponseRedirect(url)
    file = artifact_open(org=access.org, path=artifact_path)
    name = posixpath.basename(artifact_path.rstrip("/"))
    response = FileResponse(file, as_attachment=True, filename=name,
                            content_type=_mime_type(name))
    response.block_size = CHUNK_SIZE
    # Uploaded content is never rendered as a page of this origin.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response


class UndelimitedBody(MlflowError):
    """A chunked body the server did not de-chunk (Django's development server)."""


def _body(request):
    """The body stream and its length (None: read to the end, which the server marks)."""
    raw = request.META.get("CONTENT_LENGTH")
    if raw:
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            raise MlflowError(f"Invalid Content-Length {raw!r}.", "BAD_REQUEST")
        return request, length
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # gunicorn de-chunks and says so; without that mark the body cannot be delimited.
        if request.META.get("wsgi.input_terminated"):
            return request.META["wsgi.input"], None
        raise UndelimitedBody("Send artifacts with a Content-Length header; this server cannot "
                              "read a chunked request body.", "BAD_REQUEST")
    return request, 0


def _upload(request, access, artifact_path: str) -> HttpResponse:
    stream, length = _body(request)
    artifact_upload(org=access.org, path=artifact_path, stream=stream, length=length,
                    actor=Actor.from_request(request, token=access.token))
    return json_response({})


def _delete(request, access, artifact_path: str) -> HttpResponse:
    artifact_delete(org=access.org, path=artifact_path,
                    actor=Actor.from_request(request, token=access.token))
    return json_response({})


HANDLERS = {
    "GET": (_download, Capability.READ),
    "PUT": (_upload, Capability.WRITE),
    "DELETE": (_delete, Capability.WRITE),
}


def _refuse_encoded_separators(request) -> None:
    """Servers decode %2f, %5c and %2e before Django sees the path; where the raw request line
    is available (gunicorn's RAW_URI, REQUEST_URI elsewhere) refuse them outright."""
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or ""
    if ENCODED_SEPARATOR.search(raw.split("?", 1)[0]):
        raise MlflowError("Invalid artifact path: encoded '/', '\\' and '.' are not allowed.")


@csrf_exempt
def artifacts_endpoint(request, artifact_path: str = ""):
    try:
        if request.method not in HANDLERS:
            raise MlflowError(f"No endpoint {request.method} {request.path}",
                              "ENDPOINT_NOT_FOUND")
        handler, capability = HANDLERS[request.method]
        access = authorize(request, capability)
        _refuse_encoded_separators(request)
        if access.run_scope:  # a project run's token: its run's artifacts, its inputs' (scope.py)
            target = artifact_path or (request.GET.get("path", "") if request.method == "GET"
                                       else "")
            scope.check_artifact(scope.RunScope(access), request.method, target)
        return handler(request, access, artifact_path)
    except UndelimitedBody as exc:
        # The unread body would be parsed as the next request on this connection. Without a
        # Content-Length the development server closes the connection after the response.
        error = error_response(exc)
        return StreamingHttpResponse(iter([error.content]), status=error.status_code,
                                     content_type=error["Content-Type"])
    except MlflowError as exc:
        return error_response(exc)
    except ApplicationError as exc:
        return error_response(MlflowError.from_application_error(exc))
    except OSError:
        # Storage trouble (disk full, I/O error): MLflow's JSON 500, which the client retries.
        logger.exception("artifact storage failed for %s %s", request.method, request.path)
        return error_response(MlflowError("The artifact storage failed; try again.",
                                          "INTERNAL_ERROR"))


@rpc("GET", "artifacts/list")
def list_run_artifacts(ctx: Context, req: MlflowRequest) -> dict:
    """Tracking's ListArtifacts: paths relative to the run's artifact root."""
    run_id = req.str("run_id", "") or req.str("run_uuid", "")  # run_uuid: the old name
    if not run_id:
        raise missing("run_id")
    run = run_get(org=ctx.org, run_id=run_id)
    return _list_below(ctx, run.artifact_uri, req.str("path", ""))


@rpc("GET", "logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(ctx: Context, req: MlflowRequest) -> dict:
    """ListLoggedModelArtifacts: paths relative to the logged model's artifact root."""
    model = logged_model_get(org=ctx.org, model_id=req.str("model_id"))
    return _list_below(ctx, model.artifact_uri, req.str("artifact_directory_path", ""))


def _list_below(ctx: Context, root_uri: str, relative: str) -> dict:
    relative = artifact_path_clean(relative)
    root = artifact_path_of_uri(root_uri)
    entries = artifact_list(org=ctx.org, path=posixpath.join(root, relative) if relative else root)
    files = _files(entries, prefix=relative)
    return {"root_uri": root_uri, **({"files": files} if files else {})}


# Mount under both "api/2.0/mlflow-artifacts/" and "ajax-api/2.0/mlflow-artifacts/". The
# name gives uploads their own body limit (LEDGERFLOW_UPLOAD_VIEWS, config/limits.py); the
# exact per-file limit and the organization's quota are artifact_upload's.
urls = [
    re_path(r"^artifacts/?$", artifacts_endpoint, name="mlflow-artifacts"),
    path("artifacts/<path:artifact_path>", artifacts_endpoint, name="mlflow-artifacts"),
]
