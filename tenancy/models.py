from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from tenancy.roles import Capability, Role, capabilities_of


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        email = self.normalize_email(email).lower()
        user = self.model(email=email, **extra)
        user.set_password(password)  # None gives an unusable password: token-only users
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person. Users are global; what they may see comes from their memberships."""

    username = None
    email = models.EmailField("email address", unique=True)
    # `make run`'s demo personas, whose passwords and tokens it prints: signed in and
    # authenticated only from the machine itself (tenancy.authentication.loopback_refusal)
    loopback_only = models.BooleanField(default=False, db_default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.email


slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and inner hyphens.",
)


class Organization(models.Model):
    """A tenant. Every tenant table carries `org_id`; nothing crosses between organizations."""

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Bytes of artifacts the organization may keep: empty for LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES,
    # 0 for no quota. Changed through tracking.artifacts.artifact_quota_set (audited).
    artifact_quota_bytes = models.BigIntegerField(
        "artifact quota (bytes)", null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Empty: the server's default (LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES); 0: none.")
    # Bytes of artifacts uploaded and not deleted, kept by tracking/artifacts.py in each
    # upload's and delete's audited transaction, with this row locked: never past the quota.
    artifact_bytes = models.BigIntegerField("artifact storage used (bytes)", default=0,
                                            db_default=0, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    @property
    def artifact_quota(self) -> int:
        """The quota in force, in bytes; 0: none."""
        if self.artifact_quota_bytes is not None:
            return self.artifact_quota_bytes
        return settings.LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES


class TenantModel(models.Model):
    """Base of every table that holds an organization's data: `org_id` on the row itself."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class MemberKind(models.TextChoices):
    PERSON = "person", "Person"
    # Automation: a user of its own that never logs in, whose tokens an admin creates; never an
    # owner, never one of the two people of a four-eyes approval.
    SERVICE = "service", "Service account"


class Membership(TenantModel):
    """A user's role in one organization."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    kind = models.CharField(max_length=16, choices=MemberKind.choices, default=MemberKind.PERSON,
                            db_default=MemberKind.PERSON)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["org", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["org", "user"], name="membership_unique_user_per_org"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=MemberKind.SERVICE, role=Role.OWNER),
                name="membership_service_never_owner",
            ),
        ]

    def __str__(self):
        return f"{self.user} in {self.org} ({self.role})"

    def can(self, capability: Capability) -> bool:
        return capability in capabilities_of(self.role)


class ApiToken(TenantModel):
    """A bearer credential bound to one user in one organization.

    Only an HMAC of the full token is stored; `lookup` (the part after the readable prefix)
    finds the row, and the HMAC comparison decides. The raw value is shown once at creation.
    """

    PREFIX_READ_WRITE = "lfw"
    PREFIX_READ_ONLY = "lfr"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    lookup = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set for the short-lived token a project run hands its command: over the MLflow protocol
    # only, it reaches that tracking run and what tracking/mlflow_api/scope.py allows, and dies
    # when the run ends.
    run_uuid = models.CharField(max_length=32, blank=True, editable=False)
    # What else a run token may read, besides its run: the inputs it was given, as
    # {"runs": [run_uuid, ...], "model_versions": [[name, version], ...]}.
    scope_reads = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @property
    def prefix(self) -> str:
        kind = self.PREFIX_READ_ONLY if self.read_only else self.PREFIX_READ_WRITE
        return f"{kind}_{self.lookup}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.is_expired else "active"
