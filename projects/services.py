"""Project runs: submission, the worker's claim, its outcome, cancel. Each public function is
one transaction with its audit event (the runner's hooks, `*_within`, are called inside the
job runner's transaction, projects/jobs.py); the tracking run moves with the project run."""

import hashlib
import re
import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record
from config.exceptions import ApplicationError
from config.jobs import runner
from projects.models import DONE, EnvManager, ProjectRun, ProjectRunStatus, SourceKind, Workflow
from projects.sources import check_git_url
from tenancy.models import ApiToken
from tracking.models import Experiment, Run, RunStatus, RunTag
from tracking.services.common import now_ms
from tracking.services.runs import run_create_within

STORAGE = "projects"
JOB = "projects.run"  # the job kind (projects/jobs.py)
MAX_STEPS = 20
STEP_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
STEP_REFERENCE = re.compile(r"\$\{steps\.([A-Za-z0-9_-]{1,100})\.run_id\}")
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


def _check_submission(*, git_url: str, archive_name: str, env_manager: str) -> None:
    if bool(git_url) == bool(archive_name):
        raise invalid("Give either a Git 'uri' or an 'archive'.", "uri")
    if git_url:
        check_git_url(git_url)
    if env_manager not in EnvManager.values:
        raise invalid(f"'env_manager' must be one of {', '.join(EnvManager.values)}.",
                      "env_manager")


def _timeout(timeout_seconds: int | None, field: str = "timeout_seconds") -> int:
    limit = settings.LEDGERFLOW_PROJECT_MAX_TIMEOUT
    timeout = settings.LEDGERFLOW_PROJECT_DEFAULT_TIMEOUT if timeout_seconds is None \
        else timeout_seconds
    if not 0 < timeout <= limit:
        raise invalid(f"'timeout_seconds' must be between 1 and {limit}.", field)
    return timeout


def _entry_point(entry_point: str, field: str = "entry_point") -> str:
    if not entry_point or len(entry_point) > 250:
        raise invalid("'entry_point' is required.", field)
    return entry_point


def _create_within(*, experiment: Experiment, actor: Actor, entry_point: str, parameters: dict,
                   git_url: str, git_ref: str, archive_name: str, env_manager: str,
                   timeout: int, status: str = ProjectRunStatus.QUEUED,
                   workflow: Workflow | None = None, step_index: int | None = None,
                   step_name: str = "") -> ProjectRun:
    """The project run and its tracking run (SCHEDULED), audited, in the caller's
    transaction; a workflow step is a child of the workflow's run."""
    source = git_url or archive_name.rsplit("/", 1)[-1]
    tags = {"mlflow.source.type": "PROJECT", "mlflow.source.name": source,
            "mlflow.project.entryPoint": entry_point, "mlflow.project.env": env_manager,
            "mlflow.project.backend": "ledgerflow"}
    if workflow is not None:
        tags.update({"mlflow.parentRunId": workflow.run.run_uuid, "mlflow.runName": step_name})
    run = run_create_within(experiment=experiment, actor=actor, status=RunStatus.SCHEDULED,
                            tags=tags)
    project_run = ProjectRun.objects.create(
        org=experiment.org, run=run, submitted_by=actor.user,
        source_kind=SourceKind.GIT if git_url else SourceKind.ARCHIVE, git_url=git_url,
        git_ref=git_ref, archive_name=archive_name, entry_point=entry_point,
        parameters=parameters, env_manager=env_manager, timeout_seconds=timeout,
        status=status, workflow=workflow, step_index=step_index, step_name=step_name)
    after = {"run_id": run.run_uuid, "experiment_id": experiment.public_id, "source": source,
             "ref": git_ref, "entry_point": entry_point, "parameters": parameters,
             "env_manager": env_manager, "timeout_seconds": timeout}
    if workflow is not None:
        after.update({"workflow": str(workflow.uuid), "step": step_name, "status": status})
    audit_record(org=experiment.org, actor=actor, action="project_run.submitted",
                 target=project_run, target_label=_label(project_run), after=after)
    if status == ProjectRunStatus.QUEUED:
        runner.submit(JOB, project_run.pk)
    return project_run


@transaction.atomic(durable=True)
def project_run_submit(*, experiment: Experiment, actor: Actor, entry_point: str = "main",
                       parameters: dict | None = None, git_url: str = "", git_ref: str = "",
                       archive_name: str = "", env_manager: str = EnvManager.LOCAL,
                       timeout_seconds: int | None = None) -> ProjectRun:
    """Store the submission first; the worker gets it after commit (or from the sweeper)."""
    _check_submission(git_url=git_url, archive_name=archive_name, env_manager=env_manager)
    return _create_within(experiment=experiment, actor=actor,
                          entry_point=_entry_point(entry_point),
                          parameters=_check_parameters(parameters or {}), git_url=git_url,
                          git_ref=git_ref, archive_name=archive_name, env_manager=env_manager,
                          timeout=_timeout(timeout_seconds))


def _check_steps(steps) -> list[dict]:
    """Each step: a unique name, an entry point, parameters that may hold
    `${steps.<earlier step>.run_id}`, an optional time limit."""
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise invalid(f"'steps' must be a list of 1 to {MAX_STEPS} steps.", "steps")
    checked, names = [], []
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            raise invalid(f"'{where}' must be an object.", where)
        unknown = set(step) - {"name", "entry_point", "parameters", "timeout_seconds"}
        if unknown:
            raise invalid(f"Unknown key(s) {sorted(unknown)} in '{where}'.", where)
        entry_point = _entry_point(step.get("entry_point") or "main", f"{where}.entry_point")
        name = str(step.get("name") or entry_point)
        if not STEP_NAME.fullmatch(name) or name in names:
            raise invalid(f"'{where}.name' must be unique, of letters, digits, '_' or '-' "
                          f"(up to 100), got {name!r}.", f"{where}.name")
        try:
            parameters = _check_parameters(step.get("parameters") or {})
        except ApplicationError as exc:
            raise invalid(exc.message, f"{where}.parameters") from None
        for key, value in parameters.items():
            for referred in STEP_REFERENCE.findall(value):
                if referred not in names:
                    raise invalid(f"Parameter '{key}' refers to step '{referred}', which is "
                                  f"not an earlier step.", f"{where}.parameters.{key}")
        timeout = step.get("timeout_seconds")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
            raise invalid("'timeout_seconds' must be an integer.", f"{where}.timeout_seconds")
        checked.append({"name": name, "entry_point": entry_point, "parameters": parameters,
                        "timeout": _timeout(timeout, f"{where}.timeout_seconds")})
        names.append(name)
    return checked


@transaction.atomic(durable=True)
def workflow_submit(*, experiment: Experiment, actor: Actor, steps: list, name: str = "",
                    git_url: str = "", git_ref: str = "", archive_name: str = "",
                    env_manager: str = EnvManager.LOCAL) -> Workflow:
    """A parent run and one child run per step, all stored now; the first step is queued, each
    next one when the one before it finishes (services.project_run_finish)."""
    _check_submission(git_url=git_url, archive_name=archive_name, env_manager=env_manager)
    checked = _check_steps(steps)
    name = name or "workflow"
    if len(name) > 250:
        raise invalid("'name' must be at most 250 characters.", "name")
    parent = run_create_within(
        experiment=experiment, actor=actor, status=RunStatus.SCHEDULED,
        tags={"mlflow.source.type": "PROJECT", "mlflow.runName": name,
              "mlflow.source.name": git_url or archive_name.rsplit("/", 1)[-1],
              "mlflow.project.backend": "ledgerflow"})
    workflow = Workflow.objects.create(org=experiment.org, name=name, run=parent,
                                       submitted_by=actor.user)
    audit_record(org=experiment.org, actor=actor, action="workflow.submitted", target=workflow,
                 target_label=str(workflow),
                 after={"run_id": parent.run_uuid, "experiment_id": experiment.public_id,
                        "steps": [s["name"] for s in checked]})
    for index, step in enumerate(checked):
        _create_within(experiment=experiment, actor=actor, entry_point=step["entry_point"],
                       parameters=step["parameters"], git_url=git_url, git_ref=git_ref,
                       archive_name=archive_name, env_manager=env_manager,
                       timeout=step["timeout"], workflow=workflow, step_index=index,
                       step_name=step["name"],
                       status=ProjectRunStatus.QUEUED if index == 0 else ProjectRunStatus.WAITING)
    return workflow


def _locked(pk: int) -> ProjectRun | None:
    return ProjectRun.objects.select_for_update(of=("self",)).select_related(
        "run", "org", "submitted_by").filter(pk=pk).first()


def _move_run(run_id: int, status: str, *, end: bool) -> None:
    run = Run.objects.select_for_update().get(pk=run_id)
    if run.status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED) and end \
            and status == RunStatus.FINISHED:
        return  # the project ended its run itself; a clean exit keeps what it said
    run.status = status
    run.end_time = now_ms() if end else None
    run.save(update_fields=["status", "end_time"])


def project_run_claim_within(*, pk: int, attempt: int, actor: Actor) -> bool:
    """The job runner's claim: a queued run starts attempt `attempt` (False: it is no longer
    queued). In the runner's transaction."""
    project_run = _locked(pk)
    if project_run is None or project_run.status != ProjectRunStatus.QUEUED:
        return False
    project_run.status, project_run.attempt = ProjectRunStatus.RUNNING, attempt
    project_run.started_at = timezone.now()
    project_run.save(update_fields=["status", "attempt", "started_at"])
    _move_run(project_run.run_id, RunStatus.RUNNING, end=False)
    audit_record(org=project_run.org, actor=actor, action="project_run.started",
                 target=project_run, target_label=_label(project_run),
                 before={"status": ProjectRunStatus.QUEUED},
                 after={"status": ProjectRunStatus.RUNNING, "attempt": attempt})
    if project_run.workflow_id:
        workflow = Workflow.objects.select_for_update().get(pk=project_run.workflow_id)
        if workflow.status == ProjectRunStatus.QUEUED:
            workflow.status = ProjectRunStatus.RUNNING
            workflow.save(update_fields=["status"])
            _move_run(workflow.run_id, RunStatus.RUNNING, end=False)
            audit_record(org=workflow.org, actor=actor, action="workflow.started",
                         target=workflow, target_label=str(workflow),
                         before={"status": ProjectRunStatus.QUEUED},
                         after={"status": ProjectRunStatus.RUNNING})
    return True


def _held(pk: int, attempt: int) -> ProjectRun | None:
    project_run = _locked(pk)
    if project_run is None or project_run.status != ProjectRunStatus.RUNNING or \
            project_run.attempt != attempt:
        return None
    return project_run


def project_run_retryable(*, pk: int) -> bool:
    """May a lost or interrupted attempt run again: only when its entry point says so."""
    return ProjectRun.objects.filter(pk=pk, safe_to_retry=True).exists()


def project_run_requeue_within(*, pk: int, attempt: int, reason: str, actor: Actor) -> bool:
    """The job runner retries the run: queued again (its tracking run SCHEDULED). In the
    runner's transaction; False when the attempt no longer holds the run."""
    project_run = _held(pk, attempt)
    if project_run is None:
        return False
    project_run.status = ProjectRunStatus.QUEUED
    project_run.save(update_fields=["status"])
    _move_run(project_run.run_id, RunStatus.SCHEDULED, end=False)
    audit_record(org=project_run.org, actor=actor, action="project_run.requeued",
                 target=project_run, target_label=_label(project_run),
                 before={"status": ProjectRunStatus.RUNNING, "attempt": attempt},
                 after={"status": ProjectRunStatus.QUEUED, "reason": reason[:4000]})
    return True


def project_run_give_up_within(*, pk: int, attempt: int, reason: str, actor: Actor) -> bool:
    """The job runner gives up on the run (its worker lost, its attempts spent): FAILED, or
    KILLED when a cancel was asked for. In the runner's transaction."""
    project_run = _held(pk, attempt)
    if project_run is None:
        return False
    status = ProjectRunStatus.KILLED if project_run.cancel_requested else ProjectRunStatus.FAILED
    _end_within(project_run, status, actor, reason)
    if project_run.workflow_id:
        _workflow_advance(project_run, actor)
    return True


@transaction.atomic(durable=True)
def project_run_resolved(*, pk: int, attempt: int, commit: str, digest: str, command: str,
                         safe_to_retry: bool, actor: Actor) -> None:
    """The source the attempt fetched (commit, digest) and the command it will run."""
    project_run = _locked(pk)
    if project_run is None or project_run.attempt != attempt or \
            project_run.status != ProjectRunStatus.RUNNING:
        return
    project_run.resolved_commit, project_run.source_digest = commit, digest
    project_run.command, project_run.safe_to_retry = command, safe_to_retry
    project_run.save(update_fields=["resolved_commit", "source_digest", "command",
                                    "safe_to_retry"])
    tags = {"mlflow.project.sourceDigest": digest}
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["mlflow.source.git.repoURL"] = project_run.git_url
    for key, value in tags.items():
        RunTag.objects.update_or_create(run_id=project_run.run_id, key=key,
                                        defaults={"value": value, "org_id": project_run.org_id})
    audit_record(org=project_run.org, actor=actor, action="project_run.source_resolved",
                 target=project_run, target_label=_label(project_run),
                 after={"commit": commit, "source_digest": digest, "command": command,
                        "safe_to_retry": safe_to_retry})


def _end_within(project_run: ProjectRun, status: str, actor: Actor, message: str = "",
                exit_code: int | None = None, logs: dict | None = None) -> None:
    before = {"status": project_run.status}
    project_run.status, project_run.status_message = status, message[:4000]
    project_run.exit_code, project_run.ended_at = exit_code, timezone.now()
    project_run.save(update_fields=["status", "status_message", "exit_code", "ended_at"])
    _move_run(project_run.run_id, RUN_STATUS[status], end=True)
    # however the run ends (its worker lost, cancelled before start), its token dies with it
    revoked = ApiToken.objects.filter(org_id=project_run.org_id,
                                      run_uuid=project_run.run.run_uuid,
                                      revoked_at__isnull=True).update(revoked_at=timezone.now())
    audit_record(org=project_run.org, actor=actor, action="project_run.ended",
                 target=project_run, target_label=_label(project_run), before=before,
                 after={"status": status, "exit_code": exit_code, "message": message[:4000],
                        "logs": logs or {}, **({"tokens_revoked": revoked} if revoked else {})})


@transaction.atomic(durable=True)
def project_run_finish(*, pk: int, attempt: int | None, status: str, actor: Actor,
                       message: str = "", exit_code: int | None = None,
                       logs: dict | None = None) -> ProjectRun | None:
    """End the run (FINISHED, FAILED or KILLED); `attempt` None ends whatever attempt holds it
    (a cancel before start). A workflow moves on to its next step, or ends."""
    project_run = _locked(pk)
    if project_run is None or project_run.status in DONE or \
            (attempt is not None and project_run.attempt != attempt):
        return None
    _end_within(project_run, status, actor, message, exit_code, logs)
    if project_run.workflow_id:
        _workflow_advance(project_run, actor)
    return project_run


def _workflow_advance(step: ProjectRun, actor: Actor) -> None:
    workflow = Workflow.objects.select_for_update().select_related("org").get(
        pk=step.workflow_id)
    if workflow.status in DONE:
        return
    later = list(ProjectRun.objects.select_for_update().select_related("org").filter(
        workflow=workflow, step_index__gt=step.step_index).exclude(status__in=DONE)
        .order_by("step_index"))
    if step.status == ProjectRunStatus.FINISHED and later:
        _release(later[0], step, actor)
        return
    for waiting in later:
        _end_within(waiting, ProjectRunStatus.KILLED, actor,
                    f"Not run: step '{step.step_name}' ended {step.status}.")
    before = {"status": workflow.status}
    workflow.status, workflow.ended_at = step.status, timezone.now()
    workflow.status_message = "" if step.status == ProjectRunStatus.FINISHED else \
        f"Step '{step.step_name}' ended {step.status}: {step.status_message}"[:4000]
    workflow.save(update_fields=["status", "status_message", "ended_at"])
    _move_run(workflow.run_id, RUN_STATUS[step.status], end=True)
    audit_record(org=workflow.org, actor=actor, action="workflow.ended", target=workflow,
                 target_label=str(workflow), before=before,
                 after={"status": workflow.status, "message": workflow.status_message})


def _release(step: ProjectRun, previous: ProjectRun, actor: Actor) -> None:
    """Queue the next step: references to earlier steps become their run ids, and a Git
    source is pinned to the commit the first steps ran."""
    run_ids = dict(ProjectRun.objects.filter(
        workflow_id=step.workflow_id, step_index__lt=step.step_index)
        .values_list("step_name", "run__run_uuid"))
    step.parameters = {key: STEP_REFERENCE.sub(lambda m: run_ids[m.group(1)], value)
                       for key, value in step.parameters.items()}
    if previous.resolved_commit and step.git_url == previous.git_url:
        step.git_ref = previous.resolved_commit
    step.status = ProjectRunStatus.QUEUED
    step.save(update_fields=["parameters", "git_ref", "status"])
    audit_record(org=step.org, actor=actor, action="project_run.released", target=step,
                 target_label=_label(step), before={"status": ProjectRunStatus.WAITING},
                 after={"status": ProjectRunStatus.QUEUED, "parameters": step.parameters,
                        "ref": step.git_ref})
    runner.submit(JOB, step.pk)


def project_run_cancel(*, project_run: ProjectRun, actor: Actor) -> ProjectRun:
    """A queued run ends at once; a running one is killed by its worker (process group). A
    workflow step is cancelled with its workflow."""
    if project_run.workflow_id:
        workflow_cancel(workflow=project_run.workflow, actor=actor)
        return ProjectRun.objects.get(pk=project_run.pk)
    return _cancel(project_run, actor)


def workflow_cancel(*, workflow: Workflow, actor: Actor) -> Workflow:
    """Cancel the step that is queued or running; the steps after it are not run."""
    active = workflow.steps.exclude(status__in=DONE).order_by("step_index").first()
    if active is None:
        raise ApplicationError(f"{workflow} is {workflow.status} already.", kind="conflict")
    _cancel(active, actor)
    return Workflow.objects.get(pk=workflow.pk)


@transaction.atomic(durable=True)
def _cancel(project_run: ProjectRun, actor: Actor) -> ProjectRun:
    """A queued or waiting run ends KILLED now; a running one is asked to stop (its worker
    kills every process of it and ends it KILLED)."""
    locked = _locked(project_run.pk)
    if locked.status in DONE:
        raise ApplicationError(f"{_label(locked)} is {locked.status} already.", kind="conflict")
    if runner.cancel(JOB, locked.pk) == "requested":
        if not locked.cancel_requested:
            locked.cancel_requested = True
            locked.save(update_fields=["cancel_requested"])
            audit_record(org=locked.org, actor=actor, action="project_run.cancel_requested",
                         target=locked, target_label=_label(locked),
                         after={"cancel_requested": True})
        return locked
    _end_within(locked, ProjectRunStatus.KILLED, actor, "Cancelled before it started.")
    if locked.workflow_id:
        _workflow_advance(locked, actor)
    return locked
