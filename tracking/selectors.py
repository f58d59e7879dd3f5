"""Reads of tracking data, scoped to an organization. Search lives in tracking.search."""

import functools
import re

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from config.exceptions import ApplicationError
from config.rows import Join, cache_related
from tracking.artifacts import (
    ArtifactLocation,
    artifact_path_clean,
    artifact_path_of_uri,
    artifact_storage,
)
from tracking.models import Experiment, LifecycleStage, LoggedModel, Metric, Run
from tracking.services.common import not_found
from tracking.services.experiments import experiment_default


def experiment_get(*, org, experiment_id: str) -> Experiment:
    """By public id: "0" is the org's Default experiment; others answer 404 like missing ones."""
    if experiment_id == "0":
        return experiment_default(org=org)
    experiment = None
    if experiment_id.isascii() and experiment_id.isdigit() and int(experiment_id) < 2**63:
        found = _experiment_join().one([org.pk, int(experiment_id)])  # every search asks it
        if found is not None:
            (experiment,), _rest = found
    if experiment is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return experiment


def experiment_get_by_name(*, org, name: str) -> Experiment:
    experiment = Experiment.objects.filter(org=org, name=name).first()
    if experiment is None:
        if name == "Default":
            return experiment_default(org=org)
        raise not_found(f"Could not find experiment with name '{name}'")
    return experiment


@functools.cache
def _experiment_join() -> Join:
    return Join([(Experiment, "e")],
                f"SELECT {{columns}} FROM {Experiment._meta.db_table} e "  # noqa: S608
                "WHERE e.org_id = %s AND e.id = %s AND NOT e.is_default")


@functools.cache
def _run_join() -> Join:
    return Join([(Run, "r"), (Experiment, "e")],
                f"SELECT {{columns}} FROM {Run._meta.db_table} r "  # noqa: S608 (our tables)
                f"JOIN {Experiment._meta.db_table} e ON e.id = r.experiment_id "
                "WHERE r.org_id = %s AND r.run_uuid = %s")


def run_get(*, org, run_id: str) -> Run:
    """The run with its experiment and organization loaded: asked by nearly every MLflow call,
    so the join is written by hand (config/rows.py)."""
    found = _run_join().one([org.pk, run_id])
    if found is None:
        raise not_found(f"Run with id={run_id} not found")
    (run, experiment), _rest = found
    cache_related(run, "experiment", experiment)
    cache_related(run, "org", org)
    return run


def logged_model_get(*, org, model_id: str) -> LoggedModel:
    model = LoggedModel.objects.select_related("experiment", "source_run") \
        .filter(org=org, model_id=model_id, lifecycle_stage=LifecycleStage.ACTIVE).first()
    if model is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return model


# --- the models a run logged (MLflow 3 logged models), for the run page and the runs table ---

RUN_MODELS_SHOWN = 20  # logged models listed on a run's page (checkpoints can be many)
MLMODEL_BYTES = 64 * 1024  # an MLmodel file is read this far for its flavors


def run_logged_models(*, org, run: Run, limit: int = RUN_MODELS_SHOWN) -> list[LoggedModel]:
    """The active logged models whose source run is `run`, newest first: at most `limit`,
    plus one to tell that there are more."""
    return list(LoggedModel.objects.filter(org=org, source_run=run,
                                           lifecycle_stage=LifecycleStage.ACTIVE)
                .select_related("experiment")
                .order_by("-creation_timestamp", "model_id")[:limit + 1])


def run_logged_model_get(*, org, run: Run, model_id: str) -> LoggedModel:
    """One active logged model of `run` (its source run); any other is missing."""
    model = LoggedModel.objects.filter(org=org, source_run=run, model_id=model_id,
                                       lifecycle_stage=LifecycleStage.ACTIVE).first()
    if model is None:
        raise not_found(f"Run {run.run_uuid} logged no model with ID '{model_id}'.")
    return model


def logged_model_latest_metrics(*, org, model_ids: list[str]) -> dict[str, list[Metric]]:
    """model id -> the latest point (by step, then time, then value) of each metric key and
    dataset logged against the model, in key order; one query."""
    if not model_ids:
        return {}
    latest = Window(RowNumber(), partition_by=[F("model_id"), F("key"), F("dataset_name")],
                    order_by=[F("step").desc(), F("timestamp").desc(), F("value").desc()])
    points = Metric.objects.filter(org=org, model_id__in=model_ids) \
        .annotate(rank=latest).filter(rank=1).order_by("model_id", "key", "dataset_name") \
        .only("model_id", "key", "value", "is_nan", "step", "timestamp", "dataset_name")
    found: dict[str, list[Metric]] = {}
    for point in points:
        found.setdefault(point.model_id, []).append(point)
    return found


_FLAVORS = re.compile(r"^flavors:[ \t]*\r?\n((?:[ \t]+.*(?:\r?\n|$)|[ \t]*\r?\n)*)", re.M)
_FLAVOR = re.compile(r"^  ([A-Za-z_][\w.-]*):", re.M)


def logged_model_flavors(*, org, model: LoggedModel) -> list[str]:
    """The flavors the model's MLmodel file names (MLflow writes it in block style), read
    from the model's own artifacts; none when there is no MLmodel or it cannot be read.
    The model's experiment (loaded with it) places the path in the organization, so reading
    it asks the database nothing more (artifact_open would look the experiment up again)."""
    try:
        root = artifact_path_clean(artifact_path_of_uri(model.artifact_uri))
        if root.split("/", 1)[0] != model.experiment.public_id or model.experiment.org_id != org.pk:
            return []
        name = ArtifactLocation(org=org, experiment=model.experiment, path=f"{root}/MLmodel").name
        storage = artifact_storage()
        if not storage.exists(name):
            return []
        with storage.open(name, "rb") as file:
            text = file.read(MLMODEL_BYTES).decode("utf-8", errors="replace")
    except (ApplicationError, OSError):
        return []
    block = _FLAVORS.search(text)
    return _FLAVOR.findall(block.group(1)) if block else []
