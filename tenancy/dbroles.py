"""Two database roles on PostgreSQL: the tables' owner, and the service's own role.

Row-level security (tenancy/rls.py) binds the role that queries; the tables' owner can switch
it off (`ALTER TABLE … DISABLE ROW LEVEL SECURITY`), drop a policy, or a trigger of the audit
trail. So the service connects as a role that may read and write rows and nothing else
(DATABASE_URL), and only `manage.py migrate` connects as the owner (DATABASE_OWNER_URL, the
setting LEDGERFLOW_DATABASE_OWNER): `as_owner()` around the migration, then every table and
sequence granted to the service's role, minus what the audit trail never allows (UPDATE and
DELETE of its events and checkpoints, DELETE of its chain heads). docs/deploy.md, "The
database role", says how to create the two roles.

Without DATABASE_OWNER_URL one role does everything, as before: `manage.py check --database
default` then warns (tenancy.W002). On SQLite there are no roles.
"""

from contextlib import contextmanager

from django.conf import settings
from django.core import checks
from django.db import connections

from tenancy.rls import scoped_models

# What the service's role may not do to the audit trail, on top of its triggers
# (audit/migrations/0002_append_only.py): a second lock, which holds with the triggers off.
AUDIT_REVOKED = {"audit_auditevent": "UPDATE, DELETE", "audit_auditcheckpoint": "UPDATE, DELETE",
                 "audit_auditchainhead": "DELETE"}

_SERVICE = {}  # alias -> the service's credentials while the owner's are in use


def owner_credentials(using: str = "default") -> dict | None:
    """The owner's USER, PASSWORD, HOST and PORT, when they are configured and differ."""
    owner = settings.LEDGERFLOW_DATABASE_OWNER
    if not owner or using != "default" or connections[using].vendor != "postgresql":
        return None
    return owner


def _swap(using: str, credentials: dict) -> dict:
    """Close the connections of every thread's copy (they share one settings dict) and put
    `credentials` in; the ones replaced are returned."""
    settings_dict = connections[using].settings_dict
    replaced = {key: settings_dict.get(key) for key in credentials}
    connections[using].close()
    settings_dict.update(credentials)
    return replaced


@contextmanager
def as_owner(using: str = "default"):
    """Connect as the tables' owner inside the block (migrate), then as the service again.
    Nested: the outer block decides (the tests create their database inside one)."""
    owner = owner_credentials(using)
    if owner is None or using in _SERVICE:
        yield
        return
    _SERVICE[using] = _swap(using, owner)
    try:
        yield
    finally:
        _swap(using, _SERVICE.pop(using))


@contextmanager
def as_service(using: str = "default"):
    """Inside an `as_owner()` block, connect as the service's role again (the tests, between
    creating and dropping their database)."""
    service = _SERVICE.get(using)
    if service is None:
        yield
        return
    owner = _swap(using, service)
    try:
        yield
    finally:
        _swap(using, owner)


def grant_to_service(using: str = "default", **kwargs) -> None:
    """After each migrate as the owner (post_migrate): the service's role may read and write
    the rows of every table, new ones included, and no more."""
    service = _SERVICE.get(using)
    db = connections[using]
    if service is None or db.vendor != "postgresql":
        return
    role = db.ops.quote_name(service["USER"])
    with db.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = db.ops.quote_name(cursor.fetchone()[0])
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} "
                       f"TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        for table, privileges in AUDIT_REVOKED.items():
            cursor.execute(f"REVOKE {privileges} ON {db.ops.quote_name(table)} FROM {role}")


@checks.register(checks.Tags.database)
def check_role_cannot_change_tables(app_configs=None, databases=None, **kwargs):
    errors = []
    for alias in databases or ():
        db = connections[alias]
        if db.vendor != "postgresql":
            continue
        tables = [model._meta.db_table for model in scoped_models()]
        with db.cursor() as cursor:
            cursor.execute("SELECT current_user, count(*) FROM pg_tables WHERE tablename = ANY(%s) "
                           "AND pg_has_role(current_user, tableowner, 'USAGE')", [tables])
            role, owned = cursor.fetchone()
        if owned:
            errors.append(checks.Warning(
                f"The database role '{role}' owns {owned} of the organizations' tables (or "
                "inherits a role that does): it could switch their row-level security off.",
                hint="Migrate as a separate owner role (DATABASE_OWNER_URL) and connect the "
                     "service as a role that only reads and writes rows (docs/deploy.md).",
                id="tenancy.W002"))
    return errors
