"""Shared fixtures: the personas every endpoint test uses (STYLE.md section 7).

alice owns organization A, bob is a read-only viewer in A, charlie owns organization B.
Each has a read-write token; `api(persona)` is a DRF client authenticated as them.
"""

import importlib
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from audit.actors import Actor
from tenancy.dbroles import as_owner, as_service, owner_credentials
from tenancy.models import ApiToken, Membership, Organization, User
from tenancy.roles import Role
from tenancy.services import membership_add, organization_create, token_create

SETUP = Actor.command("test-setup")


# The audit tables refuse TRUNCATE and DELETE, which is how pytest-django empties the database
# after a transactional test (live_server implies one). Its flush runs with the triggers off:
# on PostgreSQL session_replication_role = replica, set just before (every test starts with it
# back to DEFAULT); SQLite cannot switch triggers off for a session, so they are dropped just
# before the flush and created again right after it.
_APPEND_ONLY = importlib.import_module("audit.migrations.0002_append_only")


@pytest.fixture
def _sqlite_audit_triggers_restored(django_db_blocker):
    yield  # set up before pytest-django's transactional_db, so this runs after its flush
    if connection.vendor != "sqlite":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {row[0] for row in cursor.fetchall()}
        for statement in _APPEND_ONLY.SQLITE_FORWARD:
            if statement.split()[2] not in present:
                cursor.execute(statement)


@pytest.fixture
def transactional_db(_sqlite_audit_triggers_restored, transactional_db, django_db_blocker):
    yield transactional_db
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
            if owner := owner_credentials():  # TRUNCATE is the tables' owner's
                cursor.execute(f"SET ROLE {connection.ops.quote_name(owner['USER'])}")
        elif connection.vendor == "sqlite":
            for name in sorted(_APPEND_ONLY.SQLITE_TRIGGERS):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


@pytest.fixture(autouse=True)
def _audit_triggers_on(django_db_blocker):
    if connection.vendor == "postgresql" and connection.connection is not None:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("RESET ROLE")


# The two database roles of production (tenancy/dbroles.py): the tables' owner creates,
# migrates and drops the test databases; the tests run as the service's role, which reads and
# writes rows only. (Under scripts/with_services.py that role may also become the owner by
# SET ROLE, for the flush above and the tamper drills: production grants no such thing.)
@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings):
    with as_owner():
        yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    with as_service():
        yield


@contextmanager
def as_table_owner():
    """The tables' owner on this test's connection (PostgreSQL under with_services): a
    database administrator, for the drills that show what the audit triggers stop."""
    owner = owner_credentials()
    with connection.cursor() as cursor:
        if owner:
            cursor.execute(f"SET ROLE {connection.ops.quote_name(owner['USER'])}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if owner:
                cursor.execute("RESET ROLE")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate counters and lockout marks (tenancy/throttling.py) live in the cache: each test
    starts with none, as a test's database starts with no failed attempts."""
    cache.clear()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test process, for every test that drives a browser (tests/ui
    and others): Playwright's sync API runs one instance per thread, and a second one started
    beside it fails."""
    from playwright.sync_api import sync_playwright

    from tests.ui.conftest import ARGS, CHROMIUM

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@dataclass
class Persona:
    user: User
    org: Organization
    membership: Membership
    token: ApiToken
    raw_token: str

    @property
    def email(self) -> str:
        return self.user.email


def make_persona(org: Organization, email: str, role: str, **token_kwargs) -> Persona:
    membership = membership_add(org=org, email=email, role=role, password="pw-" + email,
                                actor=SETUP)
    token, raw = token_create(org=org, user=membership.user, name=f"{email} token", actor=SETUP,
                              **token_kwargs)
    return Persona(membership.user, org, membership, token, raw)


@dataclass
class Personas:
    org_a: Organization
    org_b: Organization
    alice: Persona
    bob: Persona
    charlie: Persona


@pytest.fixture
def personas(db) -> Personas:
    org_a = organization_create(slug="org-a", name="Organization A", actor=SETUP)
    org_b = organization_create(slug="org-b", name="Organization B", actor=SETUP)
    return Personas(
        org_a=org_a,
        org_b=org_b,
        alice=make_persona(org_a, "alice@a.example", Role.OWNER),
        bob=make_persona(org_a, "bob@a.example", Role.VIEWER),
        charlie=make_persona(org_b, "charlie@b.example", Role.OWNER),
    )


@pytest.fixture
def api():
    """`api(persona_or_raw_token)` gives a client sending `Authorization: Bearer <token>`."""

    def make(who) -> APIClient:
        raw = who.raw_token if isinstance(who, Persona) else who
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def _database_url_of_test_db() -> str:
    """The URL of the database pytest-django created, for processes started by a test."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("worker processes share the test database only on PostgreSQL")
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def queues_purged() -> None:
    """Drop messages an earlier test left in the queues (a version registered without a
    worker running, say): a worker started now must take only this test's tasks."""
    from config.celery import app
    from config.metrics import QUEUES

    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_purge(queue)


@pytest.fixture
def worker_env(transactional_db) -> dict:
    """Environment for a child process that must see the test database and broker."""
    import os

    env = {**os.environ, "DATABASE_URL": _database_url_of_test_db(),
           "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    queues_purged()
    return env


@pytest.fixture
def live_worker(worker_env):
    """A real `celery worker` process on the test broker (Redis under `make test`)."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
         "--concurrency", "1", "--queues", "default,packaging", "--hostname", "test@%h"],
        cwd=root, env=worker_env, start_new_session=True,
    )
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
