"""Every kind of MLflow model is accepted: registered with the real client, packaged by a real
worker and scored through the API, each loaded only by a sandboxed scorer in its own
environment. (scikit-learn with skops and with cloudpickle: test_registry_client.py and
test_scoring.py.)"""

import math

import mlflow
import mlflow.pyfunc
import pytest

from models_registry.models import ModelVersion
from tests.models_registry.conftest import requirements, training_data, wait_status

pytestmark = pytest.mark.postgres_only


def _registered(client, name: str, info) -> str:
    created = mlflow.register_model(info.model_uri, name, await_registration_for=0)
    shown = wait_status(client, name, created.version, timeout=600)
    assert shown.status == "READY", shown.status_message
    return created.version


def client_page(personas, version) -> str:
    """The version's page in the web UI, as its owner sees it."""
    from tests.web.test_pages import browser

    response = browser(personas.alice).get(
        f"/models/{version.registered_model.name}/versions/{version.version}/")
    assert response.status_code == 200
    return response.content.decode()


def _scored(api, personas, name: str, version: str, rows) -> dict:
    body = {"dataframe_split": rows.to_dict(orient="split"), "subjects": ["c1", "c2"],
            "purpose": "credit decision", "threshold": 0.5}
    response = api(personas.alice).post(f"/api/v1/models/{name}/versions/{version}/predict",
                                        body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_gradient_boosting_model_registers_and_scores_with_contributions(
        live_worker, mlflow_as, personas, api):
    from importlib.metadata import version as installed

    import lightgbm
    import mlflow.lightgbm

    x, y = training_data()
    model = lightgbm.LGBMClassifier(n_estimators=20, max_depth=3, verbose=-1).fit(x, y)
    client = mlflow_as(personas.alice)
    with mlflow.start_run():
        info = mlflow.lightgbm.log_model(
            model, name="model", input_example=x.head(5),
            pip_requirements=[*requirements(), f"lightgbm=={installed('lightgbm')}"])
    number = _registered(client, "boosted", info)
    stored = ModelVersion.objects.get(registered_model__name="boosted")
    assert stored.manifest["verification"]["explain"]["attribution"] == "tree-shap"
    page = client_page(personas, stored)
    assert "exact (TreeSHAP)" in page and "loaded only in the sandbox" in page
    rows = x.head(2)
    answer = _scored(api, personas, "boosted", number, rows)
    assert answer["predictions"] == [int(p) for p in model.predict(rows)]
    for decision, expected in zip(answer["decisions"], model.predict_proba(rows)[:, 1],
                                  strict=True):
        assert decision["raw_score"] == pytest.approx(expected)
        # exact TreeSHAP values, as LightGBM computes them: with the base value they add up
        # to the model's margin, the log-odds of the probability it scored
        assert (decision["contribution_method"], decision["contribution_scale"]) == \
            ("tree-shap", "log-odds")
        assert set(decision["contributions"]) == set(x.columns)
        margin = decision["base_value"] + sum(decision["contributions"].values())
        assert 1 / (1 + math.exp(-margin)) == pytest.approx(expected)


def test_a_custom_python_model_in_an_environment_built_for_it(
        mlflow_as, personas, api, settings, worker_env):
    """`mlflow.pyfunc.log_model(python_model=...)`, the most common custom model, with
    LEDGERFLOW_MODEL_ENV_MANAGER=virtualenv: its own environment is built from its
    requirements (in the sandbox) and used by packaging and scoring alike."""
    from models_registry.models import ModelVersion

    class Scorecard(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [round(0.01 * float(d) + 0.1 * float(p), 6)
                    for d, p in zip(model_input["debt"], model_input["late_payments"],
                                    strict=True)]

    import signal

    from tests.models_registry.test_registry_client import _stop, _worker

    settings.LEDGERFLOW_MODEL_ENV_MANAGER = "virtualenv"  # scoring here, packaging there:
    worker = _worker({**worker_env, "LEDGERFLOW_MODEL_ENV_MANAGER": "virtualenv"}, "packaging")
    client = mlflow_as(personas.alice)
    x, _ = training_data(5)
    try:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=Scorecard(),
                                           input_example=x, pip_requirements=requirements())
        number = _registered(client, "scorecard", info)
    finally:
        _stop(worker, signal.SIGTERM)
    answer = _scored(api, personas, "scorecard", number, x.head(2))
    expected = [round(0.01 * d + 0.1 * p, 6) for d, p in
                zip(x["debt"].head(2), x["late_payments"].head(2), strict=True)]
    assert answer["predictions"] == pytest.approx(expected)
    assert [d["raw_score"] for d in answer["decisions"]] == pytest.approx(expected)
    stored = ModelVersion.objects.get(registered_model__name="scorecard")
    assert stored.manifest["mlmodel"]["serialization"]["format"] == "cloudpickle"
    from models_registry.environments import model_environment
    from models_registry.packages import package_local_dir

    built = model_environment(package_local_dir(stored)).mounts[0].source
    assert built.name.startswith("model-")  # not the runner environment
