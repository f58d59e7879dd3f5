"""Row-level security: on PostgreSQL the database itself shows a request only its
organization's rows, whatever the query forgets.

Every table of an organization's data (a model with an `org` foreign key, but for the
membership and token tables, which are read to find out who calls and in which organization)
gets a policy, forced on the table's owner too:

    (SELECT nullif(current_setting('ledgerflow.org', true), '')) IS NULL
    OR org_id = (SELECT nullif(current_setting('ledgerflow.org', true), '')::bigint)

Once a request, a job or a command knows its organization, its connection is scoped to it
(`ledgerflow.org`, config/scope.py): from then on a query without its organization filter
reads nothing of another organization, and a write into another organization fails. A
connection nothing scoped (beat's sweeps, the admin, the login page) sees every row.

A PostgreSQL superuser, or a role with BYPASSRLS, passes through every policy: the service's
role must be neither (`manage.py check --database default` warns, docs/deploy.md).
Installed after every migrate, for every such model, so new tables are covered without extra
work (as the audit guards, audit/guards.py).
"""

from contextlib import contextmanager

from django.apps import apps
from django.core import checks
from django.db import connections
from django.db.models import ForeignKey

from config.scope import SETTING

POLICY = "ledgerflow_org"
# Read to authenticate, before the organization is known; a user's list of organizations.
IDENTITY_TABLES = {"tenancy.membership", "tenancy.apitoken"}


def scoped_models() -> list:
    from tenancy.models import Organization

    found = []
    for model in apps.get_models():
        field = next((f for f in model._meta.concrete_fields if f.name == "org"), None)
        if isinstance(field, ForeignKey) and field.related_model is Organization \
                and model._meta.label_lower not in IDENTITY_TABLES:
            found.append(model)
    return found


def policy_expression(column: str) -> str:
    """Every row when the connection has no scope, else its organization's. The setting is
    read by two uncorrelated subqueries, which PostgreSQL runs once per query (InitPlans):
    read per row (`coalesce(current_setting(…)::bigint, org_id)`), it tripled a filtered
    search of 10,000 runs (87 ms against 32 without a policy, bench/RESULTS.md)."""
    setting = f"nullif(current_setting('{SETTING}', true), '')"
    return f"(SELECT {setting}) IS NULL OR {column} = (SELECT {setting}::bigint)"


def install_row_security(using: str = "default", **kwargs) -> None:
    db = connections[using]
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        for model in scoped_models():
            table = db.ops.quote_name(model._meta.db_table)
            column = db.ops.quote_name(model._meta.get_field("org").column)
            cursor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
            expression = policy_expression(column)
            cursor.execute(f"CREATE POLICY {POLICY} ON {table} USING ({expression}) "
                           f"WITH CHECK ({expression})")


@checks.register(checks.Tags.database)
def check_role_obeys_row_security(app_configs=None, databases=None, **kwargs):
    errors = []
    for alias in databases or ():
        db = connections[alias]
        if db.vendor != "postgresql":
            continue
        with db.cursor() as cursor:
            cursor.execute("SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles "
                           "WHERE rolname = current_user")
            role, bypasses = cursor.fetchone()
        if bypasses:
            errors.append(checks.Warning(
                f"The database role '{role}' is a superuser or has BYPASSRLS: PostgreSQL's "
                "row-level security (tenancy/rls.py) does not apply to it.",
                hint="Connect as a role with NOSUPERUSER NOBYPASSRLS (docs/deploy.md).",
                id="tenancy.W001"))
    return errors


@contextmanager
def policies_lifted(cursor, tables: list[str]):
    """For a bulk COPY by the tables' owner into a throwaway database (the benches' loads):
    PostgreSQL refuses COPY FROM into a table whose policy applies to the caller. Inside the
    caller's transaction, which must have no pending trigger events (session_replication_role
    replica, as those loads set)."""
    for table in tables:
        cursor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    yield
    for table in tables:
        cursor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
