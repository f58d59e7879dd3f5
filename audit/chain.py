"""The hash of one audit event. Pure Python, no Django: the offline verifier reuses it."""

import hashlib

import rfc8785

# The fields an event's hash covers, in the export's own names.
HASHED_FIELDS = (
    "org",
    "seq",
    "created_at",
    "actor_kind",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "request_id",
    "client_ip",
)


def event_hash(prev_hash: str, fields: dict) -> str:
    """SHA-256 over the previous hash and the RFC 8785 canonical JSON of the event."""
    payload = {name: fields[name] for name in HASHED_FIELDS}
    digest = hashlib.sha256()
    digest.update(bytes.fromhex(prev_hash))
    digest.update(rfc8785.dumps(payload))
    return digest.hexdigest()
