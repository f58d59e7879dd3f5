"""Artifacts: where an organization's files live, which paths are allowed, and audited writes.

Files go through Django's storage API (`STORAGES["artifacts"]`: a local directory, or S3 when
that entry is swapped), each organization's under its own prefix "<org id>/"; a path's first
segment must be one of the org's experiment ids, so no path reaches another organization.
Writes stream: the body is staged chunk by chunk (hashed and counted) before any transaction
opens, then published inside the transaction that records the audit event; the previous state
is set aside until commit, so a failed audit write leaves storage as it was (DESIGN.md
invariants 1 and 3). The MLflow views (tracking/mlflow_api/artifacts.py) adapt these.

Sizes (config/settings/fragments/quotas.py): one file at most LEDGERFLOW_MAX_ARTIFACT_BYTES,
and an organization's artifacts at most its quota (Organization.artifact_quota). What each
organization keeps is counted in Organization.artifact_bytes: every upload adds its size
(less the size of the file it replaces), every delete takes its files' sizes back, in the
transaction of the change's audit event and under a lock on the organization's row, so two
parallel uploads cannot together pass the quota. An upload is checked before its body is read
(its Content-Length), while it streams (a chunked body), and finally under that lock; a refused
one leaves nothing (ResourceExhausted: 413, MLflow's RESOURCE_EXHAUSTED). Counted are the files
an organization's users and tokens upload here; model packages (models_registry, their own
storage), project archives (LEDGERFLOW_PROJECT_MAX_BYTES) and the logs a project run's worker
copies into its run are not. artifact_usage_recount() recounts from storage.
"""

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import models, transaction
from django.db.models import F
from django.db.models.functions import Greatest

from audit.actors import Actor
from audit.services import audit_record
from config.exceptions import ApplicationError
from tenancy.models import Organization
from tracking.models import Experiment, LoggedModel, Run

logger = logging.getLogger(__name__)

STORAGE_ALIAS = "artifacts"
# Staged uploads and set-aside old versions; org prefixes are numbers, so no path reaches it.
SCRATCH = ".scratch"
CHUNK_SIZE = 1024 * 1024
MAX_PATH_LENGTH = 2048
MAX_SEGMENT_BYTES = 255  # what common filesystems allow for one name
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\#]")  # control characters, backslash, fragment


def artifact_storage() -> Storage:
    return storages[STORAGE_ALIAS]


# Read-only trees other apps serve through the artifact proxy, by first path segment (never a
# number, so never an experiment id): segment -> resolver(org, rest) -> (storage, name).
# models_registry mounts "registry" for model packages.
READ_ONLY_MOUNTS: dict[str, Callable[[object, str], tuple[Storage, str]]] = {}


def _mounted(org, path: str) -> tuple[Storage, str] | None:
    head, _, rest = path.partition("/")
    resolver = READ_ONLY_MOUNTS.get(head)
    return resolver(org, rest) if resolver is not None else None


@dataclass(frozen=True)
class ArtifactFile:
    """One entry of a listing; `path` is relative to the listed directory."""

    path: str
    is_dir: bool
    file_size: int | None = None


@dataclass(frozen=True)
class ArtifactLocation:
    """A checked path inside an organization: "<experiment public id>/...", never empty."""

    org: object
    experiment: Experiment
    path: str

    @property
    def name(self) -> str:
        return f"{self.org.pk}/{self.path}"


class ResourceExhausted(ApplicationError):
    """Past a size limit or an organization's artifact quota: 413, MLflow's RESOURCE_EXHAUSTED
    (config.exceptions.ApplicationError has no kind for it; this subclass adds one)."""

    STATUS = {**ApplicationError.STATUS, "resource_exhausted": 413}

    def __init__(self, message: str):
        super().__init__(message, kind="resource_exhausted")


def _invalid(path: str, reason: str) -> ApplicationError:
    return ApplicationError(f"Invalid artifact path {path!r}: {reason}.", kind="invalid")


def _missing(path: str) -> ApplicationError:
    return ApplicationError(f"No such artifact: '{path}'", kind="not_found")


def artifact_path_clean(raw: str | None) -> str:
    """The client's path, checked: relative, "/"-separated, no dot segments, nothing encoded.

    Empty means the root; one trailing slash is dropped (the client sends it for "the whole
    directory"). Percent signs that decode to something are refused: the URL was decoded once
    already, so what is left would be a second, smuggled layer. Empty segments are refused
    too, since an encoded slash (%2f) arrives decoded and shows up as one.
    """
    path = raw or ""
    if len(path) > MAX_PATH_LENGTH:
        raise _invalid(path[:100] + "…", f"longer than {MAX_PATH_LENGTH} characters")
    if unquote(path) != path:
        raise _invalid(path, "percent-encoded characters are not allowed")
    if _FORBIDDEN.search(path):
        raise _invalid(path, "control characters, backslashes and '#' are not allowed")
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).drive:
        raise _invalid(path, "it must be relative")
    segments = path.split("/")
    if segments[-1] == "":
        segments.pop()
    if "" in segments:
        raise _invalid(path, "empty segments ('//') are not allowed")
    if any(segment in (".", "..") for segment in segments):
        raise _invalid(path, "'.' and '..' segments are not allowed")
    if any(len(segment.encode()) > MAX_SEGMENT_BYTES for segment in segments):
        raise _invalid(path, f"a name is longer than {MAX_SEGMENT_BYTES} bytes")
    return "/".join(segments)


PROXY_ROOT = "/mlflow-artifacts/artifacts/"


def artifact_path_of_uri(uri: str) -> str:
    """The org-relative path of an artifact URI this server stores (`mlflow-artifacts:/...` or
    this server's http(s) proxy URL); anything else is refused."""
    parsed = urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        return parsed.path.lstrip("/")
    if parsed.scheme in ("http", "https") and PROXY_ROOT in parsed.path:
        return parsed.path.split(PROXY_ROOT, 1)[1]
    raise ApplicationError(f"The artifacts at '{uri}' are not stored by this server.",
                           kind="invalid")


def _experiment_of(org, public_id: str) -> Experiment | None:
    experiments = Experiment.objects.filter(org=org)
    if public_id == "0":
        return experiments.filter(is_default=True).first()
    if public_id.isascii() and public_id.isdigit():
        return experiments.filter(pk=int(public_id), is_default=False).first()
    return None


def artifact_locate(*, org, path: str) -> ArtifactLocation:
    """Check `path` and place it in `org`; another organization's experiment is missing."""
    path = artifact_path_clean(path)
    if not path:
        raise ApplicationError("An artifact path is required.", kind="invalid")
    experiment = _experiment_of(org, path.split("/", 1)[0])
    if experiment is None:
        raise _missing(path)
    return ArtifactLocation(org, experiment, path)


def _local_path(storage: Storage, name: str) -> str | None:
    try:
        return storage.path(name)
    except NotImplementedError:  # object storage: no filesystem path
        return None


def storage_kind(storage: Storage, name: str) -> str | None:
    """"file", "dir" or None. Object stores have no directories, only common prefixes."""
    local = _local_path(storage, name)
    if local is not None:
        return "dir" if os.path.isdir(local) else "file" if os.path.isfile(local) else None
    if storage.exists(name):
        return "file"
    dirs, files = storage.listdir(name)
    return "dir" if dirs or files else None


def _listdir(storage: Storage, name: str) -> tuple[list[str], list[str]]:
    try:
        return storage.listdir(name)
    except (FileNotFoundError, NotADirectoryError):  # MLflow lists neither as anything
        return [], []


def artifact_list(*, org, path: str) -> list[ArtifactFile]:
    """The entries of a directory, sorted; a missing directory or a file lists as empty."""
    path = artifact_path_clean(path)
    mounted = _mounted(org, path) if path else None
    if mounted is not None:
        storage, name = mounted
    else:
        name = artifact_locate(org=org, path=path).name if path else str(org.pk)
        storage = artifact_storage()
    dirs, files = _listdir(storage, name)
    entries = [ArtifactFile(d, True) for d in dirs]
    entries += [ArtifactFile(f, False, storage.size(f"{name}/{f}")) for f in files]
    return sorted(entries, key=lambda entry: entry.path)


def artifact_open(*, org, path: str) -> File:
    """An open file for streaming out; a directory is refused, a missing file is 404."""
    path = artifact_path_clean(path)
    mounted = _mounted(org, path)
    if mounted is not None:
        storage, name = mounted
    else:
        storage, name = artifact_storage(), artifact_locate(org=org, path=path).name
    kind = storage_kind(storage, name)
    if kind == "dir":
        raise _invalid(path, "it refers to a directory, not a file")
    if kind is None:
        raise _missing(path)
    try:
        return storage.open(name, "rb")
    except FileNotFoundError:  # deleted since the check
        raise _missing(path) from None


def artifact_download_url(*, org, path: str) -> str | None:
    """A presigned URL of the object, when object storage is used and
    LEDGERFLOW_S3_PRESIGNED_DOWNLOADS is on; else None (the server streams the file)."""
    storage = artifact_storage()
    if not settings.LEDGERFLOW_S3_PRESIGNED_DOWNLOADS or _local_path(storage, "") is not None:
        return None
    path = artifact_path_clean(path)
    if _mounted(org, path) is not None:
        return None
    name = artifact_locate(org=org, path=path).name
    if storage_kind(storage, name) != "file":
        return None  # the stream answers a directory or a missing file with MLflow's error
    return storage.url(name)


def storage_files(storage: Storage, name: str, prefix: str = ""):
    """(path relative to the directory `name`, storage name) of every file below it, sorted."""
    dirs, files = _listdir(storage, name)
    for file in sorted(files):
        yield f"{prefix}{file}", f"{name}/{file}"
    for directory in sorted(dirs):
        yield from storage_files(storage, f"{name}/{directory}", f"{prefix}{directory}/")


def _walk_files(storage: Storage, name: str):
    for _relative, file in storage_files(storage, name):
        yield file, storage.size(file)


@dataclass(frozen=True)
class _Room:
    """What an upload may add: the per-file limit and the organization's quota (0: none),
    its usage when the upload began, and the size of the file the upload replaces."""

    org: Organization
    file_limit: int
    quota: int
    used: int
    replaced: int

    @classmethod
    def of(cls, org, replaced: int) -> "_Room":
        current = Organization.objects.get(pk=org.pk)  # fresh: the caller's copy may be old
        return cls(current, settings.LEDGERFLOW_MAX_ARTIFACT_BYTES, current.artifact_quota,
                   current.artifact_bytes, replaced)

    def check(self, size: int, *, complete: bool = True) -> None:
        """Refuse `size` bytes (all of the file, or with `complete` false, what arrived so far
        of a body of unknown length)."""
        if self.file_limit and size > self.file_limit:
            told = f"{size} bytes" if complete else f"more than {self.file_limit} bytes"
            raise ResourceExhausted(f"The artifact is too large: {told}; this server accepts "
                                    f"at most {self.file_limit} bytes per file.")
        if self.quota and self.used - self.replaced + size > self.quota:
            needed = f"{size - self.replaced} more bytes" if complete else \
                f"more than the {self.quota - self.used + self.replaced} bytes left"
            raise quota_exceeded(self.org, self.quota, self.used, needed)


def quota_exceeded(org, quota: int, used: int, needed: str) -> ResourceExhausted:
    return ResourceExhausted(
        f"Artifact quota exceeded: organization '{org.slug}' uses {used} of its {quota} bytes "
        f"and this upload needs {needed}. Delete artifacts or ask an administrator for a "
        f"larger quota.")


class _Intake:
    """The request body as a read-only stream of bounded chunks, hashed and counted.

    `read()` never returns more than CHUNK_SIZE, whatever the caller asks, so no storage
    backend can pull a whole upload into memory. With `room`, a body of unknown length is
    refused (ResourceExhausted) as soon as it passes a limit, not once it is all stored.
    """

    closed = False

    def __init__(self, stream, length: int | None, room: _Room | None = None):
        self.stream, self.length, self.room = stream, length, room
        self.size, self._sha256 = 0, hashlib.sha256()

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > CHUNK_SIZE:
            size = CHUNK_SIZE
        if self.length is not None:
            size = min(size, self.length - self.size)
        data = self.stream.read(size) if size > 0 else b""
        self._sha256.update(data)
        self.size += len(data)
        if self.room is not None and data:
            self.room.check(self.size, complete=self.length is not None)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # so storages do not try to rewind it
        return False

    def seek(self, *args):
        raise io.UnsupportedOperation("the request body is read once")

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def _save(storage: Storage, name: str, intake: _Intake, *, scratch: bool) -> None:
    content = File(intake, name=name.rsplit("/", 1)[-1])
    # Storages copy File.chunks(), 64 KiB by default; gunicorn reads ahead up to 1 MiB and
    # copies what it holds on every read, so 64 KiB reads copied each megabyte 16 times.
    content.DEFAULT_CHUNK_SIZE = CHUNK_SIZE
    try:
        saved = storage.save(name, content)
    except BaseException:
        if scratch:  # a partial staged file; an object store keeps no partial object
            storage.delete(name)
        raise
    if saved != name:  # a backend configured not to overwrite picked another name
        storage.delete(saved)
        raise RuntimeError(f"The artifact storage saved {name!r} as {saved!r}; "
                           "configure it to allow overwriting.")
    if intake.length is not None and intake.size != intake.length:
        storage.delete(name)
        raise ApplicationError(f"The upload ended after {intake.size} of {intake.length} "
                               "bytes.", kind="invalid")


class _LocalChange:
    """Put `staged` (or nothing, to delete) at `name` on the local filesystem with renames.

    The old version is moved aside, not removed, until `finish()` after commit; `undo()`
    restores it when the transaction fails, so storage and the audit trail never disagree.
    """

    def __init__(self, storage: Storage, name: str, staged: str | None = None):
        self.storage, self.name, self.staged = storage, name, staged
        self.path = name.split("/", 1)[1]  # as the client names it
        self.aside: str | None = None
        self.placed = False

    def apply(self) -> None:
        target = self.storage.path(self.name)
        if self.staged is not None and os.path.isdir(target):
            raise _invalid(self.path, "it is a directory")
        if self.staged is None and not os.path.lexists(target):
            raise _missing(self.path)  # deleted concurrently
        if os.path.lexists(target):
            os.makedirs(self.storage.path(SCRATCH), exist_ok=True)
            aside = f"{SCRATCH}/{uuid.uuid4().hex}"
            _set_aside(target, self.storage.path(aside), keep=self.staged is not None)
            self.aside = aside
        if self.staged is not None:
            self._place(target)

    def _place(self, target: str) -> None:
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise _invalid(self.path, "a parent of it is a file") from None
        os.replace(self.storage.path(self.staged), target)
        self.placed = True

    def undo(self) -> None:
        target = self.storage.path(self.name)
        if self.placed:
            os.replace(target, self.storage.path(self.staged))
        if self.aside is not None:
            os.replace(self.storage.path(self.aside), target)
        if self.staged is not None:
            self.storage.delete(self.staged)

    def finish(self) -> None:
        if self.aside is not None:
            _remove_local(self.storage.path(self.aside))


def _set_aside(path: str, aside: str, *, keep: bool) -> None:
    """Move `path` to `aside`; with `keep`, hard-link where possible, so readers see the old
    file until the new one replaces it in one rename."""
    if keep:
        with contextlib.suppress(OSError):  # no hard links on this filesystem: rename
            os.link(path, aside)
            return
    os.replace(path, aside)


def _remove_local(path: str) -> None:
    try:  # the change is committed; a leftover in .scratch is only wasted space
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    except OSError:
        logger.exception("could not remove %s", path)


class _ObjectStoreChange:
    """Object stores cannot rename. An upload was written in place (an object appears only
    when complete), so undoing it deletes it; a delete happens inside the transaction, last."""

    def __init__(self, storage: Storage, name: str, uploaded: bool):
        self.storage, self.name, self.uploaded = storage, name, uploaded

    def apply(self) -> None:
        if not self.uploaded:
            for file, _size in list(_walk_files(self.storage, self.name)):
                self.storage.delete(file)
            self.storage.delete(self.name)

    def undo(self) -> None:
        if self.uploaded:
            self.storage.delete(self.name)

    def finish(self) -> None:
        pass


def _change(storage: Storage, name: str, staged: str | None):
    if _local_path(storage, "") is not None:
        return _LocalChange(storage, name, staged)
    return _ObjectStoreChange(storage, name, uploaded=staged is not None)


def _commit(change, location: ArtifactLocation, actor: Actor, action: str,
            charge: Callable[[], None], **state) -> None:
    """Count the bytes, record the event and apply the change in one transaction; undo the
    change if any fails, drop what was set aside once committed."""
    try:
        with transaction.atomic(durable=True):
            # First: it locks the organization's row, before audit_record locks the chain
            # head (the order organization_update takes them in, so neither waits for the other).
            charge()
            audit_record(org=location.org, actor=actor, action=action,
                         target=_audit_target(location), target_label=_label(location.path),
                         **state)
            change.apply()
    except BaseException:
        try:
            change.undo()
        except Exception:  # keep the original error; this one is only logged
            logger.exception("could not undo an artifact change of %s", change.name)
        raise
    change.finish()


def _audit_target(location: ArtifactLocation):
    """The run or logged model the path belongs to, else its experiment."""
    parts = location.path.split("/")
    if len(parts) > 2 and parts[1] == "models":
        model = LoggedModel.objects.filter(org=location.org, experiment=location.experiment,
                                           model_id=parts[2]).first()
        if model is not None:
            return model
    if len(parts) > 1:
        run = Run.objects.filter(org=location.org, experiment=location.experiment,
                                 run_uuid=parts[1]).first()
        if run is not None:
            return run
    return location.experiment


def _label(path: str) -> str:
    return path if len(path) <= 300 else "…" + path[-299:]


def _file_size(storage: Storage, name: str) -> int:
    """The size of the file at `name`; 0 when there is none (or a directory)."""
    local = _local_path(storage, name)
    if local is not None:
        return os.path.getsize(local) if os.path.isfile(local) else 0
    return storage.size(name) if storage.exists(name) else 0


def _locked_usage(org) -> Organization:
    """The organization's row, locked until the transaction ends: uploads and deletes of one
    organization count one after the other. FOR NO KEY UPDATE: inserts of the organization's
    other rows (their foreign keys take FOR KEY SHARE on it) do not wait for it."""
    return Organization.objects.select_for_update(no_key=True).only(
        "slug", "artifact_bytes", "artifact_quota_bytes").get(pk=org.pk)


def _charge_upload(org, size: int, replaced: Callable[[], int]) -> None:
    """Add an upload of `size` bytes that replaces `replaced()` bytes, within the quota."""
    current = _locked_usage(org)
    delta = size - replaced()  # measured now, under the lock: an overwrite counts the difference
    quota = current.artifact_quota
    if delta > 0 and quota and current.artifact_bytes + delta > quota:
        raise quota_exceeded(current, quota, current.artifact_bytes, f"{delta} more bytes")
    _add_usage(org, delta)


def _add_usage(org, delta: int) -> None:
    if delta:  # never below 0: files older than the count may be deleted (recount fixes it)
        Organization.objects.filter(pk=org.pk).update(artifact_bytes=Greatest(
            F("artifact_bytes") + delta, 0, output_field=models.BigIntegerField()))


def artifact_upload(*, org, path: str, stream, length: int | None, actor: Actor) -> ArtifactFile:
    """Store the body of `stream` at `path`, streaming; one `artifact.uploaded` event.

    Refused with ResourceExhausted, leaving nothing, when the file is larger than
    LEDGERFLOW_MAX_ARTIFACT_BYTES or would take the organization past its artifact quota:
    before the body is read when `length` shows it, else as soon as the stream passes it.
    """
    location = artifact_locate(org=org, path=path)
    if "/" not in location.path:
        raise _invalid(location.path, "name a file inside an experiment's directory")
    storage = artifact_storage()
    local = _local_path(storage, "") is not None
    replaced = _file_size(storage, location.name)
    room = _Room.of(org, replaced)
    if length is not None:
        room.check(length)
    intake = _Intake(stream, length, room)
    # Stage before any transaction opens: a long upload must not hold the org's audit lock.
    staged = f"{SCRATCH}/{uuid.uuid4().hex}" if local else location.name
    _save(storage, staged, intake, scratch=local)
    # An object store was overwritten in place already: what it replaced was measured before.
    measure = (lambda: _file_size(storage, location.name)) if local else (lambda: replaced)
    _commit(_change(storage, location.name, staged), location, actor, "artifact.uploaded",
            charge=lambda: _charge_upload(org, intake.size, measure),
            after={"path": location.path, "size": intake.size, "sha256": intake.sha256})
    return ArtifactFile(location.path, False, intake.size)


def artifact_delete(*, org, path: str, actor: Actor) -> None:
    """Delete a file or a whole directory; one `artifact.deleted` event."""
    location = artifact_locate(org=org, path=path)
    storage = artifact_storage()
    kind = storage_kind(storage, location.name)
    if kind is None:
        raise _missing(location.path)
    files = list(_walk_files(storage, location.name)) if kind == "dir" else \
        [(location.name, storage.size(location.name))]
    before = {"path": location.path, "is_dir": kind == "dir", "files": len(files),
              "size": sum(size for _name, size in files)}

    def charge():
        _locked_usage(org)
        _add_usage(org, -before["size"])

    _commit(_change(storage, location.name, None), location, actor, "artifact.deleted",
            charge=charge, before=before)


def artifact_quota_set(*, org, quota_bytes: int | None, actor: Actor) -> Organization:
    """Set the organization's own artifact quota (None: the server's default, 0: none);
    one `organization.updated` event naming the old and the new value."""
    if quota_bytes is not None and quota_bytes < 0:
        raise ApplicationError("An artifact quota is 0 (none) or a number of bytes.",
                               fields={"artifact_quota_bytes": ["must not be negative"]})
    with transaction.atomic(durable=True):
        current = _locked_usage(org)
        before = current.artifact_quota_bytes
        Organization.objects.filter(pk=org.pk).update(artifact_quota_bytes=quota_bytes)
        current.artifact_quota_bytes = quota_bytes
        audit_record(org=current, actor=actor, action="organization.updated", target=current,
                     before={"artifact_quota_bytes": before},
                     after={"artifact_quota_bytes": quota_bytes})
    return current


def artifact_usage_recount(*, org, actor: Actor) -> int:
    """Count the organization's artifact bytes from storage again: after the upgrade that
    began counting (every count starts at 0), or when files changed outside this module (a
    project run's logs are counted here, not when its worker writes them); one
    `organization.artifact_usage_recounted` event. Uploads and deletes of the organization
    wait while it walks its files."""
    storage = artifact_storage()
    with transaction.atomic(durable=True):
        current = _locked_usage(org)
        counted = sum(size for _name, size in _walk_files(storage, str(org.pk)))
        Organization.objects.filter(pk=org.pk).update(artifact_bytes=counted)
        audit_record(org=current, actor=actor, action="organization.artifact_usage_recounted",
                     target=current, before={"artifact_bytes": current.artifact_bytes},
                     after={"artifact_bytes": counted})
    return counted
