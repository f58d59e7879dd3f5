"""PostgreSQL: append an audit event in one round trip.

ledgerflow_audit_append() locks the organization's chain head, takes the next sequence
number, computes the event's hash - SHA-256(prev hash || canonical JSON), the canonical JSON
arriving as the bytes before and after the sequence number's digits - inserts the event and
advances the head. The hash is the same audit.chain.event_hash computes; verification
recomputes it in Python.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledgerflow_audit_append(
    p_org bigint, p_prefix bytea, p_suffix bytea, p_created_at timestamptz,
    p_actor_kind varchar, p_actor_label varchar, p_actor_user_id bigint, p_actor_token_id bigint,
    p_action varchar, p_target_type varchar, p_target_id varchar, p_target_label varchar,
    p_before jsonb, p_after jsonb, p_request_id varchar, p_client_ip inet,
    OUT o_id bigint, OUT o_seq bigint, OUT o_prev varchar, OUT o_hash varchar)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT seq + 1, hash INTO o_seq, o_prev FROM audit_auditchainhead
    WHERE org_id = p_org FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'organization % has no audit chain', p_org;
  END IF;
  o_hash := encode(sha256(decode(o_prev, 'hex') || p_prefix || convert_to(o_seq::text, 'UTF8')
                          || p_suffix), 'hex');
  INSERT INTO audit_auditevent (org_id, seq, created_at, actor_kind, actor_label, actor_user_id,
                                actor_token_id, action, target_type, target_id, target_label,
                                before, after, request_id, client_ip, prev_hash, hash)
  VALUES (p_org, o_seq, p_created_at, p_actor_kind, p_actor_label, p_actor_user_id,
          p_actor_token_id, p_action, p_target_type, p_target_id, p_target_label, p_before,
          p_after, p_request_id, p_client_ip, o_prev, o_hash)
  RETURNING id INTO o_id;
  UPDATE audit_auditchainhead SET seq = o_seq, hash = o_hash WHERE org_id = p_org;
END $$;
"""
BACKWARD = "DROP FUNCTION IF EXISTS ledgerflow_audit_append"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]
    operations = [migrations.RunPython(forward, backward)]
