"""Packaging a model version, on a worker of the `packaging` queue.

1. The job runner (config/jobs, models_registry/jobs.py) claims the version for one attempt
   and keeps its lease; an attempt interrupted by anything but the model (storage, the
   database, a lost worker) is tried again after a backoff, a few times.
2. Copy the model directory from the artifact store into a scratch directory, hashing each file.
3. Read and check `MLmodel`: flavors (python_function required: that is what we serve),
   signature, input example, requirements.
4. Load it as python_function and score the input example in a child process (verify.py).
5. Store the files in registry storage under "<org>/<version uuid>/<attempt>/" with a manifest
   (SHA-256 of every file, one package digest over them), then mark it READY in one transaction
   whose audit event carries the digest. Any check that fails marks it FAILED_REGISTRATION with
   the reason. An attempt that lost its lease writes nothing to the version.
"""

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from audit.actors import Actor
from audit.canonical import dumps as canonical_json
from config.paths import BASE_DIR
from models_registry import services
from tracking.artifacts import CHUNK_SIZE, artifact_storage, storage_files

logger = logging.getLogger(__name__)

MANIFEST_NAME = "ledgerflow-manifest.json"
MANIFEST_FORMAT = "ledgerflow.package/1"
MAX_PACKAGE_BYTES = 5 * 1024**3
MAX_PACKAGE_FILES = 10_000
# What the verification child inherits: no database URL, secret key or storage credentials.
CHILD_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
MAX_CHILD_OUTPUT = 64 * 1024


class PackagingError(Exception):
    """The model is not acceptable; the message is the reason the user sees."""


def registry_storage():
    return storages["registry"]


def package_digest(files: list[dict]) -> str:
    """One digest over the files' paths, sizes and hashes (RFC 8785 JSON of the sorted list)."""
    listing = sorted(({"path": f["path"], "sha256": f["sha256"], "size": f["size"]}
                      for f in files), key=lambda f: f["path"])
    return "sha256:" + hashlib.sha256(canonical_json({"files": listing})).hexdigest()


def copy_source(org_id: int, source_path: str, target: Path) -> list[dict]:
    """The model directory's files into `target`, with their sizes and SHA-256."""
    storage, files, total = artifact_storage(), [], 0
    for relative, name in storage_files(storage, f"{org_id}/{source_path}"):
        digest, size = hashlib.sha256(), 0
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if len(files) >= MAX_PACKAGE_FILES:
            raise PackagingError(f"The model has more than {MAX_PACKAGE_FILES} files.")
        with storage.open(name, "rb") as src, open(destination, "wb") as out:
            while chunk := src.read(CHUNK_SIZE):
                total += len(chunk)
                if total > MAX_PACKAGE_BYTES:  # checked as it streams, not after
                    raise PackagingError(f"The model is larger than {MAX_PACKAGE_BYTES} bytes.")
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        files.append({"path": relative, "size": size, "sha256": digest.hexdigest()})
    if not files:
        raise PackagingError(f"No files at the model source '{source_path}'.")
    return files


def read_mlmodel(directory: Path) -> dict:
    """Check MLmodel and return what the manifest records of it."""
    from mlflow.models import Model

    if not (directory / "MLmodel").is_file():
        raise PackagingError("The model directory has no MLmodel file.")
    try:
        meta = Model.load(str(directory))
    except Exception as exc:
        raise PackagingError(f"MLmodel cannot be read: {type(exc).__name__}: {exc}") from None
    if not meta.flavors:
        raise PackagingError("MLmodel declares no flavors.")
    pyfunc = meta.flavors.get("python_function")
    if pyfunc is None:
        raise PackagingError(f"MLmodel has no python_function flavor (flavors: "
                             f"{', '.join(sorted(meta.flavors))}); it cannot be served.")
    try:
        signature = meta.signature.to_dict() if meta.signature else None
    except Exception as exc:
        raise PackagingError(f"The model signature is invalid: {exc}") from None
    example = meta.saved_input_example_info
    if example and not (directory / example.get("artifact_path", "")).is_file():
        raise PackagingError(f"MLmodel names an input example "
                             f"'{example.get('artifact_path')}' that is not in the model.")
    requirements = []
    if (directory / "requirements.txt").is_file():
        requirements = [line.strip() for line in
                        (directory / "requirements.txt").read_text().splitlines()
                        if line.strip() and not line.startswith("#")]
    unsafe = unsafe_to_load(meta.flavors)
    if unsafe and not settings.LEDGERFLOW_ALLOW_UNSAFE_MODELS:
        raise PackagingError(f"This server loads only models that run no uploaded code, and "
                             f"this one would: {unsafe}. (An operator who trusts every member "
                             "can set LEDGERFLOW_ALLOW_UNSAFE_MODELS.)")
    return {"flavors": {name: {k: v for k, v in conf.items() if isinstance(v, str | int | float)}
                        for name, conf in meta.flavors.items()},
            "runs_uploaded_code": unsafe,
            "loader_module": pyfunc.get("loader_module", ""),
            "python_version": pyfunc.get("python_version", ""),
            "signature": signature, "input_example": example or None,
            "requirements": requirements, "mlflow_version": meta.mlflow_version or "",
            "model_uuid": meta.model_uuid or ""}


# Types a skops file may be trusted to rebuild: estimators and their arrays, no callables.
SAFE_SKOPS_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def unsafe_to_load(flavors: dict) -> str | None:
    """Why loading this model would run code its uploader chose (None when it would not).

    Only scikit-learn models saved in skops format (mlflow's default since 3.x), trusting no
    types beyond scikit-learn, NumPy and SciPy, with no bundled code, load without running
    uploaded code. Pickle, cloudpickle and custom python_function models run what they
    contain, in the process that loads them: in a shared, multi-tenant server that process
    could read other organizations' data.
    """
    pyfunc, sklearn = flavors.get("python_function", {}), flavors.get("sklearn")
    if pyfunc.get("loader_module") != "mlflow.sklearn":
        return (f"its python_function loader is '{pyfunc.get('loader_module') or 'custom'}', "
                "which runs code from the model")
    if sklearn is None:
        return "it has no sklearn flavor saying how the model is serialized"
    if sklearn.get("serialization_format") != "skops":
        return (f"it is serialized with {sklearn.get('serialization_format') or 'pickle'}, "
                "which runs code from the model; save it with skops")
    if pyfunc.get("code") or sklearn.get("code"):
        return "it bundles code (code_paths)"
    untrusted = [t for t in sklearn.get("skops_trusted_types") or []
                 if not str(t).startswith(SAFE_SKOPS_PREFIXES)]
    if untrusted:
        return f"it trusts types beyond scikit-learn, NumPy and SciPy: {', '.join(untrusted)}"
    return None


def verify_in_child(directory: Path) -> dict:
    """verify.py in its own process group, with a scrubbed environment and its output in
    files (read up to MAX_CHILD_OUTPUT); killed with its children on timeout."""
    timeout = settings.LEDGERFLOW_PACKAGING_VERIFY_TIMEOUT
    env = {k: v for k, v in os.environ.items() if k in CHILD_ENV_KEEP}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "models_registry.verify", str(directory)], cwd=BASE_DIR,
            env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise PackagingError(f"Loading and scoring the model took longer than {timeout} s.") \
                from None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything the model left running
        stdout, stderr = _tail(out), _tail(err)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = stderr.strip().splitlines()[-3:]
        raise PackagingError("The model could not be loaded as python_function: "
                             + (" ".join(tail) or f"exit status {proc.returncode}")) from None
    if not result.get("loaded") or proc.returncode != 0:
        raise PackagingError(f"The model could not be loaded as python_function and score its "
                             f"input example: {result.get('error') or proc.returncode}")
    return result


def _tail(handle) -> str:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - MAX_CHILD_OUTPUT))
    return handle.read().decode(errors="replace")


def store_package(prefix: str, directory: Path, files: list[dict], manifest: dict) -> None:
    storage = registry_storage()
    for entry in files:
        with open(directory / entry["path"], "rb") as handle:
            storage.save(f"{prefix}/model/{entry['path']}", File(handle))
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    storage.save(f"{prefix}/{MANIFEST_NAME}", ContentFile(body))


def package(attempt) -> str:
    """The job's work (a config.jobs Attempt): "ready", "failed" (the model is not acceptable)
    or "skipped" (the attempt lost the version meanwhile). Anything else raises, for the
    runner to retry."""
    from models_registry.models import ModelVersion

    actor = Actor.job(attempt)
    version = ModelVersion.objects.select_related("registered_model", "run").get(
        pk=attempt.target)
    return _package_claimed(version, attempt.number, actor)


def _package_claimed(version, attempt: int, actor: Actor) -> str:
    version_pk = version.pk
    prefix = f"{version.org_id}/{version.uuid}/{attempt}"
    with tempfile.TemporaryDirectory(prefix="ledgerflow-package-") as scratch:
        directory = Path(scratch) / "model"
        try:
            files = copy_source(version.org_id, version.source_path, directory)
            model_info = read_mlmodel(directory)
            verified = verify_in_child(directory)
        except PackagingError as exc:
            services.packaging_fail(version_pk=version_pk, attempt=attempt, reason=str(exc),
                                    actor=actor)
            return "failed"
        digest = package_digest(files)
        manifest = {
            "format": MANIFEST_FORMAT,
            "model": {"name": version.registered_model.name, "version": version.version,
                      "source": version.source, "model_id": version.model_id,
                      "run_id": version.run.run_uuid if version.run_id else None},
            "mlmodel": model_info,
            "verification": verified,
            "files": sorted(files, key=lambda f: f["path"]),
            "package_digest": digest,
        }
        store_package(prefix, directory, files, manifest)
    done = services.packaging_finish(version_pk=version_pk, attempt=attempt,
                                     package_path=prefix, digest=digest, manifest=manifest,
                                     actor=actor)
    return "ready" if done else "skipped"
