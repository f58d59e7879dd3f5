"""A job's bookkeeping: which attempt holds it and until when, when it was last handed to the
broker, when it may run again, whether its cancel was asked for.

Kept apart from the audited tables of the apps because it changes every few seconds and says
nothing about the work itself: every change of the work's own state (a project run, a model
version, a disclosure) is audited by its app, in the same transaction as the job row moves.
"""

from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "QUEUED"    # waiting for a worker (not before `not_before`, when set)
    RUNNING = "RUNNING"  # held by attempt `attempt` until `lease_until`, renewed by heartbeats
    DONE = "DONE"        # ended, however: the app's own object says how


class Job(models.Model):
    kind = models.CharField(max_length=64)      # a declared kind: "projects.run", ...
    target = models.BigIntegerField()           # the primary key of the kind's object
    queue = models.CharField(max_length=32)
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempt = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "target"], name="job_one_per_target")]
        indexes = [models.Index(fields=["status", "lease_until"], name="job_status_lease"),
                   models.Index(fields=["status", "handed_over_at"], name="job_status_handed")]

    def __str__(self):
        return f"{self.kind} #{self.target} ({self.status}, attempt {self.attempt})"
