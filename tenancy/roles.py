"""Roles and what each may do: the one table every permission check reads."""

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    AUDITOR = "auditor", "Auditor"
    VIEWER = "viewer", "Viewer"


class Capability(StrEnum):
    READ = "read"  # tracking, registry, projects
    WRITE = "write"  # create and change tracking, registry and project data
    ADMIN = "admin"  # change members, everyone's tokens, organization settings
    ADMIN_READ = "admin_read"  # see members and everyone's tokens (read-only tokens too)
    OWN = "own"  # grant or take away the owner role
    COMPLIANCE = "compliance"  # disclosure requests and PDFs
    APPROVE = "approve"  # approve promotions to protected aliases
    AUDIT = "audit"  # read and verify the audit trail
    SELF = "self"  # manage one's own tokens (every role; never with a read-only token)


_ALL = frozenset(Capability)
ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL - {Capability.OWN},  # ADMIN_READ included
    Role.DATA_SCIENTIST: frozenset({Capability.READ, Capability.WRITE, Capability.SELF}),
    Role.COMPLIANCE_OFFICER: frozenset(
        {Capability.READ, Capability.COMPLIANCE, Capability.APPROVE, Capability.AUDIT,
         Capability.SELF}
    ),
    Role.AUDITOR: frozenset({Capability.READ, Capability.AUDIT, Capability.SELF}),
    Role.VIEWER: frozenset({Capability.READ, Capability.SELF}),
}

# Capabilities a read-only token never carries, whatever its user's role.
MUTATING = frozenset(
    {Capability.WRITE, Capability.ADMIN, Capability.OWN, Capability.COMPLIANCE,
     Capability.APPROVE, Capability.SELF}
)


def capabilities_of(role: str) -> frozenset[Capability]:
    return ROLE_CAPABILITIES.get(role, frozenset())
