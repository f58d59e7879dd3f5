"""Reads of tracking data, scoped to an organization. Search lives in tracking.search."""

import functools

from config.rows import Join, cache_related
from tracking.models import Experiment, LifecycleStage, LoggedModel, Run
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
