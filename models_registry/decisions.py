"""Decision records (COMPLIANCE.md, "What must be recorded when a decision is made").

The customer's identifier never reaches the database or the audit trail: only its keyed
HMAC-SHA256 under the organization's own key, so the same customer is the same reference
within an organization and unlinkable across organizations. One request's decisions are one
change, recorded with one audit event that lists their ids and a digest of their content.
"""

import hashlib
import hmac
import math
import os
import secrets
import weakref
from dataclasses import dataclass

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.canonical import dumps as canonical_json
from audit.services import audit_record
from config.exceptions import ApplicationError
from models_registry.models import Decision, DecisionSource, ModelVersion, SubjectKey

SYSTEM = Actor(kind="system", label="ledgerflow")


def _subject_key(org, *, create: bool = True) -> bytes | None:
    """The organization's key; made on first use inside the caller's transaction (so a write
    that fails leaves no key behind), or None when `create` is off and there is none yet."""
    with connection.cursor() as cursor:  # on every scored decision: no ORM to compile
        quote = connection.ops.quote_name
        cursor.execute(f"SELECT {quote('key')} FROM {quote(SubjectKey._meta.db_table)} "  # noqa: S608
                       "WHERE org_id = %s", [org.pk])
        row = cursor.fetchone()
    found = row[0] if row else None
    if found is not None or not create:
        return bytes(found) if found is not None else None
    try:
        with transaction.atomic():  # a savepoint: a concurrent first use may win the race
            key = SubjectKey.objects.create(org=org, key=secrets.token_bytes(32))
    except IntegrityError:
        return bytes(SubjectKey.objects.get(org=org).key)
    audit_record(org=org, actor=SYSTEM, action="subject_key.created", target=key,
                 target_label="subject reference key")
    return bytes(key.key)


def _hmac(key: bytes, subject: str) -> str:
    return hmac.digest(key, subject.encode(), "sha256").hex()  # OpenSSL's one-shot HMAC


def subject_ref_of(org, subject: str) -> str:
    """The pseudonymous reference of a customer identifier, inside the caller's transaction
    (the organization's key is made on first use, audited)."""
    return _hmac(_subject_key(org), subject)


def subject_ref_lookup(org, subject: str) -> str | None:
    """The pseudonymous reference of a customer identifier in `org`, for reads: None when the
    organization has never recorded a decision (and so has no key yet)."""
    key = _subject_key(org, create=False)
    return _hmac(key, subject) if key is not None else None


def json_problem(value, path: str = "") -> str | None:
    """Why `value` cannot be stored and hashed as JSON (None when it can): non-finite numbers,
    integers beyond JSON's exact range (RFC 8785 hashes them as doubles), NUL characters."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'value'}: {value} is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return f"{path or 'value'}: {value} is beyond the exact integer range of JSON (2^53)"
    if isinstance(value, str) and "\x00" in value:
        return f"{path or 'value'}: NUL characters are not allowed"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path or 'value'}: NUL characters are not allowed in keys"
        problem = json_problem(item, f"{path}.{key}" if path else str(key))
        if problem:
            return problem
    return None


@dataclass
class DecisionInput:
    """One decision as the caller states it (raw subject identifier included)."""

    subject: str
    inputs: dict
    purpose: str
    params: dict | None = None
    raw_score: float | None = None
    prediction: object = None
    outcome: str = ""
    outcome_labels: list | None = None
    contributions: dict | None = None
    contribution_method: str = ""
    contribution_scale: str = ""
    base_value: float | None = None
    reference: dict | None = None
    legal_basis: str = ""
    art22_ground: str = ""
    feature_pipeline_version: str = ""
    provenance: dict | None = None
    threshold: float | None = None
    policy_version: str = ""
    recipients: list | None = None
    created_at: object = None
    reviewer: str = ""
    review_action: str = ""
    reviewed_at: object = None


REVIEW_FIELDS = frozenset({"reviewer", "review_action", "reviewed_at"})
JSON_FIELDS = ("inputs", "params", "prediction", "provenance", "reference", "contributions",
               "recipients", "outcome_labels")


def _records_digest(rows: list[dict], items: list[DecisionInput]) -> str:
    """SHA-256 over every recorded field but the review (RFC 8785 JSON of one object per
    record, keyed by column attribute name, UUIDs and times as ISO text), for the batch's audit
    event: a record changed later no longer matches the trail (tests recompute it from the
    stored rows). Encoding the batch is also its check: what cannot be hashed (or stored: NUL
    characters) is refused, with the reason found in `items`."""
    body = []
    for row in rows:
        record = row.copy()
        for name in REVIEW_FIELDS:
            del record[name]
        record["created_at"] = _digestible(record["created_at"])
        body.append(record)
    try:
        encoded = canonical_json(body)
    except (TypeError, ValueError, OverflowError):
        encoded = None
    if encoded is None or b"\\u0000" in encoded:
        for index, item in enumerate(items):
            for name in JSON_FIELDS:
                problem = json_problem(getattr(item, name), f"{index}.{name}")
                if problem:
                    raise ApplicationError(f"Decision {problem}.", kind="invalid")
        if encoded is None:
            raise ApplicationError("Decision values must be JSON: objects keyed by strings, "
                                   "finite numbers.", kind="invalid")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _digestible(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def decisions_record(*, org, version: ModelVersion, items: list[DecisionInput], actor: Actor,
                     source: str = DecisionSource.SCORED, alias: str = "") -> list[dict]:
    """Record `items` as decisions of `version`: one row each and one audit event for all.
    Returns the records as {attribute name: value} (what was stored), in order."""
    if not version.package_digest:
        raise ApplicationError(f"{version.label} has no READY package; decisions need one.",
                               kind="conflict")
    now = timezone.now()
    with transaction.atomic(durable=True):
        key = _subject_key(org)
        rows = _decisions(org, version, items, key, source, alias, now)
        digest = _records_digest(rows, items)  # refuses what cannot be stored, before COPY
        _insert(rows)
        audit_record(org=org, actor=actor, action=f"decisions.{source}", target=version,
                     target_label=version.label,
                     after={"count": len(rows), "package_digest": version.package_digest,
                            "decision_ids": [row["decision_id"] for row in rows],
                            "records_digest": digest})
    return rows


# The staging tables each database session has (by its psycopg connection: they end with it),
# so that a session creates each once, not once per request.
_STAGED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _insert(rows: list[dict]) -> None:
    """On PostgreSQL one COPY of the rows as they are, whatever their number (a 1,000-row
    INSERT spends most of its time having psycopg quote each value, building model instances
    first costs as much, and one row's INSERT takes longer to compile than to run);
    elsewhere bulk_create.

    The COPY goes into a temporary table of the session, moved into the decision table by one
    INSERT: PostgreSQL refuses COPY FROM into a table under row-level security
    (tenancy/rls.py), whose policy then checks each row as it is inserted."""
    if connection.vendor != "postgresql":
        Decision.objects.bulk_create([Decision(**row) for row in rows])
        return
    names = list(rows[0])
    columns = ", ".join(connection.ops.quote_name(Decision._meta.get_field(name).column)
                        for name in names)
    table = connection.ops.quote_name(Decision._meta.db_table)
    stage = "ledgerflow_decisions_" + hashlib.sha256(columns.encode()).hexdigest()[:12]
    json_at = [i for i, name in enumerate(names) if name in JSON_FIELDS]
    dumps = orjson.dumps
    texts = {}  # by identity: a request's reference, provenance, params are in every row
    with connection.cursor() as cursor:
        staged = _STAGED.setdefault(connection.connection, set())  # this session's
        if stage not in staged:
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "  # noqa: S608 (our names)
                           f"AS SELECT {columns} FROM {table} WITH NO DATA")
            transaction.on_commit(lambda: staged.add(stage))  # a rollback undoes the CREATE
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = list(row.values())
                for i in json_at:
                    value = values[i]
                    if value is not None:
                        text = texts.get(id(value))  # the rows keep every value alive meanwhile
                        if text is None:
                            text = texts[id(value)] = dumps(value).decode()
                        values[i] = text
                copy.write_row(values)
        cursor.execute(f"WITH moved AS (DELETE FROM {stage} RETURNING {columns}) "  # noqa: S608
                       f"INSERT INTO {table} ({columns}) SELECT {columns} FROM moved")


def _decisions(org, version, items, key, source, alias, now) -> list[dict]:
    """One row per item, {attribute name: value} for every column but the primary key, in one
    order (the COPY's)."""
    shared = {"org_id": org.pk, "source": str(source), "model_version_id": version.pk,
              "model_name": version.registered_model.name,
              "model_version_number": version.version,
              "package_digest": version.package_digest, "alias": alias}
    return [{
        **shared, "decision_id": decision_id, "created_at": item.created_at or now,
        "subject_ref": _hmac(key, item.subject),
        "purpose": item.purpose, "legal_basis": item.legal_basis,
        "art22_ground": item.art22_ground,
        "feature_pipeline_version": item.feature_pipeline_version,
        "inputs": item.inputs, "params": item.params or {}, "provenance": item.provenance or {},
        "raw_score": item.raw_score, "prediction": item.prediction, "threshold": item.threshold,
        "policy_version": item.policy_version, "outcome": item.outcome,
        "outcome_labels": item.outcome_labels or [], "contributions": item.contributions or {},
        "contribution_method": item.contribution_method,
        "contribution_scale": item.contribution_scale, "base_value": item.base_value,
        "reference": item.reference or {}, "recipients": item.recipients or [],
        "reviewer": item.reviewer, "review_action": item.review_action,
        "reviewed_at": item.reviewed_at}
        for item, decision_id in zip(items, _uuid4_texts(len(items)), strict=True)]


def _uuid4_texts(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text, from one read of the system's randomness:
    a UUID object each took longer to make than the rest of its record."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes(b & 0x0F | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes(b & 0x3F | 0x80 for b in raw[8::16])  # RFC 4122 variant
    text = raw.hex()
    return [f"{text[i:i + 8]}-{text[i + 8:i + 12]}-{text[i + 12:i + 16]}-{text[i + 16:i + 20]}-"
            f"{text[i + 20:i + 32]}" for i in range(0, 32 * count, 32)]


@transaction.atomic(durable=True)
def decision_review(*, decision: Decision, action: str, actor: Actor) -> Decision:
    """A person reviewed the automated decision (Art. 22(3)): who, what, when."""
    if not action.strip():
        raise ApplicationError("'action' is required: what the reviewer did.", kind="invalid")
    decision = Decision.objects.select_for_update().get(pk=decision.pk)
    before = {"reviewer": decision.reviewer, "review_action": decision.review_action,
              "reviewed_at": decision.reviewed_at.isoformat() if decision.reviewed_at else None}
    decision.reviewer = actor.user.email if actor.user else actor.label
    decision.review_action, decision.reviewed_at = action.strip()[:200], timezone.now()
    decision.save(update_fields=["reviewer", "review_action", "reviewed_at"])
    audit_record(org=decision.org, actor=actor, action="decision.reviewed", target=decision,
                 target_label=str(decision.decision_id), before=before,
                 after={"reviewer": decision.reviewer, "review_action": decision.review_action,
                        "reviewed_at": decision.reviewed_at.isoformat()})
    return decision
