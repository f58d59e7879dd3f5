"""A run's artifacts in the browser: the listing of a folder, a preview of one file (text,
image, CSV head) and its download, all through tracking.artifacts, which keeps every path
inside the session's organization ("<org id>/<experiment id>/...") and refuses dot segments.

The same for the files of a model the run logged (`?model=<model id>`): MLflow 3 keeps a
logged model's files below the model's own artifact location, not the run's; only a model
whose source run is this run is reachable through the run's pages.
"""

import csv
import io
import posixpath

from django.http import FileResponse, Http404
from django.urls import reverse
from django.utils.http import urlencode

from config.exceptions import ApplicationError
from tenancy.web import found, org_page
from tracking import selectors
from tracking.artifacts import (
    CHUNK_SIZE,
    artifact_list,
    artifact_open,
    artifact_path_clean,
    artifact_path_of_uri,
    artifact_storage,
    storage_kind,
)
from tracking.mlflow_api.artifacts import TEXT_EXTENSIONS
from tracking.models import LoggedModel, Run
from tracking.views.common import run_or_404

PREVIEW_BYTES = 64 * 1024
CSV_ROWS = 20
# Shown inline with <img>; served with a sandbox CSP, so even an SVG runs no script here.
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
               "gif": "image/gif", "webp": "image/webp", "bmp": "image/bmp",
               "svg": "image/svg+xml"}


def _extension(name: str) -> str:
    return posixpath.splitext(name)[1].lstrip(".").lower()


def _located(org, root_uri: str, relative: str) -> tuple[str, str]:
    """(org-relative path, storage name) of `relative` below an artifact root (the run's, or
    a logged model's)."""
    relative = artifact_path_clean(relative)
    root = artifact_path_of_uri(root_uri)
    full = posixpath.join(root, relative) if relative else root
    return full, f"{org.pk}/{artifact_path_clean(full)}"


def _crumbs(relative: str, root_name: str = "artifacts") -> list[dict]:
    crumbs, parts = [{"name": root_name, "path": ""}], relative.split("/") if relative else []
    for index, part in enumerate(parts):
        crumbs.append({"name": part, "path": "/".join(parts[: index + 1])})
    return crumbs


def _head(org, full: str) -> tuple[bytes, bool]:
    """The first PREVIEW_BYTES of a file, and whether there is more."""
    with artifact_open(org=org, path=full) as file:
        data = file.read(PREVIEW_BYTES + 1)
    return data[:PREVIEW_BYTES], len(data) > PREVIEW_BYTES


def _csv_head(text: str, truncated: bool, delimiter: str) -> list[list[str]]:
    lines = text.splitlines()
    if truncated and lines:
        lines.pop()  # cut mid-row
    try:
        return list(csv.reader(io.StringIO("\n".join(lines[: CSV_ROWS + 1])),
                               delimiter=delimiter))
    except csv.Error:
        return []


def _preview(org, full: str, relative: str, download: str) -> dict:
    name, extension = posixpath.basename(relative), _extension(relative)
    if extension in IMAGE_TYPES:
        return {"kind": "image", "src": f"{download}&inline=1", "name": name}
    data, truncated = _head(org, full)
    if extension not in TEXT_EXTENSIONS and b"\x00" in data:
        return {"kind": "binary", "name": name}
    text = data.decode("utf-8", errors="replace")
    if extension in ("csv", "tsv"):
        rows = _csv_head(text, truncated, "\t" if extension == "tsv" else ",")
        if rows:
            return {"kind": "csv", "name": name, "header": rows[0], "rows": rows[1:]}
    return {"kind": "text", "name": name, "text": text, "truncated": truncated}


def model_query(model: LoggedModel | None) -> str:
    """What a link into a logged model's files starts its query with ("" for the run's)."""
    return f"{urlencode({'model': model.model_id})}&" if model is not None else ""


def _download_url(run: Run, relative: str, model: LoggedModel | None = None) -> str:
    return (f"{reverse('run-artifact', args=[run.run_uuid])}?{model_query(model)}"
            f"{urlencode({'path': relative})}")


def _root_uri(run: Run, model: LoggedModel | None) -> str:
    return model.artifact_uri if model is not None else run.artifact_uri


def _entries(org, run, folder: str, model: LoggedModel | None) -> list[dict]:
    entries = []
    for entry in artifact_list(org=org, path=_located(org, _root_uri(run, model), folder)[0]):
        path = posixpath.join(folder, entry.path) if folder else entry.path
        entries.append({"name": entry.path, "is_dir": entry.is_dir, "size": entry.file_size,
                        "path": path,
                        "download": "" if entry.is_dir else _download_url(run, path, model)})
    return entries


def browse(org, run, relative: str, model: LoggedModel | None = None) -> dict:
    """The run page's artifacts section for `?path=` (and `?model=`, a logged model of the
    run): a folder's entries, or one file's preview beside its folder. An error (a bad or
    missing path) is shown, not raised."""
    root_name = model.name if model is not None else "artifacts"
    shown = {"model": model, "query": model_query(model)}
    try:
        relative = artifact_path_clean(relative)
        full, name = _located(org, _root_uri(run, model), relative)
        kind = storage_kind(artifact_storage(), name) if relative else "dir"
        if kind is None:
            raise ApplicationError(f"No such artifact: '{relative}'", kind="not_found")
        folder = relative if kind == "dir" else posixpath.dirname(relative)
        preview = None
        if kind == "file":
            download = _download_url(run, relative, model)
            preview = {**_preview(org, full, relative, download), "download": download}
        entries = _entries(org, run, folder, model)
    except ApplicationError as exc:
        return {**shown, "error": exc.message, "crumbs": _crumbs("", root_name), "entries": []}
    return {**shown, "error": "", "crumbs": _crumbs(folder, root_name), "entries": entries,
            "preview": preview, "selected": relative}


@org_page
def run_artifact(request, run_id: str):
    """One artifact file: a download, or (`inline=1`, images only) for an <img> on the run page;
    `model=<model id>`: a file of a model the run logged."""
    run = run_or_404(request, run_id)
    org, model = request.access.org, None
    if request.GET.get("model"):
        model = found(selectors.run_logged_model_get, org=org, run=run,
                      model_id=request.GET["model"])
    relative = request.GET.get("path", "")
    try:
        full, _name = _located(org, _root_uri(run, model), relative)
        file = artifact_open(org=org, path=full)
    except ApplicationError as exc:
        raise Http404(exc.message) from None
    name = posixpath.basename(relative.rstrip("/")) or "artifact"
    image = IMAGE_TYPES.get(_extension(name))
    inline = request.GET.get("inline") == "1" and image is not None
    response = FileResponse(file, as_attachment=not inline, filename=name,
                            content_type=image or "application/octet-stream")
    response.block_size = CHUNK_SIZE
    # Uploaded content is never rendered as a page of this origin.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response
