"""audit_record(): the one way any state change is written into the trail."""

import json
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from audit.actors import Actor
from audit.chain import event_hash
from audit.models import AuditChainHead, AuditEvent


def _json_safe(value):
    # Store exactly what was hashed: dates, decimals and UUIDs become their JSON strings.
    return None if value is None else json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _timestamp(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    # The row lock on the chain head serializes writers of one organization, so sequence
    # numbers are gap-free and the chain cannot fork; other organizations are not blocked.
    head = AuditChainHead.objects.select_for_update().get(org=org)
    now = timezone.now()
    fields = {
        "org": org.slug,
        "seq": head.seq + 1,
        "created_at": _timestamp(now),
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
    digest = event_hash(head.hash, fields)
    event = AuditEvent.objects.create(
        **{**fields, "org": org, "created_at": now},
        actor_user=actor.user if getattr(actor.user, "pk", None) else None,
        prev_hash=head.hash,
        hash=digest,
    )
    head.seq, head.hash = fields["seq"], digest
    head.save(update_fields=["seq", "hash"])
    return event


def audit_chain_start(*, org) -> None:
    """Create the organization's (empty) chain; called once, when the organization is made."""
    AuditChainHead.objects.create(org=org)
