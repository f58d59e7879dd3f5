"""Project runs through the API, executed by a real worker into real tracking runs."""

import io
import os
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from audit.models import AuditEvent
from projects.models import ProjectRun
from tenancy.models import ApiToken
from tests.projects.conftest import EXAMPLE, wait_done, wait_for
from tracking.models import LoggedModel, Metric, Param, Run

pytestmark = pytest.mark.postgres_only
URL = "/api/v1/projects/runs/"


def example_archive() -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        tar.add(EXAMPLE, arcname="credit-example")
    data.seek(0)
    data.name = "credit-example.tar.gz"
    return data


def test_a_git_project_trains_and_logs_into_its_run(api, personas, projects_worker,
                                                    example_repo):
    url, head = example_repo
    client = api(personas.alice)
    response = client.post(URL, {"uri": url, "version": "main", "entry_point": "main",
                                 "parameters": {"alpha": 0.25}}, format="json")
    assert response.status_code == 201, response.content
    submitted = response.json()
    assert submitted["status"] == "QUEUED"
    done = wait_done(client, submitted["id"])
    assert done["status"] == "FINISHED", done["status_message"]
    assert done["resolved_commit"] == head and done["source_digest"].startswith("sha256:")
    assert "--alpha 0.25 --rows 60" in done["command"]

    run = Run.objects.get(run_uuid=submitted["run_id"])
    assert run.status == "FINISHED" and run.end_time
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == \
        {"alpha": "0.25", "rows": "60"}
    assert Metric.objects.filter(run=run, key="accuracy").exists()
    assert LoggedModel.objects.filter(source_run=run, status="LOGGED_MODEL_READY").exists()
    tags = dict(run.tags.values_list("key", "value"))
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.type"] == "PROJECT"

    logs = client.get(f"{URL}{submitted['id']}/logs").json()
    assert f"trained in run {run.run_uuid}" in logs["text"] and logs["done"]
    # the run's token is gone with the run
    token = ApiToken.objects.get(run_uuid=run.run_uuid)
    assert token.revoked_at is not None
    actions = list(AuditEvent.objects.filter(target_type="projectrun").order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["project_run.submitted", "project_run.started",
                       "project_run.source_resolved", "project_run.ended"]


def test_an_archive_runs_the_same_files_with_the_same_digest(api, personas, projects_worker,
                                                             example_repo):
    client = api(personas.alice)
    response = client.post(URL, {"archive": example_archive(), "entry_point": "main",
                                 "parameters": '{"rows": 40}'}, format="multipart")
    assert response.status_code == 201, response.content
    from_archive = wait_done(client, response.json()["id"])
    assert from_archive["status"] == "FINISHED", from_archive
    from_git = wait_done(client, client.post(URL, {"uri": example_repo[0]},
                                             format="json").json()["id"])
    assert from_archive["source_digest"] == from_git["source_digest"]
    assert from_archive["resolved_commit"] == ""


def archive_of(files: dict[str, str]) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, text in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(text.encode())
            tar.addfile(member, io.BytesIO(text.encode()))
    data.seek(0)
    data.name = "project.tar.gz"
    return data


def test_conda_and_docker_projects_fail_naming_what_this_worker_lacks(api, personas,
                                                                      projects_worker):
    """This machine has no conda and a docker command without an engine."""
    client = api(personas.alice)
    entry = "entry_points:\n  main:\n    command: 'echo never'\n"
    projects = {
        "conda": {"MLproject": "name: c\nconda_env: conda.yaml\n" + entry,
                  "conda.yaml": "name: c\ndependencies: [python=3.11]\n"},
        "docker": {"MLproject": "name: d\ndocker_env:\n  image: python:3.11-slim\n" + entry},
    }
    submitted = {kind: client.post(URL, {"archive": archive_of(files), "env_manager": "conda"
                                         if kind == "conda" else "virtualenv"},
                                   format="multipart").json() for kind, files in projects.items()}
    conda = wait_done(client, submitted["conda"]["id"])
    assert conda["status"] == "FAILED" and "no conda" in conda["status_message"], conda
    docker = wait_done(client, submitted["docker"]["id"])
    assert docker["status"] == "FAILED", docker
    assert "python:3.11-slim" in docker["status_message"]
    assert "Docker engine" in docker["status_message"] or "no docker" in docker["status_message"]


def test_a_bad_parameter_fails_the_run_naming_it(api, personas, projects_worker, example_repo):
    client = api(personas.alice)
    submitted = client.post(URL, {"uri": example_repo[0], "parameters": {"alpha": "high"}},
                            format="json").json()
    done = wait_done(client, submitted["id"])
    assert done["status"] == "FAILED" and "alpha" in done["status_message"]
    assert Run.objects.get(run_uuid=submitted["run_id"]).status == "FAILED"


def pids_of(client, run_id) -> list[int]:
    """Host pids of the example's child process, found by the marker it printed (pids the
    project prints are its sandbox's own)."""
    from tests.sandbox.test_escapes import _processes_named

    text = client.get(f"{URL}{run_id}/logs").json()["text"]
    marker = text.split("marker ", 1)[1].split()[0] if "marker " in text else ""
    return _processes_named(marker) if marker else []


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_a_timeout_or_a_cancel_kills_the_whole_process_group(api, personas, projects_worker,
                                                             example_repo, how):
    client = api(personas.alice)
    body = {"uri": example_repo[0], "entry_point": "wait", "parameters": {"seconds": 120}}
    if how == "timeout":
        body["timeout_seconds"] = 8
    submitted = client.post(URL, body, format="json").json()
    wait_for(lambda: len(pids_of(client, submitted["id"])) == 1, timeout=90)
    if how == "cancel":
        response = client.post(f"{URL}{submitted['id']}/cancel")
        assert response.status_code == 200 and response.json()["cancel_requested"]
    done = wait_done(client, submitted["id"])
    assert done["status"] == "KILLED", done
    assert Run.objects.get(run_uuid=submitted["run_id"]).status == "KILLED"
    wait_for(lambda: pids_of(client, submitted["id"]) == [], timeout=15)


def test_another_org_sees_none_of_it_and_bad_input_writes_nothing(api, personas, example_repo,
                                                                  settings):
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = True
    client = api(personas.alice)
    submitted = client.post(URL, {"uri": example_repo[0]}, format="json").json()
    other = api(personas.charlie)
    for method, path in (("get", ""), ("get", "logs"), ("post", "cancel")):
        response = getattr(other, method)(f"{URL}{submitted['id']}/{path}")
        assert response.status_code == 404, (path, response.content)
    assert other.get(URL).json() == []
    assert ProjectRun.objects.get().status == "QUEUED"

    counts = (ProjectRun.objects.count(), Run.objects.count(), AuditEvent.objects.count())
    for body, field in [({}, "uri"), ({"uri": "ftp://x/y.git"}, "source"),
                        ({"uri": example_repo[0], "env_manager": "docker"}, "env_manager"),
                        ({"uri": example_repo[0], "parameters": {"a": [1]}}, "parameters.a"),
                        ({"uri": example_repo[0], "timeout_seconds": 0}, "timeout_seconds"),
                        ({"uri": example_repo[0], "experiment_id": "98765"}, None)]:
        response = client.post(URL, body, format="json")
        assert response.status_code in (400, 404), (body, response.content)
        if field:
            assert field in response.json().get("fields", {}), (body, response.json())
    junk = io.BytesIO(b"not an archive at all")
    junk.name = "x.zip"
    response = client.post(URL, {"archive": junk}, format="multipart")
    assert response.status_code == 400 and "archive" in response.json()["fields"]
    assert (ProjectRun.objects.count(), Run.objects.count(), AuditEvent.objects.count()) == counts
    # a viewer cannot submit
    assert api(personas.bob).post(URL, {"uri": example_repo[0]}, format="json").status_code == 403
    # cancelling a queued run ends it at once
    response = client.post(f"{URL}{submitted['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "KILLED"
    assert client.post(f"{URL}{submitted['id']}/cancel").status_code == 409


@pytest.mark.parametrize(("entry_point", "outcome"), [("wait", "FAILED"),
                                                    ("once", "FINISHED")])
def test_a_worker_killed_mid_run_fails_the_run_or_reruns_one_safe_to_retry(
        api, personas, worker_env, live_server, example_repo, tmp_path, entry_point, outcome):
    """The worker is SIGKILLed mid-run: its lease is no longer renewed, and the sweeper fails
    the run, or queues it again when the entry point says it is safe to retry."""
    import signal
    import subprocess
    import sys

    from tests.projects.conftest import ROOT

    env = {**worker_env, "LEDGERFLOW_PUBLIC_URL": live_server.url,
           "LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT": "true", "LEDGERFLOW_PROJECT_LEASE_SECONDS": "3",
           "LEDGERFLOW_JOBS_SWEEP_INTERVAL": "1",
           "LEDGERFLOW_JOB_BACKOFF_SECONDS": "1"}

    def worker(*extra):
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
             "--concurrency", "1", "--hostname", f"p{len(extra)}@%h", *extra],
            cwd=ROOT, env=env, start_new_session=True)

    client = api(personas.alice)
    parameters = {"seconds": 300} if entry_point == "wait" else {"marker": tmp_path.name}
    first = worker("--queues", "projects")
    try:
        submitted = client.post(URL, {"uri": example_repo[0], "entry_point": entry_point,
                                      "parameters": parameters}, format="json").json()
        wait_for(lambda: len(pids_of(client, submitted["id"])) == 1, timeout=90)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the worker dies; its sandbox dies with it
        first.wait()
    wait_for(lambda: pids_of(client, submitted["id"]) == [], timeout=15)
    assert ProjectRun.objects.get().status == "RUNNING"
    second = worker("--queues", "default,projects", "--beat", "--schedule",
                    str(tmp_path / "beat"))
    try:
        done = wait_done(client, submitted["id"], timeout=120)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
    assert done["status"] == outcome, done
    assert Run.objects.get(run_uuid=submitted["run_id"]).status == outcome
    if outcome == "FAILED":
        assert "worker" in done["status_message"] and done["attempt"] == 1
    else:
        assert done["attempt"] == 2 and done["safe_to_retry"]
        assert "found the marker" in client.get(f"{URL}{submitted['id']}/logs").json()["text"]
        assert AuditEvent.objects.filter(action="project_run.requeued").count() == 1


def test_a_python_env_project_runs_in_a_virtualenv_built_with_uv(api, personas, settings,
                                                                 projects_worker):
    """The spec's dependencies, installed by a sandboxed build from the package index, and
    the command run in that environment, mounted read-only (a small package: the runner
    environment's tests cover MLflow itself)."""
    client = api(personas.alice)
    marker = uuid.uuid4().hex  # a spec no earlier test built
    files = {"MLproject": "name: env\npython_env: python_env.yaml\nentry_points:\n  main:\n"
                          "    command: 'python -c \"import sys, six; print(sys.prefix, "
                          "six.__version__)\"'\n",
             "python_env.yaml": f"# {marker}\npython: '3.11'\ndependencies: [six==1.16.0]\n"}
    submitted = client.post(URL, {"archive": archive_of(files), "env_manager": "virtualenv"},
                            format="multipart").json()
    done = wait_done(client, submitted["id"], timeout=600)
    assert done["status"] == "FINISHED", (done["status_message"], client.get(
        f"{URL}{submitted['id']}/logs?stream=stderr").json()["text"][-2000:])
    text = client.get(f"{URL}{submitted['id']}/logs").json()["text"]
    assert "/env 1.16.0" in text and sys.prefix not in text  # not the worker's interpreter
    built = [p for p in Path(settings.LEDGERFLOW_ENV_CACHE_DIR).iterdir()
             if (p / ".complete").exists() and not p.name.startswith("runner-")]
    assert any((p / "lib" / "python3.11" / "site-packages" / "six.py").exists() for p in built)


def test_the_cli_submits_a_directory_and_follows_it_to_the_end(personas, projects_worker,
                                                              live_server):
    import subprocess

    from tests.projects.conftest import ROOT

    env = {**os.environ, "MLFLOW_TRACKING_URI": live_server.url,
           "MLFLOW_TRACKING_TOKEN": personas.alice.raw_token}
    cli = str(ROOT / ".venv" / "bin" / "ledgerflow")
    done = subprocess.run([cli, "run", str(EXAMPLE), "-P", "alpha=0.3", "-P", "rows=30",
                           "--experiment-name", "credit nightly", "--wait"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "trained in run" in done.stdout
    assert "FINISHED" in done.stderr
    assert "'credit nightly' does not exist. Creating a new experiment" in done.stderr
    run_id = done.stdout.split("trained in run ", 1)[1].split()[0]
    assert Run.objects.get(run_uuid=run_id).experiment.name == "credit nightly"
    failed = subprocess.run([cli, "run", str(EXAMPLE), "-P", "alpha=high", "--wait"], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert failed.returncode == 1 and "FAILED" in failed.stderr and "alpha" in failed.stderr
    refused = subprocess.run([cli, "run", "ftp://x/y.git"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "Unsupported Git URL" in refused.stderr


def test_runs_and_models_uris_feed_one_run_into_the_next(api, personas, projects_worker,
                                                         example_repo, make_version):
    client = api(personas.alice)
    first = client.post(URL, {"uri": example_repo[0]}, format="json").json()
    assert wait_done(client, first["id"])["status"] == "FINISHED"
    summary = f"runs:/{first['run_id']}/summary/metrics.json"
    report = client.post(URL, {"uri": example_repo[0], "entry_point": "report",
                               "parameters": {"summary": summary}}, format="json").json()
    done = wait_done(client, report["id"])
    assert done["status"] == "FINISHED", done["status_message"]
    assert "earlier accuracy" in client.get(f"{URL}{report['id']}/logs").json()["text"]

    make_version(personas.org_a, "credit-risk")
    score = client.post(URL, {"uri": example_repo[0], "entry_point": "score",
                              "parameters": {"model": "models:/credit-risk/1"}},
                        format="json").json()
    done = wait_done(client, score["id"])
    assert done["status"] == "FINISHED", done["status_message"]
    assert "scored [" in client.get(f"{URL}{score['id']}/logs").json()["text"]

    # another organization's runs and models are not found from here
    make_version(personas.org_b, "theirs")
    for parameters, entry in (({"model": "models:/theirs/1"}, "score"),
                              ({"summary": "runs:/" + "0" * 32 + "/x.json"}, "report")):
        refused = client.post(URL, {"uri": example_repo[0], "entry_point": entry,
                                    "parameters": parameters}, format="json").json()
        done = wait_done(client, refused["id"])
        assert done["status"] == "FAILED" and "not found" in done["status_message"], done
