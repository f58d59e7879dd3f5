"""PostgreSQL: an event marks its own organization as audited in the transaction, not the
transaction as a whole, so a write to a second organization's data needs its own event
(audit.guards checks the marker of the organization each written row belongs to)."""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledgerflow_event_extends_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE last_seq bigint; last_hash varchar(64);
BEGIN
  SELECT seq, hash INTO last_seq, last_hash FROM audit_auditevent
    WHERE org_id = NEW.org_id ORDER BY seq DESC LIMIT 1;
  IF NEW.seq <> coalesce(last_seq, 0) + 1
     OR NEW.prev_hash <> coalesce(last_hash, repeat('0', 64)) THEN
    RAISE EXCEPTION 'audit event #% does not extend the chain of organization %', NEW.seq, NEW.org_id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  -- Marks this organization as audited in this transaction, for the guards (audit.guards).
  PERFORM set_config('ledgerflow.audited_' || NEW.org_id, txid_current()::text, true);
  RETURN NEW;
END $$;
"""
PREVIOUS = FUNCTION.replace(
    "'ledgerflow.audited_' || NEW.org_id", "'ledgerflow.audited_xact'").replace(
    "this organization as audited in this transaction", "this transaction as audited")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_append_function")]
    operations = [migrations.RunPython(forward, backward)]
