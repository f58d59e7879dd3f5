"""Reads of memberships that other apps' rules need."""

from tenancy.models import MemberKind, Membership


def is_service_account(*, org_id: int, user) -> bool:
    """Whether `user` is one of the organization's service accounts (automation, not a
    person): such a member never takes part in a four-eyes approval."""
    if user is None or not getattr(user, "pk", None):
        return False
    return Membership.objects.filter(org_id=org_id, user_id=user.pk,
                                     kind=MemberKind.SERVICE).exists()
