"""Model rows to MLflow's JSON shapes (protobuf JSON field names)."""

import math


def number(value: float):
    # protobuf JSON spells non-finite doubles as strings
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def page(name: str, items: list, next_page_token: str) -> dict:
    """A page of results; protobuf JSON leaves the token out when there is no next page."""
    body = {name: items}
    if next_page_token:
        body["next_page_token"] = next_page_token
    return body


def experiment(exp, tags=None) -> dict:
    tags = exp.tags.all() if tags is None else tags
    return {
        "experiment_id": exp.public_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": [{"key": t.key, "value": t.value} for t in tags],
    }


def run_info(run, experiment_public_id: str) -> dict:
    info = {
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "run_name": run.name,
        "experiment_id": experiment_public_id,
        "user_id": run.user_id,
        "status": run.status,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.start_time is not None:
        info["start_time"] = run.start_time
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric(key, value, timestamp, step, extra: dict | None = None, is_nan: bool = False) -> dict:
    out = {"key": key, "value": "NaN" if is_nan else number(value), "timestamp": timestamp,
           "step": step}
    if extra:
        out.update({k: v for k, v in extra.items() if v})
    return out


def logged_model(model, experiment_public_id: str, metrics=()) -> dict:
    info = {
        "model_id": model.model_id,
        "experiment_id": experiment_public_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": model.artifact_uri,
        "status": model.status,
        "model_type": model.model_type,
        "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
    }
    if model.source_run_id is not None:
        info["source_run_id"] = model.source_run.run_uuid
    if model.status_message:
        info["status_message"] = model.status_message
    return {"info": info, "data": {
        "params": [{"key": k, "value": v} for k, v in model.params.items()],
        "metrics": list(metrics),
    }}
