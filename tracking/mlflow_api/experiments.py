"""experiments/* RPCs."""

from mlflow.utils import validation as mlflow_validation

from tenancy.roles import Capability
from tracking import search, selectors
from tracking.mlflow_api import serialize
from tracking.mlflow_api.errors import MlflowError
from tracking.mlflow_api.request import MlflowRequest
from tracking.mlflow_api.views import Context, rpc
from tracking.models import LifecycleStage
from tracking.services import experiments as services

WRITE = Capability.WRITE


def _tags(req: MlflowRequest) -> dict:
    tags = dict(req.key_values("tags"))
    for key, value in tags.items():
        mlflow_validation._validate_experiment_tag(key, value)
    return tags


@rpc("POST", "experiments/create", WRITE)
def create(ctx: Context, req: MlflowRequest):
    name = req.str("name")
    mlflow_validation._validate_experiment_name(name)
    if req.has("artifact_location"):
        # Artifacts live in the organization's store behind the artifact proxy; a location
        # elsewhere (s3://, file:) would bypass its access checks and the audit trail.
        raise MlflowError("artifact_location is managed by the server and cannot be set; "
                          "omit it.")
    experiment = services.experiment_create(org=ctx.org, name=name, actor=ctx.actor(),
                                            tags=_tags(req))
    return {"experiment_id": experiment.public_id}


@rpc("GET", "experiments/get")
def get(ctx: Context, req: MlflowRequest):
    experiment = selectors.experiment_get(org=ctx.org, experiment_id=req.str("experiment_id"))
    return {"experiment": serialize.experiment(experiment)}


@rpc("GET", "experiments/get-by-name")
def get_by_name(ctx: Context, req: MlflowRequest):
    experiment = selectors.experiment_get_by_name(org=ctx.org, name=req.str("experiment_name"))
    return {"experiment": serialize.experiment(experiment)}


@rpc("POST", "experiments/search")
@rpc("GET", "experiments/search")
def search_experiments(ctx: Context, req: MlflowRequest):
    services.experiment_default(org=ctx.org)  # the client expects Default to be listed
    page, token = search.experiments(
        org=ctx.org, filter_string=req.str("filter", ""),
        view_type=req.str("view_type", "ACTIVE_ONLY"), max_results=req.int("max_results", 1000),
        order_by=req.list("order_by", []), page_token=req.str("page_token", ""))
    return serialize.page("experiments", [serialize.experiment(e) for e in page], token)


@rpc("POST", "experiments/update", WRITE)
def update(ctx: Context, req: MlflowRequest):
    experiment = selectors.experiment_get(org=ctx.org, experiment_id=req.str("experiment_id"))
    new_name = req.str("new_name")
    mlflow_validation._validate_experiment_name(new_name)
    services.experiment_rename(experiment=experiment, new_name=new_name, actor=ctx.actor())
    return {}


def _set_stage(ctx: Context, req: MlflowRequest, stage: str) -> dict:
    experiment = selectors.experiment_get(org=ctx.org, experiment_id=req.str("experiment_id"))
    services.experiment_set_lifecycle(experiment=experiment, stage=stage, actor=ctx.actor())
    return {}


@rpc("POST", "experiments/delete", WRITE)
def delete(ctx: Context, req: MlflowRequest):
    return _set_stage(ctx, req, LifecycleStage.DELETED)


@rpc("POST", "experiments/restore", WRITE)
def restore(ctx: Context, req: MlflowRequest):
    return _set_stage(ctx, req, LifecycleStage.ACTIVE)


@rpc("POST", "experiments/set-experiment-tag", WRITE)
def set_tag(ctx: Context, req: MlflowRequest):
    experiment = selectors.experiment_get(org=ctx.org, experiment_id=req.str("experiment_id"))
    key, value = req.str("key"), req.str("value", "")
    mlflow_validation._validate_experiment_tag(key, value)
    services.experiment_set_tag(experiment=experiment, key=key, value=value, actor=ctx.actor())
    return {}


@rpc("POST", "experiments/delete-experiment-tag", WRITE)
def delete_tag(ctx: Context, req: MlflowRequest):
    experiment = selectors.experiment_get(org=ctx.org, experiment_id=req.str("experiment_id"))
    services.experiment_delete_tag(experiment=experiment, key=req.str("key"), actor=ctx.actor())
    return {}
