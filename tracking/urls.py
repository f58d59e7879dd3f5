"""The MLflow protocol's URLs. Importing the handler modules registers their RPCs."""

from django.urls import re_path

from tracking.mlflow_api import experiments, logged_models, runs, server  # noqa: F401
from tracking.mlflow_api.views import mlflow_endpoint

urlpatterns = [
    re_path(r"^(?:ajax-)?api/(?:2\.0|3\.0)/mlflow/(?P<rpc_path>.+)$", mlflow_endpoint,
            name="mlflow-rpc"),
]
