"""Single sign-on with OpenID Connect (tenancy/oidc.py, mozilla-django-oidc; docs/deploy.md).

Off unless LEDGERFLOW_OIDC_ISSUER is set. The provider's endpoints and keys come from
<issuer>/.well-known/openid-configuration, fetched at the first sign-on (never here: the
provider may be down while the service starts) and kept for the process's life; its JWKS is
read at each sign-on, so the provider may rotate its keys. Authorization code flow with state,
nonce and PKCE; ID tokens signed RS256.

A person signs in as the existing account with the email the provider has verified
(`email_verified`, or every email the provider sends with LEDGERFLOW_OIDC_TRUST_EMAIL, for
providers that send no such claim but whose addresses the bank controls). No account is created
unless LEDGERFLOW_OIDC_CREATE_USERS (then with no organization: an organization's admin adds
it). Deactivated and demo accounts are refused. LEDGERFLOW_OIDC_ONLY refuses passwords to all
but superusers (break-glass).

LEDGERFLOW_OIDC_GROUP_ROLES maps the provider's groups (the LEDGERFLOW_OIDC_GROUPS_CLAIM claim)
to roles in organizations: `group=organization-slug:role, ...`. It is read here, so a typo stops
the start rather than silently granting nothing (or too much); an organization that does not
exist yet is no error here (tenancy/oidc.py skips it at sign-in, logging a warning).

Import after fragments/throttling.py: it extends that fragment's AUTHENTICATION_BACKENDS.
"""

import re

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_secret, env_str
from config.settings.fragments.throttling import AUTHENTICATION_BACKENDS as _BACKENDS
from config.settings.fragments.throttling import AXES_SENSITIVE_PARAMETERS as _SENSITIVE
from tenancy.roles import Role as _Role  # a plain enum: importing it needs no settings

LEDGERFLOW_OIDC_ISSUER = env_str("LEDGERFLOW_OIDC_ISSUER", "").strip()
LEDGERFLOW_OIDC_PROVIDER_NAME = env_str("LEDGERFLOW_OIDC_PROVIDER_NAME", "single sign-on")
LEDGERFLOW_OIDC_TRUST_EMAIL = env_bool("LEDGERFLOW_OIDC_TRUST_EMAIL", False)
LEDGERFLOW_OIDC_ONLY = env_bool("LEDGERFLOW_OIDC_ONLY", False)
LEDGERFLOW_OIDC_GROUPS_CLAIM = env_str("LEDGERFLOW_OIDC_GROUPS_CLAIM", "groups").strip()

# Roles a group may give: every one but owner, which only owners hand out (tenancy/services.py).
_MAPPABLE = tuple(role for role in _Role.values if role != _Role.OWNER)
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")  # tenancy.models.slug_validator


def _group_role(entry: str) -> tuple[str, str, str]:
    """(group, organization slug, role) of one `group=slug:role` entry. The group is what
    comes before the entry's last `=`, so it may contain `=` itself (not a comma)."""
    group, _, target = entry.rpartition("=")
    slug, _, role = target.strip().partition(":")
    group, slug, role = group.strip(), slug.strip(), role.strip()
    if not group or not _SLUG.fullmatch(slug) or not role:
        raise ImproperlyConfigured(
            f"LEDGERFLOW_OIDC_GROUP_ROLES: {entry!r} is not group=organization-slug:role "
            "(e.g. ml-risk-admins=risk-team:admin)")
    if role == _Role.OWNER:
        raise ImproperlyConfigured(
            f"LEDGERFLOW_OIDC_GROUP_ROLES: {entry!r} maps a group to owner; only owners make "
            f"owners. Map groups to one of {', '.join(_MAPPABLE)}.")
    if role not in _MAPPABLE:
        raise ImproperlyConfigured(
            f"LEDGERFLOW_OIDC_GROUP_ROLES: {entry!r} names the unknown role {role!r}; "
            f"choose one of {', '.join(_MAPPABLE)}.")
    return group, slug, role


def _group_roles(raw: str) -> dict[str, dict[str, str]]:
    """{group: {organization slug: role}} of the comma-separated entries of `raw`."""
    mapping: dict[str, dict[str, str]] = {}
    for entry in filter(str.strip, raw.split(",")):
        group, slug, role = _group_role(entry)
        if mapping.setdefault(group, {}).setdefault(slug, role) != role:
            raise ImproperlyConfigured(
                f"LEDGERFLOW_OIDC_GROUP_ROLES maps the group {group!r} to two roles in {slug}.")
    return mapping


LEDGERFLOW_OIDC_GROUP_ROLES = _group_roles(env_str("LEDGERFLOW_OIDC_GROUP_ROLES", ""))

# mozilla-django-oidc's settings. Its OIDC_OP_* endpoints are filled from discovery at each
# sign-on (tenancy/oidc.py); empty here.
OIDC_OP_AUTHORIZATION_ENDPOINT = OIDC_OP_TOKEN_ENDPOINT = ""
OIDC_OP_USER_ENDPOINT = OIDC_OP_JWKS_ENDPOINT = ""
OIDC_RP_CLIENT_ID = env_str("LEDGERFLOW_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_secret("LEDGERFLOW_OIDC_CLIENT_SECRET", "")
OIDC_RP_SCOPES = env_str("LEDGERFLOW_OIDC_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_CREATE_USER = env_bool("LEDGERFLOW_OIDC_CREATE_USERS", False)
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10  # s, each call to the provider

if LEDGERFLOW_OIDC_ISSUER:
    if not OIDC_RP_CLIENT_ID or not OIDC_RP_CLIENT_SECRET:
        raise ImproperlyConfigured("LEDGERFLOW_OIDC_ISSUER needs LEDGERFLOW_OIDC_CLIENT_ID and "
                                   "LEDGERFLOW_OIDC_CLIENT_SECRET (or _FILE)")
    if "openid" not in OIDC_RP_SCOPES.split() or "email" not in OIDC_RP_SCOPES.split():
        raise ImproperlyConfigured("LEDGERFLOW_OIDC_SCOPES must include openid and email")
    _PASSWORDS = "tenancy.oidc.BreakGlassPasswordBackend" if LEDGERFLOW_OIDC_ONLY \
        else "django.contrib.auth.backends.ModelBackend"
    AUTHENTICATION_BACKENDS = [
        *(_PASSWORDS if b == "django.contrib.auth.backends.ModelBackend" else b for b in _BACKENDS),
        "tenancy.oidc.OidcBackend",
    ]
    # a refused callback counts as a failed sign-in of its address: its code is not recorded
    AXES_SENSITIVE_PARAMETERS = [*_SENSITIVE, "code", "state", "nonce", "code_verifier"]
    if LEDGERFLOW_OIDC_GROUP_ROLES and not LEDGERFLOW_OIDC_GROUPS_CLAIM:
        raise ImproperlyConfigured("LEDGERFLOW_OIDC_GROUP_ROLES needs LEDGERFLOW_OIDC_GROUPS_CLAIM")
elif LEDGERFLOW_OIDC_ONLY or LEDGERFLOW_OIDC_GROUP_ROLES:
    raise ImproperlyConfigured("LEDGERFLOW_OIDC_ONLY and LEDGERFLOW_OIDC_GROUP_ROLES need "
                               "LEDGERFLOW_OIDC_ISSUER")
