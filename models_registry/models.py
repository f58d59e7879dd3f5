"""The model registry, in MLflow's model, per organization, plus what MLflow lacks.

A registered model has numbered versions; each version points at a model directory logged to
tracking (`source`) and gets its own immutable copy, the *package*, made by a worker
(models_registry/packaging.py). Aliases name versions; an organization may protect some aliases,
so pointing them needs an approval. Every prediction made for a person is a Decision.

Names follow MLflow: a registered model's name is unique in the organization among models not
deleted. Deletion is soft: decisions made by a version must stay explainable after it is gone
from the registry's listings.
"""

import uuid

from django.conf import settings
from django.db import models

from tenancy.models import TenantModel


class RegisteredModel(TenantModel):
    name = models.CharField(max_length=256)
    description = models.TextField(blank=True)
    user_id = models.CharField(max_length=256, blank=True)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], condition=models.Q(deleted=False),
                                    name="registered_model_unique_name_per_org"),
        ]

    def __str__(self):
        return self.name


class RegisteredModelTag(TenantModel):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE,
                                         related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "key"],
                                               name="registered_model_tag_unique_key")]


class VersionStatus(models.TextChoices):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class Stage(models.TextChoices):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class ModelVersion(TenantModel):
    """One version; `source` is where the client logged it, `package_*` is our copy."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT,
                                         related_name="versions")
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    user_id = models.CharField(max_length=256, blank=True)
    creation_timestamp = models.BigIntegerField()
    last_updated_timestamp = models.BigIntegerField()
    current_stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NONE)
    source = models.CharField(max_length=1000)
    # The org-relative artifact path `source` resolved to, when the version was created.
    source_path = models.CharField(max_length=2048)
    run = models.ForeignKey("tracking.Run", null=True, blank=True, on_delete=models.PROTECT,
                            related_name="+")
    run_link = models.CharField(max_length=1000, blank=True)
    model_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=24, choices=VersionStatus.choices,
                              default=VersionStatus.PENDING_REGISTRATION)
    status_message = models.TextField(blank=True)
    deleted = models.BooleanField(default=False)
    # Packaging: the attempt of the job runner (config/jobs) that holds the version.
    packaging_attempt = models.PositiveIntegerField(default=0)
    # The package, set once when READY and never again.
    package_path = models.CharField(max_length=300, blank=True)
    package_digest = models.CharField(max_length=71, blank=True)  # "sha256:<hex>"
    manifest = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"],
                                    name="model_version_unique_number"),
        ]
        indexes = [models.Index(fields=["org", "status"], name="model_version_org_status")]

    def __str__(self):
        return f"{self.registered_model.name} v{self.version}"

    @property
    def label(self) -> str:
        return f"{self.registered_model.name} version {self.version}"


class ModelVersionTag(TenantModel):
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE,
                                      related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "key"],
                                               name="model_version_tag_unique_key")]


class ModelAlias(TenantModel):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE,
                                         related_name="aliases")
    alias = models.CharField(max_length=256)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE,
                                      related_name="aliases")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "alias"],
                                               name="model_alias_unique")]


class ProtectedAlias(TenantModel):
    """An alias name that, on any of the organization's models, moves only by approval."""

    alias = models.CharField(max_length=256)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "alias"],
                                               name="protected_alias_unique")]
        verbose_name_plural = "protected aliases"

    def __str__(self):
        return self.alias


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class AliasApproval(TenantModel):
    """A request to point (or, with no version, remove) a protected alias, and its decision."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT,
                                         related_name="approvals")
    alias = models.CharField(max_length=256)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices,
                              default=ApprovalStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [
            # One open request per alias of a model: a new one replaces (cancels) the old.
            models.UniqueConstraint(fields=["registered_model", "alias"],
                                    condition=models.Q(status="pending"),
                                    name="alias_approval_one_pending"),
        ]

    def __str__(self):
        return f"approval #{self.pk}"


class SubjectKey(TenantModel):
    """The organization's key for pseudonymous subject references (HMAC-SHA256)."""

    key = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org"], name="subject_key_one_per_org")]


class DecisionSource(models.TextChoices):
    SCORED = "scored"  # made by our scoring endpoint
    IMPORTED = "imported"  # made elsewhere, recorded through the API


class Decision(TenantModel):
    """What COMPLIANCE.md says must be recorded when a model decides about a person."""

    decision_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=DecisionSource.choices)
    # Indexed with the organization (Meta): every read of it is within one organization. A
    # thousand-decision batch maintains every index of this table a thousand times, so each
    # one here serves a read that needs it and none repeats another.
    org = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+",
                            db_index=False)
    subject_ref = models.CharField(max_length=64)  # HMAC hex, never the raw id
    purpose = models.CharField(max_length=500)
    legal_basis = models.CharField(max_length=500, blank=True)
    art22_ground = models.CharField(max_length=500, blank=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT,
                                      related_name="decisions")
    model_name = models.CharField(max_length=256)
    model_version_number = models.PositiveIntegerField()
    package_digest = models.CharField(max_length=71)
    alias = models.CharField(max_length=256, blank=True)
    feature_pipeline_version = models.CharField(max_length=200, blank=True)
    inputs = models.JSONField()
    params = models.JSONField(default=dict, blank=True)  # inference parameters, for replay
    provenance = models.JSONField(default=dict, blank=True)
    raw_score = models.FloatField(null=True, blank=True)
    prediction = models.JSONField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    policy_version = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    # [below the threshold, at or above it]: what the other side of the cut-off would have
    # been called, for the counterfactual of a disclosure
    outcome_labels = models.JSONField(default=list, blank=True)
    contributions = models.JSONField(default=dict, blank=True)
    contribution_method = models.CharField(max_length=100, blank=True)
    contribution_scale = models.CharField(max_length=40, blank=True)
    base_value = models.FloatField(null=True, blank=True)
    reference = models.JSONField(default=dict, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    reviewer = models.CharField(max_length=256, blank=True)
    review_action = models.CharField(max_length=200, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["org", "subject_ref"], name="decision_org_subject"),
            # the API's listing: an organization's newest first
            models.Index(fields=["org", "-created_at", "-id"], name="decision_org_newest"),
        ]

    def __str__(self):
        return str(self.decision_id)


# --- model risk inventory (models_registry/inventory.py) -------------------------------------

class RiskTier(models.TextChoices):
    """SR 11-7's materiality, in three steps: how much harm a wrong model can do."""

    HIGH = "high", "High"  # decides about people or money directly (credit scoring)
    MEDIUM = "medium", "Medium"  # informs such decisions, a person decides
    LOW = "low", "Low"  # internal, reversible, no decision about a person


class ValidationOutcome(models.TextChoices):
    APPROVED = "approved", "Approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions", "Approved with conditions"
    NOT_APPROVED = "not_approved", "Not approved"


class InventoryEntry(TenantModel):
    """A registered model's place in the model risk inventory (SR 11-7, EBA, ECB TRIM): who
    answers for it, how risky it is, what it may be used for, when it is next reviewed.

    Every change is an audit event carrying the whole entry (inventory.entry_state), so the
    inventory of any past date is rebuilt from the trail (inventory.inventory_as_of)."""

    registered_model = models.OneToOneField(RegisteredModel, on_delete=models.PROTECT,
                                            related_name="inventory_entry")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+")
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices)
    intended_use = models.TextField()
    limitations = models.TextField(blank=True)
    review_frequency_months = models.PositiveSmallIntegerField()
    last_reviewed_on = models.DateField(null=True, blank=True)
    next_review_due = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "inventory entries"
        constraints = [
            models.CheckConstraint(condition=models.Q(risk_tier__in=RiskTier.values),
                                   name="inventory_entry_risk_tier_valid"),
            models.CheckConstraint(condition=models.Q(review_frequency_months__gte=1,
                                                      review_frequency_months__lte=60),
                                   name="inventory_entry_review_frequency_range"),
        ]

    def __str__(self):
        return f"inventory: {self.registered_model.name}"


class ModelValidation(TenantModel):
    """One independent validation of a registered model; recorded once, never changed. The
    latest (by `validated_on`, then by id) is the one that counts for protected aliases."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT,
                                         related_name="validations")
    validated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    validated_on = models.DateField()
    scope = models.TextField()
    findings = models.TextField(blank=True)
    outcome = models.CharField(max_length=32, choices=ValidationOutcome.choices)
    # [{"path": org-relative artifact path, "sha256": ..., "size": ...}], as checked when recorded
    evidence = models.JSONField(default=list, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(outcome__in=ValidationOutcome.values),
                                   name="model_validation_outcome_valid"),
        ]
        indexes = [models.Index(fields=["registered_model", "-validated_on", "-id"],
                                name="model_validation_latest")]

    def __str__(self):
        return f"validation #{self.pk} of {self.registered_model.name}"
