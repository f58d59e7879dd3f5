"""Project runs end to end: the live server, a real worker on the `projects` queue that runs
commands which call back into the live server with the mlflow client."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.models_registry.conftest import make_version, saved_models  # noqa: F401
from tests.tracking.conftest import _connections_closed_after_test, mlflow_as  # noqa: F401

EXAMPLE = Path(__file__).parent / "example"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def start_projects_worker(worker_env, live_server, settings):
    """`start_projects_worker(**env)`: a worker for the projects queue that reaches the live
    server, local Git repositories allowed (here and in the worker), with `env` on top."""
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = True
    started = []

    def start(**extra):
        env = {**worker_env, "LEDGERFLOW_PUBLIC_URL": live_server.url,
               "LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT": "true", **extra}
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
             "--concurrency", "1", "--queues", "projects", "--hostname",
             f"projects{len(started)}@%h"], cwd=ROOT, env=env, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def projects_worker(start_projects_worker):
    """A worker for the projects queue (with the sandbox this host has: bwrap)."""
    return start_projects_worker()


@pytest.fixture
def example_repo(tmp_path, settings):
    """The example project as a local Git repository (local repositories allowed); returns
    (url, head commit)."""
    settings.LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = True
    repo = tmp_path / "example-repo"
    shutil.copytree(EXAMPLE, repo)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    for args in (["init", "--quiet", "--initial-branch", "main"], ["add", "."],
                 ["commit", "--quiet", "-m", "example"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    return f"file://{repo}", head


def wait_done(api_client, run_id: str, timeout: float = 180,
              url: str = "/api/v1/projects/runs/") -> dict:
    """The run (or, with url, the workflow) once it has ended, or as it is at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        body = api_client.get(f"{url}{run_id}/").json()
        if body["status"] in ("FINISHED", "FAILED", "KILLED") or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def wait_for(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@contextlib.contextmanager
def broker_down(app):
    """The Celery app of this process (the live server's) publishes to a port nothing listens
    on: a real refused connection, as when Redis is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = app.conf.broker_url

    def reset():  # kombu keeps a pool per broker URL: each URL finds its own again
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    reset()
    try:
        yield
    finally:
        app.conf.broker_url = saved
        reset()
