"""The service's database role reads and writes rows and nothing else (tenancy/dbroles.py):
the tables' owner, which `migrate` alone connects as, could switch row-level security and the
audit triggers off; the service's role cannot. Each attack is shown to work for the owner (the
defence off: a service connected as the owner, as before this split) and refused to the
service's role."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from tenancy.dbroles import check_role_cannot_change_tables
from tests.conftest import as_table_owner

pytestmark = pytest.mark.postgres_only
ROOT = Path(__file__).resolve().parents[2]

CHANGES = ["ALTER TABLE tracking_experiment DISABLE ROW LEVEL SECURITY",
           "ALTER TABLE tracking_experiment NO FORCE ROW LEVEL SECURITY",
           "DROP POLICY ledgerflow_org ON tracking_experiment",
           "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only"]


def _runs(sql: str, params=()) -> bool:
    """Whether the statement succeeds; rolled back either way."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            transaction.set_rollback(True)
    except DatabaseError as exc:
        assert "permission denied" in str(exc) or "must be owner" in str(exc), exc
        return False
    return True


@pytest.mark.parametrize("sql", CHANGES)
def test_only_the_owner_can_switch_the_defences_off(db, sql):
    with as_table_owner():
        assert _runs(sql)  # the tables' owner can: a service connected as it could
    assert not _runs(sql)


def test_the_service_cannot_rewrite_the_trail_even_with_the_triggers_off(personas):
    org = personas.org_a.pk
    rewrite = "UPDATE audit_auditevent SET actor_label = 'mallory' WHERE org_id = %s"
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # the triggers off
    try:
        with as_table_owner():
            assert _runs(rewrite, [org])
        assert not _runs(rewrite, [org])
        assert not _runs("DELETE FROM audit_auditevent WHERE org_id = %s", [org])
        assert not _runs("TRUNCATE tracking_experiment CASCADE")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


def test_the_check_warns_of_a_role_that_owns_the_tables(db):
    assert check_role_cannot_change_tables(databases=["default"]) == []
    with as_table_owner():
        [warning] = check_role_cannot_change_tables(databases=["default"])
    assert warning.id == "tenancy.W002" and "owns" in warning.msg


def _manage(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=600,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
                               **env})


def test_the_compose_roles_and_migrate_make_the_owner_own_and_the_service_use(db, tmp_path):
    """docker/postgres-roles.sh (the Compose file's database init) makes the two roles from
    their URL secrets; migrate, given both, leaves the tables to the owner and rows to the
    service."""
    host, port = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    suffix = uuid.uuid4().hex[:8]
    name, owner, service = f"ledgerflow_{suffix}", f"lf_owner_{suffix}", f"lf_service_{suffix}"
    urls = {"DATABASE_URL": f"postgres://{service}:pw-{suffix}@{host}:{port}/{name}",
            "DATABASE_OWNER_URL": f"postgres://{owner}:pw-{suffix}@{host}:{port}/{name}"}
    (tmp_path / "database_url").write_text(urls["DATABASE_URL"])
    (tmp_path / "database_owner_url").write_text(urls["DATABASE_OWNER_URL"])
    superuser = psycopg.connect(f"postgres://postgres@{host}:{port}/postgres", autocommit=True)
    superuser.execute(f'CREATE DATABASE "{name}"')  # as the postgres image does
    try:
        made = subprocess.run(
            ["bash", str(ROOT / "docker" / "postgres-roles.sh")], capture_output=True, text=True,
            env={**os.environ, "SECRETS_DIR": str(tmp_path), "POSTGRES_USER": "postgres",
                 "POSTGRES_DB": name, "PGHOST": host, "PGPORT": str(port)})
        assert made.returncode == 0, made.stderr
        migrated = _manage("migrate", "--noinput", "-v0", **urls)
        assert migrated.returncode == 0, migrated.stderr
        with psycopg.connect(urls["DATABASE_URL"]) as db_as_service:
            tables = dict(db_as_service.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
            assert set(tables.values()) == {owner} and "tracking_run" in tables
            privileges = dict(db_as_service.execute(
                "SELECT t || ' ' || p, has_table_privilege(t, p) FROM unnest(%s::text[]) t, "
                "unnest(%s::text[]) p", [["tracking_run", "audit_auditevent"],
                                         ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"]]))
        assert privileges == {
            "tracking_run SELECT": True, "tracking_run INSERT": True,
            "tracking_run UPDATE": True, "tracking_run DELETE": True,
            "tracking_run TRUNCATE": False, "audit_auditevent SELECT": True,
            "audit_auditevent INSERT": True, "audit_auditevent UPDATE": False,
            "audit_auditevent DELETE": False, "audit_auditevent TRUNCATE": False}
        # The check passes for the service's role, and warns of a service run as the owner.
        checked = _manage("check", "--database", "default", "--fail-level", "WARNING", **urls)
        assert checked.returncode == 0, checked.stderr
        as_owner = _manage("check", "--database", "default", "--fail-level", "WARNING",
                           DATABASE_URL=urls["DATABASE_OWNER_URL"], DATABASE_OWNER_URL="")
        assert as_owner.returncode != 0 and "tenancy.W002" in as_owner.stderr
    finally:
        superuser.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        superuser.execute(f'DROP ROLE IF EXISTS "{service}"')
        superuser.execute(f'DROP ROLE IF EXISTS "{owner}"')
        superuser.close()
