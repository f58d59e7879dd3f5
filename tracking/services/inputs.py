"""Datasets a run used (log-inputs) and logged models it produced (outputs)."""

from django.db import transaction

from audit.actors import Actor
from audit.services import audit_record
from tracking.models import Dataset, LoggedModel, Run, RunInput, RunOutput
from tracking.services.common import invalid, not_found
from tracking.services.runs import run_locked

DATASET_LIMITS = {"name": 500, "digest": 64, "source_type": 36}


def _dataset_fields(raw: dict, index: int) -> dict:
    dataset = raw.get("dataset") if isinstance(raw, dict) else None
    if not isinstance(dataset, dict):
        raise invalid(f"Missing value for required parameter 'datasets[{index}].dataset'.")
    fields = {}
    for name in ("name", "digest", "source_type", "source"):
        value = dataset.get(name)
        if not isinstance(value, str) or not value:
            raise invalid(f"Missing value for required parameter "
                          f"'datasets[{index}].dataset.{name}'.")
        if name in DATASET_LIMITS and len(value) > DATASET_LIMITS[name]:
            raise invalid(f"Dataset {name} exceeds the maximum length of "
                          f"{DATASET_LIMITS[name]} characters.")
        fields[name] = value
    fields["schema"] = dataset.get("schema") or ""
    fields["profile"] = dataset.get("profile") or ""
    return fields


def _input_tags(raw: dict, index: int) -> dict:
    tags = {}
    for tag in raw.get("tags") or []:
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            raise invalid(f"Missing value for required parameter 'datasets[{index}].tags.key'.")
        tags[tag["key"]] = str(tag.get("value", ""))
    return tags


@transaction.atomic(durable=True)
def run_log_inputs(*, run: Run, actor: Actor, datasets: list, models: list) -> None:
    run = run_locked(run)
    if run.lifecycle_stage != "active":
        raise invalid(f"The run {run.run_uuid} must be in the 'active' state.")
    logged = []
    for index, raw in enumerate(datasets):
        fields, tags = _dataset_fields(raw, index), _input_tags(raw, index)
        dataset, _ = Dataset.objects.get_or_create(
            org=run.org, experiment=run.experiment, name=fields["name"],
            digest=fields["digest"], defaults=fields)
        RunInput.objects.update_or_create(run=run, dataset=dataset,
                                          defaults={"tags": tags, "org": run.org})
        logged.append({"name": dataset.name, "digest": dataset.digest, "tags": tags})
    model_ids = [m.get("model_id") for m in models if isinstance(m, dict)]
    audit_record(org=run.org, actor=actor, action="run.inputs_logged", target=run,
                 target_label=f"{run.name} ({run.run_uuid})",
                 after={"datasets": logged, "models": model_ids})


@transaction.atomic(durable=True)
def run_log_outputs(*, run: Run, actor: Actor, models: list) -> None:
    run = run_locked(run)
    outputs = []
    for index, raw in enumerate(models):
        model_id = raw.get("model_id") if isinstance(raw, dict) else None
        if not model_id:
            raise invalid(f"Missing value for required parameter 'models[{index}].model_id'.")
        model = LoggedModel.objects.filter(org=run.org, model_id=model_id).first()
        if model is None:
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        step = int(raw.get("step") or 0)
        RunOutput.objects.update_or_create(run=run, logged_model=model,
                                           defaults={"step": step, "org": run.org})
        outputs.append({"model_id": model_id, "step": step})
    audit_record(org=run.org, actor=actor, action="run.outputs_logged", target=run,
                 target_label=f"{run.name} ({run.run_uuid})", after={"models": outputs})
