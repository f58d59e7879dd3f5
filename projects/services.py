"""Project runs: submission, the worker's claim, its outcome, cancel. Each public function is
one transaction with its audit event; the tracking run moves with the project run."""

import hashlib
import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record
from config.exceptions import ApplicationError
from projects.models import DONE, EnvManager, ProjectRun, ProjectRunStatus, SourceKind
from projects.sources import check_git_url
from tracking.models import Experiment, Run, RunStatus, RunTag
from tracking.services.common import now_ms
from tracking.services.runs import run_create_within

STORAGE = "projects"
RUN_STATUS = {ProjectRunStatus.FINISHED: RunStatus.FINISHED,
              ProjectRunStatus.FAILED: RunStatus.FAILED,
              ProjectRunStatus.KILLED: RunStatus.KILLED}


def invalid(message: str, field: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid", fields={field: [message]})


def _label(project_run: ProjectRun) -> str:
    return f"project run {project_run.uuid}"


def _check_parameters(parameters) -> dict[str, str]:
    if not isinstance(parameters, dict):
        raise invalid("'parameters' must be an object of name: value.", "parameters")
    checked = {}
    for key, value in parameters.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise invalid(f"Parameter '{key}' must be a string or a number.",
                          f"parameters.{key}")
        checked[str(key)] = str(value)
    return checked


def archive_store(*, org, stream, size: int) -> tuple[str, str]:
    """Keep an uploaded archive (a Django UploadedFile), before the submission's transaction:
    its storage name and SHA-256. Only tar and zip archives within the size limit are accepted."""
    limit = settings.LEDGERFLOW_PROJECT_MAX_BYTES
    if size > limit:
        raise invalid(f"The archive is larger than {limit} bytes.", "archive")
    head = stream.read(512)
    stream.seek(0)
    is_zip, is_gzip = head[:4] == b"PK\x03\x04", head[:2] == b"\x1f\x8b"
    is_tar = len(head) >= 262 and head[257:262] == b"ustar"
    if not (is_zip or is_gzip or is_tar):
        raise invalid("The archive must be a .tar.gz, .tar or .zip file.", "archive")
    digest = hashlib.sha256()
    for chunk in stream.chunks():
        digest.update(chunk)
    stream.seek(0)
    name = storages[STORAGE].save(f"{org.pk}/{uuid.uuid4().hex}.archive", stream)
    return name, "sha256:" + digest.hexdigest()


@transaction.atomic(durable=True)
def project_run_submit(*, experiment: Experiment, actor: Actor, entry_point: str = "main",
                       parameters: dict | None = None, git_url: str = "", git_ref: str = "",
                       archive_name: str = "", env_manager: str = EnvManager.LOCAL,
                       timeout_seconds: int | None = None) -> ProjectRun:
    if bool(git_url) == bool(archive_name):
        raise invalid("Give either a Git 'uri' or an 'archive'.", "uri")
    if git_url:
        check_git_url(git_url)
    if env_manager not in EnvManager.values:
        raise invalid(f"'env_manager' must be one of {', '.join(EnvManager.values)}.",
                      "env_manager")
    limit = settings.LEDGERFLOW_PROJECT_MAX_TIMEOUT
    timeout = timeout_seconds or settings.LEDGERFLOW_PROJECT_DEFAULT_TIMEOUT
    if not 0 < timeout <= limit:
        raise invalid(f"'timeout_seconds' must be between 1 and {limit}.", "timeout_seconds")
    if not entry_point or len(entry_point) > 250:
        raise invalid("'entry_point' is required.", "entry_point")
    checked = _check_parameters(parameters or {})
    source = git_url or archive_name.rsplit("/", 1)[-1]
    run = run_create_within(
        experiment=experiment, actor=actor, status=RunStatus.SCHEDULED,
        tags={"mlflow.source.type": "PROJECT", "mlflow.source.name": source,
              "mlflow.project.entryPoint": entry_point, "mlflow.project.env": env_manager,
              "mlflow.project.backend": "ledgerflow"})
    project_run = ProjectRun.objects.create(
        org=experiment.org, run=run, submitted_by=actor.user,
        source_kind=SourceKind.GIT if git_url else SourceKind.ARCHIVE, git_url=git_url,
        git_ref=git_ref, archive_name=archive_name, entry_point=entry_point,
        parameters=checked, env_manager=env_manager, timeout_seconds=timeout,
        enqueued_at=timezone.now())
    audit_record(org=experiment.org, actor=actor, action="project_run.submitted",
                 target=project_run, target_label=_label(project_run),
                 after={"run_id": run.run_uuid, "experiment_id": experiment.public_id,
                        "source": source, "ref": git_ref, "entry_point": entry_point,
                        "parameters": checked, "env_manager": env_manager,
                        "timeout_seconds": timeout})
    from projects.tasks import project_run_enqueue

    transaction.on_commit(lambda: project_run_enqueue(project_run.pk))
    return project_run


def _locked(pk: int) -> ProjectRun | None:
    return ProjectRun.objects.select_for_update(of=("self",)).select_related(
        "run", "org", "submitted_by").filter(pk=pk).first()


def _move_run(project_run: ProjectRun, status: str, *, end: bool) -> None:
    run = Run.objects.select_for_update().get(pk=project_run.run_id)
    if run.status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED) and end \
            and status == RunStatus.FINISHED:
        return  # the project ended its run itself; a clean exit keeps what it said
    run.status = status
    if end:
        run.end_time = now_ms()
    run.save(update_fields=["status", "end_time"])


@transaction.atomic(durable=True)
def project_run_claim(*, pk: int, actor: Actor) -> tuple[ProjectRun, int] | None:
    """Take a queued run for one attempt (None: taken, done or cancelled)."""
    project_run = _locked(pk)
    if project_run is None or project_run.status != ProjectRunStatus.QUEUED:
        return None
    now = timezone.now()
    project_run.status, project_run.attempt = ProjectRunStatus.RUNNING, project_run.attempt + 1
    project_run.started_at = now
    project_run.lease_until = now + timezone.timedelta(
        seconds=project_run.timeout_seconds + settings.LEDGERFLOW_PROJECT_LEASE_MARGIN)
    project_run.save(update_fields=["status", "attempt", "started_at", "lease_until"])
    _move_run(project_run, RunStatus.RUNNING, end=False)
    audit_record(org=project_run.org, actor=actor, action="project_run.started",
                 target=project_run, target_label=_label(project_run),
                 before={"status": ProjectRunStatus.QUEUED},
                 after={"status": ProjectRunStatus.RUNNING, "attempt": project_run.attempt})
    return project_run, project_run.attempt


@transaction.atomic(durable=True)
def project_run_resolved(*, pk: int, attempt: int, commit: str, digest: str, command: str,
                         actor: Actor) -> None:
    """The source the attempt fetched (commit, digest) and the command it will run."""
    project_run = _locked(pk)
    if project_run is None or project_run.attempt != attempt or \
            project_run.status != ProjectRunStatus.RUNNING:
        return
    project_run.resolved_commit, project_run.source_digest = commit, digest
    project_run.command = command
    project_run.save(update_fields=["resolved_commit", "source_digest", "command"])
    tags = {"mlflow.project.sourceDigest": digest}
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["mlflow.source.git.repoURL"] = project_run.git_url
    for key, value in tags.items():
        RunTag.objects.update_or_create(run_id=project_run.run_id, key=key,
                                        defaults={"value": value, "org_id": project_run.org_id})
    audit_record(org=project_run.org, actor=actor, action="project_run.source_resolved",
                 target=project_run, target_label=_label(project_run),
                 after={"commit": commit, "source_digest": digest, "command": command})


@transaction.atomic(durable=True)
def project_run_finish(*, pk: int, attempt: int | None, status: str, actor: Actor,
                       message: str = "", exit_code: int | None = None,
                       logs: dict | None = None) -> ProjectRun | None:
    """End the run (FINISHED, FAILED or KILLED); `attempt` None ends whatever attempt holds it
    (the sweeper, a cancel before start)."""
    project_run = _locked(pk)
    if project_run is None or project_run.status in DONE or \
            (attempt is not None and project_run.attempt != attempt):
        return None
    before = {"status": project_run.status}
    project_run.status, project_run.status_message = status, message[:4000]
    project_run.exit_code, project_run.ended_at = exit_code, timezone.now()
    project_run.lease_until = None
    project_run.save(update_fields=["status", "status_message", "exit_code", "ended_at",
                                    "lease_until"])
    _move_run(project_run, RUN_STATUS[status], end=True)
    audit_record(org=project_run.org, actor=actor, action="project_run.ended",
                 target=project_run, target_label=_label(project_run), before=before,
                 after={"status": status, "exit_code": exit_code, "message": message[:4000],
                        "logs": logs or {}})
    return project_run


def project_run_cancel(*, project_run: ProjectRun, actor: Actor) -> ProjectRun:
    """A queued run ends at once; a running one is killed by its worker (process group)."""
    with transaction.atomic(durable=True):
        locked = _locked(project_run.pk)
        if locked.status in DONE:
            raise ApplicationError(f"{_label(locked)} is {locked.status} already.",
                                   kind="conflict")
        if locked.status == ProjectRunStatus.RUNNING:
            if not locked.cancel_requested:
                locked.cancel_requested = True
                locked.save(update_fields=["cancel_requested"])
                audit_record(org=locked.org, actor=actor, action="project_run.cancel_requested",
                             target=locked, target_label=_label(locked),
                             after={"cancel_requested": True})
            return locked
    return project_run_finish(pk=project_run.pk, attempt=None, status=ProjectRunStatus.KILLED,
                              actor=actor, message="Cancelled before it started.") or locked
