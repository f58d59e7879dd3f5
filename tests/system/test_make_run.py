"""`make run` from a fresh clone: it serves, its printed token works, its worker consumes, and
Ctrl-C stops every process it started."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The clone must use the embedded default, not the services `make test` started.
SCRUBBED = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL",
            "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "LEDGERFLOW_DATA_DIR", "VIRTUAL_ENV")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_banner(proc, log: Path, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Press Ctrl-C to stop." in text:
            return text
        if proc.poll() is not None:
            pytest.fail(f"make run exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"make run printed no banner in {timeout}s:\n{log.read_text()[-3000:]}")


def _get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_make_run_from_a_fresh_clone_serves_works_and_stops_cleanly(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    port, log = _free_port(), tmp_path / "make-run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        banner = _wait_for_banner(proc, log)
        url = re.search(r"URL:\s+(\S+)", banner).group(1)
        token = re.search(r"Token:\s+(\S+)", banner).group(1)
        assert url == f"http://127.0.0.1:{port}/"
        assert "Log in: owner@demo.example" in banner

        me = _get_json(f"{url}api/v1/me/", token)
        assert me["organization"]["slug"] == "demo"
        assert me["role"] == "data_scientist"

        pong = subprocess.run([".venv/bin/python", "manage.py", "worker_ping", "--timeout", "60"],
                              cwd=clone, env=env, capture_output=True, text=True, timeout=120)
        assert pong.returncode == 0, pong.stderr
        assert pong.stdout.strip().splitlines()[-1].startswith("pong:")

        # a project, as the README shows it: run by the worker in the sandbox, in the runner
        # environment (built on first use) and not the service's own interpreter
        run = subprocess.run(
            [".venv/bin/ledgerflow", "run", "tests/projects/example", "-P", "rows=30", "--wait"],
            cwd=clone, env={**env, "MLFLOW_TRACKING_URI": url.rstrip("/"),
                            "MLFLOW_TRACKING_TOKEN": token},
            capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
        assert re.search(r"trained in run \w+ with /env$", run.stdout, re.M), run.stdout
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(timeout=60)
    output = log.read_text()
    assert "Stopped." in output, output[-3000:]
    assert _port_is_closed(port)
    leftovers = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", f"processes left running: {leftovers.stdout}"


def test_make_run_is_idempotent_and_keeps_the_demo_token(tmp_path):
    """A second seed on the same data reuses the organization and prints the same token."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["LEDGERFLOW_DATA_DIR"] = str(tmp_path / "data")
    python = str(ROOT / ".venv/bin/python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    first = subprocess.run([python, "manage.py", "demo_seed"], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.splitlines()[-1]
    second = subprocess.run([python, "manage.py", "demo_seed"], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True).stdout.splitlines()[-1]
    assert first == second and first.startswith("lfw_")
