"""The production entrypoints, started natively: gunicorn web, one Celery worker per queue and
beat (docker/entrypoint.sh), in config.settings.production, against PostgreSQL, Redis and an
S3 server on loopback (moto in server mode, its own process). The mlflow client, the API and the
workers go through all of it; every stored object must be in the bucket, none on local disk."""

import contextlib
import io
import os
import re
import secrets
import signal
import subprocess
import tarfile
import urllib.request
from pathlib import Path

import pytest
import requests

from models_registry.models import RegisteredModel
from reports.services import compliance_profile_set
from tenancy.roles import Role
from tests.conftest import make_persona
from tests.deploy.conftest import BUCKET, answers, free_port, wait_until
from tests.models_registry.conftest import log_model
from tests.reports.conftest import SETUP, catalogue_set, profile_data, today

pytestmark = [pytest.mark.postgres_only]

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = str(ROOT / "docker" / "entrypoint.sh")
EXAMPLE = ROOT / "tests" / "projects" / "example"
ROW = {"income": 31.25, "debt": 27.5, "age": 44.0, "late_payments": 2.0}


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


class Stack:
    """Processes started through the entrypoint; each in its own session, stopped at the end."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs, self.procs = env, logs, {}

    def start(self, name: str, *args: str, **env) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen([ENTRYPOINT, *args], cwd=ROOT, env={**self.env, **env},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log = log
        self.procs[name] = proc
        return proc

    def run(self, *args: str) -> str:
        done = subprocess.run([ENTRYPOINT, *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, timeout: float = 60) -> int:
        """SIGTERM to the main process only, as `docker stop` and Kubernetes send it; what is
        left of the group after it exits (or after `timeout`) is killed."""
        proc = self.procs.pop(name)
        try:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if code is None:
            code = proc.wait()
        proc.log.close()
        return code

    def stop_all(self) -> None:
        for proc in self.procs.values():  # all at once: each shutdown takes a few seconds
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for name in list(self.procs):
            self.stop(name)


@pytest.fixture
def stack(worker_env, s3_server, tmp_path, settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_file = tmp_path / "audit-signing-key.pem"
    key_file.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "logs").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **worker_env,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # the tokens the test creates are hashed with this process's key
        "LEDGERFLOW_TOKEN_HMAC_KEY": settings.LEDGERFLOW_TOKEN_HMAC_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",  # no TLS-terminating proxy in front here
        "LEDGERFLOW_DATA_DIR": str(data_dir),
        "LEDGERFLOW_SIGNING_KEY_FILE": str(key_file),
        "LEDGERFLOW_PUBLIC_URL": url,
        "LEDGERFLOW_BIND": f"127.0.0.1:{port}",
        "LEDGERFLOW_CHECKPOINT_INTERVAL": "2",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": s3_server[0],
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "WEB_CONCURRENCY": "2",
        "CELERY_CONCURRENCY": "1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "LEDGERFLOW_METRICS_PORT"):
        env.pop(name, None)
    stack = Stack(env, tmp_path / "logs")
    stack.url, stack.data_dir, stack.s3 = url, data_dir, s3_server[1]
    stack.metrics = {}
    try:
        # collectstatic (WhiteNoise compresses everything: the slow part) while the
        # database is migrated and the workers start; the web needs its manifest.
        statics = stack.start("collectstatic", "collectstatic")
        stack.run("migrate")
        for queue in ("default", "packaging", "projects", "reports"):
            stack.metrics[queue] = free_port()
            stack.start(f"worker-{queue}", "worker", queue,
                        LEDGERFLOW_METRICS_PORT=str(stack.metrics[queue]))
        stack.start("beat", "beat")
        assert statics.wait(timeout=240) == 0, stack.log_of("collectstatic")
        stack.procs.pop("collectstatic").log.close()
        stack.start("web", "web")
        wait_until(lambda: answers(f"{url}/ready"), 60, "web /ready")
        for queue, metrics_port in stack.metrics.items():
            wait_until(lambda p=metrics_port: answers(f"http://127.0.0.1:{p}/"), 60,
                       f"the {queue} worker")
        yield stack
    finally:
        stack.stop_all()


def bucket_keys(stack) -> list[str]:
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def example_archive() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        tar.add(EXAMPLE, arcname="credit-example")
    return data.getvalue()


def wait_json(session, url: str, done, timeout: float = 360) -> dict:
    return wait_until(lambda: (lambda body: body if done(body) else None)(
        session.get(url, timeout=10).json()), timeout, url)


def session_of(persona) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {persona.raw_token}"
    return session


# The whole story on a production stack: ~4 minutes alone, more on a busy 2-core machine (CI
# saw packaging miss 180 s there); the limits are for a hang, not for speed.
@pytest.mark.timeout(900)
def test_production_entrypoints_keep_everything_in_object_storage(stack, personas,
                                                                  monkeypatch, tmp_path):
    """One stack for the whole story (starting it is most of the time): tracking, packaging,
    a project and a disclosure on their own workers, all objects in S3, metrics, JSON logs,
    and last a SIGTERM to a busy worker."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", personas.alice.raw_token)
    mlflow.set_tracking_uri(stack.url)
    client = mlflow.MlflowClient()

    # Tracking: an artifact and a logged model through the artifact proxy, then registration,
    # packaged on the packaging worker.
    mlflow.set_experiment("production")
    notes = tmp_path / "notes.txt"
    notes.write_text("kept in S3\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(notes))
    info = log_model("logistic")
    version = mlflow.register_model(info.model_uri, "credit-risk", await_registration_for=480)
    assert client.get_model_version("credit-risk", version.version).status == "READY"
    assert client.download_artifacts(run.info.run_id, "notes.txt", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "notes.txt").read_text() == "kept in S3\n"

    alice = session_of(personas.alice)
    # Projects: an uploaded archive, run on the projects worker, logging back into tracking.
    submitted = alice.post(f"{stack.url}/api/v1/projects/runs/",
                           files={"archive": ("example.tar.gz", example_archive())},
                           data={"entry_point": "main", "experiment_name": "production",
                                 "parameters": '{"alpha": 0.3}'}, timeout=30)
    assert submitted.status_code == 201, submitted.text
    project_run = wait_json(alice, f"{stack.url}/api/v1/projects/runs/{submitted.json()['id']}/",
                            lambda b: b["status"] in ("FINISHED", "FAILED", "KILLED"))
    assert project_run["status"] == "FINISHED", project_run

    # Disclosures: a decision scored by the web, a PDF rendered on the reports worker.
    compliance_profile_set(org=personas.org_a, actor=SETUP, data=profile_data("Bank Alpha"))
    # a disclosure names every feature in plain words: the model's catalogue, complete
    catalogue_set(RegisteredModel.objects.get(org=personas.org_a, name="credit-risk"))
    scored = alice.post(
        f"{stack.url}/api/v1/models/credit-risk/versions/{version.version}/predict",
        json={"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]},
              "subject": "C-1001", "purpose": "credit decision", "threshold": 0.5,
              "outcome_labels": ["approved", "declined"], "legal_basis": "Art. 6(1)(b) GDPR",
              "art22_ground": "Art. 22(2)(a) GDPR"}, timeout=60)
    assert scored.status_code == 200, scored.text
    officer = session_of(make_persona(personas.org_a, "officer@a.example",
                                      Role.COMPLIANCE_OFFICER))
    created = officer.post(f"{stack.url}/api/v1/disclosures/", json={
        "subject": "C-1001", "subject_name": "Erika Mustermann",
        "received_on": today().isoformat(), "identity_verification": "ID card checked",
        "language": "en"}, timeout=30)
    assert created.status_code == 201, created.text
    request_url = f"{stack.url}/api/v1/disclosures/{created.json()['id']}/"
    disclosure = wait_json(officer, request_url, lambda b: any(
        v["status"] in ("READY", "FAILED") for v in b["versions"]))
    assert disclosure["versions"][0]["status"] == "READY", disclosure
    pdf = officer.get(f"{request_url}pdf", timeout=30)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    # Every stored object is in the bucket, under its storage's prefix; nothing on disk.
    org = personas.org_a.pk
    keys = bucket_keys(stack)
    for prefix in (f"artifacts/{org}/", "registry/", "projects/", "reports/"):
        assert any(key.startswith(prefix) for key in keys), (prefix, keys)
    assert any(key.endswith("/notes.txt") for key in keys)
    assert any(key.endswith("/MLmodel") and key.startswith("registry/") for key in keys)
    assert any(key.endswith(".pdf") for key in keys)
    for storage in ("artifacts", "registry", "projects", "reports"):
        assert files_under(stack.data_dir / storage) == [], storage

    # Metrics: the web's latency per route and queue depths; each worker ran only its queue's
    # tasks (beat's sweeps and checkpoints go to the default queue).
    web_metrics = scrape(f"{stack.url}/metrics")
    assert 'route="mlflow/runs/create"' in web_metrics
    assert 'route="api/v1/disclosures/"' in web_metrics
    assert 'ledgerflow_celery_queue_depth{queue="reports"}' in web_metrics
    expected = {"packaging": "models_registry.package", "projects": "projects.run",
                "reports": "reports.generate", "default": "audit.checkpoint_all"}
    for queue, task in expected.items():
        text = wait_until(lambda q=queue, t=task: (lambda m: m if f'task="{t}"' in m else None)(
            scrape(f"http://127.0.0.1:{stack.metrics[q]}/")), 30, f"{task} on {queue}")
        finished = [line for line in text.splitlines()
                    if line.startswith("ledgerflow_celery_tasks_total{")]
        assert finished and all(f'queue="{queue}"' in line for line in finished), text
        assert f'task="{task}"' in text and 'state="SUCCESS"' in text

    # Pages render with the collected, hashed static files, which the web serves itself.
    login = requests.get(f"{stack.url}/login/", timeout=10)
    assert login.status_code == 200, login.text
    css = re.search(r'href="(/static/ledgerflow/app\.[0-9a-f]{12}\.css)"', login.text)
    assert css, login.text
    assert requests.get(f"{stack.url}{css[1]}", timeout=10).status_code == 200

    # Logs are JSON lines.
    web_log = [line for line in stack.log_of("web").splitlines() if line.startswith("{")]
    assert any('"path": "/api/v1/disclosures/"' in line for line in web_log), web_log[-5:]

    # SIGTERM to a busy worker loses no task: two packaging tasks for a worker of concurrency
    # 1, SIGTERM while the first runs. The worker finishes it before it exits (warm shutdown);
    # the second stays queued, and a new worker for the queue packages it.
    mlflow.set_experiment("busy")
    infos = [log_model("logistic"), log_model("tree")]
    busy = [mlflow.register_model(info.model_uri, "busy", await_registration_for=0)
            for info in infos]
    from models_registry.models import ModelVersion

    wait_until(lambda: ModelVersion.objects.filter(
        registered_model__name="busy", version=busy[0].version,
        packaging_attempt__gt=0).exists(), 60, "packaging to start")
    assert stack.stop("worker-packaging", timeout=120) == 0
    assert client.get_model_version("busy", busy[0].version).status == "READY"
    # (still queued, unless it was quicker than the signal and the warm shutdown finished it)
    assert client.get_model_version("busy", busy[1].version).status in (
        "PENDING_REGISTRATION", "READY")
    stack.start("worker-packaging-2", "worker", "packaging")
    wait_until(lambda: client.get_model_version("busy", busy[1].version).status == "READY",
               180, "the second version, on a new worker")
