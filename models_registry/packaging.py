"""Packaging a model version, on a worker of the `packaging` queue.

1. The job runner (config/jobs, models_registry/jobs.py) claims the version for one attempt
   and keeps its lease; an attempt interrupted by anything but the model (storage, the
   database, a lost worker) is tried again after a backoff, a few times.
2. Copy the model directory from the artifact store into a scratch directory, hashing each file.
3. Read and check `MLmodel`: flavors (python_function required: that is what we serve),
   signature, input example, requirements, and every path a flavor of any MLmodel in the
   tree names (inside the model directory, no links). Only YAML is parsed in the service.
4. Load it as python_function and score the input example in the sandbox, in the model's
   own environment (models_registry.scorers): every model format is accepted, since none is
   ever deserialized in the service.
5. Store the files in registry storage under "<org>/<version uuid>/<attempt>/" with a manifest
   (SHA-256 of every file, one package digest over them), then mark it READY in one transaction
   whose audit event carries the digest. Any check that fails marks it FAILED_REGISTRATION with
   the reason. An attempt that lost its lease writes nothing to the version.
"""

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path, PurePosixPath

import yaml
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from audit.actors import Actor
from audit.canonical import dumps as canonical_json
from models_registry import services
from tracking.artifacts import CHUNK_SIZE, artifact_storage, storage_files

logger = logging.getLogger(__name__)

MANIFEST_NAME = "ledgerflow-manifest.json"
MANIFEST_FORMAT = "ledgerflow.package/1"
MAX_PACKAGE_BYTES = 5 * 1024**3
MAX_PACKAGE_FILES = 10_000


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
    """Check MLmodel (and every MLmodel nested in the package) and return what the manifest
    records of it. Only YAML is parsed here; the model itself is loaded in the sandbox."""
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
    if example:
        check_path(directory, directory, example.get("artifact_path", ""), "input example")
        if not (directory / example.get("artifact_path", "")).is_file():
            raise PackagingError(f"MLmodel names an input example "
                                 f"'{example.get('artifact_path')}' that is not in the model.")
    nested = check_nested(directory)
    requirements = []
    if (directory / "requirements.txt").is_file():
        requirements = [line.strip() for line in
                        (directory / "requirements.txt").read_text().splitlines()
                        if line.strip() and not line.startswith("#")]
    return {"flavors": {name: {k: v for k, v in conf.items() if isinstance(v, str | int | float)}
                        for name, conf in meta.flavors.items()},
            "loader_module": pyfunc.get("loader_module", ""),
            "serialization": serialization_of(directory, meta.flavors),
            "nested_models": nested,
            "python_version": pyfunc.get("python_version", ""),
            "signature": signature, "input_example": example or None,
            "requirements": requirements, "mlflow_version": meta.mlflow_version or "",
            "model_uuid": meta.model_uuid or ""}


# Flavor settings that name a file or directory of the model (MLflow's own flavors and the
# common community ones). Each must stay inside the directory of the MLmodel naming it.
PATH_KEYS = frozenset({
    "data", "code", "model_path", "pickled_model", "python_model", "model_data",
    "model_code_path", "path", "saved_model_dir", "model_file", "config", "conda",
    "virtualenv", "artifact_path", "model_dir", "checkpoint", "weights", "tokenizer",
})


def check_path(root: Path, base: Path, value: str, what: str) -> None:
    """`value`, as a flavor names it relative to `base`, must stay inside the model directory
    `root`: no absolute path, no `..`, no link out."""
    if not value:
        return
    pure = PurePosixPath(value)
    if pure.is_absolute() or value.startswith("~") or "\\" in value or ".." in pure.parts:
        raise PackagingError(f"MLmodel names {what} '{value}', outside the model directory; "
                             "a model may only name its own files.")
    if not (base / value).resolve().is_relative_to(root.resolve()):
        raise PackagingError(f"MLmodel names {what} '{value}', which leads outside the model "
                             "directory.")


def _paths_in(conf, key: str = ""):
    if isinstance(conf, dict):
        for name, value in conf.items():
            yield from _paths_in(value, str(name))
    elif isinstance(conf, list):
        for value in conf:
            yield from _paths_in(value, key)
    elif isinstance(conf, str) and key in PATH_KEYS:
        yield key, conf


def check_nested(directory: Path) -> list[str]:
    """Every MLmodel in the tree (a model may carry others: a pyfunc wrapping a model
    directory among its artifacts) has its flavor paths checked. Returns the nested ones."""
    for path in directory.rglob("*"):
        if path.is_symlink():
            raise PackagingError(f"'{path.relative_to(directory)}' is a symbolic link; a "
                                 "model's files are plain files.")
    nested = []
    for path in sorted(directory.rglob("MLmodel")):
        if path.is_symlink() or not path.is_file():
            raise PackagingError(f"'{path.relative_to(directory)}' is not a regular file.")
        try:
            meta = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise PackagingError(f"'{path.relative_to(directory)}' cannot be read: {exc}") \
                from None
        flavors = meta.get("flavors") if isinstance(meta, dict) else None
        if not isinstance(flavors, dict):
            raise PackagingError(f"'{path.relative_to(directory)}' declares no flavors.")
        for flavor, conf in flavors.items():
            for key, value in _paths_in(conf):
                check_path(directory, path.parent, value,
                           f"in flavor '{flavor}' of {path.relative_to(directory)} the {key}")
        if path.parent != directory:
            nested.append(path.parent.relative_to(directory).as_posix())
    return nested


def serialization_of(directory: Path, flavors: dict) -> dict:
    """How the model is stored, for the manifest and the UI: informational only, since every
    format is loaded in the sandbox. The format is that of what the python_function flavor
    loads (what the scorer, `mlflow models serve` and pyfunc.load_model load), whatever
    another flavor says. A skops file's types are listed exactly as skops names them (never
    matched by prefix), with those skops itself does not trust, and the types the MLmodel
    tells skops to trust."""
    sklearn = flavors.get("sklearn") or {}
    pyfunc = flavors.get("python_function") or {}
    loader = pyfunc.get("loader_module", "")
    if pyfunc.get("python_model") or loader == "mlflow.pyfunc.model":
        format_ = "cloudpickle"  # the python_model, unpickled on load
    elif loader in ("", "mlflow.sklearn"):
        format_ = sklearn.get("serialization_format") or loader
    else:
        format_ = loader
    found = {"format": format_, "bundles_code": bool(pyfunc.get("code") or sklearn.get("code"))}
    trusted = sklearn.get("skops_trusted_types")
    if trusted:
        found["trusted_types"] = sorted(str(name) for name in (
            trusted if isinstance(trusted, list) else [trusted]))
    if found["format"] == "skops" and sklearn.get("pickled_model"):
        from skops.io import get_untrusted_types

        try:
            found["untrusted_types"] = sorted(get_untrusted_types(
                file=directory / sklearn["pickled_model"]))
        except Exception as exc:  # a damaged file: loading it will say so in the sandbox
            found["untrusted_types_error"] = f"{type(exc).__name__}: {exc}"[:500]
    return found


def verify_sandboxed(directory: Path) -> dict:
    """Load the model and score its input example in the sandbox (models_registry.scorers)."""
    from models_registry.scorers import ScorerFailure, verify

    try:
        return verify(directory)
    except ScorerFailure as exc:
        raise PackagingError(str(exc)) from None


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
        os.chmod(scratch, 0o755)  # noqa: S103 - the sandbox uid reads the copy (read-only)
        directory = Path(scratch) / "model"
        try:
            files = copy_source(version.org_id, version.source_path, directory)
            model_info = read_mlmodel(directory)
            verified = verify_sandboxed(directory)
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
