"""Tests: the database and broker come from the environment that `make test` prepares."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("LOG_FORMAT", "text")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# A development machine may reach its package index through a mirror on its own network:
# environment builds trust what the index hosts resolve to here (never loopback).
os.environ.setdefault("LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS", "true")
# Keys and files of a test run stay out of the checkout's var/ (and child processes inherit it).
os.environ.setdefault("LEDGERFLOW_DATA_DIR", tempfile.mkdtemp(prefix="ledgerflow-test-data-"))
# Environments built in the sandbox (the runner environment above all) are keyed by what they
# are built from and never change: one copy for every test process and run on this machine.
# Models the tests log record what they import (as a data scientist's would), not the
# checkout's whole uv project: MLflow 3 exports a uv project's lock as the requirements.
os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
os.environ.setdefault("LEDGERFLOW_ENV_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "ledgerflow-test-envs"))


# pytest-xdist: each test process ("gw0", "gw1", ...) gets its own pair of Redis databases, so
# a Celery worker started by one test process never takes another's tasks. Set in the
# environment, so the workers a test starts inherit it.
_xdist = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist.startswith("gw"):
    _n = int(_xdist[2:])
    for _name, _db in (("CELERY_BROKER_URL", 2 * _n + 2), ("CELERY_RESULT_BACKEND", 2 * _n + 3)):
        _url = os.environ.get(_name, "")
        if _url.startswith("redis://"):
            os.environ[_name] = f"{_url.rsplit('/', 1)[0]}/{_db}"

from config.settings.base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Live-server threads must not keep connections open past a request: pytest-django drops the
# test database at the end and waits for no one.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
