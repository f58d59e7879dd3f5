"""Hostile model files, logged as a run's artifacts and registered through the real mlflow
client, packaged by a real worker: what the service records of them, and what they reach.

- a skops file whose MLmodel trusts a code-running callable under an allowed-looking module
  (numpy.testing._private.utils.runstring), rebuilt by skops as `constructor(*args)`;
- an innocent skops model carrying a nested MLmodel whose cloudpickle runs code when loaded;
- an MLmodel whose sklearn flavor names another organization's model file, by an absolute
  path or through `..`.

The payloads plant a file in the service's data directory. Each security test first runs with
the `none` backend, where the payload must reach it (the attack is real), then with bwrap,
where it must not.
"""

import json
import os
import signal
import uuid
import zipfile
from pathlib import Path

import pytest
import yaml

from models_registry.models import ModelVersion
from tests.models_registry.conftest import requirements, save_model_dir, wait_status
from tests.models_registry.test_hostile_models import _loading_runs
from tests.models_registry.test_registry_client import _stop, _worker

RUNSTRING = "numpy.testing._private.utils.runstring"
ROWS = {"dataframe_records": [{"income": 40.0, "debt": 10.0, "age": 30.0,
                               "late_payments": 0.0}]}


def _planted(settings) -> Path:
    data = Path(settings.LEDGERFLOW_MODEL_CACHE_DIR).parent
    return data / f"planted-by-a-model-{uuid.uuid4().hex}"


def _edit_mlmodel(folder: Path, **sklearn) -> None:
    """Set these keys of the sklearn flavor in `folder`'s MLmodel."""
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    meta["flavors"]["sklearn"].update(sklearn)
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))


def _skops_calling(path: Path, code: str) -> None:
    """Rewrite the skops file of an estimator so that loading it calls runstring(code, {}):
    one more attribute, rebuilt by a ConstructorFromReduceNode (skops' `constructor(*args)`,
    what it writes for an object whose __reduce__ is its own type) with runstring as the
    constructor. skops names the type untrusted; the MLmodel's skops_trusted_types trusts it."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])

    def node(cls: str, module: str, loader: str, **rest) -> dict:
        return {"__class__": cls, "__module__": module, "__loader__": loader, **rest}

    args = node("tuple", "builtins", "TupleNode", content=[
        node("str", "builtins", "JsonNode", content=json.dumps(code), is_json=True),
        node("dict", "builtins", "DictNode", content={},
             key_types=node("list", "builtins", "ListNode", content=[]))])
    module, _, name = RUNSTRING.rpartition(".")
    schema["content"]["content"]["_hostile"] = node(name, module, "ConstructorFromReduceNode",
                                                    content=args)
    schema["content"]["key_types"]["content"].append(node("str", "builtins", "TypeNode"))
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _log_and_register(name: str, folder: Path):
    """`folder` as the `model` artifacts of a new run, registered as runs:/<run>/model."""
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    return mlflow.register_model(f"runs:/{run.info.run_id}/model", name,
                                 await_registration_for=0)


def _register(client, name: str, folder: Path, env: dict):
    """Registered and packaged by a worker of `env`; the version once packaging ended."""
    worker = _worker(env, "packaging")
    try:
        created = _log_and_register(name, folder)
        return wait_status(client, name, created.version, timeout=240)
    finally:
        _stop(worker, signal.SIGTERM)


@pytest.mark.parametrize("backend", ["none", "bwrap"])
def test_a_skops_file_that_trusts_runstring_runs_its_code_only_in_the_sandbox(
        backend, worker_env, mlflow_as, personas, api, settings, tmp_path):
    """skops calls runstring(code) while loading the model, since its own MLmodel trusts it.
    The code plants a file, then makes every prediction say whether it could. The service
    records the type, exactly as skops names it, among the file's untrusted types; the code
    runs wherever the model is loaded (packaging's verification, the scorer): with bwrap it
    runs too, and is blocked."""
    from models_registry.scorers import POOL

    planted = _planted(settings)
    folder = tmp_path / "model"
    save_model_dir("logistic", folder)
    _skops_calling(folder / "model.skops", f"""
import sklearn.linear_model as _linear
try:
    open({str(planted)!r}, "w").write("planted")
    _outcome = "planted"
except OSError as _error:
    _outcome = "blocked: " + type(_error).__name__
_linear.LogisticRegression.predict = lambda self, x: [_outcome] * len(x)
""")
    _edit_mlmodel(folder, skops_trusted_types=[RUNSTRING])
    settings.LEDGERFLOW_SANDBOX = backend  # where this process (the web) starts scorers
    client = mlflow_as(personas.alice)
    try:
        shown = _register(client, "runstring", folder,
                          {**worker_env, "LEDGERFLOW_SANDBOX": backend})
        planted_by_packaging = planted.exists()
        planted.unlink(missing_ok=True)
        response = api(personas.alice).post(
            f"/api/v1/models/runstring/versions/{shown.version}/predict", ROWS, format="json")
        POOL.stop_all()
        if backend == "none":  # the attack is real: loading the file runs the code
            assert shown.status == "READY", shown.status_message
            assert planted_by_packaging and planted.exists()
            assert response.json()["predictions"] == ["planted"]
        else:
            assert not planted_by_packaging and not planted.exists()
            if shown.status == "READY":  # it ran, inside, and reached nothing
                assert response.status_code == 200, response.content
                assert response.json()["predictions"][0].startswith("blocked: ")
            else:
                assert shown.status == "FAILED_REGISTRATION"
                assert response.status_code == 409, response.content
        if shown.status == "READY":
            stored = ModelVersion.objects.get(registered_model__name="runstring")
            assert stored.manifest["mlmodel"]["serialization"] == {
                "format": "skops", "bundles_code": False, "untrusted_types": [RUNSTRING],
                "trusted_types": [RUNSTRING]}  # named by skops, and trusted by the MLmodel
            # packaging's verification ran the code too, and saw what it could do
            seen = stored.manifest["verification"]["example_prediction"][0]
            assert (seen == "planted") if backend == "none" else seen.startswith("blocked: ")
    finally:
        POOL.stop_all()
        planted.unlink(missing_ok=True)


@pytest.mark.parametrize("backend", ["none", "bwrap"])
def test_a_pickle_in_a_nested_mlmodel_is_recorded_and_never_loaded(
        backend, worker_env, mlflow_as, personas, api, settings, tmp_path):
    """An innocent skops model carries, among its files, a nested MLmodel whose python_model
    pickle plants a file when unpickled. Its paths are checked and it is recorded in the
    manifest, but neither packaging nor scoring loads it, with either backend: whoever loads
    it does (shown here in this process, with nothing between it and the service)."""
    import mlflow.pyfunc

    from models_registry.packages import package_local_dir
    from models_registry.scorers import POOL

    planted = _planted(settings)
    folder = tmp_path / "model"
    save_model_dir("logistic", folder)
    mlflow.pyfunc.save_model(str(folder / "extras" / "inner"), pip_requirements=requirements(),
                             python_model=_loading_runs(f"""
open({str(planted)!r}, "w").write("planted")
from mlflow.pyfunc import PythonModel

class _Inner(PythonModel):
    def predict(self, context, model_input, params=None):
        return ["inner"] * len(model_input)

model = _Inner()
"""))
    settings.LEDGERFLOW_SANDBOX = backend
    client = mlflow_as(personas.alice)
    try:
        shown = _register(client, "nested", folder,
                          {**worker_env, "LEDGERFLOW_SANDBOX": backend})
        assert shown.status == "READY", shown.status_message
        response = api(personas.alice).post(
            f"/api/v1/models/nested/versions/{shown.version}/predict", ROWS, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["predictions"] in ([0], [1])  # the outer model answers
        POOL.stop_all()
        assert not planted.exists()
        stored = ModelVersion.objects.get(registered_model__name="nested")
        recorded = stored.manifest["mlmodel"]
        assert recorded["nested_models"] == ["extras/inner"]
        # what the manifest says of the format is the outer model's only
        assert recorded["serialization"] == {"format": "skops", "bundles_code": False,
                                             "untrusted_types": []}
        files = {f["path"] for f in stored.manifest["files"]}
        assert {"extras/inner/MLmodel", "extras/inner/python_model.pkl"} <= files
        if backend == "none":  # the payload is real: the packaged nested model plants it
            mlflow.pyfunc.load_model(str(package_local_dir(stored) / "extras" / "inner"))
            assert planted.exists()
    finally:
        POOL.stop_all()
        planted.unlink(missing_ok=True)


def test_a_flavor_path_to_another_organizations_model_fails_registration(
        live_worker, make_version, mlflow_as, personas, api, tmp_path):
    """An MLmodel whose sklearn flavor names org B's packaged model file, by its absolute path
    or through `..`: MLflow's own sklearn loader reads whatever it names (shown here, where
    the path leads to org B's logistic regression from a tree model's directory). The
    version fails registration naming the path, nothing is packaged, and nothing scores."""
    import mlflow.sklearn

    from models_registry.packages import package_local_dir

    theirs = package_local_dir(make_version(personas.org_b, "their-model")) / "model.skops"
    client = mlflow_as(personas.alice)
    for name in ("absolute", "dotdot"):
        folder = tmp_path / name / "model"
        save_model_dir("tree", folder)
        value = str(theirs) if name == "absolute" else os.path.relpath(theirs, folder)
        assert value.startswith("/" if name == "absolute" else "../")
        _edit_mlmodel(folder, pickled_model=value)
        loaded = mlflow.sklearn.load_model(str(folder))  # the attack, where nothing checks
        assert type(loaded).__name__ == "LogisticRegression"

        created = _log_and_register(name, folder)
        shown = wait_status(client, name, created.version, timeout=240)
        assert shown.status == "FAILED_REGISTRATION", shown.status_message
        assert (f"in flavor 'sklearn' of MLmodel the pickled_model '{value}', outside the "
                "model directory") in shown.status_message
        stored = ModelVersion.objects.get(registered_model__name=name)
        assert stored.package_digest == "" and stored.package_path == ""
        response = api(personas.alice).post(
            f"/api/v1/models/{name}/versions/{shown.version}/predict", ROWS, format="json")
        assert response.status_code == 409, response.content
        assert "FAILED_REGISTRATION" in response.json()["detail"]
