"""Reads of the registry, scoped to an organization; another organization's model is missing."""

import functools

from django.db.models import Prefetch

from config.exceptions import ApplicationError
from config.rows import Join, cache_related
from models_registry.models import (
    AliasApproval,
    ApprovalStatus,
    ModelAlias,
    ModelVersion,
    ProtectedAlias,
    RegisteredModel,
)


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
