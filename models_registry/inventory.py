"""The model risk inventory (SR 11-7, EBA/GL/2020/06 section 4.3.4, ECB TRIM): per registered
model an owner, a risk tier, intended use and limitations, a review cycle, and independent
validations. Services write it, each in one transaction with its audit event; selectors read it,
now (the tables) or as of a past moment (the audit trail).

Point-in-time state is rebuilt from the audit trail, not from a second copy: every event of an
inventory change carries the whole entry (`entry_state`) or the whole validation
(`validation_state`) in its `after`, so replaying an organization's events up to a moment, in
sequence order, gives the inventory as it was then. Renames and deletions of the registered
model come from its own events (`registered_model.renamed` / `.deleted`).
"""

import calendar
import datetime
import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEvent
from audit.services import audit_record
from config.exceptions import ApplicationError
from models_registry.models import (
    InventoryEntry,
    ModelValidation,
    RegisteredModel,
    RiskTier,
    ValidationOutcome,
)
from models_registry.services import _locked_model, invalid
from tenancy.models import MemberKind, Membership
from tracking.artifacts import artifact_open, artifact_path_clean, artifact_path_of_uri
from tracking.models import Run

MAX_EVIDENCE = 20
MAX_FREQUENCY_MONTHS = 60
ENTRY_FIELDS = ("owner", "risk_tier", "intended_use", "limitations", "review_frequency_months")
ENTRY_ACTIONS = ("inventory.entry_created", "inventory.entry_updated",
                 "inventory.review_recorded")
VALIDATION_ACTION = "inventory.validation_recorded"
MODEL_ACTIONS = ("registered_model.renamed", "registered_model.deleted")


def add_months(day: datetime.date, months: int) -> datetime.date:
    """`day` plus `months` calendar months, kept to the last day of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month,
                       day=min(day.day, calendar.monthrange(year, month)[1]))


# --- the state an audit event carries --------------------------------------------------------

def entry_state(entry: InventoryEntry) -> dict:
    """The whole entry, as its audit events carry it (what inventory_as_of replays)."""
    return {"model_id": entry.registered_model_id, "model": entry.registered_model.name,
            "owner": entry.owner.email, "risk_tier": entry.risk_tier,
            "intended_use": entry.intended_use, "limitations": entry.limitations,
            "review_frequency_months": entry.review_frequency_months,
            "last_reviewed_on": _iso(entry.last_reviewed_on),
            "next_review_due": _iso(entry.next_review_due),
            "created_on": _iso(timezone.localdate(entry.created_at))}


def validation_state(validation: ModelValidation) -> dict:
    return {"validation_id": validation.pk, "model_id": validation.registered_model_id,
            "model": validation.registered_model.name,
            "validated_by": validation.validated_by.email,
            "validated_on": _iso(validation.validated_on), "scope": validation.scope,
            "findings": validation.findings, "outcome": validation.outcome,
            "evidence": validation.evidence}


def _iso(day: datetime.date | None) -> str | None:
    return day.isoformat() if day else None


# --- checks ------------------------------------------------------------------------------------

def _member(org, email: str, field: str):
    """A person who is a member of `org` (service accounts answer for no model)."""
    membership = Membership.objects.select_related("user").filter(
        org=org, user__email__iexact=(email or "").strip()).first()
    if membership is None or membership.kind == MemberKind.SERVICE:
        raise ApplicationError(f"'{email}' is not a person who is a member of this "
                               "organization.", kind="invalid", fields={field: ["not a member"]})
    return membership.user


def _check_fields(values: dict) -> None:
    if "risk_tier" in values and values["risk_tier"] not in RiskTier.values:
        raise ApplicationError(f"Risk tier must be one of {', '.join(RiskTier.values)}.",
                               kind="invalid", fields={"risk_tier": ["unknown tier"]})
    months = values.get("review_frequency_months", 1)
    if not isinstance(months, int) or not 1 <= months <= MAX_FREQUENCY_MONTHS:
        raise ApplicationError(f"Review frequency is a number of months from 1 to "
                               f"{MAX_FREQUENCY_MONTHS}.", kind="invalid",
                               fields={"review_frequency_months": ["out of range"]})
    if "intended_use" in values and not (values["intended_use"] or "").strip():
        raise ApplicationError("Intended use is required: what the model may be used for.",
                               kind="invalid", fields={"intended_use": ["required"]})


def _not_future(day: datetime.date | None, field: str) -> None:
    if day is not None and day > timezone.localdate():
        raise ApplicationError(f"{field.replace('_', ' ').capitalize()} cannot be in the "
                               "future.", kind="invalid", fields={field: ["in the future"]})


def _schedule(entry: InventoryEntry) -> None:
    """The next review: a review cycle after the last review, or after the entry was made."""
    start = entry.last_reviewed_on or timezone.localdate(entry.created_at or timezone.now())
    entry.next_review_due = add_months(start, entry.review_frequency_months)


def _locked_entry(entry: InventoryEntry) -> InventoryEntry:
    # Lock order of every registry write: the model, then what hangs from it.
    _locked_model(entry.registered_model)
    return InventoryEntry.objects.select_for_update(of=("self",)) \
        .select_related("registered_model", "owner").get(pk=entry.pk)


# --- services ----------------------------------------------------------------------------------

@transaction.atomic(durable=True)
def inventory_entry_create(*, model: RegisteredModel, owner: str, risk_tier: str,
                           intended_use: str, review_frequency_months: int, actor: Actor,
                           limitations: str = "",
                           last_reviewed_on: datetime.date | None = None) -> InventoryEntry:
    """Add a registered model to the inventory; `owner` is a member's email."""
    model = _locked_model(model)
    _check_fields({"risk_tier": risk_tier, "intended_use": intended_use,
                   "review_frequency_months": review_frequency_months})
    _not_future(last_reviewed_on, "last_reviewed_on")
    entry = InventoryEntry(org_id=model.org_id, registered_model=model,
                           owner=_member(model.org, owner, "owner"), risk_tier=risk_tier,
                           intended_use=intended_use.strip(), limitations=limitations.strip(),
                           review_frequency_months=review_frequency_months,
                           last_reviewed_on=last_reviewed_on)
    _schedule(entry)
    entry.full_clean(exclude=["registered_model"])  # its uniqueness: the constraint below
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:  # the one-to-one: already in the inventory
        raise ApplicationError(f"Registered model '{model.name}' is already in the inventory.",
                               kind="already_exists") from None
    audit_record(org=model.org, actor=actor, action="inventory.entry_created", target=entry,
                 target_label=model.name, after=entry_state(entry))
    return entry


@transaction.atomic(durable=True)
def inventory_entry_update(*, entry: InventoryEntry, actor: Actor, **changes) -> InventoryEntry:
    """Change any of ENTRY_FIELDS (`owner` by email); the next review date follows a new
    frequency. A change that changes nothing writes nothing."""
    unknown = set(changes) - set(ENTRY_FIELDS)
    if unknown:
        raise invalid(f"Unknown inventory field(s): {', '.join(sorted(unknown))}.")
    entry = _locked_entry(entry)
    _check_fields(changes)
    before = entry_state(entry)
    for field, value in changes.items():
        if field == "owner":
            value = _member(entry.registered_model.org, value, "owner")
        setattr(entry, field, value.strip() if isinstance(value, str) else value)
    _schedule(entry)
    entry.full_clean(exclude=["registered_model"])
    after = entry_state(entry)
    if after == before:
        return entry
    entry.save()
    audit_record(org=entry.registered_model.org, actor=actor, action="inventory.entry_updated",
                 target=entry, target_label=entry.registered_model.name, before=before,
                 after=after)
    return entry


@transaction.atomic(durable=True)
def inventory_review_record(*, entry: InventoryEntry, reviewed_on: datetime.date,
                            actor: Actor) -> InventoryEntry:
    """The periodic review was done on `reviewed_on`: the next one is a cycle later."""
    entry = _locked_entry(entry)
    _not_future(reviewed_on, "reviewed_on")
    if entry.last_reviewed_on and reviewed_on < entry.last_reviewed_on:
        raise ApplicationError(f"The last review was on {entry.last_reviewed_on}; a review "
                               "cannot be recorded before it.", kind="invalid",
                               fields={"reviewed_on": ["before the last review"]})
    before = entry_state(entry)
    entry.last_reviewed_on = reviewed_on
    _schedule(entry)
    entry.save(update_fields=["last_reviewed_on", "next_review_due"])
    audit_record(org=entry.registered_model.org, actor=actor,
                 action="inventory.review_recorded", target=entry,
                 target_label=entry.registered_model.name, before=before,
                 after=entry_state(entry))
    return entry


def validation_record(*, model: RegisteredModel, actor: Actor, validated_on: datetime.date,
                      scope: str, outcome: str, findings: str = "",
                      validated_by: str | None = None,
                      evidence: list[str] | tuple = ()) -> ModelValidation:
    """Record an independent validation. The evidence files are read and hashed first (outside
    the transaction: files may be large), so the record names exactly what was looked at."""
    if outcome not in ValidationOutcome.values:
        raise ApplicationError(f"Outcome must be one of {', '.join(ValidationOutcome.values)}.",
                               kind="invalid", fields={"outcome": ["unknown outcome"]})
    if not (scope or "").strip():
        raise ApplicationError("Scope is required: what the validation covered.",
                               kind="invalid", fields={"scope": ["required"]})
    _not_future(validated_on, "validated_on")
    if len(evidence) > MAX_EVIDENCE:
        raise ApplicationError(f"At most {MAX_EVIDENCE} evidence files.", kind="invalid",
                               fields={"evidence": ["too many"]})
    files = [_evidence_file(model.org, ref) for ref in evidence]
    return _validation_save(model=model, actor=actor, validated_on=validated_on,
                            scope=scope.strip(), outcome=outcome, findings=findings.strip(),
                            validated_by=validated_by, evidence=files)


@transaction.atomic(durable=True)
def _validation_save(*, model, actor, validated_by, **fields) -> ModelValidation:
    model = _locked_model(model)
    entry = InventoryEntry.objects.filter(registered_model=model).select_related("owner").first()
    if entry is None:
        raise ApplicationError(f"Registered model '{model.name}' is not in the inventory; add "
                               "it first.", kind="invalid")
    user = _member(model.org, validated_by, "validated_by") if validated_by else actor.user
    if user is None or not getattr(user, "pk", None):
        raise ApplicationError("A validation is recorded by, or for, a member.",
                               kind="permission_denied")
    if user.pk == entry.owner_id:  # SR 11-7: validation independent of the model's owner
        raise ApplicationError(f"{user.email} owns '{model.name}' in the inventory; its "
                               "validation must be independent of its owner.", kind="invalid",
                               fields={"validated_by": ["the model's owner"]})
    validation = ModelValidation(org_id=model.org_id, registered_model=model, validated_by=user,
                                 **fields)
    validation.full_clean()
    validation.save()
    audit_record(org=model.org, actor=actor, action=VALIDATION_ACTION, target=validation,
                 target_label=model.name, after=validation_state(validation))
    return validation


def _evidence_file(org, ref: str) -> dict:
    """An evidence reference, checked and hashed: a path in the organization's artifact store
    as the mlflow client writes it (`runs:/<run id>/<path>`, `mlflow-artifacts:/<path>` or
    `<experiment id>/<run id>/artifacts/<path>`)."""
    ref = (ref or "").strip()
    if ref.startswith("runs:/"):
        run_id, _, rest = ref.removeprefix("runs:/").partition("/")
        run = Run.objects.filter(org=org, run_uuid=run_id).first()
        if run is None or not rest:
            raise ApplicationError(f"Evidence '{ref}': no such run or no path in it.",
                                   kind="invalid", fields={"evidence": [ref]})
        path = f"{artifact_path_of_uri(run.artifact_uri)}/{artifact_path_clean(rest)}"
    elif ref.startswith("mlflow-artifacts:"):
        path = artifact_path_clean(artifact_path_of_uri(ref))
    else:
        path = artifact_path_clean(ref)
    try:
        handle = artifact_open(org=org, path=path)
    except ApplicationError as exc:
        raise ApplicationError(f"Evidence '{ref}': {exc.message}", kind="invalid",
                               fields={"evidence": [ref]}) from None
    digest, size = hashlib.sha256(), 0
    with handle:
        for chunk in handle.chunks():
            digest.update(chunk)
            size += len(chunk)
    return {"path": path, "sha256": digest.hexdigest(), "size": size}


# --- selectors ---------------------------------------------------------------------------------

@dataclass
class InventoryItem:
    """One model's inventory entry as of a date, with its latest validation then."""

    state: dict
    latest_validation: dict | None
    validations: int
    as_of: datetime.date

    @property
    def overdue(self) -> bool:
        return self.state["next_review_due"] < self.as_of.isoformat()

    @property
    def blocked(self) -> bool:
        return bool(self.latest_validation) and \
            self.latest_validation["outcome"] == ValidationOutcome.NOT_APPROVED

    def as_dict(self) -> dict:
        return {**self.state, "overdue": self.overdue, "validations": self.validations,
                "latest_validation": self.latest_validation,
                "protected_aliases_blocked": self.blocked}


def _cutoff(when) -> tuple[datetime.datetime, datetime.date]:
    """A date means the end of that day (the server's time zone); a datetime, that moment."""
    if isinstance(when, datetime.datetime):
        return when, timezone.localdate(when)
    start = timezone.make_aware(datetime.datetime.combine(when + datetime.timedelta(days=1),
                                                          datetime.time()))
    return start - datetime.timedelta(microseconds=1), when


def inventory_as_of(org, when) -> list[InventoryItem]:
    """Every model's inventory entry as it was at `when` (a date: its end), rebuilt from the
    organization's audit events in sequence order. Sorted by model name."""
    cutoff, day = _cutoff(when)
    entries, validations = {}, {}
    events = AuditEvent.objects.filter(
        org=org, created_at__lte=cutoff,
        action__in=(*ENTRY_ACTIONS, VALIDATION_ACTION, *MODEL_ACTIONS),
    ).order_by("seq").values_list("action", "target_id", "after")
    for action, target_id, after in events.iterator(chunk_size=2000):
        if action in ENTRY_ACTIONS:
            entries[after["model_id"]] = after
        elif action == VALIDATION_ACTION:
            validations.setdefault(after["model_id"], []).append(after)
        elif int(target_id) in entries:  # the registered model's own change
            if action == "registered_model.deleted":
                entries.pop(int(target_id))
            else:
                entries[int(target_id)] = {**entries[int(target_id)], "model": after["name"]}
    return sorted((_item(state, validations.get(model_id, []), day)
                   for model_id, state in entries.items()), key=lambda i: i.state["model"])


def _item(state: dict, validations: list[dict], day: datetime.date) -> InventoryItem:
    latest = max(validations, key=lambda v: (v["validated_on"], v["validation_id"]),
                 default=None)
    return InventoryItem({**state}, latest and {**latest, "model": state["model"]},
                         len(validations), day)


def inventory_current(org) -> list[InventoryItem]:
    """The inventory now, from the tables (inventory_as_of(org, now) gives the same)."""
    entries = InventoryEntry.objects.filter(org=org, registered_model__deleted=False) \
        .select_related("registered_model", "owner")
    found: dict[int, list[dict]] = {}
    for validation in ModelValidation.objects.filter(org=org) \
            .select_related("registered_model", "validated_by"):
        found.setdefault(validation.registered_model_id, []).append(
            validation_state(validation))
    today = timezone.localdate()
    return sorted((_item(entry_state(e), found.get(e.registered_model_id, []), today)
                   for e in entries), key=lambda i: i.state["model"])


def inventory_item(entry: InventoryEntry) -> InventoryItem:
    """One entry now, from the tables."""
    validations = ModelValidation.objects.filter(registered_model_id=entry.registered_model_id) \
        .select_related("registered_model", "validated_by")
    return _item(entry_state(entry), [validation_state(v) for v in validations],
                 timezone.localdate())


def inventory_entry_get(*, org, name: str) -> InventoryEntry:
    entry = InventoryEntry.objects.select_related("registered_model", "owner").filter(
        org=org, registered_model__name=name, registered_model__deleted=False).first()
    if entry is None:
        raise ApplicationError(f"Registered model '{name}' has no inventory entry.",
                               kind="not_found")
    return entry


def validation_list(*, org, name: str):
    return ModelValidation.objects.filter(
        org=org, registered_model__name=name, registered_model__deleted=False,
    ).select_related("registered_model", "validated_by").order_by("-validated_on", "-pk")
