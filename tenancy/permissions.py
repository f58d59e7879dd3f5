"""Role checks in one place: a view names the capability each method needs."""

from rest_framework import permissions

from tenancy.authentication import Access
from tenancy.roles import Capability, capabilities_of

_DEFAULTS = {method: Capability.READ for method in permissions.SAFE_METHODS}


def required_capability(view, method: str) -> Capability:
    """`capabilities = {"POST": Capability.ADMIN}` on a view; reads need READ, writes WRITE."""
    declared = getattr(view, "capabilities", {})
    return declared.get(method, _DEFAULTS.get(method, Capability.WRITE))


class HasCapability(permissions.BasePermission):
    def has_permission(self, request, view):
        access = request.auth
        if not isinstance(access, Access):
            return False  # DRF answers 401 (no credentials) before this matters
        if access.run_scope:
            self.message = (f"This token belongs to project run {access.run_scope} and works "
                            "only on the MLflow protocol, for that run.")
            return False
        capability = required_capability(view, request.method)
        if access.can(capability):
            return True
        if access.token is not None and access.token.read_only \
                and capability in capabilities_of(access.role):
            self.message = "This token is read-only."
        else:
            self.message = f"Your role '{access.role}' does not allow this ({capability} needed)."
        return False
