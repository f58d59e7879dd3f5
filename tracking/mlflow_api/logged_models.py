"""logged-models/* RPCs (MLflow 3)."""

from django.db.models import Q

from tenancy.roles import Capability
from tracking import search, selectors
from tracking.mlflow_api import serialize
from tracking.mlflow_api.errors import MlflowError
from tracking.mlflow_api.request import MlflowRequest
from tracking.mlflow_api.views import Context, rpc
from tracking.models import LifecycleStage, LoggedModel, Metric
from tracking.services import logged_models as services

WRITE = Capability.WRITE


def _body(model: LoggedModel) -> dict:
    metrics = [serialize.metric(k, v, t, s, {"run_id": r, "model_id": model.model_id}, is_nan=n)
               for k, v, t, s, r, n in Metric.objects.filter(org_id=model.org_id,
                                                           model_id=model.model_id)
               .values_list("key", "value", "timestamp", "step", "run__run_uuid", "is_nan")]
    return serialize.logged_model(model, model.experiment.public_id, metrics)


@rpc("POST", "logged-models", WRITE)
def create(ctx: Context, req: MlflowRequest):
    experiment = selectors.experiment_get(org=ctx.org, experiment_id=req.str("experiment_id"))
    run = None
    if req.has("source_run_id"):
        run = selectors.run_get(org=ctx.org, run_id=req.str("source_run_id"))
    model = services.logged_model_create(
        experiment=experiment, actor=ctx.actor(), name=req.str("name", ""),
        model_type=req.str("model_type", ""), source_run=run,
        params=dict(req.key_values("params")), tags=dict(req.key_values("tags")))
    return {"model": _body(model)}


@rpc("GET", "logged-models/{model_id}")
def get(ctx: Context, req: MlflowRequest):
    return {"model": _body(selectors.logged_model_get(org=ctx.org, model_id=req.str("model_id")))}


@rpc("PATCH", "logged-models/{model_id}", WRITE)
def finalize(ctx: Context, req: MlflowRequest):
    model = selectors.logged_model_get(org=ctx.org, model_id=req.str("model_id"))
    model = services.logged_model_finalize(model=model, status=req.str("status"),
                                           actor=ctx.actor())
    return {"model": _body(model)}


@rpc("DELETE", "logged-models/{model_id}", WRITE)
def delete(ctx: Context, req: MlflowRequest):
    model = selectors.logged_model_get(org=ctx.org, model_id=req.str("model_id"))
    services.logged_model_delete(model=model, actor=ctx.actor())
    return {}


@rpc("PATCH", "logged-models/{model_id}/tags", WRITE)
def set_tags(ctx: Context, req: MlflowRequest):
    model = selectors.logged_model_get(org=ctx.org, model_id=req.str("model_id"))
    services.logged_model_update_dict(model=model, field="tags", actor=ctx.actor(),
                                      set_items=dict(req.key_values("tags")))
    return {}


@rpc("DELETE", "logged-models/{model_id}/tags/{tag_key}", WRITE)
def delete_tag(ctx: Context, req: MlflowRequest):
    model = selectors.logged_model_get(org=ctx.org, model_id=req.str("model_id"))
    services.logged_model_update_dict(model=model, field="tags", actor=ctx.actor(),
                                      delete_key=req.str("tag_key"))
    return {}


@rpc("POST", "logged-models/{model_id}/params", WRITE)
def log_params(ctx: Context, req: MlflowRequest):
    model = selectors.logged_model_get(org=ctx.org, model_id=req.str("model_id"))
    services.logged_model_update_dict(model=model, field="params", actor=ctx.actor(),
                                      set_items=dict(req.key_values("params")))
    return {}


@rpc("POST", "logged-models/search")
def search_models(ctx: Context, req: MlflowRequest):
    experiments = [selectors.experiment_get(org=ctx.org, experiment_id=str(e))
                   for e in req.list("experiment_ids", [])]
    models = LoggedModel.objects.filter(org=ctx.org, experiment__in=experiments,
                                        lifecycle_stage=LifecycleStage.ACTIVE)
    models = models.filter(_model_filter(req.str("filter", ""), ctx.org))
    page, token = search.paginate(
        models.select_related("experiment", "source_run").order_by("-creation_timestamp",
                                                                   "model_id"),
        page_token=req.str("page_token", ""), max_results=req.int("max_results", 100))
    return serialize.page("models", [_body(m) for m in page], token)


ATTRIBUTES = {"name": "name", "model_id": "model_id", "status": "status",
              "model_type": "model_type", "source_run_id": "source_run__run_uuid"}


def _model_filter(filter_string: str, org) -> Q:
    """The common subset of MLflow's logged-model filters: attributes, params, tags, metrics
    (latest value logged against the model), joined by AND. A metric's model_id is whatever
    its client sent: only `org`'s own points count, or another organization could make this
    one's models match by logging points against their ids."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchLoggedModelsUtils

    if not filter_string:
        return Q()
    try:
        clauses = SearchLoggedModelsUtils.parse_search_filter(filter_string)
    except MlflowException as exc:
        raise MlflowError(exc.message) from None
    q = Q()
    for clause in clauses:
        kind, key, op, value = (clause["type"], clause["key"], clause["comparator"],
                                clause["value"])
        if kind == "attribute" and key in ATTRIBUTES and op in ("=", "!="):
            term = Q(**{ATTRIBUTES[key]: value})
        elif kind in ("parameter", "tag") and op in ("=", "!="):
            field = "params" if kind != "tag" else "tags"
            term = Q(**{f"{field}__{key}": value})
        elif kind == "metric":
            term = Q(model_id__in=Metric.objects.filter(
                org=org, key=key, model_id__isnull=False).filter(
                search._compare("value", op, float(value))).values("model_id"))
            op = "="
        else:
            raise MlflowError(f"Unsupported logged model filter: {kind}.{key} {op}")
        q &= ~term if op == "!=" else term
    return q
