"""`ledgerflow run` without --wait says where the run is and how to follow it, and
`ledgerflow status` follows it; run as a user runs them (the installed script, a live server).
No worker here: the run stays queued, or the test moves it as a worker would."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse

from audit.actors import Actor
from projects import services
from projects.execution import LOG_NAMES, log_name
from projects.models import ProjectRun
from tracking.artifacts import artifact_storage

EXAMPLE = Path(__file__).parent / "example"
LEDGERFLOW = str(Path(sys.executable).with_name("ledgerflow"))  # the pyproject entry point
WORKER = Actor.command("test-cli-worker")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def cli(transactional_db, live_server, personas, _connections_closed_after_test):
    """`cli(*args, token=alice's, url=the live server)` runs the installed `ledgerflow`."""

    def run(*args, token=personas.alice.raw_token, url=live_server.url):
        env = {k: v for k, v in os.environ.items()
               if k not in ("DJANGO_SETTINGS_MODULE", "MLFLOW_TRACKING_USERNAME")}
        env.update(MLFLOW_TRACKING_URI=url, MLFLOW_TRACKING_TOKEN=token)
        return subprocess.run([LEDGERFLOW, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    return run


@pytest.fixture
def submitted(cli):
    result = cli("run", str(EXAMPLE), "-P", "alpha=0.3", "--experiment-name", "cli")
    assert result.returncode == 0, result.stderr
    return result


def test_run_without_wait_prints_the_runs_page_and_the_command_that_follows_it(
        submitted, live_server, client):
    run_id = submitted.stdout.splitlines()[-1]
    assert UUID.match(run_id), submitted.stdout  # stdout's last line: the id, for scripts
    project_run = ProjectRun.objects.get(uuid=run_id)
    assert project_run.status == "QUEUED"
    page = f"{live_server.url}/projects/runs/{run_id}/"
    assert f"=== View it at {page} ===" in submitted.stderr
    assert f"=== Follow it with: {LEDGERFLOW} status {run_id} --wait ===" in submitted.stderr
    assert f"tracking run {project_run.run.run_uuid}" in submitted.stderr
    # the printed page is the run's real page: a visitor is sent to log in and back to it
    path = page.removeprefix(live_server.url)
    assert reverse("project-run", args=[run_id]) == path
    response = client.get(path)
    assert response.status_code == 302 and path in response["Location"], response


def test_status_shows_a_queued_run_and_how_to_follow_it(submitted, cli, live_server):
    run_id = submitted.stdout.splitlines()[-1]
    result = cli("status", run_id)
    assert result.returncode == 0, result.stderr
    project_run = ProjectRun.objects.get(uuid=run_id)
    assert result.stdout.splitlines() == [
        f"Project run {run_id}: QUEUED",
        f"Tracking run: {project_run.run.run_uuid} "
        f"(experiment {project_run.run.experiment.public_id})",
        f"Web page: {live_server.url}/projects/runs/{run_id}/",
        f"Follow it with: {LEDGERFLOW} status {run_id} --wait",
    ]


def test_status_of_a_cancelled_run_fails_and_wait_returns_at_once(submitted, cli, api,
                                                                  personas):
    run_id = submitted.stdout.splitlines()[-1]
    assert api(personas.alice).post(f"/api/v1/projects/runs/{run_id}/cancel").status_code == 200
    shown = cli("status", run_id)
    assert shown.returncode == 1
    assert shown.stdout.startswith(f"Project run {run_id}: KILLED: Cancelled before it started.")
    assert "Follow it with" not in shown.stdout
    waited = cli("status", run_id, "--wait")
    assert waited.returncode == 1
    assert f"=== Run {run_id} KILLED: Cancelled before it started. ===" in waited.stderr


def _work_as_a_worker_would(project_run: ProjectRun, stdout: bytes, stderr: bytes) -> None:
    with transaction.atomic():
        assert services.project_run_claim_within(pk=project_run.pk, attempt=1, actor=WORKER)
    storage = artifact_storage()
    for name, text in zip(LOG_NAMES, (stdout, stderr), strict=True):
        storage.save(log_name(project_run, name), ContentFile(text))
    services.project_run_finish(pk=project_run.pk, attempt=1, status="FINISHED", actor=WORKER,
                                exit_code=0)


def test_status_wait_prints_the_whole_output_and_exits_0_for_a_finished_run(submitted, cli):
    run_id = submitted.stdout.splitlines()[-1]
    _work_as_a_worker_would(ProjectRun.objects.get(uuid=run_id), b"rmse: 0.71\nlogged\n",
                            b"a warning\n")
    result = cli("status", run_id, "--wait")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "rmse: 0.71\nlogged\n"
    assert "a warning\n" in result.stderr
    assert f"=== Run {run_id} FINISHED ===" in result.stderr
    assert cli("status", run_id).stdout.startswith(f"Project run {run_id}: FINISHED")


def test_another_organization_or_a_bad_id_gets_a_clear_message(submitted, cli, personas):
    run_id = submitted.stdout.splitlines()[-1]
    for args in (("status", run_id), ("status", run_id, "--wait")):
        result = cli(*args, token=personas.charlie.raw_token)
        assert result.returncode == 1, result
        assert "Not found" in result.stderr and "no such project run" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    bad = cli("status", "12345")
    assert bad.returncode == 2 and "'12345' is not a project run id" in bad.stderr


def test_an_unreachable_server_is_named_without_a_traceback(cli):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = cli("status", "6b1e2f3a-0000-4000-8000-000000000000", url=url)
    assert result.returncode == 1
    assert f"Cannot reach the Ledgerflow server at {url}" in result.stderr
    assert "Traceback" not in result.stderr
