"""Reading packages: through the artifact proxy (so `models:/name/1` loads our copy), as one
archive with its manifest, and unpacked and checked against the manifest for scoring."""

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path

from django.conf import settings

from config.exceptions import ApplicationError
from models_registry.models import ModelVersion, VersionStatus
from models_registry.packaging import MANIFEST_NAME, registry_storage
from tracking.artifacts import CHUNK_SIZE, READ_ONLY_MOUNTS

MOUNT = "registry"


def _package_of(org, version_uuid: str) -> ModelVersion:
    try:
        key = uuid.UUID(version_uuid)
    except ValueError:
        key = None
    version = ModelVersion.objects.filter(org=org, uuid=key, status=VersionStatus.READY) \
        .first() if key else None
    if version is None:
        raise ApplicationError(f"No such artifact: '{MOUNT}/{version_uuid}'", kind="not_found")
    return version


def _resolve(org, rest: str):
    """`registry/<version uuid>[/<path>]` -> the package's model files (read-only)."""
    version_uuid, _, inner = rest.partition("/")
    version = _package_of(org, version_uuid)
    name = f"{version.package_path}/model" + (f"/{inner}" if inner else "")
    return registry_storage(), name


def mount_packages() -> None:
    READ_ONLY_MOUNTS[MOUNT] = _resolve


def require_ready(version: ModelVersion) -> None:
    if version.status != VersionStatus.READY:
        detail = f": {version.status_message}" if version.status_message else ""
        raise ApplicationError(f"{version.label} is {version.status}{detail}; only READY "
                               "versions have a package.", kind="conflict")


def package_archive(version: ModelVersion):
    """The package as a .tar.gz (manifest + model/), in a temporary file opened for reading."""
    require_ready(version)
    storage = registry_storage()
    top = f"{version.registered_model.name}-v{version.version}".replace(" ", "_")
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (handed to the response, which closes it)
    with tarfile.open(fileobj=spool, mode="w:gz") as tar:
        manifest = json.dumps(version.manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(f"{top}/{MANIFEST_NAME}")
        info.size, info.mtime = len(manifest), version.last_updated_timestamp // 1000
        tar.addfile(info, io.BytesIO(manifest))
        for entry in version.manifest["files"]:
            info = tarfile.TarInfo(f"{top}/model/{entry['path']}")
            info.size, info.mtime = entry["size"], version.last_updated_timestamp // 1000
            with storage.open(f"{version.package_path}/model/{entry['path']}", "rb") as src:
                tar.addfile(info, src)
    spool.seek(0)
    return spool, f"{top}.tar.gz"


class PackageCorrupted(Exception):
    pass


def package_local_dir(version: ModelVersion) -> Path:
    """The package unpacked on this machine, every file checked against the manifest once.
    Keyed by digest: what was checked once is not fetched again."""
    require_ready(version)
    root = Path(settings.LEDGERFLOW_MODEL_CACHE_DIR)
    target = root / version.package_digest.removeprefix("sha256:")
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".unpack-"))
    os.chmod(staging, 0o755)  # noqa: S103 - a scorer's own uid reads it, mounted read-only
    storage = registry_storage()
    try:
        for entry in version.manifest["files"]:
            destination = staging / entry["path"]
            destination.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with storage.open(f"{version.package_path}/model/{entry['path']}", "rb") as src, \
                    open(destination, "wb") as out:
                while chunk := src.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != entry["sha256"]:
                raise PackageCorrupted(f"{version.label}: '{entry['path']}' does not match its "
                                       "manifest; the stored package was changed.")
        (staging / ".complete").touch()
        try:
            os.rename(staging, target)
        except OSError:  # another process unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
