"""Running a project on a worker of the `projects` queue.

Claim the run (services.project_run_claim), fetch the source into a scratch directory (Git at
its ref, or the uploaded archive), read MLproject, build the environment (`local`: the
worker's own interpreter; `virtualenv`: a uv virtualenv from `python_env`, cached by the
digest of the spec; `conda` only where conda exists), then run the command in a process group
of its own with MLFLOW_TRACKING_URI, MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID and a token that
writes to that run only. Its stdout and stderr go to the run's artifacts (`ledgerflow/`),
refreshed every few seconds so they can be followed. A cancel or the time limit kills the
whole group (KILLED); the exit status decides FINISHED or FAILED.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import storages
from django.db import connection

from audit.actors import Actor
from config.exceptions import ApplicationError
from projects import services
from projects.models import EnvManager, ProjectRun, ProjectRunStatus, SourceKind
from projects.sources import GitSource, extract_archive, fetch_git, source_digest
from projects.spec import load_project
from tenancy.services import token_create_for_run, token_revoke
from tracking.artifacts import artifact_path_of_uri, artifact_storage

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
LOG_FLUSH_SECONDS = 2.0
LOG_NAMES = ("stdout.txt", "stderr.txt")
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


class ProjectFailure(Exception):
    """The project cannot run; the message is the reason the user sees."""


def execute(pk: int, task_id: str = "") -> str:
    actor = Actor.task("projects.execute", task_id)
    claimed = services.project_run_claim(pk=pk, actor=actor)
    if claimed is None:
        return "skipped"
    project_run, attempt = claimed
    token = None
    with tempfile.TemporaryDirectory(prefix="ledgerflow-project-") as scratch, \
            _heartbeat(pk, attempt):
        work = Path(scratch)
        try:
            root, commit = _fetch(project_run, work / "src")
            project = load_project(root)
            entry = project.entry_point(project_run.entry_point, root)
            paths = resolve_references(project_run, entry, work / "inputs")
            command = entry.command_for(project_run.parameters, paths)
            services.project_run_resolved(pk=pk, attempt=attempt, commit=commit,
                                          digest=source_digest(root), command=command,
                                          safe_to_retry=entry.safe_to_retry, actor=actor)
            environment = _environment(project_run, project, root)
            token, raw = token_create_for_run(run=project_run.run, actor=actor,
                                              user=project_run.submitted_by,
                                              ttl_seconds=project_run.timeout_seconds + 300)
            status, code, message = _run(project_run, command, root, work, environment, raw)
        except (ApplicationError, ProjectFailure) as exc:
            status, code = ProjectRunStatus.FAILED, None
            message = getattr(exc, "message", None) or str(exc)
        except Exception as exc:  # the worker's own trouble: the run must not stay RUNNING
            logger.exception("project run %s failed", project_run.uuid)
            status, code, message = ProjectRunStatus.FAILED, None, f"{type(exc).__name__}: {exc}"
        finally:
            if token is not None:
                token_revoke(token=token, actor=actor)
        logs = _flush_logs(project_run, work)
    services.project_run_finish(pk=pk, attempt=attempt, status=status, actor=actor,
                                message=message, exit_code=code, logs=logs)
    return status


@contextlib.contextmanager
def _heartbeat(pk: int, attempt: int):
    """Renew the attempt's lease from a thread while the worker holds it (fetch, environment
    build, command): a lease that runs out means the worker is gone."""
    stop = threading.Event()
    interval = max(settings.LEDGERFLOW_PROJECT_LEASE_SECONDS / 4, 0.5)

    def beat():
        try:
            while not stop.wait(interval):
                services.project_run_heartbeat(pk=pk, attempt=attempt)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"lease-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def resolve_references(project_run: ProjectRun, entry, target: Path) -> dict[str, str]:
    """`path` and `uri` parameters given as `runs:/<run id>/<path>` or
    `models:/<name>/<version>` (or `@<alias>`), downloaded from this organization into
    `target`: how one step's output feeds the next."""
    resolved = {}
    for name, parameter in entry.parameters.items():
        value = str(project_run.parameters.get(name, parameter.default) or "")
        if parameter.type not in ("path", "uri") or not value.startswith(("runs:/", "models:/")):
            continue
        destination = target / name
        try:
            if value.startswith("runs:/"):
                resolved[name] = str(_download_run_artifact(project_run, value, destination))
            else:
                resolved[name] = str(_download_model(project_run, value, destination))
        except ApplicationError as exc:
            raise ProjectFailure(f"Parameter '{name}' ({value}): {exc.message}") from None
    return resolved


def _download_run_artifact(project_run: ProjectRun, uri: str, destination: Path) -> Path:
    """A file (kept under its name) or a directory of a run's artifacts, copied locally."""
    from tracking.artifacts import artifact_path_clean, storage_files, storage_kind
    from tracking.selectors import run_get

    run_id, _, inner = uri.removeprefix("runs:/").strip("/").partition("/")
    run = run_get(org=project_run.org, run_id=run_id)
    storage = artifact_storage()
    name = f"{project_run.org_id}/{artifact_path_of_uri(run.artifact_uri)}/" \
           f"{artifact_path_clean(inner)}".rstrip("/")
    kind = storage_kind(storage, name)
    if kind is None:
        raise ApplicationError(f"no artifact '{inner}' in run {run_id}", kind="not_found")
    files = storage_files(storage, name) if kind == "dir" else [(Path(inner).name, name)]
    for relative, source in files:
        local = destination / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        with storage.open(source, "rb") as src, open(local, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    return destination if kind == "dir" else destination / Path(inner).name


def _download_model(project_run: ProjectRun, uri: str, destination: Path) -> Path:
    from models_registry import selectors
    from models_registry.packages import package_local_dir

    reference = uri.removeprefix("models:/").strip("/")
    if "@" in reference:
        name, alias = reference.rsplit("@", 1)
        version = selectors.model_version_by_alias(org=project_run.org, name=name, alias=alias)
    else:
        name, _, number = reference.rpartition("/")
        version = selectors.model_version_get(org=project_run.org, name=name, version=number)
    shutil.copytree(package_local_dir(version), destination,
                    ignore=shutil.ignore_patterns(".complete"))
    return destination


def _fetch(project_run: ProjectRun, target: Path) -> tuple[Path, str]:
    if project_run.source_kind == SourceKind.GIT:
        commit = fetch_git(GitSource(project_run.git_url, project_run.git_ref), target)
        return target, commit
    archive = target.parent / "source.archive"
    with storages[services.STORAGE].open(project_run.archive_name, "rb") as src, \
            open(archive, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    extract_archive(archive, target)
    return target, ""


@dataclass(frozen=True)
class Environment:
    """How the command is started: the PATH it sees and, for docker_env, the image it runs in."""

    path: str
    image: str = ""

    def argv(self, command: str, work: Path, root: Path, env: dict, name: str) -> list[str]:
        if not self.image:
            return ["/bin/bash", "-c", command]
        # The scratch directory at the same path inside, so resolved inputs are where the
        # command was told; the host network, so MLFLOW_TRACKING_URI on loopback works.
        return ["docker", "run", "--rm", "--name", name, "--network", "host",
                "--volume", f"{work}:{work}", "--workdir", str(root),
                *[f"--env={key}" for key in env if key.startswith("MLFLOW_")],
                self.image, "/bin/bash", "-c", command]


def _environment(project_run: ProjectRun, project, root: Path) -> Environment:
    """The environment the project declares (or `local`, when asked for): the interpreter of
    the worker, a uv virtualenv, a conda environment or a Docker image."""
    manager = project_run.env_manager
    base = os.environ.get("PATH", "")
    if manager == EnvManager.LOCAL or project.env_type == "local":
        return Environment(f"{Path(sys.executable).parent}{os.pathsep}{base}")
    if project.env_type == "docker_env":
        _docker_ready(project.docker_image)
        return Environment(base, image=project.docker_image)
    if manager == EnvManager.CONDA or project.env_type == "conda_env":
        return Environment(f"{_conda(root / project.env_file)}{os.pathsep}{base}")
    return Environment(f"{_virtualenv(root / project.env_file)}{os.pathsep}{base}")


def _docker_ready(image: str) -> None:
    if shutil.which("docker") is None:
        raise ProjectFailure(f"This project runs in the Docker image {image!r}, and this "
                             "worker has no docker command.")
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],  # noqa: S607
                           capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        raise ProjectFailure(f"This project runs in the Docker image {image!r}, and this "
                             f"worker's docker cannot reach a Docker engine: "
                             f"{probe.stderr.strip()[-300:]}")


def _conda(spec_path: Path) -> Path:
    """A conda environment for a conda_env spec, built once per spec digest (in place: conda
    prefixes cannot be moved), under a file lock shared by the worker's processes."""
    conda = next((c for c in ("conda", "mamba", "micromamba") if shutil.which(c)), None)
    if conda is None:
        raise ProjectFailure("This project declares a conda environment, and this worker has "
                             "no conda (looked for conda, mamba and micromamba); run it with "
                             "env_manager 'local' or on a worker that has conda.")
    key = hashlib.sha256(spec_path.read_bytes()).hexdigest()[:24]
    target = Path(settings.LEDGERFLOW_ENV_CACHE_DIR) / f"conda-{key}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            args = ["create", "--yes", "--prefix", str(target), "--file", str(spec_path)] \
                if conda == "micromamba" else \
                ["env", "create", "--quiet", "--prefix", str(target), "--file", str(spec_path)]
            done = subprocess.run([conda, *args], capture_output=True, text=True,  # noqa: S603
                                  timeout=3600, check=False)
            if done.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                raise ProjectFailure(f"Building the conda environment failed: "
                                     f"{done.stderr.strip()[-800:]}")
            (target / ".complete").touch()
    return target / "bin"


def _virtualenv(spec_path: Path) -> Path:
    """A uv virtualenv for a python_env spec, built once per spec digest."""
    spec = yaml.safe_load(spec_path.read_text()) or {}
    deps = [str(d) for d in (spec.get("dependencies") or [])]
    python = str(spec.get("python") or "3.11")
    key = hashlib.sha256(f"{python}\n{sorted(deps)}".encode()).hexdigest()[:24]
    target = Path(settings.LEDGERFLOW_ENV_CACHE_DIR) / key
    if (target / ".complete").exists():
        return target / "bin"
    uv = shutil.which("uv") or str(Path(settings.BASE_DIR) / ".tools" / "bin" / "uv")
    if not Path(uv).exists():
        raise ProjectFailure("Building a python_env needs uv, which this worker does not have.")
    building = target.with_name(f"{key}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    for args in (["venv", "--quiet", "--python", python, str(building)],
                 ["pip", "install", "--quiet", "--python", str(building / "bin" / "python"),
                  *deps] if deps else None):
        if args is None:
            continue
        done = subprocess.run([uv, *args], capture_output=True, text=True, timeout=1800,  # noqa: S603
                              check=False, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise ProjectFailure(f"Building the python_env failed: {done.stderr.strip()[-800:]}")
    (building / ".complete").touch()
    with contextlib.suppress(OSError):
        building.rename(target)
    return (target if target.exists() else building) / "bin"


def _child_env(project_run: ProjectRun, path: str, token: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
    env.update({
        "PATH": path,
        "MLFLOW_TRACKING_URI": settings.LEDGERFLOW_PUBLIC_URL,
        "MLFLOW_TRACKING_TOKEN": token,
        "MLFLOW_RUN_ID": project_run.run.run_uuid,
        "MLFLOW_EXPERIMENT_ID": project_run.run.experiment.public_id,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _run(project_run: ProjectRun, command: str, root: Path, work: Path,
         environment: Environment, token: str) -> tuple[str, int | None, str]:
    deadline = time.monotonic() + project_run.timeout_seconds
    env = _child_env(project_run, environment.path, token)
    # a container is the Docker engine's child, not ours: killed through the engine
    container = f"ledgerflow-{project_run.uuid.hex}-{project_run.attempt}" \
        if environment.image else ""
    argv = environment.argv(command, work, root, env, container)
    with open(work / LOG_NAMES[0], "wb") as out, open(work / LOG_NAMES[1], "wb") as err:
        proc = subprocess.Popen(argv, cwd=root, stdout=out, stderr=err,  # noqa: S603
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        flushed = time.monotonic()
        while True:
            try:
                code = proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                _kill_group(proc, container)
                return (ProjectRunStatus.KILLED, None,
                        f"Stopped at its time limit of {project_run.timeout_seconds} s.")
            if not ProjectRun.objects.filter(pk=project_run.pk, attempt=project_run.attempt,
                                             status=ProjectRunStatus.RUNNING,
                                             cancel_requested=False).exists():
                _kill_group(proc, container)  # cancelled, or no longer this attempt's to run
                return ProjectRunStatus.KILLED, None, "Cancelled."
            if time.monotonic() - flushed > LOG_FLUSH_SECONDS:
                _flush_logs(project_run, work)
                flushed = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever the command left behind
    if code == 0:
        return ProjectRunStatus.FINISHED, 0, ""
    return ProjectRunStatus.FAILED, code, f"The command exited with status {code}."


def _kill_group(proc, container: str = "") -> None:
    """SIGTERM to the whole process group, SIGKILL after a grace period (a container: killed
    through the engine)."""
    if container:
        subprocess.run(["docker", "kill", container], capture_output=True,  # noqa: S603, S607
                       timeout=60, check=False)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def log_name(project_run: ProjectRun, name: str) -> str:
    """Where a log lives in artifact storage: the run's `ledgerflow/` folder."""
    return f"{project_run.org_id}/{artifact_path_of_uri(project_run.run.artifact_uri)}" \
           f"/ledgerflow/{name}"


def _flush_logs(project_run: ProjectRun, work: Path) -> dict:
    """Copy the logs so far into the run's artifacts; returns their sizes and digests."""
    storage, summary = artifact_storage(), {}
    for name in LOG_NAMES:
        local = work / name
        if not local.exists():
            continue
        data = local.read_bytes()
        target = log_name(project_run, name)
        with contextlib.suppress(FileNotFoundError):
            storage.delete(target)
        with open(local, "rb") as handle:
            storage.save(target, File(handle))
        summary[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return summary
