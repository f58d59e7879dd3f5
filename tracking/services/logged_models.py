"""MLflow 3 logged models: create, finalize, tags, params, delete."""

import uuid

from django.db import transaction

from audit.actors import Actor
from audit.services import audit_record
from tracking.models import Experiment, LifecycleStage, LoggedModel, LoggedModelStatus, Run
from tracking.services.common import invalid, now_ms


def _label(model: LoggedModel) -> str:
    return f"{model.name} ({model.model_id})"


@transaction.atomic(durable=True)
def logged_model_create(*, experiment: Experiment, actor: Actor, name: str = "",
                        model_type: str = "", source_run: Run | None = None,
                        params: dict | None = None, tags: dict | None = None) -> LoggedModel:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise invalid(f"The experiment {experiment.public_id} must be in the 'active' state.")
    model_id = f"m-{uuid.uuid4().hex}"
    now = now_ms()
    model = LoggedModel.objects.create(
        org=experiment.org, model_id=model_id, experiment=experiment,
        name=name or model_id, model_type=model_type, source_run=source_run,
        artifact_uri=f"{experiment.artifact_location}/models/{model_id}/artifacts",
        creation_timestamp=now, last_updated_timestamp=now,
        params=params or {}, tags=tags or {})
    audit_record(org=model.org, actor=actor, action="logged_model.created", target=model,
                 target_label=_label(model),
                 after={"name": model.name, "experiment_id": experiment.public_id,
                        "source_run_id": source_run.run_uuid if source_run else None})
    return model


def _locked(model: LoggedModel) -> LoggedModel:
    return LoggedModel.objects.select_related("experiment", "source_run") \
        .select_for_update(of=("self",)).get(pk=model.pk)


@transaction.atomic(durable=True)
def logged_model_finalize(*, model: LoggedModel, status: str, actor: Actor) -> LoggedModel:
    if status not in (LoggedModelStatus.READY, LoggedModelStatus.UPLOAD_FAILED):
        raise invalid(f"Invalid model status '{status}': finalize with "
                      f"{LoggedModelStatus.READY} or {LoggedModelStatus.UPLOAD_FAILED}.")
    model = _locked(model)
    before = {"status": model.status}
    model.status, model.last_updated_timestamp = status, now_ms()
    model.save(update_fields=["status", "last_updated_timestamp"])
    audit_record(org=model.org, actor=actor, action="logged_model.finalized", target=model,
                 target_label=_label(model), before=before, after={"status": status})
    return model


@transaction.atomic(durable=True)
def logged_model_update_dict(*, model: LoggedModel, field: str, set_items: dict | None = None,
                             delete_key: str | None = None, actor: Actor) -> LoggedModel:
    """Set tags / log params (`field` = "tags" or "params"), or delete one tag."""
    model = _locked(model)
    values = dict(getattr(model, field))
    if field == "params":
        for key, value in (set_items or {}).items():
            if key in values and values[key] != value:
                raise invalid(f"Changing param values is not allowed. Param with key='{key}' "
                              f"was already logged with value='{values[key]}' for model ID="
                              f"'{model.model_id}'. Attempted logging new value '{value}'.")
    values.update(set_items or {})
    if delete_key is not None:
        if delete_key not in values:
            raise invalid(f"No tag with key '{delete_key}' on logged model {model.model_id}.")
        del values[delete_key]
    setattr(model, field, values)
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=[field, "last_updated_timestamp"])
    action = {"tags": "logged_model.tags_set", "params": "logged_model.params_logged"}[field]
    if delete_key is not None:
        action = "logged_model.tag_deleted"
    audit_record(org=model.org, actor=actor, action=action, target=model,
                 target_label=_label(model),
                 after={"set": set_items or {}, "deleted": delete_key})
    return model


@transaction.atomic(durable=True)
def logged_model_delete(*, model: LoggedModel, actor: Actor) -> None:
    model = _locked(model)
    model.lifecycle_stage, model.last_updated_timestamp = LifecycleStage.DELETED, now_ms()
    model.save(update_fields=["lifecycle_stage", "last_updated_timestamp"])
    audit_record(org=model.org, actor=actor, action="logged_model.deleted", target=model,
                 target_label=_label(model), after={"lifecycle_stage": "deleted"})
