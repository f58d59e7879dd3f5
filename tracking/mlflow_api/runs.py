"""runs/* and metrics/* RPCs."""

from collections import namedtuple
from itertools import repeat

from mlflow.exceptions import MlflowException
from mlflow.utils import validation as mlflow_validation

from tenancy.roles import Capability
from tracking import search, selectors
from tracking.mlflow_api import serialize
from tracking.mlflow_api.errors import MlflowError
from tracking.mlflow_api.request import INT64_MAX, INT64_MIN, MlflowRequest, as_float, as_int
from tracking.mlflow_api.views import Context, rpc
from tracking.models import LifecycleStage
from tracking.services import inputs as input_services
from tracking.services import runs as services

WRITE = Capability.WRITE
_Metric = namedtuple("_Metric", "key value timestamp step")
_KV = namedtuple("_KV", "key value")


def _run_response(ctx: Context, run, *, new: bool = False) -> dict:
    return {"run": search.runs_serialized(ctx.org, [run], new=new)[0]}


@rpc("POST", "runs/create", WRITE)
def create(ctx: Context, req: MlflowRequest):
    experiment = selectors.experiment_get(org=ctx.org,
                                          experiment_id=req.str("experiment_id", "0"))
    tags = req.key_values("tags")
    mlflow_validation._validate_batch_log_data([], [], [_KV(*t) for t in tags])
    run = services.run_create(
        experiment=experiment, actor=ctx.actor(), run_name=req.str("run_name", ""),
        user_id=req.str("user_id", ""), start_time=req.int("start_time", None),
        tags=dict(tags))
    return _run_response(ctx, run, new=True)


@rpc("GET", "runs/get")
def get(ctx: Context, req: MlflowRequest):
    return _run_response(ctx, selectors.run_get(org=ctx.org, run_id=_run_id(req)))


def _run_id(req: MlflowRequest) -> str:
    # The client sends run_id; older ones send run_uuid.
    return req.str("run_id") if req.has("run_id") or not req.has("run_uuid") \
        else req.str("run_uuid")


@rpc("POST", "runs/update", WRITE)
def update(ctx: Context, req: MlflowRequest):
    run = selectors.run_get(org=ctx.org, run_id=_run_id(req))
    run = services.run_update(run=run, actor=ctx.actor(), status=req.str("status", None),
                              end_time=req.int("end_time", None),
                              run_name=req.str("run_name", None))
    return {"run_info": serialize.run_info(run, run.experiment.public_id)}


@rpc("POST", "runs/delete", WRITE)
def delete(ctx: Context, req: MlflowRequest):
    run = selectors.run_get(org=ctx.org, run_id=req.str("run_id"))
    services.run_set_lifecycle(run=run, stage=LifecycleStage.DELETED, actor=ctx.actor())
    return {}


@rpc("POST", "runs/restore", WRITE)
def restore(ctx: Context, req: MlflowRequest):
    run = selectors.run_get(org=ctx.org, run_id=req.str("run_id"))
    services.run_set_lifecycle(run=run, stage=LifecycleStage.ACTIVE, actor=ctx.actor())
    return {}


def _metric(raw: dict, path: str) -> dict:
    """One metric point, checked as MLflow checks it (a batch of plain points is checked a
    column at a time instead: _plain_points)."""
    if not isinstance(raw, dict):
        raise MlflowError(f"Invalid value {raw!r} for parameter '{path}': expected an object.")
    prefix = f"{path}." if path else ""  # log-metric's fields are top-level: 'value', not '.value'
    if raw.get("key") is not None and not isinstance(raw["key"], str):
        raise MlflowError(f"Invalid value {raw['key']!r} for parameter '{prefix}key': expected a "
                          "string.")
    if "value" not in raw or raw["value"] is None:
        raise MlflowError(f"Missing value for required parameter '{prefix}value'.")
    if "timestamp" not in raw or raw["timestamp"] is None:
        raise MlflowError(f"Missing value for required parameter '{prefix}timestamp'.")
    metric = {"key": raw.get("key"), "value": as_float(raw["value"], f"{prefix}value"),
              "timestamp": as_int(raw["timestamp"], f"{prefix}timestamp"),
              "step": as_int(raw.get("step") or 0, f"{prefix}step")}
    mlflow_validation._validate_metric(metric["key"], metric["value"], metric["timestamp"],
                                       metric["step"], path=path)
    for extra in ("model_id", "dataset_name", "dataset_digest"):
        if raw.get(extra):
            metric[extra] = str(raw[extra])
    return metric


def _log(ctx: Context, req: MlflowRequest, metrics: list, params: list, tags: list):
    mlflow_validation._validate_batch_log_limits(metrics, params, tags)
    checked_params = mlflow_validation._validate_batch_log_data(
        [], [_KV(*p) for p in params], [_KV(*t) for t in tags])
    run = selectors.run_get(org=ctx.org, run_id=_run_id(req))
    services.run_log_batch(
        run=run, actor=ctx.actor(), metrics=metrics,
        params=[{"key": p.key, "value": p.value} for p in checked_params[1]],
        tags=[{"key": t.key, "value": t.value} for t in checked_params[2]],
        payload=req.http.body if req.http.method == "POST" else req.data)
    return {}


@rpc("POST", "runs/log-batch", WRITE)
def log_batch(ctx: Context, req: MlflowRequest):
    raw_metrics = req.list("metrics", [])
    params, tags = req.key_values("params"), req.key_values("tags")
    mlflow_validation._validate_batch_log_limits(raw_metrics, params, tags)
    metrics = _plain_points(raw_metrics)
    if metrics is None:
        metrics = [_metric(m, f"metrics[{i}]") for i, m in enumerate(raw_metrics)]
    return _log(ctx, req, metrics, params, tags)


_PLAIN_FIELDS = frozenset({"key", "value", "timestamp", "step"})
_DICT, _STR, _INT, _NUMBER = {dict}, {str}, {int}, {int, float}  # exact types: no bool


def _column(raw: list[dict], name: str, default=None) -> list:
    return list(map(dict.get, raw, repeat(name), repeat(default)))


def _plain_points(raw: list) -> services.MetricPoints | None:
    """A batch as columns, checked a column at a time, when every point has the shape clients
    send (a valid name, a JSON number, a nonnegative int64 timestamp, an int64 step or none):
    1,000 points without a Python call per point (map, set and min/max run in C). Anything
    else (strings for numbers, NaN, a bad name, extra fields, null step) is None, and the
    point-by-point path checks it and words the error as MLflow does."""
    if not (set(map(type, raw)) <= _DICT and all(map(_PLAIN_FIELDS.issuperset, raw))):
        return None
    keys, values, stamps, steps = (_column(raw, "key"), _column(raw, "value"),
                                   _column(raw, "timestamp"), _column(raw, "step", 0))
    if not (set(map(type, keys)) <= _STR and set(map(type, values)) <= _NUMBER
            and set(map(type, stamps)) <= _INT and set(map(type, steps)) <= _INT
            and (not raw or (min(stamps) >= 0 and max(stamps) <= INT64_MAX
                             and min(steps) >= INT64_MIN and max(steps) <= INT64_MAX))):
        return None
    try:
        for key in set(keys):
            mlflow_validation._validate_metric(key, 0.0, 0, 0)
    except MlflowException:
        return None
    return services.MetricPoints(key=keys, value=values, timestamp=stamps, step=steps)


@rpc("POST", "runs/log-metric", WRITE)
def log_metric(ctx: Context, req: MlflowRequest):
    fields = {k: req.data.get(k) for k in ("key", "value", "timestamp", "step", "model_id",
                                           "dataset_name", "dataset_digest")}
    if fields["key"] is None:
        raise MlflowError("Missing value for required parameter 'key'.")
    return _log(ctx, req, [_metric(fields, "")], [], [])


@rpc("POST", "runs/log-parameter", WRITE)
def log_param(ctx: Context, req: MlflowRequest):
    return _log(ctx, req, [], [(req.str("key"), str(req.data.get("value", "")))], [])


@rpc("POST", "runs/set-tag", WRITE)
def set_tag(ctx: Context, req: MlflowRequest):
    return _log(ctx, req, [], [], [(req.str("key"), str(req.data.get("value", "")))])


@rpc("POST", "runs/delete-tag", WRITE)
def delete_tag(ctx: Context, req: MlflowRequest):
    run = selectors.run_get(org=ctx.org, run_id=req.str("run_id"))
    services.run_delete_tag(run=run, key=req.str("key"), actor=ctx.actor())
    return {}


@rpc("POST", "runs/log-inputs", WRITE)
def log_inputs(ctx: Context, req: MlflowRequest):
    run = selectors.run_get(org=ctx.org, run_id=req.str("run_id"))
    input_services.run_log_inputs(run=run, actor=ctx.actor(),
                                  datasets=req.list("datasets", []),
                                  models=req.list("models", []))
    return {}


@rpc("POST", "runs/outputs", WRITE)
def log_outputs(ctx: Context, req: MlflowRequest):
    run = selectors.run_get(org=ctx.org, run_id=req.str("run_id"))
    input_services.run_log_outputs(run=run, actor=ctx.actor(), models=req.list("models", []))
    return {}


@rpc("POST", "runs/search")
def search_runs(ctx: Context, req: MlflowRequest):
    runs, token = search.runs(
        org=ctx.org, experiment_ids=[str(e) for e in req.list("experiment_ids", [])],
        filter_string=req.str("filter", ""), view_type=req.str("run_view_type", "ACTIVE_ONLY"),
        max_results=req.int("max_results", 1000), order_by=req.list("order_by", []),
        page_token=req.str("page_token", ""))
    return serialize.page("runs", runs, token)


@rpc("GET", "metrics/get-history")
def get_history(ctx: Context, req: MlflowRequest):
    run = selectors.run_get(org=ctx.org, run_id=_run_id(req))
    points, token = search.metric_history(run=run, key=req.str("metric_key"),
                                          max_results=req.int("max_results", None),
                                          page_token=req.str("page_token", ""))
    return serialize.page("metrics", points, token)


@rpc("GET", "metrics/get-history-bulk-interval")
def get_history_bulk_interval(ctx: Context, req: MlflowRequest):
    run_ids = req.list("run_ids")
    if not 1 <= len(run_ids) <= 100:
        raise MlflowError("run_ids must contain between 1 and 100 run ids.")
    runs = [selectors.run_get(org=ctx.org, run_id=r) for r in run_ids]
    points = search.metric_history_bulk_interval(
        runs=runs, key=req.str("metric_key"), start_step=req.int("start_step", None),
        end_step=req.int("end_step", None), max_results=req.int("max_results", None))
    return {"metrics": points}
