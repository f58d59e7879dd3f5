"""Reads of the registry, scoped to an organization; another organization's model is missing."""

import functools
from dataclasses import dataclass

from django.db.models import F, IntegerField, Prefetch, Q, Value

from config.exceptions import ApplicationError
from config.rows import Join, cache_related
from models_registry.models import (
    AliasApproval,
    ApprovalStatus,
    ModelAlias,
    ModelValidation,
    ModelVersion,
    ProtectedAlias,
    RegisteredModel,
)
from tracking.models import LifecycleStage, LoggedModel, Run


def not_found(message: str) -> ApplicationError:
    return ApplicationError(message, kind="not_found")


def registered_model_get(*, org, name: str) -> RegisteredModel:
    model = RegisteredModel.objects.filter(org=org, name=name, deleted=False).first()
    if model is None:
        raise not_found(f"Registered Model with name={name} not found")
    return model


def _version_number(version) -> int | None:
    try:
        number = int(version)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def versions_live(org):
    return ModelVersion.objects.filter(org=org, deleted=False, registered_model__deleted=False)


def model_version_get(*, org, name: str, version) -> ModelVersion:
    number = _version_number(version)
    found = None
    if number is not None:
        found = versions_live(org).select_related("registered_model", "run") \
            .filter(registered_model__name=name, version=number).first()
    if found is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return found


@functools.cache
def _scoring_joins() -> dict[str, Join]:
    """The version a scoring request names, with its registered model: one hand-written
    query each way (config/rows.py), as the ORM took longer to compile them than PostgreSQL
    to answer, on the path that answers every prediction."""
    version, model, alias = (m._meta.db_table for m in (ModelVersion, RegisteredModel,
                                                          ModelAlias))
    models = [(ModelVersion, "v"), (RegisteredModel, "r")]
    return {
        "number": Join(models, f"SELECT {{columns}} FROM {version} v "  # noqa: S608 (ours)
                               f"JOIN {model} r ON r.id = v.registered_model_id "
                               "WHERE v.org_id = %s AND r.org_id = %s AND r.name = %s "
                               "AND v.version = %s AND v.deleted = %s AND r.deleted = %s"),
        "alias": Join(models, f"SELECT {{columns}} FROM {alias} a "  # noqa: S608 (ours)
                              f"JOIN {version} v ON v.id = a.model_version_id "
                              f"JOIN {model} r ON r.id = a.registered_model_id "
                              "WHERE a.org_id = %s AND r.org_id = %s AND r.name = %s "
                              "AND a.alias = %s AND r.deleted = %s"),
    }


def _with_model(found) -> ModelVersion | None:
    if found is None:
        return None
    (version, model), _ = found
    cache_related(version, "registered_model", model)
    return version


def model_version_to_score(*, org, name: str, version) -> ModelVersion:
    """model_version_get for scoring: the version with its registered model only."""
    number = _version_number(version)
    found = None if number is None or number >= 2**31 else _with_model(  # an int4 column
        _scoring_joins()["number"].one([org.pk, org.pk, name, number, False, False]))
    if found is None:
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return found


def model_version_to_score_by_alias(*, org, name: str, alias: str) -> ModelVersion:
    """model_version_by_alias for scoring: the version with its registered model only."""
    found = _with_model(_scoring_joins()["alias"].one([org.pk, org.pk, name, alias, False]))
    if found is None:
        raise not_found(f"Registered model alias {alias} not found.")
    return found


def model_version_by_alias(*, org, name: str, alias: str) -> ModelVersion:
    found = ModelAlias.objects.select_related("model_version__registered_model",
                                              "model_version__run") \
        .filter(org=org, registered_model__name=name, registered_model__deleted=False,
                alias=alias).first()
    if found is None:
        raise not_found(f"Registered model alias {alias} not found.")
    return found.model_version


def with_details(versions):
    """Versions with what their JSON shows (tags, aliases, run) in a fixed number of queries."""
    return versions.select_related("registered_model", "run").prefetch_related(
        "tags", Prefetch("aliases", queryset=ModelAlias.objects.order_by("alias")))


def latest_validation(model: RegisteredModel) -> ModelValidation | None:
    """The validation that counts (models_registry/inventory.py): the latest by date, then
    the one recorded last."""
    return ModelValidation.objects.filter(registered_model=model) \
        .order_by("-validated_on", "-pk").first()


def alias_is_protected(*, org, alias: str) -> bool:
    return ProtectedAlias.objects.filter(org=org, alias=alias).exists()


def approval_get(*, org, approval_id) -> AliasApproval:
    found = None
    if str(approval_id).isdigit():
        found = AliasApproval.objects.select_related(
            "registered_model", "model_version", "requested_by", "decided_by") \
            .filter(org=org, pk=int(approval_id)).first()
    if found is None:
        raise not_found(f"No approval request #{approval_id}.")
    return found


def approval_pending(*, model: RegisteredModel, alias: str) -> AliasApproval | None:
    return AliasApproval.objects.filter(registered_model=model, alias=alias,
                                        status=ApprovalStatus.PENDING).first()


def run_delete_guard(*, run) -> None:
    """Refuse to delete a run that backs a registered model version (settings'
    LEDGERFLOW_RUN_DELETE_GUARDS)."""
    backing = versions_live(run.org_id).select_related("registered_model") \
        .filter(run=run).order_by("registered_model__name", "version")
    labels = [v.label for v in backing[:5]]
    if labels:
        raise ApplicationError(
            f"The run {run.run_uuid} backs registered model versions ({', '.join(labels)}); "
            "delete those versions first.", kind="invalid")


# --- runs and the models made from them (the run page, the runs table, the version page) ----

def versions_of_run(*, org, run: Run, model_ids: list[str]) -> list[ModelVersion]:
    """The live versions made from `run` (a `runs:/<run id>/...` source, or a logged model of
    it: the registry records the source run either way) or from one of `model_ids`, by model
    name and number; one query."""
    made = Q(run=run)
    if model_ids:
        made |= Q(model_id__in=model_ids)
    return list(versions_live(org).filter(made).select_related("registered_model")
                .order_by("registered_model__name", "version"))


@dataclass(frozen=True)
class RunModel:
    """A registered version made from a run (`version` > 0), or a logged model of the run
    that no version listed with it was made from (`version` 0)."""

    run_pk: int
    name: str  # the registered model's, or the logged model's
    model_id: str
    version: int

    @property
    def registered(self) -> bool:
        return self.version > 0


def models_of_runs(*, org, run_ids: list[int]) -> dict[int, list[RunModel]]:
    """run pk -> the registered versions made from it (by name and number), then the logged
    models it produced that none of those versions was made from; one query for any number
    of runs (the runs table's "Models" column)."""
    if not run_ids:
        return {}
    logged = LoggedModel.objects.filter(
        org=org, source_run_id__in=run_ids, lifecycle_stage=LifecycleStage.ACTIVE).annotate(
        k=Value(1, output_field=IntegerField()), r=F("source_run_id"), n=F("name"),
        m=F("model_id"), v=Value(0, output_field=IntegerField()),
        t=F("creation_timestamp")).values_list("k", "r", "n", "m", "v", "t")
    versions = versions_live(org).filter(run_id__in=run_ids).annotate(
        k=Value(0, output_field=IntegerField()), r=F("run_id"), n=F("registered_model__name"),
        m=F("model_id"), v=F("version"),
        t=Value(0, output_field=IntegerField())).values_list("k", "r", "n", "m", "v", "t")
    found: dict[int, list[RunModel]] = {}
    registered: set[tuple[int, str]] = set()
    for kind, run_pk, name, model_id, number, _ in versions.union(logged, all=True) \
            .order_by("k", "n", "v", "t", "m"):
        if kind == 0:
            registered.add((run_pk, model_id))
        elif (run_pk, model_id) in registered:
            continue
        found.setdefault(run_pk, []).append(RunModel(run_pk, name, model_id or "", number))
    return found


def version_origin(*, org, version: ModelVersion) -> dict:
    """What a version was made from, each only when it exists in `org`: its run (loaded with
    the version by model_version_get), its logged model and that model's source run (one
    query)."""
    run = version.run if version.run_id is not None and version.run.org_id == org.pk else None
    logged = None
    if version.model_id:
        logged = LoggedModel.objects.select_related("source_run").filter(
            org=org, model_id=version.model_id, lifecycle_stage=LifecycleStage.ACTIVE).first()
    logged_run = logged.source_run if logged is not None else None
    if logged_run is not None and logged_run.org_id != org.pk:
        logged_run = None
    return {"run": run, "logged_model": logged, "logged_model_run": logged_run}
