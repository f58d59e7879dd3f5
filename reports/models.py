"""Disclosures (GDPR Art. 15) about the scoring models that decided on a customer: the
organization's compliance profile, the plain-language catalogue of each model's features,
the customer's access requests and the PDF versions generated for them."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Prefetch
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import cached_property

from tenancy.models import TenantModel

LANGUAGES = (("de", "Deutsch"), ("en", "English"))
# The texts of the profile that the disclosure quotes, each kept in German and in English.
PROFILE_TEXTS = ("purposes", "legal_basis", "art22_ground", "recipients", "transfers",
                 "retention", "sources", "human_review", "consequences")
# The profile's language-neutral fields (the cover, the rights, the right to complain), then
# every field a caller sets: the API, the pages and the admin take the same ones.
NEUTRAL_FIELDS = ("controller_name", "controller_address", "dpo_contact", "authority_name",
                  "authority_address")
PROFILE_FIELDS = [*NEUTRAL_FIELDS,
                  *[f"{name}_{lang}" for name in PROFILE_TEXTS for lang, _ in LANGUAGES]]
# What a disclosure prints of each input: its name, what it means, its category (section 4)
# and its source (section 3), each in the document's language; and the fields a caller sets.
CATALOGUE_TEXTS = ("label", "meaning", "category", "source")
FEATURE_FIELDS = [f"{name}_{lang}" for name in CATALOGUE_TEXTS
                  for lang, _ in LANGUAGES] + ["is_address_data"]


class ComplianceProfile(TenantModel):
    """What every disclosure of the organization says about the controller and the processing
    (Art. 15(1)(a)-(h)): who answers, to which authority one may complain, why and on which
    grounds the data is processed, who receives it, how long it is kept, where it comes from,
    and how to obtain human review of an automated decision."""

    controller_name = models.CharField(max_length=300)
    controller_address = models.TextField()
    dpo_contact = models.TextField()
    authority_name = models.CharField(max_length=300)
    authority_address = models.TextField()
    purposes_de = models.TextField(blank=True)
    purposes_en = models.TextField(blank=True)
    legal_basis_de = models.TextField(blank=True)
    legal_basis_en = models.TextField(blank=True)
    art22_ground_de = models.TextField(blank=True)
    art22_ground_en = models.TextField(blank=True)
    recipients_de = models.TextField(blank=True)
    recipients_en = models.TextField(blank=True)
    transfers_de = models.TextField(blank=True)
    transfers_en = models.TextField(blank=True)
    retention_de = models.TextField(blank=True)
    retention_en = models.TextField(blank=True)
    sources_de = models.TextField(blank=True)
    sources_en = models.TextField(blank=True)
    human_review_de = models.TextField(blank=True)
    human_review_en = models.TextField(blank=True)
    consequences_de = models.TextField(blank=True)
    consequences_en = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org"], name="compliance_profile_per_org")]

    def __str__(self):
        return f"compliance profile of {self.controller_name}"

    def text(self, name: str, language: str) -> str:
        return getattr(self, f"{name}_{language}")


class FeatureDescription(TenantModel):
    """One input of a registered model, as a customer can understand it: its name and meaning
    in German and English, its category and source, and whether it is address data
    (BDSG section 31 asks that a score's use of address data be disclosed)."""

    registered_model = models.ForeignKey("models_registry.RegisteredModel",
                                         on_delete=models.CASCADE, related_name="features")
    feature = models.CharField(max_length=250)
    label_de = models.CharField(max_length=300, blank=True)
    label_en = models.CharField(max_length=300, blank=True)
    meaning_de = models.TextField(blank=True)
    meaning_en = models.TextField(blank=True)
    category_de = models.CharField(max_length=300, blank=True)
    category_en = models.CharField(max_length=300, blank=True)
    source_de = models.TextField(blank=True)
    source_en = models.TextField(blank=True)
    is_address_data = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "feature"],
                                               name="feature_description_unique")]

    def __str__(self):
        return self.feature

    def text(self, name: str, language: str) -> str:
        return getattr(self, f"{name}_{language}")


class RequestState(models.TextChoices):
    OPEN = "open"  # no version ready yet
    GENERATED = "generated"  # a version is ready, none reviewed
    REVIEWED = "reviewed"  # a version is reviewed, none delivered
    DELIVERED = "delivered"  # a version reached the customer: the request is answered


class RequestQuerySet(models.QuerySet):
    """Delivery in SQL, for filters and counts over many requests (metrics, the API's list)."""

    def undelivered(self):
        return self.exclude(Exists(Disclosure.objects.filter(request=OuterRef("pk"),
                                                             delivered_at__isnull=False)))

    def overdue(self):
        return self.undelivered().alias(
            ends=Coalesce("extended_until", "due_on")).filter(ends__lt=timezone.localdate())

    def with_versions(self):
        """Each request's versions and who acted on them, in one more query."""
        return self.prefetch_related(Prefetch("disclosures", queryset=Disclosure.objects
                                              .select_related("requested_by", "reviewed_by",
                                                              "delivered_by")))


class DisclosureRequest(TenantModel):
    """A customer's access request. The customer's identifier is kept only as the
    organization's HMAC of it (the same reference the decision records carry); the name is
    for the cover. Due one month after receipt; an extension of up to two more months needs a
    reason (Art. 12(3))."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subject_ref = models.CharField(max_length=64, db_index=True)
    subject_name = models.CharField(max_length=300)
    received_on = models.DateField()
    due_on = models.DateField()
    extended_until = models.DateField(null=True, blank=True)
    extension_reason = models.TextField(blank=True)
    identity_verification = models.TextField()
    language = models.CharField(max_length=2, choices=LANGUAGES)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+", null=True, blank=True)  # None: a command
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RequestQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["org", "-received_on"], name="disclosure_req_received")]

    def __str__(self):
        return f"disclosure request {self.uuid}"

    @property
    def deadline(self):
        return self.extended_until or self.due_on

    @cached_property
    def versions(self) -> list["Disclosure"]:
        """Newest first (prefetch `disclosures` to spare the query)."""
        return sorted(self.disclosures.all(), key=lambda v: -v.version)

    @property
    def delivered(self) -> "Disclosure | None":
        """The version whose delivery answered the request: the first one delivered (a later
        delivery, of a corrected version, does not move the answer)."""
        sent = [v for v in self.versions if v.delivered_at]
        return min(sent, key=lambda v: (v.delivered_at, v.version)) if sent else None

    @property
    def state(self) -> str:
        """How far the furthest version got: only a delivery answers the request."""
        if self.delivered:
            return RequestState.DELIVERED
        if any(v.reviewed_at for v in self.versions):
            return RequestState.REVIEWED
        if any(v.status == DisclosureStatus.READY for v in self.versions):
            return RequestState.GENERATED
        return RequestState.OPEN

    @property
    def answered(self) -> bool:
        return self.delivered is not None

    @property
    def overdue(self) -> bool:
        """Past its deadline with nothing delivered (the SQL twin: `RequestQuerySet.overdue`)."""
        return not self.answered and timezone.localdate() > self.deadline

    @property
    def days_left(self) -> int:
        return (self.deadline - timezone.localdate()).days

    @property
    def extendable(self) -> bool:
        """An extension is told to the customer within the first month (Art. 12(3))."""
        return timezone.localdate() <= self.due_on


class DisclosureStatus(models.TextChoices):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    READY = "READY"
    FAILED = "FAILED"


class DeliveryChannel(models.TextChoices):
    POST = "post", "Post"
    EMAIL = "email", "Email"
    PORTAL = "portal", "Customer portal"
    IN_PERSON = "in_person", "In person"


class Disclosure(TenantModel):
    """One generated version of a request's PDF. A new generation is a new version; old ones
    stay. The content (the embedded JSON) is anchored in the audit trail before rendering and
    covered by a signed checkpoint; the file's SHA-256 is recorded once it is stored. A READY
    version is then reviewed and delivered (generated → reviewed → delivered)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request = models.ForeignKey(DisclosureRequest, on_delete=models.PROTECT,
                                related_name="disclosures")
    version = models.PositiveIntegerField()
    language = models.CharField(max_length=2, choices=LANGUAGES)
    status = models.CharField(max_length=10, choices=DisclosureStatus.choices,
                              default=DisclosureStatus.QUEUED)
    status_message = models.TextField(blank=True)
    attempt = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True)
    anchor_seq = models.BigIntegerField(null=True, blank=True)
    checkpoint_size = models.BigIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=300, blank=True)  # in STORAGES["reports"]
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    decision_count = models.PositiveIntegerField(default=0)
    # The answer's way out (docs/disclosures.md): a READY version is reviewed by a second
    # member, then delivered; the delivered file's SHA-256 is the stored one, checked.
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+", null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    delivered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+", null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_channel = models.CharField(max_length=10, choices=DeliveryChannel.choices,
                                        blank=True)
    delivered_sha256 = models.CharField(max_length=64, blank=True)
    delivery_reference = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "version"],
                                               name="disclosure_version_unique"),
                       models.CheckConstraint(condition=models.Q(delivered_at__isnull=True) |
                                              models.Q(reviewed_at__isnull=False),
                                              name="disclosure_delivered_after_review")]
        indexes = [models.Index(fields=["status", "created_at"], name="disclosure_status")]

    def __str__(self):
        return f"disclosure {self.request.uuid} v{self.version}"

    @property
    def next_step(self) -> str | None:
        """What this version awaits on its way to the customer: "review", "deliver" or
        nothing (not ready, or delivered)."""
        if self.status != DisclosureStatus.READY or self.delivered_at:
            return None
        return "deliver" if self.reviewed_at else "review"
