"""audit_record(): the one way any state change is written into the trail."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit.actors import Actor
from audit.chain import canonical_around_seq, event_hash, timestamp
from audit.export import export_lines
from audit.keys import (
    key_name,
    log_origin,
    public_key_pem,
    public_verifier_key,
    retired_verifier_keys,
    signing_key,
    verification_keys,
)
from audit.merkle import leaf_hash, root_from_leaf_hashes
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.notes import Checkpoint, NoteError, open_note_by_any, sign
from audit.verifier import Verdict, verify_chain


def _json_safe(value):
    # Store exactly what was hashed: dates, decimals and UUIDs become their JSON strings.
    return None if value is None else json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_record(
    *,
    org,
    actor: Actor,
    action: str,
    target,
    before: dict | None = None,
    after: dict | None = None,
    target_label: str | None = None,
) -> AuditEvent:
    """Append one event to `org`'s chain inside the caller's transaction.

    Must run inside the service's atomic block: the event commits or rolls back with the
    change it describes (DESIGN.md invariant 1).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record() must run inside the service's transaction")
    now = timezone.now()
    fields = {
        "org": org.slug,
        "seq": None,  # known once the chain head is locked
        "created_at": timestamp(now),
        "actor_kind": actor.kind,
        "actor_label": actor.label,
        "action": action,
        "target_type": target._meta.model_name if hasattr(target, "_meta") else target[0],
        "target_id": str(target.pk if hasattr(target, "_meta") else target[1]),
        "target_label": target_label if target_label is not None else str(target)[:300],
        "before": _json_safe(before),
        "after": _json_safe(after),
        "request_id": actor.request_id or "",
        "client_ip": actor.client_ip,
    }
    event = AuditEvent(
        **{**fields, "org": org, "created_at": now},
        actor_user=actor.user if getattr(actor.user, "pk", None) else None,
        actor_token=actor.token,
    )
    # The row lock on the chain head serializes writers of one organization, so sequence
    # numbers are gap-free and the chain cannot fork; other organizations are not blocked.
    if connection.vendor == "postgresql":
        _append_in_database(event, fields)
    else:
        _append(event, fields)
    return event


def _append(event: AuditEvent, fields: dict) -> None:
    head = AuditChainHead.objects.select_for_update().get(org_id=event.org_id)
    event.seq, event.prev_hash = head.seq + 1, head.hash
    event.hash = event_hash(head.hash, {**fields, "seq": event.seq})
    event.save(force_insert=True)
    head.seq, head.hash = event.seq, event.hash
    head.save(update_fields=["seq", "hash"])


def _append_in_database(event: AuditEvent, fields: dict) -> None:
    """One round trip (migration 0003): lock the head, number, hash, insert, advance."""
    prefix, suffix = canonical_around_seq(fields)
    values = [event.org_id, prefix, suffix, event.created_at, event.actor_kind,
              event.actor_label, event.actor_user_id, event.actor_token_id, event.action,
              event.target_type, event.target_id, event.target_label,
              Jsonb(event.before) if event.before is not None else None,
              Jsonb(event.after) if event.after is not None else None,
              event.request_id, event.client_ip]
    placeholders = ", ".join(["%s"] * len(values))  # only placeholders go into the SQL
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ledgerflow_audit_append({placeholders})", values)  # noqa: S608
        event.pk, event.seq, event.prev_hash, event.hash = cursor.fetchone()
    event._state.adding = False


def audit_chain_start(*, org) -> None:
    """Create the organization's (empty) chain; called once, when the organization is made."""
    AuditChainHead.objects.create(org=org)


def _event_rows(org, upto: int | None = None):
    events = AuditEvent.objects.filter(org=org).order_by("seq")
    if upto is not None:
        events = events.filter(seq__lte=upto)
    return events


def audit_records(org, upto: int | None = None):
    """The organization's events as export/hash records, streamed in sequence order."""
    for event in _event_rows(org, upto).iterator(chunk_size=2000):
        yield event.as_record(org.slug)


def audit_leaves(org, upto: int | None = None) -> list[bytes]:
    """The Merkle leaves: each event's chain hash, in sequence order."""
    hashes = _event_rows(org, upto).values_list("hash", flat=True).iterator(chunk_size=10000)
    return [bytes.fromhex(value) for value in hashes]


@transaction.atomic
def checkpoint_create(*, org) -> AuditCheckpoint:
    """Sign the organization's log as it is now; the same size twice returns the first one.

    Checkpoints are not themselves audit events: each would grow the log it describes.
    """
    head = AuditChainHead.objects.select_for_update().get(org=org)
    existing = AuditCheckpoint.objects.filter(org=org, tree_size=head.seq).first()
    if existing is not None:
        return existing
    root = tree_root_of(org, head.seq)
    now = timezone.now()
    body = Checkpoint(origin=log_origin(org), size=head.seq, root=root,
                      extensions=(f"chain {head.hash}", f"time {timestamp(now)}"))
    return AuditCheckpoint.objects.create(
        org=org, tree_size=head.seq, root_hash=root.hex(), chain_hash=head.hash,
        created_at=now, key_name=key_name(), note=sign(body, key_name(), signing_key()),
    )


def tree_root_of(org, size: int) -> bytes:
    return root_from_leaf_hashes([leaf_hash(leaf) for leaf in audit_leaves(org, size)])


def checkpoints_opened(org) -> list[Checkpoint]:
    """The organization's checkpoints, each verified against the key that signed it: the
    current one, or one retired by a rotation (LEDGERFLOW_AUDIT_RETIRED_KEYS)."""
    keys = verification_keys()
    return [open_note_by_any(c.note, keys)
            for c in AuditCheckpoint.objects.filter(org=org).order_by("tree_size")]


def audit_verify_org(org) -> Verdict:
    """Recompute the whole chain, compare every signed checkpoint and the chain head."""
    try:
        checkpoints = checkpoints_opened(org)
    except NoteError as exc:
        verdict = Verdict()
        verdict.fail(1, f"a stored checkpoint is invalid: {exc}")
        return verdict
    head = AuditChainHead.objects.filter(org=org).first()
    return verify_chain(audit_records(org), checkpoints,
                        expected_size=head.seq if head else None)


def audit_export_lines(org):
    notes = AuditCheckpoint.objects.filter(org=org).order_by("tree_size") \
        .values_list("note", flat=True)
    return export_lines(org_slug=org.slug, key_name=key_name(), public_key_pem=public_key_pem(),
                        verifier_key=public_verifier_key(), records=audit_records(org),
                        notes=notes.iterator(), retired_verifier_keys=retired_verifier_keys())
