"""Writes to the registry. Each public function is one transaction with its audit event(s)
(DESIGN.md invariant 1); the MLflow adapter, the DRF API, the admin and the worker call these.
"""

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from mlflow.exceptions import MlflowException
from mlflow.utils import validation as mlflow_validation

from audit.actors import Actor
from audit.services import audit_record
from config.exceptions import ApplicationError
from config.jobs import runner
from models_registry.models import (
    AliasApproval,
    ApprovalStatus,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    ProtectedAlias,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
    ValidationOutcome,
    VersionStatus,
)
from models_registry.selectors import latest_validation
from models_registry.sources import source_resolve
from tenancy.selectors import is_service_account
from tracking.services.common import now_ms


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid")


def _mlflow_checked(check, *args) -> None:
    """MLflow's own validators, their messages as our 4xx."""
    try:
        check(*args)
    except MlflowException as exc:
        raise invalid(exc.message) from None


def _locked_model(model: RegisteredModel) -> RegisteredModel:
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if model.deleted:
        raise ApplicationError(f"Registered Model with name={model.name} not found",
                               kind="not_found")
    return model


def _locked_version(version: ModelVersion) -> ModelVersion:
    version = ModelVersion.objects.select_related("registered_model") \
        .select_for_update(of=("self",)).get(pk=version.pk)
    if version.deleted:
        raise ApplicationError(f"Model Version (name={version.registered_model.name}, "
                               f"version={version.version}) not found", kind="not_found")
    return version


def _touch(obj) -> None:
    obj.last_updated_timestamp = now_ms()
    obj.save(update_fields=["last_updated_timestamp"])


# --- registered models -----------------------------------------------------------------------

def _ensure_name_free(org, name: str) -> None:
    if RegisteredModel.objects.filter(org=org, name=name, deleted=False).exists():
        raise ApplicationError(f"Registered Model (name={name}) already exists.",
                               kind="already_exists")


@transaction.atomic(durable=True)
def registered_model_create(*, org, name: str, actor: Actor, description: str = "",
                            tags: dict | None = None) -> RegisteredModel:
    _mlflow_checked(mlflow_validation._validate_model_name, name)
    for key, value in (tags or {}).items():
        _mlflow_checked(mlflow_validation._validate_registered_model_tag, key, value)
    _ensure_name_free(org, name)
    now = now_ms()
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                org=org, name=name, description=description, creation_timestamp=now,
                last_updated_timestamp=now, user_id=getattr(actor.user, "email", "") or "")
    except IntegrityError:  # created by a concurrent request
        raise ApplicationError(f"Registered Model (name={name}) already exists.",
                               kind="already_exists") from None
    RegisteredModelTag.objects.bulk_create(
        RegisteredModelTag(org=org, registered_model=model, key=k, value=v)
        for k, v in (tags or {}).items())
    audit_record(org=org, actor=actor, action="registered_model.created", target=model,
                 target_label=name, after={"name": name, "description": description,
                                           "tags": tags or {}})
    return model


@transaction.atomic(durable=True)
def registered_model_rename(*, model: RegisteredModel, new_name: str,
                            actor: Actor) -> RegisteredModel:
    _mlflow_checked(mlflow_validation._validate_model_renaming, new_name)
    model = _locked_model(model)
    if new_name != model.name:
        _ensure_name_free(model.org, new_name)
    before = {"name": model.name}
    model.name = new_name
    model.last_updated_timestamp = now_ms()
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "last_updated_timestamp"])
    except IntegrityError:  # a concurrent request took the name
        raise ApplicationError(f"Registered Model (name={new_name}) already exists.",
                               kind="already_exists") from None
    audit_record(org=model.org, actor=actor, action="registered_model.renamed", target=model,
                 target_label=new_name, before=before, after={"name": new_name})
    return model


@transaction.atomic(durable=True)
def registered_model_update(*, model: RegisteredModel, description: str,
                            actor: Actor) -> RegisteredModel:
    model = _locked_model(model)
    before = {"description": model.description}
    model.description = description
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["description", "last_updated_timestamp"])
    audit_record(org=model.org, actor=actor, action="registered_model.updated", target=model,
                 target_label=model.name, before=before, after={"description": description})
    return model


def _protected_aliases_of(model: RegisteredModel, versions=None) -> list[str]:
    aliases = ModelAlias.objects.filter(registered_model=model)
    if versions is not None:
        aliases = aliases.filter(model_version__in=versions)
    names = set(aliases.values_list("alias", flat=True))
    return sorted(ProtectedAlias.objects.filter(org=model.org_id, alias__in=names)
                  .values_list("alias", flat=True))


def _cancel_pending(approvals, actor: Actor, reason: str) -> list[int]:
    """Withdraw the pending ones among `approvals`; locked, and only while still pending, so
    an approval decided meanwhile keeps its decision."""
    pending = approvals.filter(status=ApprovalStatus.PENDING)
    cancelled = list(pending.select_for_update().order_by("pk").values_list("pk", flat=True))
    if cancelled:
        AliasApproval.objects.filter(pk__in=cancelled, status=ApprovalStatus.PENDING).update(
            status=ApprovalStatus.CANCELLED, decided_at=timezone.now(), comment=reason)
    return cancelled


@transaction.atomic(durable=True)
def registered_model_delete(*, model: RegisteredModel, actor: Actor) -> None:
    """Leaves the listings; its versions' packages and decisions stay, for the record."""
    model = _locked_model(model)
    protected = _protected_aliases_of(model)
    if protected:
        raise invalid(f"Registered model '{model.name}' holds the protected alias(es) "
                      f"{', '.join(protected)}; have their removal approved first.")
    versions = list(model.versions.filter(deleted=False).values_list("version", flat=True))
    model.versions.filter(deleted=False).update(deleted=True, last_updated_timestamp=now_ms())
    aliases = dict(model.aliases.values_list("alias", "model_version__version"))
    model.aliases.all().delete()
    cancelled = _cancel_pending(model.approvals.all(), actor, "registered model deleted")
    model.deleted = True
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["deleted", "last_updated_timestamp"])
    audit_record(org=model.org, actor=actor, action="registered_model.deleted", target=model,
                 target_label=model.name, before={"versions": versions, "aliases": aliases},
                 after={"deleted": True, "approvals_cancelled": cancelled})


def _tag_change(owner, tag_model, owner_field: str, key: str, value: str | None,
                actor: Actor, action: str, label: str) -> None:
    """Set (value given) or delete (None) one tag of a locked model or version, audited as
    `<action>.tag_set` / `<action>.tag_deleted`. As in MLflow, deleting a tag that is not there
    succeeds and changes nothing."""
    rows = tag_model.objects.filter(**{owner_field: owner, "key": key})
    before = rows.values_list("value", flat=True).first()
    if value is None:
        if before is None:
            return
        rows.delete()
    elif before is None:
        tag_model.objects.create(org_id=owner.org_id, key=key, value=value,
                                 **{owner_field: owner})
    else:
        rows.update(value=value)
    _touch(owner)
    audit_record(org=owner.org, actor=actor,
                 action=f"{action}.tag_set" if value is not None else f"{action}.tag_deleted",
                 target=owner, target_label=label, before={key: before}, after={key: value})


@transaction.atomic(durable=True)
def registered_model_tag(*, model: RegisteredModel, key: str, value: str | None,
                         actor: Actor) -> None:
    """Set a tag, or delete it when `value` is None."""
    if value is not None:
        _mlflow_checked(mlflow_validation._validate_registered_model_tag, key, value)
    model = _locked_model(model)
    _tag_change(model, RegisteredModelTag, "registered_model", key, value, actor,
                "registered_model", model.name)


# --- model versions ----------------------------------------------------------------------------

def _version_view(version: ModelVersion) -> dict:
    return {"name": version.registered_model.name, "version": version.version,
            "status": version.status, "current_stage": version.current_stage,
            "source": version.source, "description": version.description}


@transaction.atomic(durable=True)
def model_version_create(*, model: RegisteredModel, source: str, actor: Actor,
                         run_id: str = "", model_id: str = "", run_link: str = "",
                         description: str = "", tags: dict | None = None) -> ModelVersion:
    for key, value in (tags or {}).items():
        _mlflow_checked(mlflow_validation._validate_model_version_tag, key, value)
    resolved = source_resolve(org=model.org, source=source, run_id=run_id, model_id=model_id)
    model = _locked_model(model)  # serializes version numbering per model
    number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
    now = now_ms()
    version = ModelVersion.objects.create(
        org=model.org, registered_model=model, version=number, description=description,
        user_id=getattr(actor.user, "email", "") or "", creation_timestamp=now,
        last_updated_timestamp=now, source=source, source_path=resolved.path,
        run=resolved.run, run_link=run_link, model_id=resolved.model_id)
    ModelVersionTag.objects.bulk_create(
        ModelVersionTag(org=model.org, model_version=version, key=k, value=v)
        for k, v in (tags or {}).items())
    model.last_updated_timestamp = now
    model.save(update_fields=["last_updated_timestamp"])
    audit_record(org=model.org, actor=actor, action="model_version.created", target=version,
                 target_label=version.label,
                 after={**_version_view(version), "source_path": resolved.path,
                        "run_id": resolved.run.run_uuid if resolved.run else None,
                        "model_id": resolved.model_id, "tags": tags or {}})
    runner.submit(PACKAGING_JOB, version.pk)
    return version


@transaction.atomic(durable=True)
def model_version_update(*, version: ModelVersion, description: str,
                         actor: Actor) -> ModelVersion:
    version = _locked_version(version)
    before = {"description": version.description}
    version.description = description
    version.last_updated_timestamp = now_ms()
    version.save(update_fields=["description", "last_updated_timestamp"])
    audit_record(org=version.org, actor=actor, action="model_version.updated", target=version,
                 target_label=version.label, before=before, after={"description": description})
    return version


STAGES = {s.value.lower(): s.value for s in Stage}


@transaction.atomic(durable=True)
def model_version_transition_stage(*, version: ModelVersion, stage: str,
                                   archive_existing_versions: bool,
                                   actor: Actor) -> ModelVersion:
    if stage.lower() not in STAGES:
        raise invalid(f"Invalid Model Version stage: {stage}. Value must be one of "
                      f"{', '.join(STAGES.values())}.")
    stage = STAGES[stage.lower()]
    if archive_existing_versions and stage not in (Stage.STAGING, Stage.PRODUCTION):
        raise invalid(f"Model version transition cannot archive existing model versions "
                      f"because '{stage}' is not an Active stage. Valid stages are Staging, "
                      "Production.")
    version = _locked_version(version)
    before = {"current_stage": version.current_stage}
    now = now_ms()
    archived = []
    if archive_existing_versions:
        others = version.registered_model.versions.filter(deleted=False, current_stage=stage) \
            .exclude(pk=version.pk)
        archived = list(others.values_list("version", flat=True))
        others.update(current_stage=Stage.ARCHIVED, last_updated_timestamp=now)
    version.current_stage, version.last_updated_timestamp = stage, now
    version.save(update_fields=["current_stage", "last_updated_timestamp"])
    audit_record(org=version.org, actor=actor, action="model_version.stage_changed",
                 target=version, target_label=version.label, before=before,
                 after={"current_stage": stage, "archived_versions": archived})
    return version


@transaction.atomic(durable=True)
def model_version_delete(*, version: ModelVersion, actor: Actor) -> None:
    """Leaves the listings; the package and the decisions it made stay, for the record."""
    version = _locked_version(version)
    protected = _protected_aliases_of(version.registered_model, versions=[version])
    if protected:
        raise invalid(f"{version.label} holds the protected alias(es) {', '.join(protected)}; "
                      "have another version approved for them first.")
    aliases = list(version.aliases.values_list("alias", flat=True))
    version.aliases.all().delete()
    cancelled = _cancel_pending(AliasApproval.objects.filter(model_version=version), actor,
                                "model version deleted")
    version.deleted = True
    version.last_updated_timestamp = now_ms()
    version.save(update_fields=["deleted", "last_updated_timestamp"])
    audit_record(org=version.org, actor=actor, action="model_version.deleted", target=version,
                 target_label=version.label, before={"aliases": aliases},
                 after={"deleted": True, "approvals_cancelled": cancelled})


@transaction.atomic(durable=True)
def model_version_tag(*, version: ModelVersion, key: str, value: str | None,
                      actor: Actor) -> None:
    if value is not None:
        _mlflow_checked(mlflow_validation._validate_model_version_tag, key, value)
    version = _locked_version(version)
    _tag_change(version, ModelVersionTag, "model_version", key, value, actor, "model_version",
                version.label)


# --- aliases and approvals ---------------------------------------------------------------------

class ApprovalRequired(ApplicationError):
    """The alias is protected: a request was recorded (and committed); it awaits approval."""

    def __init__(self, approval: AliasApproval):
        target = (f"version {approval.model_version.version}" if approval.model_version_id
                  else "removal")
        super().__init__(
            f"Alias '{approval.alias}' of registered model '{approval.registered_model.name}' "
            f"is protected: approval request #{approval.pk} ({target}) is pending. A member "
            f"with an approving role other than you must approve it "
            f"(POST /api/v1/approvals/{approval.pk}/approve).",
            kind="permission_denied")
        self.approval = approval


def _alias_apply(model: RegisteredModel, alias: str, version: ModelVersion | None) -> int | None:
    """Point `alias` at `version` (None: remove); returns the version number it had."""
    existing = ModelAlias.objects.filter(registered_model=model, alias=alias) \
        .select_related("model_version").first()
    previous = existing.model_version.version if existing else None
    if version is None:
        if existing:
            existing.delete()
    elif existing:
        existing.model_version = version
        existing.save(update_fields=["model_version"])
    else:
        ModelAlias.objects.create(org_id=model.org_id, registered_model=model, alias=alias,
                                  model_version=version)
    model.last_updated_timestamp = now_ms()
    model.save(update_fields=["last_updated_timestamp"])
    return previous


def validate_alias(alias: str) -> None:
    _mlflow_checked(mlflow_validation._validate_model_alias_name, alias)
    _mlflow_checked(mlflow_validation._validate_model_alias_name_reserved, alias)


SERVICE_NOT_APPROVER = ("A service account takes no part in a four-eyes approval: a person "
                        "requests a protected alias's move and another person decides it.")


def _request_approval(model, alias, version, actor, reason) -> AliasApproval:
    if version is not None and version.status != VersionStatus.READY:
        raise invalid(f"{version.label} is {version.status}; only a READY version can take "
                      f"the protected alias '{alias}'.")
    superseded = _cancel_pending(AliasApproval.objects.filter(registered_model=model,
                                                              alias=alias),
                                 actor, "superseded by a newer request")
    approval = AliasApproval.objects.create(
        org_id=model.org_id, registered_model=model, alias=alias, model_version=version,
        requested_by=actor.user, reason=reason)
    audit_record(org=model.org, actor=actor, action="approval.requested", target=approval,
                 target_label=f"{model.name}@{alias}",
                 after={"model": model.name, "alias": alias,
                        "version": version.version if version else None,
                        "reason": reason, "superseded": superseded})
    return approval


def _refuse_if_not_validated(model: RegisteredModel, alias: str, kind: str = "permission_denied",
                             ) -> None:
    """A model whose latest validation (models_registry/inventory.py) is "not approved" takes
    no protected alias, as one without approval does not: refused, nothing requested."""
    latest = latest_validation(model)
    if latest is not None and latest.outcome == ValidationOutcome.NOT_APPROVED:
        raise ApplicationError(
            f"Registered model '{model.name}' was not approved by its latest validation "
            f"(#{latest.pk} of {latest.validated_on.isoformat()}): the protected alias "
            f"'{alias}' cannot point at its versions until a new validation approves it.",
            kind=kind)


def _alias_change(*, model, alias, version, actor, reason) -> AliasApproval | None:
    model = _locked_model(model)
    if ProtectedAlias.objects.filter(org=model.org_id, alias=alias).exists():
        if actor.user is None or not getattr(actor.user, "pk", None):
            raise ApplicationError("A protected alias moves only on a member's request.",
                                   kind="permission_denied")
        if is_service_account(org_id=model.org_id, user=actor.user):
            raise ApplicationError(SERVICE_NOT_APPROVER, kind="permission_denied")
        if version is not None:  # taking a protected alias away is always allowed
            _refuse_if_not_validated(model, alias)
        return _request_approval(model, alias, version, actor, reason)
    if version is None and not ModelAlias.objects.filter(registered_model=model,
                                                         alias=alias).exists():
        return None  # as MLflow: deleting an alias that is not there succeeds
    previous = _alias_apply(model, alias, version)
    audit_record(org=model.org, actor=actor,
                 action="registered_model.alias_set" if version else "registered_model.alias_deleted",
                 target=model, target_label=f"{model.name}@{alias}",
                 before={"alias": alias, "version": previous},
                 after={"alias": alias, "version": version.version if version else None})
    return None


def alias_set(*, version: ModelVersion, alias: str, actor: Actor, reason: str = "") -> None:
    """Point `alias` at `version`. A protected alias is not moved: a request is committed and
    ApprovalRequired raised after the commit, so the caller can answer with its number."""
    validate_alias(alias)
    with transaction.atomic(durable=True):
        version = _locked_version(version)
        approval = _alias_change(model=version.registered_model, alias=alias, version=version,
                                 actor=actor, reason=reason)
    if approval is not None:
        raise ApprovalRequired(approval)


def alias_delete(*, model: RegisteredModel, alias: str, actor: Actor, reason: str = "") -> None:
    with transaction.atomic(durable=True):
        approval = _alias_change(model=model, alias=alias, version=None, actor=actor,
                                 reason=reason)
    if approval is not None:
        raise ApprovalRequired(approval)


@transaction.atomic(durable=True)
def approval_decide(*, approval: AliasApproval, approve: bool, actor: Actor,
                    comment: str = "") -> AliasApproval:
    """Approve (and apply) or reject a pending request; never by the member who asked."""
    # Locks in the order every registry write takes them: the model, then the approval.
    _locked_model(approval.registered_model)
    approval = AliasApproval.objects.select_for_update(of=("self",)).select_related(
        "registered_model", "model_version").get(pk=approval.pk)
    if approval.status != ApprovalStatus.PENDING:
        raise ApplicationError(f"Approval request #{approval.pk} is {approval.status}, not "
                               "pending.", kind="conflict")
    if actor.user is None or approval.requested_by_id == actor.user.pk:
        raise ApplicationError(f"Approval request #{approval.pk} was made by you; another "
                               "member with an approving role must decide it.",
                               kind="permission_denied")
    if is_service_account(org_id=approval.org_id, user=actor.user):
        raise ApplicationError(SERVICE_NOT_APPROVER, kind="permission_denied")
    model, version = approval.registered_model, approval.model_version
    if approve and version is not None and (version.deleted or
                                            version.status != VersionStatus.READY):
        raise ApplicationError(f"{version.label} is no longer a READY version; the request "
                               "cannot be approved.", kind="conflict")
    if approve and version is not None:  # validated "not approved" since it was asked
        _refuse_if_not_validated(model, approval.alias, kind="conflict")
    approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    approval.decided_by, approval.decided_at, approval.comment = actor.user, timezone.now(), comment
    approval.save(update_fields=["status", "decided_by", "decided_at", "comment"])
    after = {"status": approval.status, "comment": comment, "alias": approval.alias,
             "version": version.version if version else None}
    if approve:
        after["previous_version"] = _alias_apply(model, approval.alias, version)
    audit_record(org=approval.org, actor=actor,
                 action="approval.approved" if approve else "approval.rejected",
                 target=approval, target_label=f"{model.name}@{approval.alias}",
                 before={"status": ApprovalStatus.PENDING}, after=after)
    return approval


@transaction.atomic(durable=True)
def approval_cancel(*, approval: AliasApproval, actor: Actor) -> AliasApproval:
    approval = AliasApproval.objects.select_for_update(of=("self",)) \
        .select_related("registered_model").get(pk=approval.pk)
    if approval.status != ApprovalStatus.PENDING:
        raise ApplicationError(f"Approval request #{approval.pk} is {approval.status}, not "
                               "pending.", kind="conflict")
    if actor.user is None or approval.requested_by_id != actor.user.pk:
        raise ApplicationError("Only the member who made a request can withdraw it.",
                               kind="permission_denied")
    approval.status, approval.decided_at = ApprovalStatus.CANCELLED, timezone.now()
    approval.save(update_fields=["status", "decided_at"])
    audit_record(org=approval.org, actor=actor, action="approval.cancelled", target=approval,
                 target_label=f"{approval.registered_model.name}@{approval.alias}",
                 before={"status": ApprovalStatus.PENDING}, after={"status": approval.status})
    return approval


@transaction.atomic(durable=True)
def protected_alias_add(*, org, alias: str, actor: Actor) -> ProtectedAlias:
    validate_alias(alias)
    if ProtectedAlias.objects.filter(org=org, alias=alias).exists():
        raise ApplicationError(f"Alias '{alias}' is already protected.", kind="already_exists")
    try:
        with transaction.atomic():
            protected = ProtectedAlias.objects.create(org=org, alias=alias)
    except IntegrityError:  # a concurrent request protected it first
        raise ApplicationError(f"Alias '{alias}' is already protected.",
                               kind="already_exists") from None
    audit_record(org=org, actor=actor, action="protected_alias.added", target=protected,
                 target_label=alias, after={"alias": alias})
    return protected


@transaction.atomic(durable=True)
def protected_alias_remove(*, protected: ProtectedAlias, actor: Actor) -> None:
    protected = ProtectedAlias.objects.select_for_update().get(pk=protected.pk)
    cancelled = _cancel_pending(AliasApproval.objects.filter(org=protected.org_id,
                                                             alias=protected.alias),
                                actor, "alias no longer protected")
    audit_record(org=protected.org, actor=actor, action="protected_alias.removed",
                 target=protected, target_label=protected.alias,
                 before={"alias": protected.alias}, after={"approvals_cancelled": cancelled})
    protected.delete()


# --- packaging state: the job runner's hooks (models_registry/jobs.py) and packaging.py's -------

PACKAGING_JOB = "models_registry.package"


def packaging_claim_within(*, version_pk: int, attempt: int, actor: Actor) -> bool:
    """The job runner's claim: attempt `attempt` packages the version (False: it is not
    pending any more). In the runner's transaction."""
    version = ModelVersion.objects.select_for_update().filter(pk=version_pk).first()
    if version is None or version.status != VersionStatus.PENDING_REGISTRATION:
        return False
    version.packaging_attempt = attempt
    version.save(update_fields=["packaging_attempt"])
    audit_record(org=version.org, actor=actor, action="model_version.packaging_started",
                 target=version, target_label=version.label, after={"attempt": attempt})
    return True


def _give_up(version: ModelVersion, actor: Actor, reason: str) -> None:
    version.status, version.status_message = VersionStatus.FAILED_REGISTRATION, reason
    version.last_updated_timestamp = now_ms()
    version.save(update_fields=["status", "status_message", "last_updated_timestamp"])
    audit_record(org=version.org, actor=actor, action="model_version.packaging_failed",
                 target=version, target_label=version.label,
                 before={"status": VersionStatus.PENDING_REGISTRATION},
                 after={"status": VersionStatus.FAILED_REGISTRATION, "reason": reason,
                        "attempt": version.packaging_attempt})


def _still_holding(version_pk: int, attempt: int) -> ModelVersion | None:
    version = ModelVersion.objects.select_for_update().select_related("registered_model") \
        .get(pk=version_pk)
    if version.status != VersionStatus.PENDING_REGISTRATION or \
            version.packaging_attempt != attempt:
        return None  # finished by, or handed to, another attempt meanwhile
    return version


@transaction.atomic(durable=True)
def packaging_finish(*, version_pk: int, attempt: int, package_path: str, digest: str,
                     manifest: dict, actor: Actor) -> ModelVersion | None:
    version = _still_holding(version_pk, attempt)
    if version is None:
        return None
    version.status, version.status_message = VersionStatus.READY, ""
    version.package_path, version.package_digest, version.manifest = package_path, digest, manifest
    version.last_updated_timestamp = now_ms()
    version.save(update_fields=["status", "status_message", "package_path", "package_digest",
                                "manifest", "last_updated_timestamp"])
    audit_record(org=version.org, actor=actor, action="model_version.packaged", target=version,
                 target_label=version.label, before={"status": VersionStatus.PENDING_REGISTRATION},
                 after={"status": VersionStatus.READY, "package_digest": digest,
                        "files": len(manifest.get("files", [])), "attempt": attempt})
    return version


def packaging_fail_within(*, version_pk: int, attempt: int, reason: str, actor: Actor) -> bool:
    """The version cannot be packaged: FAILED_REGISTRATION with the reason (False: the attempt
    no longer holds it). Also the job runner's give-up, in its transaction."""
    version = _still_holding(version_pk, attempt)
    if version is None:
        return False
    _give_up(version, actor, reason[:4000])
    return True


@transaction.atomic(durable=True)
def packaging_fail(*, version_pk: int, attempt: int, reason: str, actor: Actor) -> bool:
    return packaging_fail_within(version_pk=version_pk, attempt=attempt, reason=reason,
                                 actor=actor)


def packaging_retry_within(*, version_pk: int, attempt: int, reason: str, actor: Actor) -> bool:
    """The job runner will try again after something other than the model failed (storage,
    the database, a lost worker): recorded, the version stays pending. In its transaction."""
    version = _still_holding(version_pk, attempt)
    if version is None:
        return False
    audit_record(org=version.org, actor=actor, action="model_version.packaging_interrupted",
                 target=version, target_label=version.label,
                 after={"attempt": attempt, "error": reason[:2000]})
    return True
