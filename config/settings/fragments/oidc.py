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

Import after fragments/throttling.py: it extends that fragment's AUTHENTICATION_BACKENDS.
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_secret, env_str
from config.settings.fragments.throttling import AUTHENTICATION_BACKENDS as _BACKENDS
from config.settings.fragments.throttling import AXES_SENSITIVE_PARAMETERS as _SENSITIVE

LEDGERFLOW_OIDC_ISSUER = env_str("LEDGERFLOW_OIDC_ISSUER", "").strip()
LEDGERFLOW_OIDC_PROVIDER_NAME = env_str("LEDGERFLOW_OIDC_PROVIDER_NAME", "single sign-on")
LEDGERFLOW_OIDC_TRUST_EMAIL = env_bool("LEDGERFLOW_OIDC_TRUST_EMAIL", False)
LEDGERFLOW_OIDC_ONLY = env_bool("LEDGERFLOW_OIDC_ONLY", False)

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
elif LEDGERFLOW_OIDC_ONLY:
    raise ImproperlyConfigured("LEDGERFLOW_OIDC_ONLY needs LEDGERFLOW_OIDC_ISSUER")
