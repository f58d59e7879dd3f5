"""The registry through the real mlflow client, packaged by a real worker."""

import mlflow
import mlflow.pyfunc
import pytest

from models_registry.models import ModelVersion
from tests.models_registry.conftest import log_model, training_data, wait_status

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

    # runs:/<run id>/model finds the run's logged model (MLflow 3) through logged-models/search
    by_run = mlflow.register_model(f"runs:/{logistic.run_id}/model", "credit-risk",
                                   await_registration_for=120)
    assert (by_run.version, by_run.run_id) == ("2", logistic.run_id)
    assert wait_status(client, "credit-risk", "2").status == "READY"

    stored = ModelVersion.objects.get(registered_model__name="credit-risk", version=1)
    assert stored.package_digest.startswith("sha256:")
    paths = {f["path"] for f in stored.manifest["files"]}
    assert {"MLmodel", "model.skops", "input_example.json"} <= paths
    assert stored.manifest["verification"]["scored_example"] is True
    assert "linear" in stored.manifest["verification"]["explain"]
    # The client downloads the package, not the run's files.
    uri = client.get_model_version_download_uri("credit-risk", "1")
    assert uri == f"mlflow-artifacts:/registry/{stored.uuid}"


def _register_dir(tmp_path, files: dict[str, str], name: str):
    """Log a directory with these files in a run and register it with the client."""
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    for path, text in files.items():
        (folder / path).write_text(text)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), artifact_path="model")
    client = mlflow.MlflowClient()
    client.create_registered_model(name)
    return client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id,
                                        await_creation_for=120)


BROKEN = [
    ({"MLmodel": "flavors: [not: a mapping\n"}, "MLmodel cannot be read"),
    ({"MLmodel": "flavors:\n  sklearn:\n    pickled_model: model.pkl\n"},
     "no python_function flavor"),
    ({"MLmodel": "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
                 "    model_path: missing.skops\n  sklearn:\n    pickled_model: missing.skops\n"
                 "    serialization_format: skops\n"}, "could not be loaded as python_function"),
    ({"MLmodel": "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
                 "    model_path: ../../2/registry/model.pkl\n  sklearn:\n"
                 "    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"},
     "outside the model directory"),
    ({"conda.yaml": "name: x\n"}, "no MLmodel file"),
]


def test_a_broken_model_fails_registration_with_its_reason(live_worker, mlflow_as, personas,
                                                           tmp_path):
    """Each kind of broken model, one after the other on the same worker."""
    client = mlflow_as(personas.alice)
    for index, (files, reason) in enumerate(BROKEN):
        name = f"broken-{index}"
        with pytest.raises(mlflow.exceptions.MlflowException, match="FAILED_REGISTRATION"):
            _register_dir(tmp_path / name, files, name)
        version = client.get_model_version(name, "1")
        assert version.status == "FAILED_REGISTRATION", reason
        assert reason in version.status_message
        stored = ModelVersion.objects.get(registered_model__name=name)
        assert stored.package_digest == "" and stored.package_path == ""


def test_a_run_that_backs_a_version_cannot_be_deleted(registered, mlflow_as, personas):
    version = registered("logistic", "credit-risk")
    client = mlflow_as(personas.alice)
    with pytest.raises(mlflow.exceptions.MlflowException,
                       match="backs registered model versions") as refused:
        client.delete_run(version.run_id)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(version.run_id).info.lifecycle_stage == "active"
    client.delete_model_version("credit-risk", version.version)
    client.delete_run(version.run_id)
    # the package outlives the run and the version's listing
    assert ModelVersion.objects.get(registered_model__name="credit-risk").package_digest


def test_registry_reads_search_and_stages_through_the_client(registered, mlflow_as, personas):
    first = registered("logistic", "credit-risk")
    registered("tree", "credit-risk")
    registered("logistic", "fraud")
    client = mlflow_as(personas.alice)
    client.set_registered_model_tag("fraud", "team", "aml")
    client.set_model_version_tag("credit-risk", "2", "validated", "yes")
    assert [m.name for m in client.search_registered_models(filter_string="name LIKE 'cred%'")] \
        == ["credit-risk"]
    assert [m.name for m in client.search_registered_models(filter_string="tags.team = 'aml'")] \
        == ["fraud"]
    found = client.search_model_versions(f"run_id = '{first.run_id}'")
    assert [(v.name, v.version) for v in found] == [("credit-risk", "1")]
    found = client.search_model_versions("name = 'credit-risk' and tags.validated = 'yes'")
    assert [v.version for v in found] == ["2"]
    client.transition_model_version_stage("credit-risk", "1", "Production")
    client.transition_model_version_stage("credit-risk", "2", "Production",
                                          archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions("name='credit-risk'")}
    assert stages == {"1": "Archived", "2": "Production"}
    assert [v.version for v in client.get_latest_versions("credit-risk", ["Production"])] == ["2"]
    client.rename_registered_model("credit-risk", "credit-risk-v2")
    assert client.get_model_version("credit-risk-v2", "2").current_stage == "Production"
    assert mlflow.pyfunc.load_model("models:/credit-risk-v2/2") is not None
    # other organizations see none of it
    other = mlflow_as(personas.charlie)
    assert other.search_registered_models() == []
    assert other.search_model_versions("name = 'fraud'") == []


def _worker(env, queues: str, *extra):
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
         "--concurrency", "1", "--queues", queues, "--hostname", f"pkg{len(extra)}@%h",
         *extra], cwd=Path(__file__).resolve().parents[2], env=env, start_new_session=True)


def _stop(proc, sig) -> None:
    import os
    import subprocess

    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_a_worker_killed_mid_packaging_leaves_the_version_to_the_next(worker_env, mlflow_as,
                                                                      personas, tmp_path):
    import signal
    import time

    from audit.models import AuditEvent

    env = {**worker_env, "LEDGERFLOW_PACKAGING_LEASE_SECONDS": "4",
           "LEDGERFLOW_JOBS_SWEEP_INTERVAL": "1",
           "LEDGERFLOW_JOB_BACKOFF_SECONDS": "1"}
    client = mlflow_as(personas.alice)
    info = log_model("logistic")
    first = _worker(env, "packaging")
    try:
        created = mlflow.register_model(info.model_uri, "credit-risk", await_registration_for=0)
        deadline = time.monotonic() + 60
        while ModelVersion.objects.get().packaging_attempt == 0:
            assert time.monotonic() < deadline, "the first worker never took the job"
            time.sleep(0.05)
    finally:
        _stop(first, signal.SIGKILL)  # the whole worker, mid-task: no ack, no cleanup
    assert ModelVersion.objects.get().status == "PENDING_REGISTRATION"

    # the sweeper runs on beat and the default queue, as in production
    second = _worker(env, "packaging,default", "--beat", "--schedule",
                     str(tmp_path / "beat-schedule"))
    try:
        version = wait_status(client, "credit-risk", created.version, timeout=120)
    finally:
        _stop(second, signal.SIGTERM)
    assert version.status == "READY", version.status_message
    stored = ModelVersion.objects.get()
    assert stored.packaging_attempt >= 2
    actions = list(AuditEvent.objects.filter(target_type="modelversion", target_id=str(stored.pk))
                   .order_by("seq").values_list("action", flat=True))
    assert actions.count("model_version.packaging_started") == stored.packaging_attempt
    assert actions[-1] == "model_version.packaged"
    assert actions.count("model_version.packaged") == 1


def test_a_task_delivered_twice_packages_once(make_version, personas):
    from config.jobs.runner import run_here

    version = make_version(personas.org_a, "credit-risk")
    digest = version.package_digest
    assert run_here("models_registry.package", version.pk) == "skipped"
    version.refresh_from_db()
    assert version.package_digest == digest


def test_mlflow_models_serve_serves_a_registered_version_by_its_alias(registered, mlflow_as,
                                                                      personas, api, tmp_path):
    """A data scientist's own `mlflow models serve -m models:/<name>@<alias>` (their machine,
    their trust) downloads the package and answers as Ledgerflow's scoring does."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import requests

    version = registered("logistic", "credit-risk")
    mlflow_as(personas.alice).set_registered_model_alias("credit-risk", "candidate",
                                                         version.version)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/credit-risk@candidate",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        cwd=tmp_path, start_new_session=True,  # in the client's venv, as one activated it
        env={**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "wb"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve never answered"
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        x, _ = training_data(6, seed=5)
        body = {"dataframe_split": x.to_dict(orient="split")}
        served = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=30)
        assert served.status_code == 200, served.text
        ours = api(personas.alice).post("/api/v1/models/credit-risk/aliases/candidate/predict",
                                        body, format="json")
        assert ours.status_code == 200, ours.content
        assert served.json()["predictions"] == ours.json()["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
