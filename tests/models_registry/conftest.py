"""Fixtures for the registry: real sklearn models logged and registered with the real client,
packaged by a real worker (tests.conftest.live_worker) on the test broker."""

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
