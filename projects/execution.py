"""Running a project on a worker of the `projects` queue, in the sandbox.

The job runner (config/jobs) claims the run and keeps its lease; here: fetch the source into a
fresh workspace (the uploaded archive, unpacked by the worker with its checks, or Git, cloned
by a sandboxed job that reaches only the remote's host); read MLproject; download `runs:/` and
`models:/` inputs; have the environment (projects.environments: built in the sandbox, mounted
read-only); then run the command as a sandboxed job (config.sandbox) that reaches tracking
only through the relay, which adds a token allowed to touch that run and its inputs alone.
stdout and stderr go to the run's artifacts (`ledgerflow/`), refreshed every few seconds. A
cancel or the time limit kills every process of the job (KILLED); a limit it hits fails the
run naming the limit; the exit status decides FINISHED or FAILED. The token is revoked however
the run ends (and the server refuses it once the run has ended).
"""

import contextlib
import hashlib
import logging
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import storages

from audit.actors import Actor
from config.exceptions import ApplicationError
from config.sandbox import SandboxUnavailable, jobs
from config.sandbox.spec import WORKSPACE, Network, Relay, Result, Spec
from projects import environments, services
from projects.fetch import fetch_git
from projects.models import ProjectRun, ProjectRunStatus, SourceKind
from projects.sources import extract_archive, source_digest
from projects.spec import load_project
from tenancy.services import token_create_for_run, token_revoke
from tracking.artifacts import artifact_path_of_uri, artifact_storage

logger = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 2.0
LOG_NAMES = ("stdout.txt", "stderr.txt")
SOURCE = f"{WORKSPACE}/src"       # the project, inside the sandbox
INPUTS = f"{WORKSPACE}/inputs"    # downloaded runs:/ and models:/ parameters


class ProjectFailure(Exception):
    """The project cannot run; the message is the reason the user sees."""


def execute(attempt) -> None:
    """The job's work (a config.jobs Attempt): one attempt at the run, ended here through
    services.project_run_finish. Trouble of the worker's own propagates to the runner, which
    retries a safe_to_retry run or fails it."""
    actor = Actor.job(attempt)
    project_run = ProjectRun.objects.select_related("run", "org", "submitted_by") \
        .get(pk=attempt.target)
    with jobs.job_directory("run") as job:
        try:
            status, code, message = _attempt(project_run, attempt, job, actor)
        except (ApplicationError, ProjectFailure, environments.EnvironmentFailure,
                SandboxUnavailable) as exc:
            status, code = ProjectRunStatus.FAILED, None
            message = getattr(exc, "message", None) or str(exc)
        finally:
            logs = _flush_logs(project_run, job)
    services.project_run_finish(pk=project_run.pk, attempt=attempt.number, status=status,
                                actor=actor, message=message, exit_code=code, logs=logs)


def _attempt(project_run: ProjectRun, attempt, job: jobs.JobDir, actor: Actor):
    root, commit = _fetch(project_run, job)
    project = load_project(root)
    entry = project.entry_point(project_run.entry_point, root)
    paths, reads = resolve_references(project_run, entry, job.workspace / "inputs")
    command = entry.command_for(project_run.parameters, paths)
    services.project_run_resolved(pk=project_run.pk, attempt=attempt.number, commit=commit,
                                  digest=source_digest(root), command=command,
                                  safe_to_retry=entry.safe_to_retry, actor=actor)
    environment = environments.environment_for(project_run.env_manager, project, root)
    token, raw = token_create_for_run(run=project_run.run, actor=actor,
                                      user=project_run.submitted_by, reads=reads,
                                      ttl_seconds=project_run.timeout_seconds + 300)
    try:
        result = _run(project_run, command, job, environment, raw, attempt.cancelled)
    finally:
        token_revoke(token=token, actor=actor)
    return _outcome(project_run, result, job)


def resolve_references(project_run: ProjectRun, entry, target: Path) -> tuple[dict, dict]:
    """`path` and `uri` parameters given as `runs:/<run id>/<path>` or
    `models:/<name>/<version>` (or `@<alias>`), downloaded from this organization into
    `target` (INPUTS inside): how one step's output feeds the next. Also answers what the
    run's token may read: those runs and model versions."""
    resolved, reads = {}, {"runs": [], "model_versions": []}
    for name, parameter in entry.parameters.items():
        value = str(project_run.parameters.get(name, parameter.default) or "")
        if parameter.type not in ("path", "uri") or not value.startswith(("runs:/", "models:/")):
            continue
        destination = target / name
        try:
            if value.startswith("runs:/"):
                local, run_uuid = _download_run_artifact(project_run, value, destination)
                reads["runs"].append(run_uuid)
            else:
                local, version = _download_model(project_run, value, destination)
                reads["model_versions"].append([version.registered_model.name,
                                                int(version.version)])
        except ApplicationError as exc:
            raise ProjectFailure(f"Parameter '{name}' ({value}): {exc.message}") from None
        resolved[name] = f"{INPUTS}/{local.relative_to(target).as_posix()}"
    return resolved, reads


def _download_run_artifact(project_run: ProjectRun, uri: str, destination: Path):
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
    return (destination if kind == "dir" else destination / Path(inner).name), run.run_uuid


def _download_model(project_run: ProjectRun, uri: str, destination: Path):
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
    return destination, version


def _fetch(project_run: ProjectRun, job: jobs.JobDir) -> tuple[Path, str]:
    target = job.workspace / "src"
    if project_run.source_kind == SourceKind.GIT:
        commit = fetch_git(project_run.git_url, project_run.git_ref, target)
        return target, commit
    archive = job.root / "source.archive"  # outside the workspace
    with storages[services.STORAGE].open(project_run.archive_name, "rb") as src, \
            open(archive, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    extract_archive(archive, target)
    archive.unlink()
    return target, ""


def _run(project_run: ProjectRun, command: str, job: jobs.JobDir,
         environment: environments.Environment, token: str, cancelled) -> Result:
    run_id, experiment_id = project_run.run.run_uuid, project_run.run.experiment.public_id
    # The client inside would print links to its relay's address; the run's real ones go
    # first in its output instead.
    base = settings.LEDGERFLOW_PUBLIC_URL.rstrip("/")
    with open(job.stdout, "a") as out:
        out.write(f"View run at: {base}/#/experiments/{experiment_id}/runs/{run_id}\n")
    spec = Spec(argv=["/bin/bash", "-c", command], workspace=job.workspace, cwd=SOURCE,
                stdout=job.stdout, stderr=job.stderr, name=job.name,
                env={"MLFLOW_RUN_ID": run_id, "MLFLOW_EXPERIMENT_ID": experiment_id,
                     "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"},
                mounts=environment.mounts, image=environment.image,
                limits=jobs.limits(wall_seconds=project_run.timeout_seconds),
                network=Network.TRACKING,
                relay=Relay(upstream=settings.LEDGERFLOW_PUBLIC_URL, token=token))
    flushed = [time.monotonic()]

    def tick() -> str:
        if cancelled():
            return "cancelled"  # cancelled, or no longer this attempt's to run
        if time.monotonic() - flushed[0] > LOG_FLUSH_SECONDS:
            _flush_logs(project_run, job)
            flushed[0] = time.monotonic()
        return ""

    if not environment.image:
        return jobs.run(spec, job, tick=tick)
    try:  # a docker_env project runs in its image, with the docker backend
        return jobs.run(spec, job, backend_name="docker", tick=tick)
    except SandboxUnavailable as exc:
        raise ProjectFailure(f"This project runs in the Docker image {environment.image!r}, "
                             f"and this worker cannot run it: {exc}") from None


def _outcome(project_run: ProjectRun, result: Result, job: jobs.JobDir):
    if result.limit == "cancelled":
        return ProjectRunStatus.KILLED, None, "Cancelled."
    if result.limit == "time":
        return (ProjectRunStatus.KILLED, None,
                f"Stopped at its time limit of {project_run.timeout_seconds} s.")
    if result.ok:
        return ProjectRunStatus.FINISHED, 0, ""
    return ProjectRunStatus.FAILED, result.exit_code, jobs.describe(result, job)


def log_name(project_run: ProjectRun, name: str) -> str:
    """Where a log lives in artifact storage: the run's `ledgerflow/` folder."""
    return f"{project_run.org_id}/{artifact_path_of_uri(project_run.run.artifact_uri)}" \
           f"/ledgerflow/{name}"


def _flush_logs(project_run: ProjectRun, job: jobs.JobDir) -> dict:
    """Copy the logs so far into the run's artifacts; returns their sizes and digests."""
    storage, summary = artifact_storage(), {}
    for name, local in zip(LOG_NAMES, (job.stdout, job.stderr), strict=True):
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


__all__ = ["LOG_NAMES", "execute", "log_name"]
