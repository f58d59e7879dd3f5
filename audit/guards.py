"""PostgreSQL refuses a write to tenant data that has no audit event in its transaction.

Each tenant table gets a deferred constraint trigger that runs at COMMIT and checks a
transaction-local marker, which only the insert of an audit event sets (the chain trigger
in migration 0002). So a write that bypasses the services - raw SQL, a stray queryset
.update(), a forgotten path - fails to commit. Installed after every migrate for every
model that inherits TenantModel, so new apps are covered without extra work.
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
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledgerflow_require_audit()"
            )
