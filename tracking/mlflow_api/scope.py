"""What a project run's token may write: its own run, and models logged from that run.

The token (tenancy ApiToken.run_uuid) reads like any member's; every write must name the run
(`run_id`), a logged model whose source run it is, or an artifact path below either.
"""

from tracking.mlflow_api.errors import MlflowError
from tracking.models import LoggedModel


def _model_of_run(org, model_id, scope: str) -> bool:
    return isinstance(model_id, str) and LoggedModel.objects.filter(
        org=org, model_id=model_id, source_run__run_uuid=scope).exists()


def _denied(scope: str) -> MlflowError:
    return MlflowError(f"This token belongs to project run {scope}: it writes only to that run "
                       "and the models logged from it.", "PERMISSION_DENIED")


def check_rpc(org, scope: str, rpc_path: str, data: dict) -> None:
    if rpc_path.startswith("logged-models"):
        allowed = _model_of_run(org, data.get("model_id"), scope) if "model_id" in data \
            else data.get("source_run_id") == scope
    else:
        allowed = (data.get("run_id") or data.get("run_uuid")) == scope
    if not allowed:
        raise _denied(scope)


def check_artifact_path(org, scope: str, path: str) -> None:
    """`<experiment>/<run>/artifacts/...` of the run, or `<experiment>/models/<model>/...` of a
    model logged from it."""
    parts = path.split("/")
    allowed = (len(parts) > 2 and parts[1] == scope) or \
        (len(parts) > 3 and parts[1] == "models" and _model_of_run(org, parts[2], scope))
    if not allowed:
        raise _denied(scope)
