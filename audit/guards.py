"""PostgreSQL refuses a write to tenant data that has no audit event in its transaction.

Each tenant table gets a deferred constraint trigger that runs at COMMIT and checks a
transaction-local marker, which only the insert of an audit event sets (the chain trigger
in migration 0002). So a write that bypasses the services - raw SQL, a stray queryset
.update(), a forgotten path - fails to commit. Installed after every migrate for every
model that inherits TenantModel, so new apps are covered without extra work.

The marker is one per organization and transaction (`ledgerflow.audited_<org id>`, set by an
event of that organization): a transaction that writes two organizations' data needs an event
of each. One check per organization and transaction is enough: the trigger's WHEN clause,
which PostgreSQL evaluates at the write and not at COMMIT, queues the check for the
transaction's first guarded row of each organization only (a second transaction-local
setting remembers that it is queued; a rolled-back savepoint takes back both the setting and
its queued check). A batch of 1,000 metric points used to queue 1,000 identical checks.
"""

from django.apps import apps
from django.db import connections

from tenancy.models import Organization, TenantModel

GUARD_FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledgerflow_require_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE row_org text;
BEGIN
  -- TG_ARGV[0]: the column that names the row's organization
  IF TG_OP = 'DELETE' THEN
    row_org := to_jsonb(OLD) ->> TG_ARGV[0];
  ELSE
    row_org := to_jsonb(NEW) ->> TG_ARGV[0];
  END IF;
  IF coalesce(current_setting('ledgerflow.audited_' || row_org, true), '')
     <> txid_current()::text THEN
    RAISE EXCEPTION 'write to % (organization %) without an audit event of that organization '
                    'in the same transaction', TG_TABLE_NAME, row_org
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END $$;
"""
TRIGGER = "ledgerflow_audited"
DELETE_TRIGGER = "ledgerflow_audited_delete"  # a DELETE trigger's WHEN sees OLD, not NEW


def first_row_of_organization(org: str) -> str:
    """The WHEN clause: true for the transaction's first guarded row of the organization `org`
    (an SQL expression), remembering in a transaction-local setting that it queued a check."""
    marker = f"'ledgerflow.guard_queued_' || {org}"
    return (f"coalesce(current_setting({marker}, true), '') <> txid_current()::text "
            f"AND set_config({marker}, txid_current()::text, true) IS NOT NULL")


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
            column = "id" if model is Organization else model._meta.get_field("org").column
            quoted = connection.ops.quote_name(column)
            for name, events, row in ((TRIGGER, "INSERT OR UPDATE", "NEW"),
                                      (DELETE_TRIGGER, "DELETE", "OLD")):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                cursor.execute(
                    f"CREATE CONSTRAINT TRIGGER {name} AFTER {events} ON {table} "
                    f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                    f"WHEN ({first_row_of_organization(f'{row}.{quoted}')}) "
                    f"EXECUTE FUNCTION ledgerflow_require_audit('{column}')"
                )
