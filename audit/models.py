from decimal import Decimal

from django.conf import settings
from django.db import models

from audit.chain import GENESIS_HASH, timestamp
from tenancy.models import Organization


def _as_hashed(value):
    """A payload as it was hashed. PostgreSQL's jsonb keeps a number's value, not its spelling:
    a float such as 1e16 comes back as the integer 10000000000000000, which RFC 8785 refuses
    (beyond 2**53). audit_record() cannot hash such an integer, so one read back must have
    been that float; turn it back only when it is exactly the float's decimal value."""
    if isinstance(value, dict):
        return {key: _as_hashed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_hashed(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        try:
            as_float = float(value)
        except OverflowError:
            return value
        if int(Decimal(repr(as_float))) == value:
            return as_float
    return value


class AuditChainHead(models.Model):
    """The last link of one organization's chain; its row lock serializes that org's writers."""

    org = models.OneToOneField(Organization, on_delete=models.PROTECT, primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self):
        return f"{self.org_id}@{self.seq}"


class AuditEvent(models.Model):
    """One state change, appended to its organization's hash chain and never changed.

    `hash` = SHA-256(prev_hash || RFC 8785 canonical JSON of the event's fields), see
    audit.chain. The actor and target are also kept as text so rows outlive deletions.
    """

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    seq = models.BigIntegerField()
    created_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16)  # user | token | command | task | system
    actor_label = models.CharField(max_length=300)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_token = models.ForeignKey(
        "tenancy.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=100)
    target_label = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["org", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["org", "seq"], name="audit_event_unique_seq_per_org"),
        ]
        indexes = [
            models.Index(fields=["org", "target_type", "target_id"], name="audit_event_target"),
            models.Index(fields=["org", "action"], name="audit_event_action"),
            models.Index(fields=["org", "created_at"], name="audit_event_time"),
        ]

    def __str__(self):
        return f"{self.org_id}#{self.seq} {self.action}"

    def as_record(self, org_slug: str) -> dict:
        """The event as exported and as hashed (audit.chain.HASHED_FIELDS + its links)."""
        return {
            "org": org_slug,
            "seq": self.seq,
            "created_at": timestamp(self.created_at),
            "actor_kind": self.actor_kind,
            "actor_label": self.actor_label,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "target_label": self.target_label,
            "before": _as_hashed(self.before),
            "after": _as_hashed(self.after),
            "request_id": self.request_id,
            "client_ip": self.client_ip,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class AuditCheckpoint(models.Model):
    """A signed statement of an organization's log: size, Merkle root, chain head, time.

    The signed note (C2SP tlog-checkpoint) is kept verbatim; organizations download it and
    keep it elsewhere, which is what catches a history rewritten by a database superuser.
    """

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    tree_size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_name = models.CharField(max_length=200)
    note = models.TextField()

    class Meta:
        ordering = ["org", "tree_size"]
        get_latest_by = "tree_size"
        constraints = [
            models.UniqueConstraint(fields=["org", "tree_size"], name="audit_checkpoint_unique_size"),
        ]

    def __str__(self):
        return f"{self.org_id}@{self.tree_size}"
