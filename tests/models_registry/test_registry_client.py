"""The registry through the real mlflow client, packaged by a real worker."""

import mlflow
import mlflow.pyfunc
import pytest

from models_registry.models import ModelVersion
from tests.models_registry.conftest import training_data

pytestmark = pytest.mark.postgres_only


def test_register_package_and_load_by_version_and_alias(registered, mlflow_as, personas):
    logistic = registered("logistic", "credit-risk")
    tree = registered("tree", "credit-tree")
    assert logistic.status == tree.status == "READY"
    client = mlflow_as(personas.alice)
    client.set_registered_model_alias("credit-risk", "candidate", logistic.version)
    client.set_registered_model_alias("credit-tree", "candidate", tree.version)

    x, _ = training_data(10, seed=3)
    for name in ("credit-risk", "credit-tree"):
        by_version = mlflow.pyfunc.load_model(f"models:/{name}/1")
        by_alias = mlflow.pyfunc.load_model(f"models:/{name}@candidate")
        assert list(by_version.predict(x)) == list(by_alias.predict(x))

    stored = ModelVersion.objects.get(registered_model__name="credit-risk", version=1)
    assert stored.package_digest.startswith("sha256:")
    paths = {f["path"] for f in stored.manifest["files"]}
    assert {"MLmodel", "model.skops", "input_example.json"} <= paths
    assert stored.manifest["verification"]["scored_example"] is True
    assert "linear" in stored.manifest["verification"]["explain"]
    # The client downloads the package, not the run's files.
    uri = client.get_model_version_download_uri("credit-risk", "1")
    assert uri == f"mlflow-artifacts:/registry/{stored.uuid}"
