"""Fixtures for the registry: real sklearn models logged and registered with the real client,
packaged by a real worker (tests.conftest.live_worker) on the test broker."""

import io
import time

import pytest

from tests.tracking.conftest import _connections_closed_after_test, mlflow_as  # noqa: F401

FEATURES = ["income", "debt", "age", "late_payments"]


def training_data(rows: int = 200, seed: int = 7):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "income": rng.normal(50.0, 15.0, rows),
        "debt": rng.normal(20.0, 8.0, rows),
        "age": rng.integers(18, 80, rows).astype(float),
        "late_payments": rng.poisson(1.0, rows).astype(float),
    })
    logit = 0.08 * x["debt"] - 0.05 * x["income"] + 0.6 * x["late_payments"] + 0.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


def requirements() -> list[str]:
    """What a data scientist's model records as its requirements (pinned to what logged it),
    without the test runner that MLflow would otherwise infer from the imported modules."""
    from importlib.metadata import version

    import mlflow

    return [f"mlflow=={mlflow.__version__}",
            *(f"{name}=={version(name)}" for name in ("scikit-learn", "skops", "cloudpickle",
                                                      "pandas", "numpy"))]


def log_model(kind: str = "logistic", name: str = "model", **extra):
    """Fit and log a model in a new run; returns the ModelInfo."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    x, y = training_data()
    if kind == "logistic":
        model = LogisticRegression(max_iter=500)
    else:  # mlflow saves with skops, which trusts a tree's node storage only when told to
        model = DecisionTreeClassifier(max_depth=3, random_state=0)
        extra.setdefault("skops_trusted_types", ["sklearn.tree._tree.Tree"])
    model.fit(x, y)
    extra.setdefault("pip_requirements", requirements())
    with mlflow.start_run():
        mlflow.log_params({"kind": kind, **({"C": model.C} if kind == "logistic" else {})})
        return mlflow.sklearn.log_model(model, name=name, input_example=x.head(5), **extra)


def wait_status(client, name: str, version, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        mv = client.get_model_version(name, str(version))
        if mv.status != "PENDING_REGISTRATION" or time.monotonic() > deadline:
            return mv
        time.sleep(0.3)


@pytest.fixture
def registered(live_worker, mlflow_as, personas):  # noqa: F811  (the imported fixture)
    """`registered(kind, name)` -> a READY ModelVersion of a freshly logged sklearn model."""
    import mlflow

    mlflow_as(personas.alice)

    def make(kind: str = "logistic", name: str = "credit-risk"):
        info = log_model(kind)
        created = mlflow.register_model(info.model_uri, name, await_registration_for=120)
        # register_model waits for READY but returns the version as it was created
        return mlflow.MlflowClient().get_model_version(name, created.version)

    return make


def save_model_dir(kind: str, target) -> None:
    """A real model directory (MLmodel, model, input example) at `target`: sklearn, or
    LightGBM for "boosted"."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    x, y = training_data()
    extra = {}
    if kind == "boosted":  # gradient-boosted trees: exact TreeSHAP contributions
        from importlib.metadata import version

        import lightgbm
        import mlflow.lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=20, max_depth=3, verbose=-1).fit(x, y)
        mlflow.lightgbm.save_model(model, str(target), input_example=x.head(5),
                                   pip_requirements=[*requirements(),
                                                     f"lightgbm=={version('lightgbm')}"])
        return
    if kind == "logistic":
        model = LogisticRegression(max_iter=500)
    elif kind == "pickled":  # runs code on load: loaded only in the sandbox
        model = LogisticRegression(max_iter=500)
        extra["serialization_format"] = "cloudpickle"
    else:
        model = DecisionTreeClassifier(max_depth=3, random_state=0)
        extra["skops_trusted_types"] = ["sklearn.tree._tree.Tree"]
    model.fit(x, y)
    mlflow.sklearn.save_model(model, str(target), input_example=x.head(5),
                              pip_requirements=requirements(), **extra)


def upload_dir(org, local, prefix: str, actor) -> None:
    from pathlib import Path

    from tracking.artifacts import artifact_upload

    for path in sorted(Path(local).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            artifact_upload(org=org, path=f"{prefix}/{path.relative_to(local).as_posix()}",
                            stream=io.BytesIO(data), length=len(data), actor=actor)


def package_now(version) -> None:
    """Package a version in this process, as the worker would (the verification child process
    included), for tests that need a READY version without a worker."""
    from config.jobs.runner import run_here

    assert run_here("models_registry.package", version.pk) == "ready", version.label


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory) -> dict:
    """One saved model directory per kind for the whole session (same files, same digest)."""
    root = tmp_path_factory.mktemp("saved-models")
    dirs = {}
    for kind in ("logistic", "tree", "pickled", "boosted"):
        save_model_dir(kind, root / kind)
        dirs[kind] = root / kind
    return dirs


@pytest.fixture
def make_version(saved_models):
    """`make_version(org, name, kind="logistic", ready=True)` -> a ModelVersion of a real sklearn
    model, logged to a run of the org's Default experiment and (by default) packaged."""
    from audit.actors import Actor
    from models_registry import services as registry
    from models_registry.models import RegisteredModel
    from tracking.selectors import experiment_get
    from tracking.services import runs as run_services

    actor = Actor.command("test-setup")

    def make(org, name: str = "credit-risk", kind: str = "logistic", ready: bool = True):
        local = saved_models[kind]
        run = run_services.run_create(experiment=experiment_get(org=org, experiment_id="0"),
                                      actor=actor, run_name=f"train-{kind}")
        upload_dir(org, local, f"0/{run.run_uuid}/artifacts/model", actor)
        model = RegisteredModel.objects.filter(org=org, name=name, deleted=False).first() or \
            registry.registered_model_create(org=org, name=name, actor=actor)
        version = registry.model_version_create(model=model, actor=actor,
                                                source=f"runs:/{run.run_uuid}/model")
        if ready:
            package_now(version)
            version.refresh_from_db()
        return version

    return make
