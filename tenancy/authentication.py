"""Who is calling and in which organization: tokens (Bearer or HTTP Basic) and browser sessions.

`authenticate_token_header()` is the single implementation; the DRF classes below and the
MLflow protocol views wrap it. Every failure names what was wrong, without saying whether a
token exists for someone who does not hold it.
"""

import base64
import binascii
import functools
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from rest_framework import authentication, exceptions

from config.addresses import client_address, is_loopback
from config.rows import Join, cache_related
from config.scope import scope_expression, scope_to, scoped_by_query
from tenancy.models import ApiToken, Membership, Organization, User
from tenancy.roles import MUTATING, Capability, capabilities_of
from tenancy.throttling import LockedOut, check_not_locked, token_failed
from tenancy.tokens import token_matches, token_parse

WORKSPACE_HEADER = "HTTP_X_MLFLOW_WORKSPACE"
SESSION_ORG_KEY = "ledgerflow_org_id"


class AuthenticationError(Exception):
    """The credentials were present but unusable; the message says why."""


class WorkspaceNotFound(Exception):
    """X-MLFLOW-WORKSPACE named an organization other than the token's."""


@dataclass(frozen=True)
class Access:
    """The organization a request acts in, and with what rights."""

    org: Organization
    membership: Membership
    token: ApiToken | None = None

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def run_scope(self) -> str:
        """The one tracking run a project run's token may write to ("" for other tokens)."""
        return self.token.run_uuid if self.token is not None else ""

    def can(self, capability: Capability) -> bool:
        if self.token is not None and self.token.read_only and capability in MUTATING:
            return False
        return capability in capabilities_of(self.membership.role)


def _split_basic(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError(
            "Malformed Basic credentials: expected base64 of 'email:token'."
        ) from None
    email, sep, raw = decoded.partition(":")
    if not sep or not email or not raw:
        raise AuthenticationError("Malformed Basic credentials: expected 'email:token'.")
    return email, raw


def _parse_header(header: str) -> tuple[str | None, str]:
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return None, value
    if scheme == "basic" and value:
        return _split_basic(value)
    raise AuthenticationError(
        "Malformed Authorization header: use 'Bearer <token>' or HTTP Basic with your email "
        "and a token."
    )


@functools.cache
def _token_join(scoping: bool) -> Join:
    """The token, its organization and user, and the user's membership there, in one row.
    `scoping` (PostgreSQL): the same query scopes its connection to the token's organization
    (config/scope.py), saving a request the round trip of `scope_to`."""
    token, org, user, membership = (model._meta.db_table
                                    for model in (ApiToken, Organization, User, Membership))
    scope = f", {scope_expression('t.org_id')}" if scoping else ""
    return Join([(ApiToken, "t"), (Organization, "o"), (User, "u")],
                f"SELECT {{columns}}, m.id, m.role{scope} FROM {token} t "  # noqa: S608 (ours)
                f"JOIN {org} o ON o.id = t.org_id JOIN {user} u ON u.id = t.user_id "
                f"LEFT JOIN {membership} m ON m.org_id = t.org_id AND m.user_id = t.user_id "
                "WHERE t.lookup = %s")


def _token_lookup(raw: str, email: str | None, request) -> ApiToken:
    """The token `raw` names, its secret checked. With a `request`, a caller or account that
    is locked out is refused before the secret is judged, and a guess counts against both
    (tenancy/throttling.py); commands pass none."""
    parsed = token_parse(raw)
    if parsed is None:
        if request is not None:
            check_not_locked(request, email)
            token_failed(request, email)
        raise AuthenticationError("Malformed token: Ledgerflow tokens look like 'lfw_…' or 'lfr_…'.")
    _kind, lookup = parsed
    # One query per request, written by hand (config/rows.py: the ORM took longer to compile
    # it than PostgreSQL to run it); the lookup is unique, the membership too.
    scoping = request is not None and connection.vendor == "postgresql"
    found = _token_join(scoping).one([lookup])
    token = None
    if found is not None:
        (token, org, user), (token.membership_id, token.membership_role, *_) = found
        if scoping:  # from here the request sees this organization's rows only
            scoped_by_query(token.org_id)
        cache_related(token, "org", org)
        cache_related(token, "user", user)
    account = email or (token.user.email if token is not None else None)
    if request is not None:
        check_not_locked(request, account)
    # Compare even when nothing was found, so timing does not reveal which lookups exist.
    if not token_matches(raw, token.secret_hash if token else "0" * 64) or token is None \
            or (email is not None and email != token.user.email):
        if request is not None:
            token_failed(request, account)  # the lockout was checked above
        raise AuthenticationError("Invalid token.")
    return token


def loopback_refusal(user, client_ip: str | None) -> str | None:
    """Why `user` may not act from `client_ip` (None when they may): a demo account of
    `make run`, whose credentials it prints, works only from the machine itself. `client_ip`
    None is the service's own call (a command), which may."""
    if getattr(user, "loopback_only", False) and client_ip is not None \
            and not is_loopback(client_ip):
        return (f"{user.email} is a demo account of `make run`: it works only from the machine "
                "Ledgerflow runs on (127.0.0.1), not from other addresses.")
    return None


def authenticate_token_header(header: str, workspace: str | None = None, request=None):
    """Return (user, Access) for an Authorization header value, or raise AuthenticationError
    (or LockedOut, for a `request` whose caller or account is locked out). `request`: the
    HTTP request carrying it, for lockouts and the demo accounts' loopback rule; None for the
    service's own calls (commands)."""
    email, raw = _parse_header(header)
    token = _token_lookup(raw, email.strip().lower() if email is not None else None, request)
    client_ip = client_address(request) if request is not None else None
    if refusal := loopback_refusal(token.user, client_ip):
        raise AuthenticationError(refusal)
    if token.revoked_at is not None:
        raise AuthenticationError("This token has been revoked.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise AuthenticationError(f"This token expired at {token.expires_at.isoformat()}.")
    if not token.user.is_active:
        raise AuthenticationError("This token's user is deactivated.")
    if token.membership_id is None:
        raise AuthenticationError("This token's user is no longer a member of its organization.")
    if workspace and workspace != token.org.slug:
        raise WorkspaceNotFound(f"Workspace '{workspace}' not found.")
    membership = Membership(pk=token.membership_id, org=token.org, user=token.user,
                            role=token.membership_role)
    membership._state.adding = False  # the row exists; it was just read
    return token.user, Access(org=token.org, membership=membership, token=token)


def session_access(request) -> Access | None:
    """The organization a logged-in browser chose (or its only one)."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("org").filter(user=user)
    chosen = request.session.get(SESSION_ORG_KEY)
    if chosen is not None:
        membership = memberships.filter(org_id=chosen).first()
    else:
        only = list(memberships[:2])
        membership = only[0] if len(only) == 1 else None
    if membership is None:
        return None
    scope_to(membership.org_id)  # the database shows this request its organization's rows only
    return Access(org=membership.org, membership=membership)


class TokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` or HTTP Basic (email + token)."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        try:
            return authenticate_token_header(header, request.META.get(WORKSPACE_HEADER),
                                             request._request)
        except AuthenticationError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        except LockedOut as exc:
            raise exceptions.Throttled(exc.retry_after, str(exc)) from None
        except WorkspaceNotFound as exc:
            raise exceptions.NotFound(str(exc)) from None

    def authenticate_header(self, request):
        return 'Bearer realm="ledgerflow"'


class OrgSessionAuthentication(authentication.SessionAuthentication):
    """Browser sessions (with CSRF), acting in the organization the user picked."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        access = session_access(request._request)
        if access is None:
            raise exceptions.AuthenticationFailed(
                "Choose an organization first (/org/select/): you belong to several or none."
            )
        return result[0], access
