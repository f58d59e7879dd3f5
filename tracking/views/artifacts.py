"""A run's artifacts in the browser: the listing of a folder, a preview of one file (text,
image, CSV head) and its download, all through tracking.artifacts, which keeps every path
inside the session's organization ("<org id>/<experiment id>/...") and refuses dot segments.
"""

import csv
import io
import posixpath

from django.http import FileResponse, Http404
from django.urls import reverse
from django.utils.http import urlencode

from config.exceptions import ApplicationError
from tenancy.web import org_page
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
from tracking.views.common import run_or_404

PREVIEW_BYTES = 64 * 1024
CSV_ROWS = 20
# Shown inline with <img>; served with a sandbox CSP, so even an SVG runs no script here.
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
               "gif": "image/gif", "webp": "image/webp", "bmp": "image/bmp",
               "svg": "image/svg+xml"}


def _extension(name: str) -> str:
    return posixpath.splitext(name)[1].lstrip(".").lower()


def _located(org, run, relative: str) -> tuple[str, str]:
    """(org-relative path, storage name) of `relative` below the run's artifact root."""
    relative = artifact_path_clean(relative)
    root = artifact_path_of_uri(run.artifact_uri)
    full = posixpath.join(root, relative) if relative else root
    return full, f"{org.pk}/{artifact_path_clean(full)}"


def _crumbs(relative: str) -> list[dict]:
    crumbs, parts = [{"name": "artifacts", "path": ""}], relative.split("/") if relative else []
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


def _download_url(run, relative: str) -> str:
    return f"{reverse('run-artifact', args=[run.run_uuid])}?{urlencode({'path': relative})}"


def _entries(org, run, folder: str) -> list[dict]:
    entries = []
    for entry in artifact_list(org=org, path=_located(org, run, folder)[0]):
        path = posixpath.join(folder, entry.path) if folder else entry.path
        entries.append({"name": entry.path, "is_dir": entry.is_dir, "size": entry.file_size,
                        "path": path,
                        "download": "" if entry.is_dir else _download_url(run, path)})
    return entries


def browse(org, run, relative: str) -> dict:
    """The run page's artifacts section for `?path=`: a folder's entries, or one file's
    preview beside its folder. An error (a bad or missing path) is shown, not raised."""
    try:
        relative = artifact_path_clean(relative)
        full, name = _located(org, run, relative)
        kind = storage_kind(artifact_storage(), name) if relative else "dir"
        if kind is None:
            raise ApplicationError(f"No such artifact: '{relative}'", kind="not_found")
        folder = relative if kind == "dir" else posixpath.dirname(relative)
        preview = None
        if kind == "file":
            download = _download_url(run, relative)
            preview = {**_preview(org, full, relative, download), "download": download}
        entries = _entries(org, run, folder)
    except ApplicationError as exc:
        return {"error": exc.message, "crumbs": _crumbs(""), "entries": []}
    return {"error": "", "crumbs": _crumbs(folder), "entries": entries, "preview": preview,
            "selected": relative}


@org_page
def run_artifact(request, run_id: str):
    """One artifact file: a download, or (`inline=1`, images only) for an <img> on the run page."""
    run = run_or_404(request, run_id)
    relative = request.GET.get("path", "")
    try:
        full, _name = _located(request.access.org, run, relative)
        file = artifact_open(org=request.access.org, path=full)
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
