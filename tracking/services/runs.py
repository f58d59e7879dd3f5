"""Runs: create, update, delete/restore, and everything logged to them.

Each service is one transaction with one audit event. Batches are set-based: metric points
and their keys' latest values go in with one statement (identical re-sends are stored once),
params with one insert and one comparison query.
"""

import uuid

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils.module_loading import import_string
from mlflow.utils import validation as mlflow_validation
from mlflow.utils.name_utils import _generate_random_name as random_run_name

from audit.actors import Actor
from audit.chain import payload_digest
from audit.services import audit_record
from config.pgarrays import packed
from config.rows import preparing_cursor
from tracking.models import (
    Experiment,
    LatestMetric,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
)
from tracking.services.common import invalid, not_found, now_ms

RUN_NAME_TAG = "mlflow.runName"


def _run_view(run: Run) -> dict:
    return {"name": run.name, "status": run.status, "lifecycle_stage": run.lifecycle_stage,
            "end_time": run.end_time}


@transaction.atomic(durable=True)
def run_create(*, experiment: Experiment, actor: Actor, run_name: str = "", user_id: str = "",
               start_time: int | None = None, tags: dict | None = None) -> Run:
    return run_create_within(experiment=experiment, actor=actor, run_name=run_name,
                             user_id=user_id, start_time=start_time, tags=tags)


def run_create_within(*, experiment: Experiment, actor: Actor, run_name: str = "",
                      user_id: str = "", start_time: int | None = None, tags: dict | None = None,
                      status: str = RunStatus.RUNNING) -> Run:
    """run_create inside the caller's transaction (a project submission makes its tracking
    run and itself in one), with the status to start in."""
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise invalid(f"The experiment {experiment.public_id} must be in the 'active' state. "
                      f"Current state is {experiment.lifecycle_stage}.")
    tags = dict(tags or {})
    _validate_tags(tags)
    run_name = run_name or tags.get(RUN_NAME_TAG) or random_run_name()
    if tags.get(RUN_NAME_TAG, run_name) != run_name:
        raise invalid(f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but "
                      f"with different values (run_name='{run_name}', "
                      f"mlflow.runName='{tags[RUN_NAME_TAG]}').")
    tags[RUN_NAME_TAG] = run_name
    run_uuid = uuid.uuid4().hex
    run = Run.objects.create(
        org=experiment.org, run_uuid=run_uuid, experiment=experiment, name=run_name,
        user_id=user_id or (actor.user.email if actor.user else ""), status=status,
        start_time=start_time if start_time is not None else now_ms(),
        artifact_uri=f"{experiment.artifact_location}/{run_uuid}/artifacts")
    RunTag.objects.bulk_create(RunTag(org=run.org, run=run, key=k, value=v)
                               for k, v in tags.items())
    audit_record(org=run.org, actor=actor, action="run.created", target=run,
                 target_label=f"{run.name} ({run_uuid})",
                 after={**_run_view(run), "experiment_id": experiment.public_id,
                        "tags": len(tags)})
    return run


def run_locked(run: Run) -> Run:
    """The run read again under its row lock, with what its audit event needs (org, experiment)."""
    return Run.objects.select_related("org", "experiment").select_for_update(of=("self",)) \
        .get(pk=run.pk)


@transaction.atomic(durable=True)
def run_update(*, run: Run, actor: Actor, status: str | None = None,
               end_time: int | None = None, run_name: str | None = None) -> Run:
    run = run_locked(run)
    _require_active(run)
    if status is not None and status not in RunStatus.values:
        raise invalid(f"Invalid run status '{status}'; one of {', '.join(RunStatus.values)}.")
    before = _run_view(run)
    if status is not None:
        run.status = status
    if end_time is not None:
        run.end_time = end_time
    if run_name:
        run.name = run_name
        RunTag.objects.update_or_create(run=run, key=RUN_NAME_TAG,
                                        defaults={"value": run_name, "org": run.org})
    run.save(update_fields=["status", "end_time", "name"])
    audit_record(org=run.org, actor=actor, action="run.updated", target=run,
                 target_label=f"{run.name} ({run.run_uuid})", before=before,
                 after=_run_view(run))
    return run


@transaction.atomic(durable=True)
def run_set_lifecycle(*, run: Run, stage: str, actor: Actor) -> Run:
    run = run_locked(run)
    if stage == LifecycleStage.ACTIVE and run.lifecycle_stage == LifecycleStage.ACTIVE:
        raise invalid(f"The run {run.run_uuid} must be in the 'deleted' state. Current state "
                      "is active.")
    if stage == LifecycleStage.DELETED and run.lifecycle_stage == LifecycleStage.DELETED:
        raise invalid(f"The run {run.run_uuid} must be in the 'active' state. Current state "
                      "is deleted.")
    if stage == LifecycleStage.DELETED:
        # Other apps may hold on to a run (a registered model version built from it); they
        # are named in settings, so tracking imports none of them.
        for guard in settings.LEDGERFLOW_RUN_DELETE_GUARDS:
            import_string(guard)(run=run)
    before = _run_view(run)
    run.lifecycle_stage = stage
    run.deleted_time = now_ms() if stage == LifecycleStage.DELETED else None
    run.save(update_fields=["lifecycle_stage", "deleted_time"])
    action = "run.deleted" if stage == LifecycleStage.DELETED else "run.restored"
    audit_record(org=run.org, actor=actor, action=action, target=run,
                 target_label=f"{run.name} ({run.run_uuid})", before=before,
                 after=_run_view(run))
    return run


def _require_active(run: Run) -> None:
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise invalid(f"The run {run.run_uuid} must be in the 'active' state. Current state is "
                      f"{run.lifecycle_stage}.")


def _validate_tags(tags: dict) -> None:
    for key, value in tags.items():
        mlflow_validation._validate_tag_name(key)
        mlflow_validation._validate_length_limit("Tag value", mlflow_validation.MAX_TAG_VAL_LENGTH,
                                                 value)


def run_log_batch(*, run: Run, actor: Actor, metrics: "list[dict] | MetricPoints",
                  params: list[dict], tags: list[dict], payload: dict | bytes) -> dict:
    """Log metrics (dicts with key/value/timestamp/step, or their columns), params and tags in
    one transaction.

    `payload` is the request as received, its body (bytes) or its data; the audit event keeps
    its SHA-256 (of the bytes, or of the data's canonical JSON), not a copy.
    No lock on the run: concurrent batches to one run must not queue behind each other (the
    unique constraints keep params and points consistent; the audit head lock comes last).
    """
    points = metrics if isinstance(metrics, MetricPoints) else \
        MetricPoints.from_dicts(metrics) if metrics else None
    try:
        return _log_batch(run, actor, points, params, tags, payload, skip_stored=False)
    except _PointsStoredBefore:
        # A point of the batch is stored already (a client resending a batch that did
        # commit): the transaction went back whole; again, skipping the points the run has.
        return _log_batch(run, actor, points, params, tags, payload, skip_stored=True)


@transaction.atomic(durable=True)
def _log_batch(run: Run, actor: Actor, points: "MetricPoints | None", params: list[dict],
               tags: list[dict], payload: dict | bytes, *, skip_stored: bool) -> dict:
    _require_active(run)
    if points:  # the transaction's first statement: see _insert_metrics_postgres
        _insert_metrics(run, points, skip_stored=skip_stored)
    if params:
        _insert_params(run, params)
    if tags:
        _upsert_tags(run, tags)
    counts = {"metrics": len(points) if points else 0, "params": len(params),
              "tags": len(tags), "sha256": payload_digest(payload)}
    audit_record(org=run.org, actor=actor, action="run.batch_logged", target=run,
                 target_label=f"{run.name} ({run.run_uuid})", after=counts)
    return counts


class _PointsStoredBefore(Exception):
    """The plain INSERT of a batch's points met one the run already has."""


_METRIC_COLUMNS = (("key", "varchar"), ("value", "float8"), ("is_nan", "bool"),
                   ("timestamp", "int8"), ("step", "int8"))
_METRIC_EXTRAS = (("model_id", "varchar"), ("dataset_name", "varchar"),
                  ("dataset_digest", "varchar"))


class MetricPoints:
    """A batch's points as columns (key, value, timestamp, step, and model_id, dataset_name,
    dataset_digest when a point has them). NaN is stored as 0 with a flag, as MLflow does
    (SQLite has no NaN)."""

    def __init__(self, key: list[str], value: list[float], timestamp: list[int],
                 step: list[int], **extras: list):
        value = list(map(float, value))
        self.columns = {"key": key, "value": [0.0 if v != v else v for v in value],
                        "is_nan": [v != v for v in value], "timestamp": timestamp,
                        "step": step}
        self.kinds = list(_METRIC_COLUMNS)
        for name, kind in _METRIC_EXTRAS:
            if any(extras.get(name) or ()):
                self.columns[name] = extras[name]
                self.kinds.append((name, kind))

    @classmethod
    def from_dicts(cls, metrics: list[dict]) -> "MetricPoints":
        return cls(**{name: [m.get(name) for m in metrics]
                      for name in ("key", "value", "timestamp", "step",
                                   *(extra for extra, _ in _METRIC_EXTRAS))})

    def __len__(self) -> int:
        return len(self.columns["key"])

    def rows(self) -> list[dict]:
        names = list(self.columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*self.columns.values(),
                                                                   strict=True)]


def _insert_metrics(run: Run, points: MetricPoints, *, skip_stored: bool) -> None:
    if connection.vendor == "postgresql":
        _insert_metrics_postgres(run, points, skip_stored=skip_stored)
        return
    rows = points.rows()
    Metric.objects.bulk_create([Metric(org_id=run.org_id, run_id=run.pk, **row) for row in rows],
                               ignore_conflicts=True)
    _upsert_latest(run, rows)


def _insert_metrics_postgres(run: Run, points: MetricPoints, *, skip_stored: bool) -> None:
    """One statement stores the points and upserts each key's latest value.

    The points go as array parameters (unnest) bound by the server (Django's psycopg cursor
    binds on the client, spelling 5,000 values into the SQL text); no model instances. The five
    columns every point has are packed in PostgreSQL's binary array format by struct
    (config.pgarrays: no Python call per value, no float to text and back, nothing to
    escape); the optional columns, which hold nulls, go through psycopg's list dumper.
    A plain INSERT, as a point sent again (a client retry) is rare and ON CONFLICT's
    speculative insertion costs a third more on every batch. It is the transaction's first
    statement, so when it meets a stored point the whole transaction goes back and the batch
    is logged again with ON CONFLICT DO NOTHING (no savepoint: two round trips less).
    The latest value of each key is the point with the highest (step, timestamp, value), the
    first sent among equals, and replaces the stored one only when it is later, MLflow's order.
    """
    metric = connection.ops.quote_name(Metric._meta.db_table)
    latest = connection.ops.quote_name(LatestMetric._meta.db_table)
    names = ", ".join(name for name, _ in points.kinds)
    values = {"org": run.org_id, "run": run.pk, **points.columns}
    for name, kind in _METRIC_COLUMNS:
        values[name] = packed(kind, values[name])
    arrays = ", ".join(f"%({name})b::{kind}[]" for name, kind in points.kinds)
    sql = (  # our tables' names; every value is a parameter. The keys' latest values are
        # upserted in a data-modifying WITH that the main statement does not read. PostgreSQL
        # documents no order between the two, and none is needed for the result; it runs
        # such a WITH after the main statement (ExecPostprocessPlan), so the row locks that
        # every batch of the run waits for are held for the audit event and COMMIT only,
        # not while 1,000 points are stored.
        f"WITH points AS (SELECT * FROM unnest({arrays}) WITH ORDINALITY AS p({names}, sent)), "  # noqa: S608
        f"latest AS (INSERT INTO {latest} (org_id, run_id, key, value, is_nan, timestamp, step) "
        f"SELECT DISTINCT ON (key) %(org)b, %(run)b, key, value, is_nan, timestamp, step "
        f"FROM points ORDER BY key, step DESC, timestamp DESC, value DESC, sent "
        f"ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, "
        f"is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step "
        f"WHERE (excluded.step, excluded.timestamp, excluded.value) > "
        f"({latest}.step, {latest}.timestamp, {latest}.value)) "
        f"INSERT INTO {metric} (org_id, run_id, {names}) "
        f"SELECT %(org)b, %(run)b, {names} FROM points"
        f"{' ON CONFLICT DO NOTHING' if skip_stored else ''}")
    with preparing_cursor(connection) as cursor:
        try:
            cursor.execute(sql, values)
        except psycopg.errors.UniqueViolation as exc:
            if skip_stored:
                raise
            raise _PointsStoredBefore from exc


def _newest_per_key(metrics: list[dict]) -> dict[str, dict]:
    newest: dict[str, dict] = {}
    for m in metrics:
        current = newest.get(m["key"])
        if current is None or (m["step"], m["timestamp"], m["value"]) > \
                (current["step"], current["timestamp"], current["value"]):
            newest[m["key"]] = m
    return newest


def _upsert_latest(run: Run, metrics: list[dict]) -> None:
    """SQLite: insert each key's newest point, or replace the stored one when the new point
    is later by (step, timestamp, value), MLflow's order for "latest"."""
    newest = list(_newest_per_key(metrics).values())
    names = ("key", "value", "is_nan", "timestamp", "step")
    source = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(newest))
    params = [value for m in newest for value in (run.org_id, run.pk, *(m[name] for name in names))]
    table = connection.ops.quote_name(LatestMetric._meta.db_table)
    # The table name is our model's and every value is a parameter.
    sql = (
        f"INSERT INTO {table} (org_id, run_id, key, value, is_nan, timestamp, step) "
        f"{source} "
        f"ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, "
        f"timestamp = excluded.timestamp, step = excluded.step "
        f"WHERE (excluded.step, excluded.timestamp, excluded.value) > "
        f"({table}.step, {table}.timestamp, {table}.value)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _insert_params(run: Run, params: list[dict]) -> None:
    sent: dict[str, str] = {}
    for p in params:
        if sent.setdefault(p["key"], p["value"]) != p["value"]:
            raise invalid(f"Duplicate parameter keys have been submitted: {p['key']} with "
                          "different values.")
    Param.objects.bulk_create([Param(org_id=run.org_id, run_id=run.pk, key=k, value=v)
                               for k, v in sent.items()], ignore_conflicts=True)
    stored = dict(Param.objects.filter(run=run, key__in=sent).values_list("key", "value"))
    for key, value in sent.items():
        if stored[key] != value:
            raise invalid(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{stored[key]}' for run ID='{run.run_uuid}'. Attempted "
                f"logging new value '{value}'.")


def _upsert_tags(run: Run, tags: list[dict]) -> None:
    latest = {t["key"]: t["value"] for t in tags}
    RunTag.objects.bulk_create(
        [RunTag(org_id=run.org_id, run_id=run.pk, key=k, value=v) for k, v in latest.items()],
        update_conflicts=True, unique_fields=["run", "key"], update_fields=["value"])
    if RUN_NAME_TAG in latest and latest[RUN_NAME_TAG] != run.name:
        run.name = latest[RUN_NAME_TAG]
        run.save(update_fields=["name"])


@transaction.atomic(durable=True)
def run_delete_tag(*, run: Run, key: str, actor: Actor) -> None:
    run = run_locked(run)
    _require_active(run)
    tag = RunTag.objects.filter(run=run, key=key).first()
    if tag is None:
        raise not_found(f"No tag with name: {key} in run with id {run.run_uuid}")
    tag.delete()
    audit_record(org=run.org, actor=actor, action="run.tag_deleted", target=run,
                 target_label=f"{run.name} ({run.run_uuid})",
                 before={"key": key, "value": tag.value})
