"""A hostile member's project, run by a real worker through the API: the same project with
the `none` backend (its escapes work: the probes are real) and with bwrap (every one fails).
It tries to read the service's files and another organization's artifacts, the worker's
environment, to connect to PostgreSQL and Redis, to plant a file in the service's data
directory, to leave a process behind, and to use its run's credentials on other objects."""

import io
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from audit.models import AuditEvent
from tests.projects.conftest import wait_done
from tests.projects.test_runs import archive_of
from tests.sandbox.test_escapes import PROBE, _gone, _processes_named
from tracking.models import Experiment

pytestmark = pytest.mark.postgres_only
URL = "/api/v1/projects/runs/"
ABUSE = '''
import json, os, urllib.request

base = os.environ["MLFLOW_TRACKING_URI"]
headers = {"Content-Type": "application/json"}
if os.environ.get("MLFLOW_TRACKING_TOKEN"):
    headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
    print("TOKEN=" + os.environ["MLFLOW_TRACKING_TOKEN"])

def call(path, body):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code

run_id = os.environ["MLFLOW_RUN_ID"]
print("ABUSE=" + json.dumps({
    "delete_experiment": call("/api/2.0/mlflow/experiments/delete",
                              {"experiment_id": os.environ["VICTIM"], "run_id": run_id}),
    "native_api": call("/api/v1/me/", {}),
    "own_run": call("/api/2.0/mlflow/runs/log-parameter",
                    {"run_id": run_id, "key": "hostile", "value": "yes"}),
}))
'''


def _project(probes: list[dict], victim: str) -> io.BytesIO:
    return archive_of({"MLproject": "name: hostile\nentry_points:\n  main:\n    command: "
                                    "'VICTIM=" + victim + " python3 abuse.py && python3 probe.py "
                                    "probes.json'\n",
                       "probes.json": json.dumps(probes), "abuse.py": ABUSE,
                       "probe.py": PROBE.read_text()})


def _line(logs: str, prefix: str) -> str:
    return next((line[len(prefix):] for line in logs.splitlines() if line.startswith(prefix)), "")


@pytest.fixture
def targets(api, personas, settings):
    """What the project aims at: a file in the data directory, an artifact of organization
    B, PostgreSQL's and Redis's ports, and an experiment of its own organization."""
    data = Path(os.environ["LEDGERFLOW_DATA_DIR"])
    key = data / f"hostile-target-{uuid.uuid4().hex}.pem"
    key.write_text("signing key\n")
    other = Path(settings.LEDGERFLOW_ARTIFACT_ROOT) / str(personas.org_b.pk) / "secret.txt"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("organization B's data\n")
    victim = api(personas.alice).post("/api/2.0/mlflow/experiments/create",
                                      {"name": "victim"}, format="json").json()
    ports = [int(os.environ[name].split("127.0.0.1:")[1].split("/")[0])
             for name in ("DATABASE_URL", "CELERY_BROKER_URL") if "127.0.0.1:" in
             os.environ.get(name, "")]
    marker = f"ledgerflow-hostile-{uuid.uuid4().hex}"
    planted = data / f"planted-{marker}"
    probes = [{"kind": "read", "target": str(key)}, {"kind": "read", "target": str(other)},
              {"kind": "environ", "target": "DATABASE_URL="},
              *[{"kind": "connect", "target": port} for port in ports],
              {"kind": "write", "target": str(planted)}, {"kind": "leave", "target": marker}]
    yield {"probes": probes, "victim": victim["experiment_id"], "marker": marker,
           "planted": planted}
    key.unlink(missing_ok=True)
    shutil.rmtree(other.parent, ignore_errors=True)
    planted.unlink(missing_ok=True)
    for pid in _processes_named(marker):
        os.kill(pid, 9)


def _run(client, targets) -> tuple[dict, dict, dict]:
    submitted = client.post(URL, {"archive": _project(targets["probes"], targets["victim"])},
                            format="multipart").json()
    done = wait_done(client, submitted["id"])
    logs = client.get(f"{URL}{submitted['id']}/logs").json()["text"]
    assert done["status"] == "FINISHED", (done["status_message"], logs)
    results = {r["probe"]["kind"] + ":" + str(r["probe"]["target"]): r["result"]
               for r in json.loads(logs.strip().splitlines()[-1])}
    return results, json.loads(_line(logs, "ABUSE=")), {"token": _line(logs, "TOKEN=")}


def test_a_hostile_project_escapes_without_the_sandbox_and_not_with_it(
        api, personas, start_projects_worker, targets):
    client = api(personas.alice)
    victim = Experiment.objects.get(org=personas.org_a, pk=int(targets["victim"]))

    unconfined = start_projects_worker(LEDGERFLOW_SANDBOX="none")
    results, abuse, leaked = _run(client, targets)
    assert set(results.values()) == {"escaped"}, results  # every probe works
    assert targets["planted"].exists()
    targets["planted"].unlink()
    for pid in _processes_named(targets["marker"]):
        os.kill(pid, 9)
    # its token is in its environment there, and still only reaches its own run
    assert leaked["token"] and abuse == {"delete_experiment": 403, "native_api": 403,
                                         "own_run": 200}, abuse
    # ...and is dead once the run has ended
    after = api(leaked["token"]).post("/api/2.0/mlflow/runs/log-parameter",
                                      {"run_id": "x", "key": "k", "value": "v"}, format="json")
    assert after.status_code in (401, 403) and after.json()["error_code"] in (
        "UNAUTHENTICATED", "PERMISSION_DENIED")
    os.killpg(unconfined.pid, 15)
    unconfined.wait(timeout=30)

    start_projects_worker()  # bwrap
    results, abuse, leaked = _run(client, targets)
    lasting = {k: v for k, v in results.items() if not k.startswith("leave:")}
    assert len(lasting) >= 4 and set(lasting.values()) == {"blocked"}, results
    assert not targets["planted"].exists()
    _gone(targets["marker"])  # started inside, gone with the sandbox
    assert leaked["token"] == ""  # the relay holds the token; the job never sees it
    assert abuse == {"delete_experiment": 403, "native_api": 403, "own_run": 200}, abuse
    victim.refresh_from_db()
    assert victim.lifecycle_stage == "active"
    assert not AuditEvent.objects.filter(action="experiment.deleted").exists()
