"""Single sign-on with OpenID Connect (tenancy/oidc.py), against a real provider:
oidc-provider-mock's server in a thread (discovery, authorization, token, userinfo and JWKS
endpoints, RS256). The browser is Django's test client, the person at the provider `requests`
(its authorization form); one test drives Chromium through the live server.

The settings are what config/settings/fragments/oidc.py makes of the environment: each test
sets the variables and reads the fragment again (`configured`). The provider sends the claims
a test gives the person (`claims_set`), groups included.
"""

import copy
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from axes.models import AccessAttempt
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from oidc_provider_mock import run_server_in_thread

from audit.models import AuditEvent
from tenancy import oidc
from tenancy.models import Membership, User
from tenancy.services import membership_add, service_account_add
from tests.conftest import SETUP
from tests.ui.conftest import shot

ROOT = Path(__file__).resolve().parents[2]
CONTEXT_PROCESSOR = "tenancy.oidc.sso_context"
# org-b is named by no group; org-gone does not exist
MAPPING = ("ml-admins=org-a:admin, ml-ds=org-a:data_scientist, compliance=org-a:compliance_officer,"
           " auditors=org-a:auditor, readers=org-a:viewer, readers=org-gone:viewer")


@pytest.fixture(scope="module")
def idp():
    """The identity provider's base URL (its issuer)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP on loopback, for the test
        with run_server_in_thread() as server:
            yield f"http://localhost:{server.server_port}"


@pytest.fixture
def configured(settings, monkeypatch, idp):
    """`configured(**environment)`: the settings the fragment makes of these variables (with
    the provider, a client and a provider name unless given)."""

    def configure(**env):
        env = {"LEDGERFLOW_OIDC_ISSUER": idp, "LEDGERFLOW_OIDC_CLIENT_ID": "ledgerflow",
               "LEDGERFLOW_OIDC_CLIENT_SECRET": "client-secret",
               "LEDGERFLOW_OIDC_PROVIDER_NAME": "Bank ID", **env}
        for name in [name for name in os.environ if name.startswith("LEDGERFLOW_OIDC_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        fragment = importlib.reload(importlib.import_module("config.settings.fragments.oidc"))
        for name in dir(fragment):
            if name.isupper():
                setattr(settings, name, getattr(fragment, name))
        templates = copy.deepcopy(settings.TEMPLATES)  # as config/settings/base.py lists it
        processors = templates[0]["OPTIONS"]["context_processors"]
        if CONTEXT_PROCESSOR not in processors:
            processors.append(CONTEXT_PROCESSOR)
            settings.TEMPLATES = templates

    yield configure
    monkeypatch.undo()  # the environment as it was, and the fragment read from it again
    importlib.reload(importlib.import_module("config.settings.fragments.oidc"))


def claims_set(idp: str, sub: str, **claims) -> None:
    """What the provider says of the person `sub`."""
    requests.put(f"{idp}/users/{sub}", json=claims, timeout=10).raise_for_status()


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def authorized(client, sub: str, start: str = "/oidc/authenticate/") -> str:
    """Start single sign-on in `client`'s session and sign in at the provider as `sub`: the
    callback URL the provider sends the browser back to."""
    start = client.get(start)
    assert start.status_code == 302, start.content
    query = dict(pair.split("=", 1) for pair in urlsplit(start["Location"]).query.split("&"))
    assert {"state", "nonce", "code_challenge"} <= query.keys()
    assert query["code_challenge_method"] == "S256"
    answer = requests.post(start["Location"], data={"sub": sub}, allow_redirects=False,
                           timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def sso(client, sub: str):
    return client.get(local(authorized(client, sub)))


def signed_in(client):
    return client.session.get("_auth_user_id")


def trail(org, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(org=org, **filters).order_by("seq"))


def roles_of(user) -> dict[str, str]:
    return {m.org.slug: m.role for m in Membership.objects.select_related("org").filter(user=user)}


def test_a_member_signs_in_through_the_provider(client, configured, personas, idp):
    configured()
    claims_set(idp, "bob-at-idp", email="BOB@a.example", email_verified=True)
    done = sso(client, "bob-at-idp")
    assert done.status_code == 302 and done["Location"] == "/"
    assert signed_in(client) == str(personas.bob.user.pk)
    home = client.get("/")
    assert home.status_code == 200
    assert "Organization A" in home.content.decode()
    assert "ledgerflow_started" in client.session  # session lifetime rules apply as ever
    assert idp in oidc._PROVIDERS  # discovered once, at the first sign-on
    User.objects.filter(pk=personas.bob.user.pk).update(is_active=False)
    assert client.get("/").status_code == 302  # a deactivated account's session is over


def test_an_unknown_email_is_refused_and_no_account_is_made(client, configured, personas, idp):
    configured()
    claims_set(idp, "stranger", email="stranger@elsewhere.example", email_verified=True)
    users = User.objects.count()
    refused = sso(client, "stranger")
    assert refused.status_code == 403
    assert "No Ledgerflow account has the email address stranger@elsewhere.example" \
        in refused.content.decode()
    assert User.objects.count() == users and not signed_in(client)
    # like a wrong password, it counts against the address
    assert AccessAttempt.objects.get().failures_since_start == 1


def test_accounts_may_be_made_without_an_organization(client, configured, personas, idp):
    configured(LEDGERFLOW_OIDC_CREATE_USERS="true")
    claims_set(idp, "newcomer", email="Newcomer@a.example", email_verified=True)
    assert sso(client, "newcomer").status_code == 302
    user = User.objects.get(email="newcomer@a.example")
    assert signed_in(client) == str(user.pk)
    assert not user.has_usable_password() and not user.memberships.exists()
    assert "not a member of any organization" in client.get("/", follow=True).content.decode()


def test_an_unverified_email_signs_in_only_where_the_provider_is_trusted(
        client, configured, personas, idp):
    # anyone may give a provider that does not check addresses the email of a member
    claims_set(idp, "impostor", email="alice@a.example", email_verified=False)
    configured(LEDGERFLOW_OIDC_TRUST_EMAIL="true")  # the check off: the attack works
    assert sso(client, "impostor").status_code == 302
    assert signed_in(client) == str(personas.alice.user.pk)
    client.logout()

    configured()
    refused = sso(client, "impostor")
    assert refused.status_code == 403
    assert "has not verified your email address alice@a.example" in refused.content.decode()
    assert not signed_in(client)
    claims_set(idp, "no-claim", email="alice@a.example")  # no email_verified at all
    assert sso(client, "no-claim").status_code == 403 and not signed_in(client)


@pytest.mark.parametrize("flag, says", [("is_active", "is deactivated"),
                                        ("loopback_only", "is a demo account")])
def test_deactivated_and_demo_accounts_are_refused(client, configured, personas, idp, flag,
                                                   says):
    configured()
    user = personas.bob.user
    setattr(user, flag, not getattr(user, flag))
    user.save()
    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True)
    refused = sso(client, "bob-at-idp")
    assert refused.status_code == 403
    assert says in refused.content.decode() and not signed_in(client)


def test_a_callback_for_another_browser_is_refused(client, configured, personas, idp):
    """Login CSRF: the attacker signs in at the provider and has the victim's browser open
    the callback, which would sign the victim in as the attacker."""
    configured()
    attacker = Client()
    claims_set(idp, "attacker", email="bob@a.example", email_verified=True)
    callback = authorized(attacker, "attacker")
    refused = client.get(local(callback))  # the victim has started no sign-in
    assert refused.status_code == 403 and not signed_in(client)
    client.get("/oidc/authenticate/")  # the victim has started one, not this one
    refused = client.get(local(callback))
    assert refused.status_code == 400
    assert "could not be verified" in refused.content.decode() and not signed_in(client)
    # the attacker's own browser, with the state it started, gets in
    assert attacker.get(local(callback)).status_code == 302


def test_a_token_signed_by_another_key_is_refused(client, configured, personas, idp,
                                                  monkeypatch):
    """The code is exchanged at a token endpoint that is not the provider's (a rogue server
    answering in its place): its ID token, well formed but signed with another key, does
    not verify against the provider's JWKS."""
    configured()
    real = oidc.provider()
    with run_server_in_thread() as rogue:
        other = f"http://localhost:{rogue.server_port}"
        monkeypatch.setitem(oidc._PROVIDERS, idp, {
            **real, "authorization_endpoint": f"{other}/oauth2/authorize",
            "token_endpoint": f"{other}/oauth2/token", "userinfo_endpoint": f"{other}/userinfo"})
        claims_set(other, "bob-at-rogue", email="bob@a.example", email_verified=True)
        refused = sso(client, "bob-at-rogue")
    assert refused.status_code == 400
    assert "could not be verified" in refused.content.decode() and not signed_in(client)


def test_a_provider_that_is_down_leaves_passwords_working(client, configured, personas):
    configured(LEDGERFLOW_OIDC_ISSUER="http://127.0.0.1:9")  # nothing listens there
    down = client.get("/oidc/authenticate/")
    assert down.status_code == 502
    assert "cannot be reached" in down.content.decode()
    password = client.post("/login/", {"username": "bob@a.example", "password": "pw-bob@a.example"})
    assert password.status_code == 302 and signed_in(client)


def test_sso_only_refuses_passwords_except_to_superusers(client, configured, personas):
    root = User.objects.create_superuser("root@bank.example", "pw-root")
    bob = {"username": "bob@a.example", "password": "pw-bob@a.example"}
    configured()  # passwords allowed beside single sign-on
    assert client.post("/login/", bob).status_code == 302
    client.logout()

    configured(LEDGERFLOW_OIDC_ONLY="true")
    page = client.get("/login/").content.decode()
    assert "accepted only for administrators' break-glass accounts" in page
    refused = client.post("/login/", bob)
    assert refused.status_code == 200 and not signed_in(client)
    assert "Sign in with Bank ID: passwords are accepted only" in refused.content.decode()
    admin = client.post("/admin/login/", bob)  # the admin's login page says the same
    assert "passwords are accepted only" in admin.content.decode() and not signed_in(client)
    wrong = client.post("/login/", {**bob, "password": "wrong"})
    assert "didn&#x27;t match" in wrong.content.decode()  # a guess learns nothing more
    assert client.post("/login/", {"username": root.email, "password": "pw-root"}).status_code \
        == 302
    assert signed_in(client) == str(root.pk)


def test_the_login_page_offers_sso_only_when_configured(client, configured, db):
    configured(LEDGERFLOW_OIDC_ISSUER="")
    page = client.get("/login/?next=/models/").content.decode()
    assert "Sign in with" not in page
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    configured()
    page = client.get("/login/?next=/models/").content.decode()
    assert '<a class="button" href="/oidc/authenticate/?next=/models/">Sign in with Bank ID</a>' \
        in page
    assert "break-glass" not in page


def test_a_locked_out_address_cannot_sign_in_with_sso(client, configured, personas, idp,
                                                      settings):
    configured()
    settings.AXES_FAILURE_LIMIT = 2
    claims_set(idp, "stranger", email="stranger@elsewhere.example", email_verified=True)
    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True)
    assert sso(client, "stranger").status_code == 403
    assert sso(client, "stranger").status_code == 429  # the second failure locks it out
    assert sso(client, "bob-at-idp").status_code == 429
    assert not signed_in(client)


def test_a_new_member_is_made_at_the_first_sign_in_with_the_mapped_role(client, configured,
                                                                       personas, idp):
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING)  # LEDGERFLOW_OIDC_CREATE_USERS off
    claims_set(idp, "dana", email="Dana@a.example", email_verified=True,
               groups=["ml-ds", "not-mapped"])
    assert sso(client, "dana").status_code == 302
    dana = User.objects.get(email="dana@a.example")
    assert signed_in(client) == str(dana.pk) and not dana.has_usable_password()
    assert roles_of(dana) == {"org-a": "data_scientist"}
    made, = trail(personas.org_a, action="membership.created", after__user="dana@a.example")
    assert made.actor_kind == "system" and made.actor_label == f"identity provider {idp}"
    assert made.after == {"user": "dana@a.example", "role": "data_scientist",
                          "user_created": True}
    assert "Organization A" in client.get("/").content.decode()


def test_an_unknown_email_whose_groups_map_nowhere_is_refused(client, configured, personas, idp,
                                                              caplog):
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING)
    users = User.objects.count()
    for groups in (["not-mapped"], [], "readers"):  # "readers" gives org-a and org-gone
        claims_set(idp, "eve", email="eve@elsewhere.example", email_verified=True, groups=groups)
        answer = sso(client, "eve")
        if groups != "readers":
            assert answer.status_code == 403 and not signed_in(client)
            assert "No Ledgerflow account has the email address eve@elsewhere.example" \
                in answer.content.decode()
    assert User.objects.count() == users + 1
    assert roles_of(User.objects.get(email="eve@elsewhere.example")) == {"org-a": "viewer"}
    assert "names the organization 'org-gone', which does not exist; skipped" in caplog.text


def test_a_changed_group_changes_the_role_and_a_lost_one_removes_the_membership(
        client, configured, personas, idp, api):
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING)
    bob, org_a = personas.bob, personas.org_a  # a viewer of org-a, with a token
    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True,
               groups="ml-admins")  # one name, not a list: one group
    assert sso(client, "bob-at-idp").status_code == 302
    assert roles_of(bob.user) == {"org-a": "admin"}
    changed, = trail(org_a, action="membership.role_changed")
    assert (changed.before["role"], changed.after["role"]) == ("viewer", "admin")
    assert changed.actor_kind == "system" and changed.actor_label == f"identity provider {idp}"
    events = AuditEvent.objects.count()
    assert sso(client, "bob-at-idp").status_code == 302
    assert AuditEvent.objects.count() == events  # nothing changed, nothing recorded

    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True, groups=["other"])
    assert sso(client, "bob-at-idp").status_code == 302 and signed_in(client)
    assert roles_of(bob.user) == {}
    removed, = trail(org_a, action="membership.removed")
    assert removed.before == {"user": "bob@a.example", "role": "admin"}
    assert removed.after == {"tokens_revoked": 1} and removed.actor_kind == "system"
    assert api(bob).get("/api/v1/tokens/").status_code == 401
    assert "not a member of any organization" in client.get("/", follow=True).content.decode()


def test_answers_without_the_groups_claim_change_no_membership(client, configured, personas,
                                                                idp, caplog):
    """A provider that stops sending the claim (its scope or mapper changed) would otherwise
    remove everyone from every mapped organization; an empty list is no groups."""
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING)
    bob = personas.bob.user  # a viewer of org-a
    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True)
    assert sso(client, "bob-at-idp").status_code == 302 and signed_in(client)
    assert roles_of(bob) == {"org-a": "viewer"}
    assert "sent no 'groups' claim for bob@a.example" in caplog.text
    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True, groups=[])
    assert sso(client, "bob-at-idp").status_code == 302
    assert roles_of(bob) == {}


def test_owners_and_organizations_the_mapping_does_not_name_are_left_alone(
        client, configured, personas, idp, caplog):
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING)
    alice = personas.alice.user  # owner of org-a
    membership_add(org=personas.org_b, email=alice.email, role="data_scientist", actor=SETUP)
    events = AuditEvent.objects.count()
    caplog.set_level("INFO", logger="tenancy.services")
    for groups in (["readers"], []):
        claims_set(idp, "alice-at-idp", email="alice@a.example", email_verified=True,
                   groups=groups)
        assert sso(client, "alice-at-idp").status_code == 302
        assert signed_in(client) == str(alice.pk)
        assert roles_of(alice) == {"org-a": "owner", "org-b": "data_scientist"}
    assert AuditEvent.objects.count() == events
    assert "alice@a.example stays owner of org-a" in caplog.text


@pytest.mark.parametrize("groups, role", [
    (["readers", "auditors"], "auditor"),
    (["ml-ds", "auditors", "readers"], "data_scientist"),
    (["readers", "compliance", "ml-ds"], "compliance_officer"),
    (["compliance", "ml-admins", "readers"], "admin"),
])
def test_the_highest_role_any_group_gives_wins(client, configured, personas, idp, groups, role):
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING)
    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True, groups=groups)
    assert sso(client, "bob-at-idp").status_code == 302
    assert roles_of(personas.bob.user) == {"org-a": role}


def test_the_groups_claim_is_read_from_the_id_token_too(client, configured, personas, idp,
                                                        monkeypatch):
    """Some providers (Microsoft Entra ID) put groups in the ID token only, not in userinfo."""
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING, LEDGERFLOW_OIDC_GROUPS_CLAIM="bank_groups")
    userinfo = OIDCAuthenticationBackend.get_userinfo
    monkeypatch.setattr(OIDCAuthenticationBackend, "get_userinfo", lambda *args: {
        name: value for name, value in userinfo(*args).items() if name != "bank_groups"})
    claims_set(idp, "bob-at-idp", email="bob@a.example", email_verified=True,
               bank_groups=["compliance"], groups=["ml-admins"])  # `groups` is not the claim
    assert sso(client, "bob-at-idp").status_code == 302
    assert roles_of(personas.bob.user) == {"org-a": "compliance_officer"}


def test_a_service_account_never_signs_in(client, configured, personas, idp):
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING, LEDGERFLOW_OIDC_TRUST_EMAIL="true")
    robot = service_account_add(org=personas.org_a, name="ci", role="viewer", actor=SETUP)
    claims_set(idp, "ci", email=robot.user.email, groups=["ml-admins"])
    refused = sso(client, "ci")
    assert refused.status_code == 403 and not signed_in(client)
    assert "ci@org-a.service.invalid is a service account" in refused.content.decode()
    assert roles_of(robot.user) == {"org-a": "viewer"}


@pytest.mark.parametrize("mapping, says", [
    ("ml-admins=org-a", "'ml-admins=org-a' is not group=organization-slug:role"),
    ("ml-admins:org-a:admin", "is not group=organization-slug:role"),
    ("=org-a:admin", "is not group=organization-slug:role"),
    ("ml-admins=Org A:admin", "is not group=organization-slug:role"),
    ("ml-admins=org-a:superuser", "names the unknown role 'superuser'; choose one of admin, "),
    ("ml-admins=org-a:owner", "maps a group to owner; only owners make owners"),
    ("ml=org-a:viewer, ml=org-a:admin", "maps the group 'ml' to two roles in org-a"),
    ("ml-admins=org-a:admin", None),
])
def test_a_malformed_group_mapping_stops_the_settings(configured, mapping, says):
    if says is None:
        configured(LEDGERFLOW_OIDC_GROUP_ROLES=f" {mapping} , ")
        return
    with pytest.raises(ImproperlyConfigured, match=re.escape(says)):
        configured(LEDGERFLOW_OIDC_GROUP_ROLES=mapping)


def test_the_admin_login_page_offers_sso_too(client, configured, personas, idp):
    configured(LEDGERFLOW_OIDC_ISSUER="")
    assert "Sign in with" not in client.get("/admin/login/?next=/admin/").content.decode()
    configured()
    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert '<a class="button" href="/oidc/authenticate/?next=/admin/">Sign in with Bank ID</a>' \
        in page
    assert 'id="login-form"' in page and "Or with your email and password" in page
    User.objects.filter(pk=personas.alice.user.pk).update(is_staff=True)
    claims_set(idp, "alice-at-idp", email="alice@a.example", email_verified=True)
    back = client.get(local(authorized(client, "alice-at-idp", "/oidc/authenticate/?next=/admin/")))
    assert back.status_code == 302 and back["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_member_made_by_sso_mints_their_own_token(configured, personas, idp, api):
    """No password anywhere: the browser session single sign-on gave makes the API token."""
    configured(LEDGERFLOW_OIDC_GROUP_ROLES=MAPPING)
    browser = Client(enforce_csrf_checks=True)
    claims_set(idp, "dana", email="dana@a.example", email_verified=True, groups=["ml-ds"])
    assert sso(browser, "dana").status_code == 302
    browser.get("/")  # a page with a form: the CSRF cookie
    mint = {"path": "/api/v1/tokens/", "content_type": "application/json",
            "HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}
    made = browser.post(data={"name": "laptop"}, **mint)
    assert made.status_code == 201, made.content
    assert made.json()["user"] == "dana@a.example"
    listed = api(made.json()["token"]).get("/api/v1/tokens/")
    assert [t["name"] for t in listed.json()] == ["laptop"]
    assert browser.post(data={"name": "bob's", "user": "bob@a.example"}, **mint).status_code \
        == 403  # tokens stay personal
    assert browser.post("/api/v1/tokens/", {"name": "forged"},
                        content_type="application/json").status_code == 403  # no CSRF token


def test_the_settings_need_no_provider_at_start_up(tmp_path):
    """config/settings/base.py wires the fragment: the backend after the lockout check, the
    button's context processor; importing them calls no provider (nothing listens there)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "LEDGERFLOW_OIDC_ISSUER": "http://127.0.0.1:9", "LEDGERFLOW_OIDC_CLIENT_ID": "c",
           "LEDGERFLOW_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
           "LEDGERFLOW_OIDC_ONLY": "true",
           "LEDGERFLOW_OIDC_GROUP_ROLES": "ml-risk-admins=risk-team:admin, "
                                          "CN=ML DS=risk-team:data_scientist"}
    (tmp_path / "secret").write_text("s3cret\n")
    run = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings as s; "
         "print(s.AUTHENTICATION_BACKENDS, s.OIDC_RP_CLIENT_SECRET, "
         "s.TEMPLATES[0]['OPTIONS']['context_processors'], s.LEDGERFLOW_OIDC_GROUP_ROLES)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    shown = run.stdout
    assert "['tenancy.throttling.LockoutBackend', 'tenancy.oidc.BreakGlassPasswordBackend', " \
           "'tenancy.oidc.OidcBackend'] s3cret" in shown
    assert CONTEXT_PROCESSOR in shown
    assert "{'ml-risk-admins': {'risk-team': 'admin'}, " \
           "'CN=ML DS': {'risk-team': 'data_scientist'}}" in shown


def test_a_group_mapped_to_owner_stops_the_start():
    """Only owners make owners (tenancy/services.py): no identity provider's group does."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "LEDGERFLOW_OIDC_ISSUER": "http://127.0.0.1:9", "LEDGERFLOW_OIDC_CLIENT_ID": "c",
           "LEDGERFLOW_OIDC_CLIENT_SECRET": "s",
           "LEDGERFLOW_OIDC_GROUP_ROLES": "ml-risk-leads=risk-team:owner"}
    run = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.INSTALLED_APPS"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "ImproperlyConfigured: LEDGERFLOW_OIDC_GROUP_ROLES: 'ml-risk-leads=risk-team:owner' " \
           "maps a group to owner" in run.stderr


@pytest.mark.postgres_only
def test_signing_in_with_the_button_in_a_browser(configured, personas, idp, live_server,
                                                 browser):
    configured()
    claims_set(idp, "alice-at-idp", email="alice@a.example", email_verified=True)
    context = browser.new_context(base_url=live_server.url)
    try:
        page = context.new_page()
        page.goto("/login/")
        page.get_by_role("link", name="Sign in with Bank ID").click()
        page.get_by_placeholder("sub").fill("alice-at-idp")
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{live_server.url}/")
        assert "You are signed in as alice@a.example" in page.locator("main").inner_text()
    finally:
        context.close()


@pytest.mark.postgres_only
def test_signing_in_to_the_admin_with_its_button_in_a_browser(configured, personas, idp,
                                                              live_server, browser):
    """The admin's login page under the site's Content-Security-Policy: no violation."""
    configured()
    User.objects.filter(pk=personas.alice.user.pk).update(is_staff=True)
    claims_set(idp, "alice-at-idp", email="alice@a.example", email_verified=True)
    context = browser.new_context(base_url=live_server.url)
    try:
        page = context.new_page()
        console = []
        page.on("console", lambda message: console.append(message.text))
        page.goto("/admin/login/?next=/admin/")
        button = page.get_by_role("link", name="Sign in with Bank ID")
        assert button.bounding_box()["width"] > 200  # admin.css: as wide as the form
        assert not [text for text in console if "Content Security Policy" in text]
        shot(page, "admin-login-sso")
        button.click()
        page.get_by_placeholder("sub").fill("alice-at-idp")
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{live_server.url}/admin/")
        assert "Organizations, access and the audit trail" in page.locator("#content").inner_text()
    finally:
        context.close()
