"""Where a model version's files are: the client's `source` URI, resolved to a path in the
organization's artifact store (tracking/artifacts.py) at creation time.

Accepted, as the mlflow client sends them: `models:/<logged model id>`, `runs:/<run id>/<path>`,
`mlflow-artifacts:/<path>` and this server's `http(s)://…/mlflow-artifacts/artifacts/<path>`.
Anything else (s3://, file://, another server) is refused: the package is copied from our own
store, never fetched from a location someone else controls.
"""

import posixpath
from dataclasses import dataclass
from urllib.parse import urlparse

from config.exceptions import ApplicationError
from tracking.artifacts import (
    artifact_list,
    artifact_locate,
    artifact_path_clean,
    artifact_path_of_uri,
)
from tracking.models import Run
from tracking.selectors import logged_model_get, run_get


@dataclass(frozen=True)
class Source:
    path: str  # org-relative artifact path of the model directory
    run: Run | None
    model_id: str


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid")


def _stored_path(uri: str) -> str:
    try:
        return artifact_path_of_uri(uri)
    except ApplicationError:
        raise _invalid(f"Unsupported model source '{uri}': register a model logged to this "
                       "server (models:/<model id>, runs:/<run id>/<path> or "
                       "mlflow-artifacts:/<path>).") from None


def source_resolve(*, org, source: str, run_id: str = "", model_id: str = "") -> Source:
    run = run_get(org=org, run_id=run_id) if run_id else None
    logged = logged_model_get(org=org, model_id=model_id) if model_id else None
    parsed = urlparse(source)
    if parsed.scheme == "models":
        logged = logged_model_get(org=org, model_id=(parsed.netloc + parsed.path).strip("/"))
        path = _stored_path(logged.artifact_uri)
    elif parsed.scheme == "runs":  # runs:/<run id>/<path> (one slash, so no netloc)
        run_part, _, inner = (parsed.netloc + parsed.path).strip("/").partition("/")
        run = run_get(org=org, run_id=run_part)
        path = posixpath.join(_stored_path(run.artifact_uri), artifact_path_clean(inner))
    else:
        path = _stored_path(source)
    location = artifact_locate(org=org, path=path.rstrip("/"))
    if not artifact_list(org=org, path=location.path):
        raise _invalid(f"No model files at '{source}': log the model before registering it.")
    if run is None and logged is not None and logged.source_run_id is not None:
        run = logged.source_run
    return Source(location.path, run, logged.model_id if logged else model_id)
