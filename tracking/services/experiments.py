"""Experiments: create, rename, delete/restore, tags. One audit event per change."""

from django.db import IntegrityError, transaction

from audit.actors import Actor
from audit.services import audit_record
from config.exceptions import ApplicationError
from tracking.models import Experiment, ExperimentTag, LifecycleStage
from tracking.services.common import invalid, not_found, now_ms

DEFAULT_NAME = "Default"
MAX_NAME = 500
SYSTEM = Actor(kind="system", label="ledgerflow (default experiment)")


def _view(experiment: Experiment) -> dict:
    return {"name": experiment.name, "lifecycle_stage": experiment.lifecycle_stage}


def _validate_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("Invalid experiment name: must be a non-empty string.")
    if len(name) > MAX_NAME:
        raise invalid(f"Experiment name exceeds the maximum length of {MAX_NAME} characters.")
    return name


def _ensure_unique(org, name: str, exclude_pk=None) -> None:
    clash = Experiment.objects.filter(org=org, name=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ApplicationError(f"Experiment '{name}' already exists.", kind="already_exists")


def _create(*, org, name, actor, tags=None, is_default=False):
    now = now_ms()
    experiment = Experiment.objects.create(
        org=org, name=name, is_default=is_default, creation_time=now, last_update_time=now)
    # Its artifacts go through the proxy (tracking.artifacts); the id is known only now.
    experiment.artifact_location = f"mlflow-artifacts:/{experiment.public_id}"
    experiment.save(update_fields=["artifact_location"])
    tags = tags or {}
    ExperimentTag.objects.bulk_create(
        ExperimentTag(org=org, experiment=experiment, key=k, value=v) for k, v in tags.items())
    if actor is None:
        return experiment  # the caller's event covers it
    audit_record(org=org, actor=actor, action="experiment.created", target=experiment,
                 after={**_view(experiment), "id": experiment.public_id, "tags": tags})
    return experiment


@transaction.atomic(durable=True)
def experiment_create(*, org, name: str, actor: Actor, tags: dict | None = None) -> Experiment:
    _validate_name(name)
    _ensure_unique(org, name)
    return _create(org=org, name=name, actor=actor, tags=tags)


def experiment_default_create(*, org) -> dict:
    """Run inside organization_create's transaction (settings.LEDGERFLOW_ORG_INITIALIZERS),
    whose one audit event records it: every organization starts with its Default experiment,
    so reads never have to write."""
    experiment = _create(org=org, name=DEFAULT_NAME, actor=None, is_default=True)
    return {"default_experiment": {"id": experiment.public_id, "name": experiment.name}}


def experiment_default(*, org) -> Experiment:
    """The organization's Default experiment ("0" on the wire); made here only for an
    organization older than the tracking app."""
    existing = Experiment.objects.filter(org=org, is_default=True).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic(durable=True):
            name = DEFAULT_NAME
            if Experiment.objects.filter(org=org, name=name).exists():
                name = f"{DEFAULT_NAME} ({org.slug})"
            return _create(org=org, name=name, actor=SYSTEM, is_default=True)
    except IntegrityError:  # another request made it first
        return Experiment.objects.get(org=org, is_default=True)


@transaction.atomic(durable=True)
def experiment_rename(*, experiment: Experiment, new_name: str, actor: Actor) -> Experiment:
    _validate_name(new_name)
    _require_active(experiment)
    _ensure_unique(experiment.org, new_name, exclude_pk=experiment.pk)
    before = _view(experiment)
    experiment.name, experiment.last_update_time = new_name, now_ms()
    experiment.save(update_fields=["name", "last_update_time"])
    audit_record(org=experiment.org, actor=actor, action="experiment.renamed",
                 target=experiment, before=before, after=_view(experiment))
    return experiment


def _require_active(experiment: Experiment) -> None:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise invalid(f"The experiment {experiment.public_id} must be in the 'active' state. "
                      f"Current state is {experiment.lifecycle_stage}.")


@transaction.atomic(durable=True)
def experiment_set_lifecycle(*, experiment: Experiment, stage: str, actor: Actor) -> Experiment:
    """Delete (stage 'deleted') or restore ('active') an experiment; its runs follow."""
    if experiment.is_default and stage == LifecycleStage.DELETED:
        raise invalid("Cannot delete an experiment with ID 0 (the Default experiment).")
    if experiment.lifecycle_stage == stage:
        verb = "deleted" if stage == LifecycleStage.DELETED else "active"
        raise invalid(f"The experiment {experiment.public_id} is already {verb}.")
    before = _view(experiment)
    experiment.lifecycle_stage, experiment.last_update_time = stage, now_ms()
    experiment.save(update_fields=["lifecycle_stage", "last_update_time"])
    action = "experiment.deleted" if stage == LifecycleStage.DELETED else "experiment.restored"
    audit_record(org=experiment.org, actor=actor, action=action, target=experiment,
                 before=before, after=_view(experiment))
    return experiment


@transaction.atomic(durable=True)
def experiment_set_tag(*, experiment: Experiment, key: str, value: str, actor: Actor) -> None:
    _require_active(experiment)
    tag = ExperimentTag.objects.filter(experiment=experiment, key=key).first()
    before = {"key": key, "value": tag.value} if tag else None
    ExperimentTag.objects.update_or_create(
        experiment=experiment, key=key, defaults={"value": value, "org": experiment.org})
    audit_record(org=experiment.org, actor=actor, action="experiment.tag_set",
                 target=experiment, before=before, after={"key": key, "value": value})


@transaction.atomic(durable=True)
def experiment_delete_tag(*, experiment: Experiment, key: str, actor: Actor) -> None:
    _require_active(experiment)
    tag = ExperimentTag.objects.filter(experiment=experiment, key=key).first()
    if tag is None:
        raise not_found(f"No tag with name: {key} in experiment {experiment.public_id}.")
    tag.delete()
    audit_record(org=experiment.org, actor=actor, action="experiment.tag_deleted",
                 target=experiment, before={"key": key, "value": tag.value})
