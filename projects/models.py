"""Project runs: a submission of an MLproject (Git or an uploaded archive) with an entry point
and parameters, executed by a worker of the `projects` queue into one tracking run."""

import uuid

from django.conf import settings
from django.db import models

from tenancy.models import TenantModel


class SourceKind(models.TextChoices):
    GIT = "git"
    ARCHIVE = "archive"


class EnvManager(models.TextChoices):
    LOCAL = "local"
    VIRTUALENV = "virtualenv"
    CONDA = "conda"


class ProjectRunStatus(models.TextChoices):
    WAITING = "WAITING"  # a workflow step whose earlier steps have not finished
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


DONE = (ProjectRunStatus.FINISHED, ProjectRunStatus.FAILED, ProjectRunStatus.KILLED)


class Workflow(TenantModel):
    """A list of steps run in order, each a ProjectRun with its own tracking run, children of
    one parent run; a step's parameters may name the runs of the steps before it."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=250)
    run = models.OneToOneField("tracking.Run", on_delete=models.PROTECT, related_name="+")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    status = models.CharField(max_length=10, choices=ProjectRunStatus.choices,
                              default=ProjectRunStatus.QUEUED)
    status_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-created_at"], name="workflow_org_created")]

    def __str__(self):
        return f"workflow {self.name} ({self.uuid})"


class ProjectRun(TenantModel):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    run = models.OneToOneField("tracking.Run", on_delete=models.PROTECT, related_name="+")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    git_url = models.CharField(max_length=1000, blank=True)
    git_ref = models.CharField(max_length=250, blank=True)
    archive_name = models.CharField(max_length=300, blank=True)  # in STORAGES["projects"]
    entry_point = models.CharField(max_length=250, default="main")
    parameters = models.JSONField(default=dict, blank=True)
    env_manager = models.CharField(max_length=12, choices=EnvManager.choices,
                                   default=EnvManager.LOCAL)
    timeout_seconds = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=ProjectRunStatus.choices,
                              default=ProjectRunStatus.QUEUED)
    status_message = models.TextField(blank=True)
    resolved_commit = models.CharField(max_length=64, blank=True)
    source_digest = models.CharField(max_length=71, blank=True)
    command = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempt = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    # The entry point says a lost attempt may simply run again (MLproject `safe_to_retry`).
    safe_to_retry = models.BooleanField(default=False)
    workflow = models.ForeignKey(Workflow, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="steps")
    step_index = models.PositiveIntegerField(null=True, blank=True)
    step_name = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-created_at"], name="project_run_org_created"),
                   models.Index(fields=["status"], name="project_run_status")]
        constraints = [models.UniqueConstraint(fields=["workflow", "step_index"],
                                               name="project_run_one_per_step")]

    def __str__(self):
        return f"project run {self.uuid}"
