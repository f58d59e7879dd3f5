"""Compliance profile, feature catalogue, disclosure requests, their generations and each
version's review and delivery. Each public function is one transaction with its audit event.
The raw customer identifier and the customer's name never reach the audit trail: events carry
the request's id and the HMAC subject reference."""

import datetime
import hashlib
import re

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record
from config.exceptions import ApplicationError
from config.jobs import runner
from models_registry.decisions import subject_ref_of
from models_registry.models import RegisteredModel
from reports.completeness import disclosure_check, subject_decisions
from reports.models import (
    LANGUAGES,
    ComplianceProfile,
    DeliveryChannel,
    Disclosure,
    DisclosureRequest,
    DisclosureStatus,
    FeatureDescription,
)
from tenancy.selectors import is_service_account

JOB = "reports.generate"  # the job kind (reports/jobs.py)
STORAGE = "reports"  # STORAGES["reports"]: the PDFs, every version kept
MAX_EXTENSION = relativedelta(months=3)  # one month, plus up to two more (Art. 12(3))
SHA256 = re.compile(r"[0-9a-f]{64}")


def _checked(instance) -> None:
    """full_clean as an ApplicationError naming the fields (a 400 with nothing written)."""
    try:
        instance.full_clean(exclude=["org", "registered_model", "request", "created_by",
                                     "requested_by"])
    except ValidationError as exc:
        fields = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
        raise ApplicationError("; ".join(f"{k}: {v[0]}" for k, v in fields.items()),
                               kind="invalid", fields=fields) from None


def _changes(instance, data: dict) -> tuple[dict, dict]:
    """Set `data` on `instance`; (before, after) of the fields that changed."""
    current = model_to_dict(instance)
    before, after = {}, {}
    for name, value in data.items():
        if current.get(name) != value:
            before[name], after[name] = current.get(name), value
            setattr(instance, name, value)
    return before, after


@transaction.atomic(durable=True)
def compliance_profile_set(*, org, actor: Actor, data: dict) -> ComplianceProfile:
    """Create or change the organization's profile (only the fields given change)."""
    profile = ComplianceProfile.objects.select_for_update().filter(org=org).first() \
        or ComplianceProfile(org=org)
    created = profile.pk is None
    before, after = _changes(profile, data)
    _checked(profile)
    if after or created:
        profile.save()
        audit_record(org=org, actor=actor, target=profile, target_label="compliance profile",
                     action="compliance_profile.created" if created else
                     "compliance_profile.changed", before=None if created else before,
                     after=after)
    return profile


@transaction.atomic(durable=True)
def feature_description_set(*, registered_model: RegisteredModel, feature: str, actor: Actor,
                            data: dict) -> FeatureDescription:
    """Describe one input of a model (create, or change the fields given)."""
    description = FeatureDescription.objects.select_for_update().filter(
        registered_model=registered_model, feature=feature).first() or FeatureDescription(
        org=registered_model.org, registered_model=registered_model, feature=feature)
    created = description.pk is None
    before, after = _changes(description, data)
    _checked(description)
    if after or created:
        description.save()
        audit_record(org=registered_model.org, actor=actor, target=description,
                     target_label=f"{registered_model.name}: {feature}",
                     action="feature_description.set", before=None if created else before,
                     after={"feature": feature, **after})
    return description


@transaction.atomic(durable=True)
def feature_description_delete(*, description: FeatureDescription, actor: Actor) -> None:
    audit_record(org=description.org, actor=actor, target=description,
                 target_label=f"{description.registered_model.name}: {description.feature}",
                 action="feature_description.deleted", before={"feature": description.feature})
    description.delete()


def _label(request: DisclosureRequest) -> str:
    return f"disclosure request {request.uuid}"


def _complete(request: DisclosureRequest, language: str) -> None:
    """Refuse a disclosure that would leave a section empty: the organization's profile and
    the catalogue of every feature of the subject's decisions, in the document's language
    (reports/completeness.py). The request names the subject, so its decisions are known."""
    disclosure_check(profile=ComplianceProfile.objects.filter(org=request.org).first(),
                     decisions=subject_decisions(request.org, request.subject_ref),
                     language=language)


@transaction.atomic(durable=True)
def disclosure_request_create(*, org, actor: Actor, subject: str, subject_name: str,
                              received_on: datetime.date, identity_verification: str,
                              language: str) -> DisclosureRequest:
    """Record a customer's access request: due one month after receipt. Refused (409, naming
    the fields) while the organization's profile or feature catalogue is incomplete for it."""
    if not subject.strip():
        raise ApplicationError("The customer identifier is required.", kind="invalid",
                               fields={"subject": ["required"]})
    if received_on > timezone.localdate():
        raise ApplicationError("A request cannot be received in the future.", kind="invalid",
                               fields={"received_on": ["in the future"]})
    request = DisclosureRequest(
        org=org, subject_ref=subject_ref_of(org, subject.strip()), subject_name=subject_name,
        received_on=received_on, due_on=received_on + relativedelta(months=1),
        identity_verification=identity_verification, language=language, created_by=actor.user)
    _checked(request)
    _complete(request, language)  # a 409 naming what is missing, before anything is written
    request.save()
    audit_record(org=org, actor=actor, action="disclosure_request.created", target=request,
                 target_label=_label(request),
                 after={"subject_ref": request.subject_ref, "received_on": received_on,
                        "due_on": request.due_on, "language": language})
    return request


@transaction.atomic(durable=True)
def disclosure_request_extend(*, request: DisclosureRequest, actor: Actor,
                              extended_until: datetime.date, reason: str) -> DisclosureRequest:
    """Extend the deadline by up to two more months, with a reason the customer is told
    within the first month (so only before the first due date)."""
    request = DisclosureRequest.objects.select_for_update().get(pk=request.pk)
    if request.delivered:
        raise ApplicationError(
            f"Version {request.delivered.version} was delivered on "
            f"{request.delivered.delivered_at:%Y-%m-%d}: the request is answered, and its "
            "deadline can no longer be extended.", kind="conflict")
    problems = {}
    if not reason.strip():
        problems["reason"] = "An extension needs a reason (Art. 12(3) GDPR)."
    if not request.due_on < extended_until <= request.received_on + MAX_EXTENSION:
        problems["extended_until"] = (
            f"Must be after {request.due_on} and at most three months after receipt "
            f"({request.received_on + MAX_EXTENSION}).")
    if not request.extendable:
        problems["extended_until"] = "The first month has passed: it can no longer be extended."
    if problems:
        raise ApplicationError(" ".join(problems.values()), kind="invalid",
                               fields={k: [v] for k, v in problems.items()})
    before = {"extended_until": request.extended_until}
    request.extended_until, request.extension_reason = extended_until, reason.strip()
    request.save(update_fields=["extended_until", "extension_reason"])
    audit_record(org=request.org, actor=actor, action="disclosure_request.extended",
                 target=request, target_label=_label(request), before=before,
                 after={"extended_until": extended_until, "reason": request.extension_reason})
    return request


@transaction.atomic(durable=True)
def disclosure_generate(*, request: DisclosureRequest, actor: Actor,
                        language: str = "") -> Disclosure:
    """A new version of the request's PDF, generated by a worker of the `reports` queue;
    refused (409) while the profile or the catalogue is incomplete for its language."""
    language = language or request.language
    if language not in dict(LANGUAGES):
        raise ApplicationError("'language' must be 'de' or 'en'.", kind="invalid",
                               fields={"language": ["de or en"]})
    request = DisclosureRequest.objects.select_for_update().get(pk=request.pk)
    _complete(request, language)
    last = request.disclosures.order_by("-version").values_list("version", flat=True).first()
    disclosure = Disclosure.objects.create(org=request.org, request=request,
                                           version=(last or 0) + 1, language=language,
                                           requested_by=actor.user)
    audit_record(org=request.org, actor=actor, action="disclosure.requested",
                 target=disclosure, target_label=str(disclosure),
                 after={"request": str(request.uuid), "version": disclosure.version,
                        "language": language})
    runner.submit(JOB, disclosure.pk)
    return disclosure


def _locked(pk: int) -> Disclosure | None:
    return Disclosure.objects.select_for_update(of=("self",)).select_related(
        "request", "org").filter(pk=pk).first()


def disclosure_claim_within(*, pk: int, attempt: int, actor: Actor) -> bool:
    """The job runner's claim: attempt `attempt` generates the version (False: it is not
    queued any more). In the runner's transaction."""
    disclosure = _locked(pk)
    if disclosure is None or disclosure.status != DisclosureStatus.QUEUED:
        return False
    disclosure.status, disclosure.attempt = DisclosureStatus.RUNNING, attempt
    disclosure.started_at = timezone.now()
    disclosure.save(update_fields=["status", "attempt", "started_at"])
    audit_record(org=disclosure.org, actor=actor, action="disclosure.started",
                 target=disclosure, target_label=str(disclosure), after={"attempt": attempt})
    return True


def _held(pk: int, attempt: int) -> Disclosure:
    disclosure = _locked(pk)
    if disclosure is None or disclosure.attempt != attempt or \
            disclosure.status != DisclosureStatus.RUNNING:
        raise ApplicationError("This generation attempt no longer holds the disclosure.",
                               kind="conflict")
    return disclosure


@transaction.atomic(durable=True)
def disclosure_anchor(*, pk: int, attempt: int, content_sha256: str, decision_ids: list[str],
                      actor: Actor):
    """Record the content's SHA-256 before rendering: the event the cover points to."""
    disclosure = _held(pk, attempt)
    disclosure.content_sha256, disclosure.decision_count = content_sha256, len(decision_ids)
    event = audit_record(org=disclosure.org, actor=actor, action="disclosure.content_anchored",
                         target=disclosure, target_label=str(disclosure),
                         after={"content_sha256": content_sha256, "decisions": decision_ids,
                                "subject_ref": disclosure.request.subject_ref})
    disclosure.anchor_seq = event.seq
    disclosure.save(update_fields=["content_sha256", "decision_count", "anchor_seq"])
    return event


@transaction.atomic(durable=True)
def disclosure_finish(*, pk: int, attempt: int, file_name: str, sha256: str, size: int,
                      checkpoint_size: int, actor: Actor) -> Disclosure:
    disclosure = _held(pk, attempt)
    disclosure.status, disclosure.generated_at = DisclosureStatus.READY, timezone.now()
    disclosure.file_name, disclosure.sha256, disclosure.size = file_name, sha256, size
    disclosure.checkpoint_size = checkpoint_size
    disclosure.save(update_fields=["status", "generated_at", "file_name", "sha256", "size",
                                   "checkpoint_size"])
    audit_record(org=disclosure.org, actor=actor, action="disclosure.generated",
                 target=disclosure, target_label=str(disclosure),
                 after={"sha256": sha256, "size": size, "content_sha256":
                        disclosure.content_sha256, "anchor_seq": disclosure.anchor_seq,
                        "checkpoint_size": checkpoint_size})
    return disclosure


def disclosure_end_within(*, pk: int, attempt: int, message: str, actor: Actor,
                          again: bool = False) -> bool:
    """An attempt that did not produce the PDF: FAILED with the message, or QUEUED again
    (`again`: the job runner retries it). False when the attempt no longer holds it."""
    disclosure = _locked(pk)
    if disclosure is None or disclosure.status != DisclosureStatus.RUNNING or \
            disclosure.attempt != attempt:
        return False
    disclosure.status = DisclosureStatus.QUEUED if again else DisclosureStatus.FAILED
    disclosure.status_message = message[:4000]
    disclosure.save(update_fields=["status", "status_message"])
    audit_record(org=disclosure.org, actor=actor, target=disclosure,
                 target_label=str(disclosure),
                 action="disclosure.requeued" if again else "disclosure.failed",
                 before={"status": DisclosureStatus.RUNNING},
                 after={"status": disclosure.status, "message": message[:4000]})
    return True


@transaction.atomic(durable=True)
def disclosure_fail(*, pk: int, attempt: int, message: str, actor: Actor) -> bool:
    """What the officer must fix (no compliance profile, ...): FAILED with the message."""
    return disclosure_end_within(pk=pk, attempt=attempt, message=message, actor=actor)


def disclosure_open(*, disclosure: Disclosure, actor: Actor):
    """The PDF of a ready version, for download: opened first, so a missing file is not
    recorded as downloaded, then the download recorded."""
    handle = storages[STORAGE].open(disclosure.file_name, "rb")
    try:
        disclosure_downloaded(disclosure=disclosure, actor=actor)
    except BaseException:
        handle.close()
        raise
    return handle


@transaction.atomic(durable=True)
def disclosure_downloaded(*, disclosure: Disclosure, actor: Actor) -> None:
    """Every download is recorded (who took the customer's data out, and when)."""
    if disclosure.status != DisclosureStatus.READY:
        raise ApplicationError(f"{disclosure} is {disclosure.status}, not ready.",
                               kind="conflict")
    audit_record(org=disclosure.org, actor=actor, action="disclosure.downloaded",
                 target=disclosure, target_label=str(disclosure),
                 after={"sha256": disclosure.sha256})


def _steps_locked(disclosure: Disclosure) -> Disclosure:
    """The version for its review or delivery, locked after its request (the order
    disclosure_generate takes), so that a delivery and an extension do not pass each other."""
    DisclosureRequest.objects.select_for_update().get(pk=disclosure.request_id)
    return _locked(disclosure.pk)


def _sha256_or_none(text: str) -> str | None:
    """Free text the officer wrote (a note, a tracking number) is in the audit trail only as
    its hash: it may name the customer."""
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def _four_eyes(disclosure: Disclosure, actor: Actor) -> None:
    """A person other than the one who asked for the version's generation reviews it (as an
    approval in models_registry is decided by another member)."""
    if actor.user is None or is_service_account(org_id=disclosure.org_id, user=actor.user):
        raise ApplicationError("A disclosure is reviewed by a person: a command or a service "
                               "account cannot review it.", kind="permission_denied")
    if disclosure.requested_by_id == actor.user.pk:
        raise ApplicationError(f"You asked for version {disclosure.version}'s generation; "
                               "another member with compliance rights must review it (four "
                               "eyes).", kind="permission_denied")


@transaction.atomic(durable=True)
def disclosure_review(*, disclosure: Disclosure, actor: Actor, note: str = "") -> Disclosure:
    """Mark a READY version as checked before it goes out: by a compliance officer, admin or
    owner (the callers check the role) who did not ask for its generation."""
    disclosure = _steps_locked(disclosure)
    if disclosure.status != DisclosureStatus.READY:
        raise ApplicationError(f"Version {disclosure.version} is {disclosure.status}: only a "
                               "ready version can be reviewed.", kind="conflict")
    if disclosure.reviewed_at:
        raise ApplicationError(f"Version {disclosure.version} was reviewed already, on "
                               f"{disclosure.reviewed_at:%Y-%m-%d %H:%M}.", kind="conflict")
    _four_eyes(disclosure, actor)
    disclosure.reviewed_by, disclosure.reviewed_at = actor.user, timezone.now()
    disclosure.review_note = note.strip()
    disclosure.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    audit_record(org=disclosure.org, actor=actor, action="disclosure.reviewed",
                 target=disclosure, target_label=str(disclosure),
                 after={"request": str(disclosure.request.uuid), "version": disclosure.version,
                        "note_sha256": _sha256_or_none(disclosure.review_note)})
    return disclosure


def _delivery_checked(disclosure: Disclosure, *, channel: str, sha256: str,
                      delivered_at: datetime.datetime) -> None:
    """What the caller says about a delivery: a 400 naming each field that is wrong."""
    problems = {}
    if channel not in DeliveryChannel.values:
        problems["channel"] = f"Must be one of {', '.join(DeliveryChannel.values)}."
    if sha256 and not SHA256.fullmatch(sha256):
        problems["sha256"] = "Must be 64 hexadecimal digits."
    if delivered_at > timezone.now():
        problems["delivered_at"] = "A delivery cannot be in the future."
    elif disclosure.reviewed_at and delivered_at < disclosure.reviewed_at:
        problems["delivered_at"] = (f"Before the version's review "
                                    f"({disclosure.reviewed_at:%Y-%m-%d %H:%M} UTC).")
    if problems:
        raise ApplicationError(" ".join(f"{k}: {v}" for k, v in problems.items()),
                               kind="invalid", fields={k: [v] for k, v in problems.items()})


def _deliverable(disclosure: Disclosure) -> None:
    """The steps come in order: generated, reviewed, then delivered, once (409 otherwise)."""
    if disclosure.status != DisclosureStatus.READY:
        problem = f"is {disclosure.status}: only a ready and reviewed version can be delivered"
    elif disclosure.delivered_at:
        problem = f"was delivered already, on {disclosure.delivered_at:%Y-%m-%d %H:%M}"
    elif not disclosure.reviewed_at:
        problem = "is not reviewed yet: another member reviews it before it is delivered"
    else:
        return
    raise ApplicationError(f"Version {disclosure.version} {problem}.", kind="conflict")


def _stored_sha256(disclosure: Disclosure) -> str:
    """The SHA-256 of the version's file as storage holds it now: what is delivered is the
    file on record, so it must still be the one recorded when it was stored (409 if not)."""
    digest = hashlib.sha256()
    try:
        with storages[STORAGE].open(disclosure.file_name, "rb") as handle:
            for chunk in handle.chunks():
                digest.update(chunk)
    except OSError:
        raise ApplicationError(f"The file of version {disclosure.version} is missing from "
                               "storage: generate a new version.", kind="conflict") from None
    if digest.hexdigest() != disclosure.sha256:
        raise ApplicationError(
            f"The stored file of version {disclosure.version} is no longer the one generated "
            f"(SHA-256 {digest.hexdigest()}, recorded {disclosure.sha256}): it cannot be "
            "delivered; generate a new version.", kind="conflict")
    return disclosure.sha256


@transaction.atomic(durable=True)
def disclosure_deliver(*, disclosure: Disclosure, actor: Actor, channel: str, sha256: str = "",
                       reference: str = "",
                       delivered_at: datetime.datetime | None = None) -> Disclosure:
    """Record that a reviewed version reached the customer, which answers the request. The
    delivered file's SHA-256 is computed from storage; a hash the caller sends (of the file it
    sent) must be that one."""
    disclosure = _steps_locked(disclosure)
    sha256, delivered_at = sha256.strip().lower(), delivered_at or timezone.now()
    _delivery_checked(disclosure, channel=channel, sha256=sha256, delivered_at=delivered_at)
    _deliverable(disclosure)
    stored = _stored_sha256(disclosure)
    if sha256 and sha256 != stored:
        raise ApplicationError(
            f"sha256: not the SHA-256 of version {disclosure.version}'s file ({stored}).",
            kind="invalid", fields={"sha256": [f"not the file of version {disclosure.version}"]})
    disclosure.delivered_by, disclosure.delivered_at = actor.user, delivered_at
    disclosure.delivery_channel, disclosure.delivered_sha256 = channel, stored
    disclosure.delivery_reference = reference.strip()
    disclosure.save(update_fields=["delivered_by", "delivered_at", "delivery_channel",
                                   "delivered_sha256", "delivery_reference"])
    audit_record(org=disclosure.org, actor=actor, action="disclosure.delivered",
                 target=disclosure, target_label=str(disclosure),
                 after={"request": str(disclosure.request.uuid), "version": disclosure.version,
                        "channel": channel, "delivered_at": delivered_at, "sha256": stored,
                        "reference_sha256": _sha256_or_none(disclosure.delivery_reference)})
    return disclosure
