"""The database refuses to rewrite the audit trail (DESIGN.md invariant 2).

Events and checkpoints: no UPDATE, DELETE or TRUNCATE. Event inserts must extend their
organization's chain (seq = previous + 1, prev_hash = previous hash). The chain head is never
deleted and its count never goes back. On PostgreSQL an event insert also marks the
transaction as audited (see audit.guards). Triggers can be disabled by a superuser: the hash
chain and the signed checkpoints are what detect that.
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION ledgerflow_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

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
  -- Marks this transaction as audited, for the tenant-table guards (audit.guards).
  PERFORM set_config('ledgerflow.audited_xact', txid_current()::text, true);
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ledgerflow_head_moves_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq < OLD.seq OR NEW.org_id <> OLD.org_id THEN
    RAISE EXCEPTION 'audit chain head of organization % cannot move back', OLD.org_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
  FOR EACH ROW EXECUTE FUNCTION ledgerflow_refuse_change();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
  FOR EACH STATEMENT EXECUTE FUNCTION ledgerflow_refuse_change();
CREATE TRIGGER audit_event_extends_chain BEFORE INSERT ON audit_auditevent
  FOR EACH ROW EXECUTE FUNCTION ledgerflow_event_extends_chain();
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_auditcheckpoint
  FOR EACH ROW EXECUTE FUNCTION ledgerflow_refuse_change();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_auditcheckpoint
  FOR EACH STATEMENT EXECUTE FUNCTION ledgerflow_refuse_change();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_auditchainhead
  FOR EACH ROW EXECUTE FUNCTION ledgerflow_refuse_change();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_auditchainhead
  FOR EACH STATEMENT EXECUTE FUNCTION ledgerflow_refuse_change();
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_auditchainhead
  FOR EACH ROW EXECUTE FUNCTION ledgerflow_head_moves_forward();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_extends_chain ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_checkpoint_append_only ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_checkpoint_no_truncate ON audit_auditcheckpoint;
DROP TRIGGER IF EXISTS audit_head_no_delete ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_head_forward ON audit_auditchainhead;
DROP FUNCTION IF EXISTS ledgerflow_refuse_change();
DROP FUNCTION IF EXISTS ledgerflow_event_extends_chain();
DROP FUNCTION IF EXISTS ledgerflow_head_moves_forward();
"""

# SQLite has no TRUNCATE: a DELETE without WHERE is still a per-row DELETE, refused below.
SQLITE_FORWARD = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE on audit_auditevent refused'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE on audit_auditevent refused'); END""",
    """CREATE TRIGGER audit_event_extends_chain BEFORE INSERT ON audit_auditevent
       WHEN NEW.seq <> coalesce((SELECT max(seq) FROM audit_auditevent WHERE org_id = NEW.org_id), 0) + 1
         OR NEW.prev_hash <> coalesce((SELECT hash FROM audit_auditevent
                                       WHERE org_id = NEW.org_id AND seq = NEW.seq - 1),
                                      substr(hex(zeroblob(32)), 1, 64))
       BEGIN SELECT RAISE(ABORT, 'audit event does not extend the chain'); END""",
    """CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_auditcheckpoint
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE on audit_auditcheckpoint refused'); END""",
    """CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_auditcheckpoint
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE on audit_auditcheckpoint refused'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_auditchainhead
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE on audit_auditchainhead refused'); END""",
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_auditchainhead
       WHEN NEW.seq < OLD.seq OR NEW.org_id <> OLD.org_id
       BEGIN SELECT RAISE(ABORT, 'audit chain head cannot move back'); END""",
]
SQLITE_TRIGGERS = {
    "audit_event_no_update", "audit_event_no_delete", "audit_event_extends_chain",
    "audit_checkpoint_no_update", "audit_checkpoint_no_delete", "audit_head_no_delete",
    "audit_head_forward",
}


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"no append-only triggers for database vendor {vendor}")


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif vendor == "sqlite":
        for name in sorted(SQLITE_TRIGGERS):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
