"""PostgreSQL refuses a write to tenant data that has no audit event in its transaction.

Each tenant table gets a deferred constraint trigger that runs at COMMIT and checks a
transaction-local marker, which only the insert of an audit event sets (the chain trigger
in migration 0002). So a write that bypasses the services - raw SQL, a stray queryset
.update(), a forgotten path - fails to commit. Installed after every migrate for every
model that inherits TenantModel, so new apps are covered without extra work.

The marker is one per transaction, so one check per transaction is enough: the trigger's
WHEN clause, which PostgreSQL evaluates at the write and not at COMMIT, queues the check for
the transaction's first guarded row only (a second transaction-local setting remembers that
it is queued; a rolled-back savepoint takes back both the setting and its queued check). A
batch of 1,000 metric points used to queue 1,000 identical checks.
"""

from django.apps import apps
from django.db import connections

from tenancy.models import Organization, TenantModel

GUARD_FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledgerflow_require_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('ledgerflow.audited_xact', true), '') <> txid_current()::text THEN
    RAISE EXCEPTION 'write to % without an audit event in the same transaction', TG_TABLE_NAME
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END $$;
"""
TRIGGER = "ledgerflow_audited"
FIRST_ROW_OF_TRANSACTION = (
    "coalesce(current_setting('ledgerflow.guard_queued', true), '') <> txid_current()::text "
    "AND set_config('ledgerflow.guard_queued', txid_current()::text, true) IS NOT NULL"
)


def guarded_models() -> list:
    tenant = [m for m in apps.get_models() if issubclass(m, TenantModel)]
    return [Organization, *tenant]


def install_audit_guards(using: str = "default", **kwargs) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(GUARD_FUNCTION)
        for model in guarded_models():
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table}")
            cursor.execute(
                f"CREATE CONSTRAINT TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({FIRST_ROW_OF_TRANSACTION}) "
                "EXECUTE FUNCTION ledgerflow_require_audit()"
            )
