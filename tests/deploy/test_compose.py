"""The deployment files agree with each other and with the code: docker/compose.yaml,
docker/Dockerfile, docker/entrypoint.sh (run natively), docker/gunicorn.conf.py and
docs/deploy.md. No database, no Docker engine."""

import http.server
import os
import re
import runpy
import secrets
import stat
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
GUIDE = ROOT / "docs" / "deploy.md"
QUEUES = {"default", "packaging", "projects", "reports"}
ROLES = {"migrate", "collectstatic", "check", "create-bucket", "web", "worker", "beat", "probe"}
SERVICES = {"postgres", "redis", "objectstore", "objectstore-init", "migrate", "web",
            "worker-default", "worker-projects", "worker-packaging", "worker-reports", "beat"}
APP_SOURCES = ["config", "tenancy", "audit", "tracking", "projects", "models_registry", "reports"]
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def ledgerflow_services(compose) -> dict:
    return {name: svc for name, svc in compose["services"].items()
            if svc.get("image", "").startswith("ledgerflow:")}


def python_text(*dirs: str) -> str:
    return "\n".join(path.read_text() for d in dirs for path in sorted((ROOT / d).rglob("*.py"))
                     if "migrations" not in path.parts)


def read_by_config(name: str, source: str) -> bool:
    """NAME is read in config/: as a string literal, or NAME_FILE through env_secret/env_db."""
    if f'"{name}"' in source:
        return True
    base = name.removesuffix("_FILE")
    return name != base and re.search(rf'env_(?:secret|db)\(\s*"{base}"', source) is not None


def guide_section(title: str) -> str:
    text = GUIDE.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/deploy.md has no section '## {title}'"
    return match.group(1)


def first_column_names(section: str) -> set[str]:
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= {n for n in re.findall(r"`([^`]+)`", line.split("|")[1]) if ENV_NAME.match(n)}
    return names


def run_entrypoint(*args, env=None, timeout=60):
    return subprocess.run([str(ENTRYPOINT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


# --- compose ------------------------------------------------------------------------------

def test_compose_has_every_service(compose):
    assert set(compose["services"]) >= SERVICES, SERVICES - set(compose["services"])


def test_every_image_is_pinned(compose):
    for name, svc in compose["services"].items():
        image = svc.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and "/" not in tag and tag != "latest", (name, image)


def test_ledgerflow_services_use_the_entrypoint_with_a_valid_role(compose):
    services = ledgerflow_services(compose)
    assert set(services) == SERVICES - {"postgres", "redis", "objectstore"}
    queues = set()
    for name, svc in services.items():
        assert "entrypoint" not in svc, name
        assert svc["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}, name
        role, *args = svc["command"]
        assert role in ROLES, (name, role)
        if role == "worker":
            assert args and args[0] in QUEUES and name == f"worker-{args[0]}", (name, args)
            queues.add(args[0])
            assert "stop_grace_period" in svc, name
    assert queues == QUEUES
    grace = {name: svc["stop_grace_period"] for name, svc in services.items()
             if name.startswith("worker-")}
    assert grace["worker-projects"] == "10m" and set(grace.values()) == {"2m", "10m"}


def test_startup_order_and_healthchecks(compose):
    services = compose["services"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["objectstore-init"]["depends_on"]["objectstore"]["condition"] == \
        "service_healthy"
    assert services["web"]["healthcheck"]["test"][-2:] == ["probe", "/ready"]
    for name in ("postgres", "redis", "objectstore"):
        assert services[name]["healthcheck"]["test"], name
    for name, svc in ledgerflow_services(compose).items():
        if name != "web":  # the image's HEALTHCHECK probes HTTP, which only the web serves
            assert svc["healthcheck"] == {"disable": True}, name


def test_every_variable_given_to_ledgerflow_is_read(compose):
    """A misspelt variable in compose would be silently ignored."""
    config = python_text("config")
    scripts = (DOCKER / "entrypoint.sh").read_text() + (DOCKER / "gunicorn.conf.py").read_text()
    env = compose["x-ledgerflow-env"]
    for svc in ledgerflow_services(compose).values():
        env = {**env, **svc["environment"]}
    for name in env:
        assert read_by_config(name, config) or name in scripts, name
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    for name in ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_S3_REGION_NAME",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY_FILE", "SECRET_KEY_FILE",
                 "LEDGERFLOW_SIGNING_KEY_FILE", "ALLOWED_HOSTS", "LEDGERFLOW_PUBLIC_URL",
                 "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        assert name in compose["x-ledgerflow-env"], name
    assert "PROMETHEUS_MULTIPROC_DIR" in compose["services"]["web"]["environment"]


def test_secret_files_are_declared_and_kept_out_of_the_image(compose):
    declared = set(compose["secrets"])
    for name, svc in compose["services"].items():
        assert set(svc.get("secrets", [])) <= declared, name
    for value in compose["x-ledgerflow-env"].values():
        if str(value).startswith("/run/secrets/"):
            assert value.removeprefix("/run/secrets/") in declared, value
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "docker/secrets" in ignored and ".venv" in ignored


# --- Dockerfile ---------------------------------------------------------------------------

def dockerfile_stages() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text()
    return re.split(r"^FROM ", text, flags=re.M)[1:]


def test_dockerfile_final_stage_is_non_root_with_a_healthcheck_and_no_build_tools():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage"
    for stage in stages:
        base = stage.split()[0]
        assert base == "python:3.11-slim-bookworm", base
    assert re.search(r"pip install uv==\d+\.\d+\.\d+", stages[0])
    assert "uv sync --frozen --no-dev" in stages[0]
    final = stages[-1]
    users = re.findall(r"^USER\s+(\S+)", final, re.M)
    assert users and users[-1] not in ("root", "0"), users
    assert re.search(r"^HEALTHCHECK .*probe", final, re.M | re.S)
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in final
    assert 'CMD ["web"]' in final
    for tool in ("gcc", "g++", "build-essential", "make ", "-dev "):
        assert tool not in final, tool


# --- the guide ----------------------------------------------------------------------------

def test_services_the_guide_names_exist(compose):
    text = GUIDE.read_text()
    named = {t for t in re.findall(r"`([a-z][a-z0-9-]*)`", text)
             if t.startswith(("worker-", "objectstore"))}
    known = set(compose["services"]) | set(compose["volumes"])
    assert named and named <= known, named - known
    table = {row.split("`")[1] for row in guide_section("One team on one machine").splitlines()
             if row.startswith("| `")}
    assert table == set(compose["services"]), table ^ set(compose["services"])


def test_settings_the_guide_lists_are_read_by_config():
    config = python_text("config")
    listed = first_column_names(guide_section("Settings"))
    assert {"SECRET_KEY", "SECRET_KEY_FILE", "LEDGERFLOW_TOKEN_HMAC_KEY",
            "CELERY_VISIBILITY_TIMEOUT", "LEDGERFLOW_PUBLIC_URL", "LEDGERFLOW_MODEL_ENV_MANAGER",
            "AWS_STORAGE_BUCKET_NAME", "AWS_SECRET_ACCESS_KEY_FILE",
            "LEDGERFLOW_S3_PRESIGNED_DOWNLOADS", "LEDGERFLOW_SIGNING_KEY_FILE"} <= listed
    missing = sorted(name for name in listed if not read_by_config(name, config))
    assert not missing, f"listed in docs/deploy.md but not read in config/: {missing}"


def test_process_variables_the_guide_lists_are_read_by_the_scripts():
    scripts = (DOCKER / "entrypoint.sh").read_text() + (DOCKER / "gunicorn.conf.py").read_text()
    listed = first_column_names(guide_section("Process environment"))
    assert {"WEB_CONCURRENCY", "CELERY_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"} <= listed
    assert sorted(name for name in listed if name not in scripts) == []


def test_every_variable_the_guide_mentions_exists_somewhere():
    """Read by the code or the scripts, or interpolated by docker/compose.yaml."""
    sources = python_text(*APP_SOURCES) + (DOCKER / "entrypoint.sh").read_text() \
        + (DOCKER / "gunicorn.conf.py").read_text() \
        + " ".join(f'"{n}"' for n in re.findall(r"\$\{(\w+)", (DOCKER / "compose.yaml").read_text()))
    mentioned = {t for t in re.findall(r"`([^`\s]+)`", GUIDE.read_text()) if ENV_NAME.match(t)}
    unknown = sorted(name for name in mentioned
                     if not (read_by_config(name, sources) or name in sources))
    assert not unknown, unknown


# --- the entrypoint, run natively ---------------------------------------------------------

def test_entrypoint_is_executable_bash_that_parses():
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR
    assert ENTRYPOINT.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ENTRYPOINT.read_text()
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)


def test_worker_refuses_an_unknown_queue():
    done = run_entrypoint("worker", "nosuchqueue")
    assert done.returncode == 2
    assert "unknown queue 'nosuchqueue'" in done.stderr
    assert "default, packaging, projects, reports" in done.stderr


@pytest.fixture
def fake_venv(tmp_path):
    """LEDGERFLOW_VENV whose python, gunicorn and celery print what they were started with."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "gunicorn", "celery"):
        script = bin_dir / tool
        script.write_text('#!/bin/sh\necho "$(basename "$0") $* | $DJANGO_SETTINGS_MODULE '
                          '| ${PROMETHEUS_MULTIPROC_DIR:-none} | $(pwd)"\n')
        script.chmod(0o755)
    return {"LEDGERFLOW_VENV": str(tmp_path / "venv"), "DJANGO_SETTINGS_MODULE": "",
            "PROMETHEUS_MULTIPROC_DIR": "", "LEDGERFLOW_METRICS_PORT": "",
            "CELERY_CONCURRENCY": "", "CELERY_TIME_LIMIT": "", "CELERY_SOFT_TIME_LIMIT": "",
            "LEDGERFLOW_DATA_DIR": str(tmp_path / "data")}


def unset_empty(env: dict) -> dict:
    """The fake_venv env with its empty values removed from the inherited environment."""
    full = {**os.environ, **env}
    return {k: v for k, v in full.items() if v != ""}


def launched(*args, env) -> list[str]:
    done = subprocess.run([str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=30,
                          env=unset_empty(env), cwd="/")
    assert done.returncode == 0, done.stderr
    return [part.strip() for part in done.stdout.split("|")]


@pytest.mark.parametrize(("queue", "expected"), [
    ("default", "--concurrency 4 --time-limit 660 --soft-time-limit 600"),
    ("packaging", "--concurrency 2 --time-limit 1200 --soft-time-limit 900"),
    ("reports", "--concurrency 2 --time-limit 1200 --soft-time-limit 900"),
    ("projects", "--concurrency 2 --time-limit 90000 --soft-time-limit 86400"),
])
def test_worker_runs_celery_for_one_queue_with_its_limits(fake_venv, queue, expected):
    command, settings, metrics, cwd = launched("worker", queue, "--without-gossip", env=fake_venv)
    assert command == (f"celery -A config worker --queues {queue} --hostname {queue}@%h "
                       f"--loglevel INFO {expected} --without-gossip")
    assert settings == "config.settings.production"
    assert metrics == "none"
    assert cwd == str(ROOT)


def test_worker_limits_and_concurrency_come_from_the_environment(fake_venv, tmp_path):
    env = {**fake_venv, "CELERY_CONCURRENCY": "7", "CELERY_TIME_LIMIT": "50",
           "CELERY_SOFT_TIME_LIMIT": "40", "LEDGERFLOW_METRICS_PORT": "9100"}
    command, _, metrics, _ = launched("worker", "reports", env=env)
    assert "--concurrency 7 --time-limit 50 --soft-time-limit 40" in command
    assert metrics != "none" and Path(metrics).is_dir()  # a metrics port needs a multiproc dir


def test_web_beat_and_manage_roles(fake_venv, tmp_path):
    stale = tmp_path / "metrics"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"old")
    command, _, metrics, _ = launched("web", env={**fake_venv,
                                                  "PROMETHEUS_MULTIPROC_DIR": str(stale)})
    assert command == f"gunicorn config.wsgi -c {DOCKER / 'gunicorn.conf.py'}"
    assert metrics == str(stale) and list(stale.iterdir()) == []
    assert launched("web", env=fake_venv)[2] != "none"
    assert launched("beat", env=fake_venv)[0] == (
        f"celery -A config beat --loglevel INFO --schedule {tmp_path / 'data'}/celerybeat-schedule")
    assert launched("migrate", env=fake_venv)[0] == "python manage.py migrate --noinput"
    assert launched("check", env=fake_venv)[0] == \
        "python manage.py check --deploy --fail-level WARNING"
    assert launched("collectstatic", "-v0", env=fake_venv)[0] == (
        "python manage.py collectstatic --noinput --ignore widgetbundle.js --ignore datasets"
        " --ignore redoc -v0")
    done = subprocess.run([str(ENTRYPOINT), "sh", "-c", "echo $0 $PATH", "other"],
                          capture_output=True, text=True, env=unset_empty(fake_venv))
    assert done.stdout.startswith(f"other {fake_venv['LEDGERFLOW_VENV']}/bin:")


def test_gunicorn_conf_reads_the_environment(monkeypatch, tmp_path):
    metrics = tmp_path / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics))
    monkeypatch.setenv("LEDGERFLOW_BIND", "127.0.0.1:9999")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("WEB_GRACEFUL_TIMEOUT", "45")
    monkeypatch.delenv("WEB_THREADS", raising=False)
    monkeypatch.delenv("WEB_ACCESS_LOG", raising=False)
    conf = runpy.run_path(str(DOCKER / "gunicorn.conf.py"))
    assert conf["bind"] == ["127.0.0.1:9999"]
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (3, 4, "gthread")
    assert (conf["graceful_timeout"], conf["timeout"], conf["accesslog"]) == (45, 120, None)
    assert metrics.is_dir()
    (metrics / "histogram_1.db").write_bytes(b"old")
    conf["on_starting"](None)
    assert list(metrics.iterdir()) == []
    assert callable(conf["child_exit"])

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    conf = runpy.run_path(str(DOCKER / "gunicorn.conf.py"))
    assert "child_exit" not in conf and conf["bind"] == ["127.0.0.1:9999"]


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200
    hosts: list = []

    def do_GET(self):
        _Answer.hosts.append((self.path, self.headers["Host"]))
        self.send_response(_Answer.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_probe_asks_the_local_web_with_an_allowed_host():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"LEDGERFLOW_BIND": f"0.0.0.0:{server.server_port}",
           "ALLOWED_HOSTS": "*,.ledgerflow.example,web"}
    try:
        _Answer.status, _Answer.hosts = 200, []
        assert run_entrypoint("probe", "/ready", env=env).returncode == 0
        assert _Answer.hosts == [("/ready", "ledgerflow.example")]
        _Answer.status = 503
        done = run_entrypoint("probe", env=env)
        assert done.returncode == 1 and "503" in done.stderr
        assert _Answer.hosts[-1][0] == "/health"
    finally:
        server.shutdown()
        server.server_close()


def test_create_bucket_is_idempotent(tmp_path):
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        secret = tmp_path / "s3_secret_key"
        secret.write_text("test-secret\n")
        env = {"AWS_STORAGE_BUCKET_NAME": "ledgerflow", "AWS_S3_ENDPOINT_URL":
               f"http://{host}:{port}", "AWS_S3_REGION_NAME": "us-east-1",
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY_FILE": str(secret)}
        first = run_entrypoint("create-bucket", env=env)
        assert first.returncode == 0 and "created" in first.stdout, first.stderr
        again = run_entrypoint("create-bucket", env=env)
        assert again.returncode == 0 and "exists" in again.stdout, again.stderr
    finally:
        server.stop()


def test_check_deploy_passes_with_a_production_environment(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = tmp_path / "audit-signing-key.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DJANGO_", "DATABASE_", "CELERY_", "SECRET_KEY",
                                   "LEDGERFLOW_", "AWS_", "SECURE_", "PROMETHEUS_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "ledgerflow.example",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "LEDGERFLOW_SIGNING_KEY_FILE": str(key),
        "LEDGERFLOW_DATA_DIR": str(tmp_path / "data"),
    })
    done = subprocess.run([str(ENTRYPOINT), "check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
