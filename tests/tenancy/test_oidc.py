"""Single sign-on with OpenID Connect (tenancy/oidc.py), against a real provider:
oidc-provider-mock's server in a thread (discovery, authorization, token, userinfo and JWKS
endpoints, RS256). The browser is Django's test client, the person at the provider `requests`
(its authorization form); one test drives Chromium through the live server.

The settings are what config/settings/fragments/oidc.py makes of the environment: each test
sets the variables and reads the fragment again (`configured`).
"""

import copy
import importlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from axes.models import AccessAttempt
from django.test import Client
from oidc_provider_mock import run_server_in_thread

from tenancy import oidc
from tenancy.models import User

ROOT = Path(__file__).resolve().parents[2]
CONTEXT_PROCESSOR = "tenancy.oidc.sso_context"


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


def authorized(client, sub: str) -> str:
    """Start single sign-on in `client`'s session and sign in at the provider as `sub`: the
    callback URL the provider sends the browser back to."""
    start = client.get("/oidc/authenticate/")
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


def test_the_settings_need_no_provider_at_start_up(tmp_path):
    """config/settings/base.py wires the fragment: the backend after the lockout check, the
    button's context processor; importing them calls no provider (nothing listens there)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "LEDGERFLOW_OIDC_ISSUER": "http://127.0.0.1:9", "LEDGERFLOW_OIDC_CLIENT_ID": "c",
           "LEDGERFLOW_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
           "LEDGERFLOW_OIDC_ONLY": "true"}
    (tmp_path / "secret").write_text("s3cret\n")
    run = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings as s; "
         "print(s.AUTHENTICATION_BACKENDS, s.OIDC_RP_CLIENT_SECRET, "
         "s.TEMPLATES[0]['OPTIONS']['context_processors'])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    shown = run.stdout
    assert "['tenancy.throttling.LockoutBackend', 'tenancy.oidc.BreakGlassPasswordBackend', " \
           "'tenancy.oidc.OidcBackend'] s3cret" in shown
    assert CONTEXT_PROCESSOR in shown


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
