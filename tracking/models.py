"""Experiments, runs and what is logged to them, in MLflow's model, per organization.

Every table carries `org_id` (TenantModel). Times are milliseconds since the epoch, as in
MLflow's protocol. Public run ids are 32-hex uuids; experiment ids are the primary key, except
each organization's Default experiment, which the protocol calls "0".
"""

from django.db import models

from tenancy.models import TenantModel


class LifecycleStage(models.TextChoices):
    ACTIVE = "active"
    DELETED = "deleted"


class Experiment(TenantModel):
    """A named group of runs; the name is unique within the organization."""

    name = models.CharField(max_length=500)
    artifact_location = models.CharField(max_length=1000, blank=True)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices,
                                       default=LifecycleStage.ACTIVE)
    is_default = models.BooleanField(default=False)
    creation_time = models.BigIntegerField()
    last_update_time = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="experiment_unique_name_per_org"),
            models.UniqueConstraint(fields=["org"], condition=models.Q(is_default=True),
                                    name="experiment_one_default_per_org"),
        ]

    def __str__(self):
        return self.name

    @property
    def public_id(self) -> str:
        return "0" if self.is_default else str(self.pk)


class ExperimentTag(TenantModel):
    """A key/value tag on an experiment."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "key"],
                                               name="experiment_tag_unique_key")]

    def __str__(self):
        return self.key


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Run(TenantModel):
    """One execution: its params never change, its metrics are appended."""

    run_uuid = models.CharField(max_length=32, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    user_id = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.BigIntegerField(null=True)
    end_time = models.BigIntegerField(null=True)
    deleted_time = models.BigIntegerField(null=True)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices,
                                       default=LifecycleStage.ACTIVE)
    artifact_uri = models.CharField(max_length=1000, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["experiment", "lifecycle_stage", "-start_time"],
                         name="run_experiment_start"),
        ]

    def __str__(self):
        return self.name or self.run_uuid


class Param(TenantModel):
    """A parameter: logged once; a different value later is refused (DESIGN.md invariant 5)."""

    # no index of its own: the unique (run, key) index leads with run_id, and the planner
    # then probes a run's row of one key instead of all its rows
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params",
                            db_index=False)
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_unique_key")]

    def __str__(self):
        return self.key


class RunTag(TenantModel):
    """A key/value tag on a run (mlflow.* tags included)."""

    # no index of its own: the unique (run, key) index leads with run_id
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags",
                            db_index=False)
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_unique_key")]

    def __str__(self):
        return self.key


class Metric(TenantModel):
    """One metric point. Points are appended, never rewritten; an identical point sent twice
    (a client retry) is stored once, which the unique constraint enforces cheaply."""

    # No index of their own on the largest table: every read goes by run (the unique
    # constraint's index leads with run_id), and each extra index is paid on every point.
    # No foreign-key constraints either: PostgreSQL checks those row by row (2,000 lookups of
    # the same run at COMMIT for a batch of 1,000 points). Migration 0005 keeps the same
    # integrity with one check per statement: a point's run exists and is of the point's
    # organization, and a deleted run's points go with it.
    org = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+",
                            db_index=False, db_constraint=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics",
                            db_index=False, db_constraint=False)
    key = models.CharField(max_length=250)
    value = models.FloatField()  # 0 when is_nan: SQLite cannot store a NaN (MLflow does the same)
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    model_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001  (absent != "")
    dataset_name = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    dataset_digest = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            # Also the index that metric history reads walk: (run, key, step, timestamp).
            models.UniqueConstraint(fields=["run", "key", "step", "timestamp", "value", "is_nan"],
                                    name="metric_point_unique"),
        ]
        # a logged model's metrics (few of all points carry a model id)
        indexes = [models.Index(fields=["model_id"], name="metric_model_id",
                                condition=models.Q(model_id__isnull=False))]

    def __str__(self):
        return f"{self.key}@{self.step}"


class LatestMetric(TenantModel):
    """The latest point of each metric key of a run (by step, then time, then value), kept
    by set-based upserts so search can filter and sort on metrics without scanning history."""

    # no index of its own: the unique (run, key) index leads with run_id
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics",
                            db_index=False)
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"],
                                               name="latest_metric_unique_key")]
        indexes = [models.Index(fields=["key", "value"], name="latest_metric_key_value")]

    def __str__(self):
        return self.key


class Dataset(TenantModel):
    """A dataset as MLflow describes it (name + digest), shared by the runs of an experiment."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=64)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "name", "digest"],
                                               name="dataset_unique_per_experiment")]

    def __str__(self):
        return f"{self.name} ({self.digest})"


class RunInput(TenantModel):
    """A dataset used by a run, with its input tags (e.g. mlflow.data.context=training)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    tags = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "dataset"],
                                               name="run_input_unique_dataset")]

    def __str__(self):
        return f"{self.run_id}<-{self.dataset_id}"


class LoggedModelStatus(models.TextChoices):
    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


class LoggedModel(TenantModel):
    """An MLflow 3 logged model: artifacts plus metadata, usually produced by a run."""

    model_id = models.CharField(max_length=64, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=500)
    source_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="logged_models")
    status = models.CharField(max_length=32, choices=LoggedModelStatus.choices,
                              default=LoggedModelStatus.PENDING)
    status_message = models.TextField(blank=True)
    model_type = models.CharField(max_length=500, blank=True)
    artifact_uri = models.CharField(max_length=1000)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices,
                                       default=LifecycleStage.ACTIVE)
    tags = models.JSONField(default=dict)
    params = models.JSONField(default=dict)

    def __str__(self):
        return f"{self.name} ({self.model_id})"


class RunOutput(TenantModel):
    """A logged model produced by a run at a step."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outputs")
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="+")
    step = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "logged_model"],
                                               name="run_output_unique_model")]

    def __str__(self):
        return f"{self.run_id}->{self.logged_model_id}"
