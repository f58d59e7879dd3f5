"""Tests: the database and broker come from the environment that `make test` prepares."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("LOG_FORMAT", "text")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Keys and files of a test run stay out of the checkout's var/ (and child processes inherit it).
os.environ.setdefault("LEDGERFLOW_DATA_DIR", tempfile.mkdtemp(prefix="ledgerflow-test-data-"))

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Live-server threads must not keep connections open past a request: pytest-django drops the
# test database at the end and waits for no one.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
