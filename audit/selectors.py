"""Reads of the audit trail: filtered event lists and Merkle proofs."""

from django.db.models import QuerySet

from audit.merkle import consistency_proof, inclusion_proof, tree_root
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.services import audit_leaves
from config.exceptions import ApplicationError


def event_list(*, org, action=None, actor=None, target_type=None, target_id=None, since=None,
               until=None, after_seq=0) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(org=org, seq__gt=after_seq).order_by("seq")
    exact = {"action": action, "target_type": target_type, "target_id": target_id}
    events = events.filter(**{k: v for k, v in exact.items() if v is not None})
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until)
    return events


def event_inclusion_proof(*, org, seq: int) -> dict:
    """Proof that event `seq` is in the tree of the latest checkpoint that covers it, or in
    the current tree when no checkpoint does yet (then no signed note backs the root)."""
    checkpoint = AuditCheckpoint.objects.filter(org=org, tree_size__gte=seq) \
        .order_by("-tree_size").first()
    size = checkpoint.tree_size if checkpoint else AuditChainHead.objects.get(org=org).seq
    leaves = audit_leaves(org, size)
    return {
        "leaf_index": seq - 1,
        "tree_size": size,
        "leaf": leaves[seq - 1].hex(),
        "path": [node.hex() for node in inclusion_proof(seq - 1, leaves)],
        "root_hash": tree_root(leaves).hex(),
        "checkpoint": checkpoint.note if checkpoint else None,
    }


def consistency(*, org, old_size: int, new_size: int) -> dict:
    head = AuditChainHead.objects.get(org=org)
    if new_size > head.seq:
        raise ApplicationError(f"The log has only {head.seq} events.",
                               fields={"new_size": ["beyond the log's size"]})
    leaves = audit_leaves(org, new_size)
    notes = dict(AuditCheckpoint.objects.filter(org=org, tree_size__in=[old_size, new_size])
                 .values_list("tree_size", "note"))
    return {
        "old_size": old_size,
        "new_size": new_size,
        "old_root": tree_root(leaves[:old_size]).hex(),
        "new_root": tree_root(leaves).hex(),
        "path": [node.hex() for node in consistency_proof(old_size, leaves)],
        "old_checkpoint": notes.get(old_size),
        "new_checkpoint": notes.get(new_size),
    }
