"""The hash of one audit event. Pure Python, no Django: the offline verifier reuses it."""

import hashlib
from datetime import UTC, datetime

import rfc8785

from audit import canonical

GENESIS_HASH = "0" * 64  # the prev_hash of an organization's first event

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


def canonical_event(fields: dict) -> bytes:
    """The RFC 8785 canonical JSON of an event's hashed fields."""
    return canonical.dumps({name: fields[name] for name in HASHED_FIELDS})


def event_hash(prev_hash: str, fields: dict) -> str:
    """SHA-256 over the previous hash and the RFC 8785 canonical JSON of the event."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_event(fields)).hexdigest()


_SEQ_SENTINEL = 8_888_888_888_888_887  # an integer no real sequence number reaches


def canonical_around_seq(fields: dict) -> tuple[bytes, bytes]:
    """The canonical JSON split around the digits of `seq`, for a writer that learns the
    sequence number only once it holds the chain's lock (the database, on PostgreSQL).
    Keys are sorted, so the top-level "seq" comes after any nested before/after objects:
    its marker is the last occurrence."""
    encoded = canonical_event({**fields, "seq": _SEQ_SENTINEL})
    head, marker, tail = encoded.rpartition(b'"seq":' + str(_SEQ_SENTINEL).encode())
    if not marker:
        raise ValueError("no seq in the canonical event")
    return head + b'"seq":', tail


def timestamp(moment: datetime) -> str:
    """The one text form of an event's time that its hash covers: UTC, microseconds, Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_SAFE_INT = 2**53


def _canonicalizable(value):
    """RFC 8785 holds only I-JSON numbers: big integers and non-finite floats become strings."""
    if isinstance(value, dict):
        return {str(k): _canonicalizable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonicalizable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not -_SAFE_INT < value < _SAFE_INT:
        return str(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return repr(value)
    return value


def payload_digest(payload) -> str:
    """SHA-256 of a payload: what a bulk write's event keeps instead of a copy. Of the bytes
    when it is a request body as received, else of its canonical JSON."""
    if isinstance(payload, bytes):
        return hashlib.sha256(payload).hexdigest()
    try:
        encoded = canonical.dumps(payload)
    except (rfc8785.IntegerDomainError, rfc8785.FloatDomainError):
        encoded = canonical.dumps(_canonicalizable(payload))
    return hashlib.sha256(encoded).hexdigest()
