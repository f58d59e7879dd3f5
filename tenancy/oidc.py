"""Single sign-on with OpenID Connect: mozilla-django-oidc's code flow, the provider found by
discovery, and who may sign in (config/settings/fragments/oidc.py, docs/deploy.md).

The provider's verified email signs in the existing account with that email (any case).
Refused, on the login page saying why, and with no one signed in: an email the provider has not
verified (unless LEDGERFLOW_OIDC_TRUST_EMAIL), one no account has (unless
LEDGERFLOW_OIDC_CREATE_USERS: then an account with no organization is made), a deactivated or
demo account (403); a callback that does not answer this browser's request, or whose token
does not verify (400); a provider that cannot be reached (502). Like a wrong password, a refused
callback counts as a failed sign-in of its address (django-axes), and a locked-out address
cannot sign in this way either.

With LEDGERFLOW_OIDC_GROUP_ROLES, each sign-in also brings the person's memberships in the
organizations the mapping names in line with their groups (tenancy.services.
membership_sync_from_idp, audited with the provider as actor), and an unknown email whose
groups map it into an organization gets an account there. Service accounts never sign in.
"""

import logging

import jwt
import requests
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation, ValidationError
from django.http import Http404
from django.shortcuts import render
from django.urls import path
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.actors import Actor
from config.addresses import client_address
from config.scope import unscoped
from tenancy.forms import LoginForm
from tenancy.models import MemberKind, Organization
from tenancy.roles import Role
from tenancy.services import membership_sync_from_idp

logger = logging.getLogger(__name__)

_PROVIDERS: dict[str, dict] = {}  # issuer -> its discovery document
# Several groups giving roles in one organization: the first of these wins.
ROLE_PRECEDENCE = (Role.ADMIN, Role.COMPLIANCE_OFFICER, Role.DATA_SCIENTIST, Role.AUDITOR,
                   Role.VIEWER)


def provider() -> dict:
    """The configured provider's metadata (OpenID Connect Discovery): fetched at the first
    sign-on, not at start-up (the provider may be down then), and kept for the process's life."""
    issuer = settings.LEDGERFLOW_OIDC_ISSUER
    if not issuer:
        raise Http404("Single sign-on is not configured.")
    if issuer not in _PROVIDERS:
        response = requests.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration",
                                timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        metadata = response.json()
        if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            raise ImproperlyConfigured(f"{issuer} describes another issuer: {metadata.get('issuer')}")
        _PROVIDERS[issuer] = metadata
    return _PROVIDERS[issuer]


def groups_of(claims: dict) -> set[str]:
    """The person's groups: the claim's list of names, or its one name (a string)."""
    value = claims.get(settings.LEDGERFLOW_OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {group for group in value if isinstance(group, str)}
    return set()


def roles_wanted(groups: set[str]) -> dict[str, str]:
    """{organization slug: role} that `groups` give: the highest where several give one."""
    wanted: dict[str, str] = {}
    for group in sorted(groups):
        for slug, role in settings.LEDGERFLOW_OIDC_GROUP_ROLES.get(group, {}).items():
            wanted[slug] = min(role, wanted.get(slug, role), key=ROLE_PRECEDENCE.index)
    return wanted


def mapped_organizations() -> list[Organization]:
    """The organizations LEDGERFLOW_OIDC_GROUP_ROLES names that exist. Others may be created
    later (the mapping is read at start-up): skipped, and logged at each sign-in."""
    slugs = {slug for orgs in settings.LEDGERFLOW_OIDC_GROUP_ROLES.values() for slug in orgs}
    found = list(Organization.objects.filter(slug__in=slugs).order_by("slug"))
    for slug in sorted(slugs - {org.slug for org in found}):
        logger.warning("Single sign-on: LEDGERFLOW_OIDC_GROUP_ROLES names the organization "
                       "'%s', which does not exist; skipped.", slug)
    return found


def sso_context(request) -> dict:
    """Template context processor: the login page's single sign-on button."""
    if not settings.LEDGERFLOW_OIDC_ISSUER:
        return {}
    return {"sso": {"label": f"Sign in with {settings.LEDGERFLOW_OIDC_PROVIDER_NAME}",
                    "only": settings.LEDGERFLOW_OIDC_ONLY}}


class OidcBackend(OIDCAuthenticationBackend):
    get_user = ModelBackend.get_user  # a deactivated account's session ends, as with passwords

    def authenticate(self, request, nonce, code_verifier=None):
        """Only the callback's call: a sign-in with a password has no `nonce`, and Django
        does not offer it to this backend."""
        metadata = provider()
        self.OIDC_OP_TOKEN_ENDPOINT = metadata["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = metadata["userinfo_endpoint"]
        self.OIDC_OP_JWKS_ENDPOINT = metadata["jwks_uri"]  # read at each sign-on: keys rotate
        return super().authenticate(request, nonce=nonce, code_verifier=code_verifier)

    def retrieve_matching_jwk(self, token):
        """The parent's, and also a token that names no key (`kid`): OpenID Connect allows it
        of a provider with one signing key (the parent fails on it)."""
        if "kid" in jwt.get_unverified_header(token):
            return super().retrieve_matching_jwk(token)
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        keys = [key for key in response.json()["keys"] if key.get("use", "sig") == "sig"]
        if len(keys) != 1:
            raise SuspiciousOperation("The ID token names no key, and the provider has several.")
        return jwt.PyJWK(keys[0])

    def _refuse(self, message: str, status: int = 403):
        self.request.oidc_refusal = (message, status)
        raise SuspiciousOperation(message)  # the parent logs it and returns no user

    def get_userinfo(self, access_token, id_token, payload):
        audience = payload.get("aud")
        if payload.get("iss") != provider()["issuer"] or self.OIDC_RP_CLIENT_ID not in (
                audience if isinstance(audience, list) else [audience]):
            self._refuse("The identity provider's token was not issued for Ledgerflow.", 400)
        claims = super().get_userinfo(access_token, id_token, payload)
        if claims.get("sub") != payload.get("sub"):
            self._refuse("The identity provider's answers are about two different people.", 400)
        groups = settings.LEDGERFLOW_OIDC_GROUPS_CLAIM
        if groups not in claims and groups in payload:  # some providers put it in the ID token only
            claims = {**claims, groups: payload[groups]}
        return claims

    def verify_claims(self, claims):
        email = claims.get("email")
        if not email:
            self._refuse("The identity provider sent no email address for you.")
        if claims.get("email_verified") not in (True, "true") \
                and not settings.LEDGERFLOW_OIDC_TRUST_EMAIL:
            self._refuse(f"The identity provider has not verified your email address {email}, "
                         "so Ledgerflow cannot tell it is yours.")
        return True

    def get_or_create_user(self, access_token, id_token, payload):
        """The parent's, but an account is also made when the person's groups map them into an
        organization (the parent makes one with LEDGERFLOW_OIDC_CREATE_USERS only)."""
        claims = self.get_userinfo(access_token, id_token, payload)
        self.verify_claims(claims)
        self.managed, self.wanted = self._mapped(claims)
        users = self.filter_users_by_claims(claims)
        if len(users) > 1:
            raise SuspiciousOperation("Several accounts have this email address.")
        return self.update_user(users[0], claims) if users else self.create_user(claims)

    @staticmethod
    def _mapped(claims) -> tuple[list[Organization], dict[Organization, str]]:
        """The organizations the group mapping names, and those of them where the person's
        groups give a role, with that role."""
        if not settings.LEDGERFLOW_OIDC_GROUP_ROLES:
            return [], {}
        if settings.LEDGERFLOW_OIDC_GROUPS_CLAIM not in claims:
            # A provider that stopped sending the claim (a changed scope or mapper) would
            # otherwise remove everyone from every mapped organization.
            logger.warning("Single sign-on: the provider sent no '%s' claim for %s: their "
                           "memberships are left as they are.",
                           settings.LEDGERFLOW_OIDC_GROUPS_CLAIM, claims.get("email"))
            return [], {}
        managed = mapped_organizations()
        roles = roles_wanted(groups_of(claims))
        return managed, {org: roles[org.slug] for org in managed if org.slug in roles}

    def filter_users_by_claims(self, claims):
        users = super().filter_users_by_claims(claims)  # email__iexact
        if not users and not settings.OIDC_CREATE_USER and not self.wanted:
            self._refuse(f"No Ledgerflow account has the email address {claims['email']}: an "
                         "administrator of your organization must add you first.")
        return users

    def update_user(self, user, claims):
        if not user.is_active:
            self._refuse(f"The account {user.email} is deactivated.")
        if user.loopback_only:
            self._refuse(f"{user.email} is a demo account: it cannot sign in with single sign-on.")
        if user.memberships.filter(kind=MemberKind.SERVICE).exists():
            self._refuse(f"{user.email} is a service account: it never signs in.")
        return self._synced(user, claims)

    def create_user(self, claims):
        """No password; organizations only from the group mapping (else their admins add it)."""
        return self._synced(None, claims)

    def _synced(self, user, claims):
        """`user` (None: a new account) with the memberships the group mapping gives, when
        one is configured."""
        if not settings.LEDGERFLOW_OIDC_GROUP_ROLES:
            return user or self.UserModel.objects.create_user(claims["email"])
        actor = Actor.system(f"identity provider {provider()['issuer']}",
                             client_ip=client_address(self.request))
        with unscoped():  # the request writes into several organizations' trails
            return membership_sync_from_idp(user=user, email=claims["email"],
                                            managed=self.managed, wanted=self.wanted, actor=actor)


class BreakGlassPasswordBackend(ModelBackend):
    """LEDGERFLOW_OIDC_ONLY: a password signs in superusers only (for when the provider is
    down). Anyone else's right password is refused saying to use single sign-on; a wrong one
    fails, and counts, as ever."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username, password, **kwargs)
        if user is not None and not user.is_superuser:
            raise ValidationError(  # the login form (and the admin's) shows it
                f"Sign in with {settings.LEDGERFLOW_OIDC_PROVIDER_NAME}: passwords are accepted "
                "only for administrators' break-glass accounts.", code="oidc_only")
        return user


_SAYS = {400: "This sign-in could not be verified; start again from this page.",
         502: "The identity provider cannot be reached; try again later."}


def _login_page(request, message: str, status: int):
    return render(request, "registration/login.html",
                  {"form": LoginForm(request), "sso_error": message}, status=status)


class OidcLoginView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider, with state, nonce and PKCE kept in its session."""

    def get(self, request):
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider()["authorization_endpoint"]
        except requests.RequestException as exc:
            logger.warning("Single sign-on: the identity provider cannot be reached: %s", exc)
            return _login_page(request, _SAYS[502], 502)
        return super().get(request)


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """The provider's answer: signs the person in, or shows the login page saying why not."""

    def get(self, request):
        try:
            provider()  # 404 when not configured
            return super().get(request)
        except (SuspiciousOperation, jwt.PyJWTError) as exc:  # not this browser's, or forged
            return self._broken(exc, 400)
        except requests.RequestException as exc:  # the provider refused the code, or is down
            answered = exc.response is not None and exc.response.status_code < 500
            return self._broken(exc, 400 if answered else 502)

    def _broken(self, exc, status: int):
        logger.warning("Single sign-on: a callback refused (%s): %s", status, exc)
        return _login_page(self.request, _SAYS[status], status)

    def login_failure(self):
        message, status = getattr(self.request, "oidc_refusal", None) or (
            "Single sign-on did not complete (it was refused, or not started from this "
            "browser); start again from this page.", 403)
        return _login_page(self.request, message, status)


# config/urls.py: under oidc/, with mozilla-django-oidc's names
urlpatterns = [
    path("authenticate/", OidcLoginView.as_view(), name="oidc_authentication_init"),
    path("callback/", OidcCallbackView.as_view(), name="oidc_authentication_callback"),
]
