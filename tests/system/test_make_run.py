"""`make run` from a fresh clone: it serves, each persona's printed token works, its worker
consumes and comes back when killed, the demo model scores at its alias, the README's tour works
as written (tests/system/readme_tour.py), and Ctrl-C stops every process it started."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.system import readme_tour

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The clone must use the embedded default, not the services `make test` started.
SCRUBBED = ("DATABASE_URL", "DATABASE_OWNER_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL",
            "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "LEDGERFLOW_DATA_DIR", "VIRTUAL_ENV",
            "LOG_LEVEL", "LOG_FORMAT")  # test settings quieten logs; `make run` must not be


def _as_in_a_terminal() -> None:
    """Ctrl-C and a closed terminal reach `make run` as in a shell's foreground. A test run
    started in the background (`nohup`, `cmd &`) inherits SIGINT and SIGHUP ignored, and a
    shell started with a signal ignored cannot trap it: run.sh would miss the SIGINT below."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


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


def _exports(banner: str) -> dict:
    return dict(re.findall(r"^\s*export (\w+)=(\S+)$", banner, re.M))


def _post_json(url: str, token: str, body: bytes) -> dict:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"no {what} within {timeout}s")


def _service_processes(clone: Path) -> list[str]:
    """Every process running the clone's venv (the worker has a process group of its own)."""
    found = subprocess.run(["pgrep", "-af", f"{clone}/.venv/"], capture_output=True, text=True)
    return found.stdout.splitlines()


# A fresh venv and runner environment (about 4 minutes), then the README's tour (2 to 5).
@pytest.mark.timeout(1200)
def test_make_run_from_a_fresh_clone_serves_works_and_stops_cleanly(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    port, log = _free_port(), tmp_path / "make-run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_as_in_a_terminal)
    try:
        banner = _wait_for_banner(proc, log)
        url = re.search(r"URL:\s+(\S+)", banner).group(1)
        exports = _exports(banner)
        assert url == f"http://127.0.0.1:{port}/"
        assert exports["LEDGERFLOW_URL"] == url.rstrip("/")
        assert "Organization: demo (Demo Bank)" in banner
        # each token says whose it is, and is that persona's
        for key, email, role in (("OWNER", "owner@demo.example", "owner"),
                                 ("DS", "ds@demo.example", "data_scientist"),
                                 ("CO", "co@demo.example", "compliance_officer"),
                                 ("AUDITOR", "auditor@demo.example", "auditor")):
            assert re.search(rf"{role.replace('_', ' ')}\s+{email}\s+TOKEN_{key}\s+"
                             rf"PASSWORD_{key}", banner), banner
            me = _get_json(f"{url}api/v1/me/", exports[f"TOKEN_{key}"])
            assert (me["organization"]["slug"], me["role"]) == ("demo", role)
        credentials = clone / "var" / "demo-credentials.txt"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        shown = subprocess.run([".venv/bin/python", "manage.py", "demo_credentials"], cwd=clone,
                               env=env, capture_output=True, text=True, timeout=120)
        assert _exports(shown.stdout) == exports
        # the compliance officer finds the profile the tour's disclosures need
        profile = _get_json(f"{url}api/v1/compliance/profile/", exports["TOKEN_CO"])
        assert profile["controller_name"] and profile["human_review_de"]

        def ping() -> subprocess.CompletedProcess:
            return subprocess.run([".venv/bin/python", "manage.py", "worker_ping", "--timeout",
                                   "60"], cwd=clone, env=env, capture_output=True, text=True,
                                  timeout=120)

        pong = ping()
        assert pong.returncode == 0, pong.stderr
        assert pong.stdout.strip().splitlines()[-1].startswith("pong:")

        # a worker that dies is started again, and `make run` stays up
        worker = _wait_for(lambda: [line.split()[0] for line in _service_processes(clone)
                                    if "celery -A config worker" in line
                                    and os.getpgid(int(line.split()[0])) == int(line.split()[0])],
                           60, "worker process")[0]
        os.kill(int(worker), signal.SIGKILL)
        _wait_for(lambda: "restarting it in" in log.read_text(), 30, "worker restart")
        assert proc.poll() is None
        pong = ping()
        assert pong.returncode == 0, (pong.stderr, log.read_text()[-3000:])

        # a project, as the README shows it: run by the worker in the sandbox, in the runner
        # environment (built on first use) and not the service's own interpreter
        run = subprocess.run(
            [".venv/bin/ledgerflow", "run", "tests/projects/example", "-P", "rows=30", "--wait"],
            cwd=clone, env={**env, "MLFLOW_TRACKING_URI": url.rstrip("/"),
                            "MLFLOW_TRACKING_TOKEN": exports["TOKEN_DS"]},
            capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
        assert re.search(r"trained in run \w+ with /env$", run.stdout, re.M), run.stdout

        # the demo's model, packaged in the background, scores at the alias the README uses
        alias = f"{url}api/2.0/mlflow/registered-models/alias?name=credit-risk&alias=production"
        _wait_for(lambda: _get_json(alias, exports["TOKEN_DS"])["model_version"]["status"]
                  == "READY", 600, "READY credit-risk@production")
        scored = _post_json(f"{url}api/v1/models/credit-risk/aliases/production/predict",
                            exports["TOKEN_DS"], (clone / "examples/predict.json").read_bytes())
        assert scored["decisions"][0]["outcome"] in ("approve", "refer to credit officer")

        # the README's tour, every block as written, in this same instance (readme_tour.py)
        tour = readme_tour.run_tour(clone, banner, env, tmp_path / "tour")
        assert all(result.ok for result in tour), readme_tour.report(tour)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(timeout=90)
    output = log.read_text()
    assert "Stopped." in output, output[-3000:]
    assert "ledgerflow.access" not in output  # request logs went to var/log/web.log
    assert "ledgerflow.access" in (clone / "var/log/web.log").read_text()
    assert "Sending due task" in (clone / "var/log/worker.log").read_text()
    assert _port_is_closed(port)
    leftovers = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", f"processes left running: {leftovers.stdout}"
    assert _service_processes(clone) == []


def test_make_run_is_idempotent_and_keeps_the_demo_credentials(tmp_path):
    """A second seed on the same data reuses the organization and prints the same logins and
    tokens, from the 0600 file its last line names."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["LEDGERFLOW_DATA_DIR"] = str(tmp_path / "data")
    python = str(ROOT / ".venv/bin/python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    first = subprocess.run([python, "manage.py", "demo_seed"], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout
    kept = Path(first.splitlines()[-1])
    assert kept == tmp_path / "data" / "demo-credentials.txt"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    second = subprocess.run([python, "manage.py", "demo_seed"], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True).stdout
    assert second == first
    exports = _exports(first)
    assert exports == _exports(kept.read_text())
    assert all(exports[f"TOKEN_{key}"].startswith("lfw_") for key in ("OWNER", "DS", "CO"))
