"""Hostile model files, registered through the real mlflow client and packaged by a real worker,
then scored through the API: a model is code, and its code runs only in the sandbox.

Each hostile model's pickle runs the sandbox probes (tests/sandbox/probe.py) the moment it is
loaded, and answers every prediction with what they reached. Each test first runs with the
`none` backend, where the payload must reach the service's files, ports and processes (the
probe is real), then with bwrap, where it must reach nothing.
"""

import json
import signal
import uuid
from pathlib import Path

import pytest

from models_registry.models import ModelVersion
from tests.models_registry.conftest import requirements, wait_status
from tests.models_registry.test_registry_client import _stop, _worker
from tests.sandbox.test_escapes import (  # noqa: F401  (fixtures)
    _gone,
    _processes_named,
    local_ports,
    service_files,
)

PROBE = (Path(__file__).parents[1] / "sandbox" / "probe.py").read_text()
ROWS = {"dataframe_records": [{"x": 1.0}, {"x": 2.0}]}


def _loading_runs(code: str):
    """A python_model whose unpickling runs `code`, which must leave the model to serve in
    `model`: what a malicious cloudpickle does (mlflow pickles python_model with it)."""
    import mlflow.pyfunc

    expression = f"(lambda g: (exec({code!r}, g), g['model'])[1])({{'__name__': 'hostile'}})"

    class Hostile(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return ["harmless"] * len(model_input)

        def __reduce__(self):
            return (eval, (expression,))

    return Hostile()


def probing_model(probes: list[dict]):
    return _loading_runs(PROBE + f"""
import json as _json
from mlflow.pyfunc import PythonModel as _Base
RESULTS = [run(p) for p in {probes!r}]

class _Model(_Base):
    def predict(self, context, model_input, params=None):
        return [_json.dumps(RESULTS)] * len(model_input)

model = _Model()
""")


def register(client, name: str, python_model, env: dict) -> ModelVersion:
    """Log and register with the real client; packaged by a worker of `env`."""
    import mlflow

    worker = _worker(env, "packaging")
    try:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=python_model,
                                           pip_requirements=requirements())
        created = mlflow.register_model(info.model_uri, name, await_registration_for=0)
        shown = wait_status(client, name, created.version, timeout=240)
    finally:
        _stop(worker, signal.SIGTERM)
    assert shown.status == "READY", shown.status_message
    return ModelVersion.objects.get(registered_model__name=name, version=created.version)


@pytest.mark.parametrize("backend", ["none", "bwrap"])
def test_a_model_whose_pickle_attacks_reaches_nothing_outside_its_sandbox(
        backend, worker_env, mlflow_as, personas, api, settings,
        service_files, local_ports):  # noqa: F811  (the imported fixtures)
    from models_registry.scorers import POOL

    data = Path(settings.LEDGERFLOW_MODEL_CACHE_DIR).parent
    planted = data / f"planted-by-a-model-{uuid.uuid4().hex}"
    daemon = f"ledgerflow-model-daemon-{uuid.uuid4().hex}"
    probes = [*({"kind": "read", "target": str(service_files[name])}
                for name in ("key", "artifact", "code", "venv")),
              {"kind": "write", "target": str(planted)},
              *({"kind": "connect", "target": port} for port in local_ports),
              {"kind": "leave", "target": daemon}]
    settings.LEDGERFLOW_SANDBOX = backend  # where this process (the web) starts scorers
    client = mlflow_as(personas.alice)
    try:
        version = register(client, "hostile", probing_model(probes),
                           {**worker_env, "LEDGERFLOW_SANDBOX": backend})
        planted_by_packaging = planted.exists()
        planted.unlink(missing_ok=True)
        response = api(personas.alice).post(
            f"/api/v1/models/hostile/versions/{version.version}/predict", ROWS, format="json")
        assert response.status_code == 200, response.content
        reached = {f"{r['probe']['kind']}:{r['probe']['target']}": r["result"]
                   for r in json.loads(response.json()["predictions"][0])}
        assert len(reached) == len(probes)
        POOL.stop_all()
        if backend == "none":  # the payload is real: it reads keys, plants files, connects
            assert planted_by_packaging and planted.exists()
            assert set(reached.values()) == {"escaped"}, reached
            assert _processes_named(daemon)
        else:
            assert not planted_by_packaging and not planted.exists()
            leave = reached.pop(f"leave:{daemon}")
            assert leave == "escaped"  # it did start, inside...
            assert set(reached.values()) == {"blocked"}, reached
            _gone(daemon)  # ...and went with its sandbox
    finally:
        POOL.stop_all()
        planted.unlink(missing_ok=True)
        for pid in _processes_named(daemon):
            import os

            os.kill(pid, 9)


def test_a_model_over_its_limits_answers_with_the_reason_and_harms_no_other(
        live_worker, mlflow_as, personas, api, settings, worker_env):
    """A model that allocates without bound is stopped at its memory limit, one that hangs
    at the scoring timeout; each request answers 503 naming why, nothing is recorded, and
    the next request (of another model, or of the same one) is served."""
    import mlflow.pyfunc

    from models_registry.models import Decision

    class Greedy(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            if float(model_input["x"].iloc[0]) > 100:
                hoard = []
                while True:
                    hoard.append(bytearray(50 << 20))
            if float(model_input["x"].iloc[0]) < 0:
                import time

                time.sleep(600)
            return [float(v) * 2 for v in model_input["x"]]

    client = mlflow_as(personas.alice)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Greedy(),
                                       pip_requirements=requirements())
    created = mlflow.register_model(info.model_uri, "greedy", await_registration_for=0)
    assert wait_status(client, "greedy", created.version, timeout=240).status == "READY"
    settings.LEDGERFLOW_SCORER_MEMORY_MB, settings.LEDGERFLOW_SCORING_TIMEOUT = 400, 5
    url = f"/api/v1/models/greedy/versions/{created.version}/predict"
    alice = api(personas.alice)
    assert alice.post(url, {"dataframe_records": [{"x": 2.0}]}, format="json").json()[
        "predictions"] == [4.0]
    for x, reason in ((1000.0, "memory"), (-1.0, "longer than 5 s")):
        body = {"dataframe_records": [{"x": x}], "subject": "c-1", "purpose": "credit"}
        response = alice.post(url, body, format="json")
        assert response.status_code == 503, response.content
        assert reason in response.json()["detail"], response.json()
        assert not Decision.objects.exists()
        # the model is started again for the next request
        again = alice.post(url, {"dataframe_records": [{"x": 3.0}]}, format="json")
        assert again.status_code == 200 and again.json()["predictions"] == [6.0]
