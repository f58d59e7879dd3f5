"""Guessing passwords and tokens, and flooding the API (tenancy/throttling.py).

Each defence is first switched off (AXES_ENABLED=False, LEDGERFLOW_API_RATE=0) to show the
attack works, then on to show it stops.
"""

import pytest
from axes.models import AccessAttempt
from django.test import override_settings
from django.urls import reverse

from audit.models import AuditEvent
from tenancy.models import User
from tenancy.services import organization_create
from tests.conftest import SETUP, make_persona

LIMIT = 10  # LEDGERFLOW_AUTH_FAILURE_LIMIT's default
ME = "/api/v1/me/"
MLFLOW = "/api/2.0/mlflow/experiments/search?max_results=1"
ATTACKER = "203.0.113.9"


def login(client, email, password, ip=ATTACKER):
    return client.post(reverse("login"), {"username": email, "password": password},
                       REMOTE_ADDR=ip)


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def wrong_secret(raw: str) -> str:
    """The same token's lookup with another secret: a guess at this account's token."""
    return raw[:-6] + ("aaaaaa" if not raw.endswith("aaaaaa") else "bbbbbb")


def locked_out_events(user):
    return list(AuditEvent.objects.filter(action="user.locked_out", target_id=str(user.pk)))


@override_settings(AXES_ENABLED=False)
def test_without_the_defence_passwords_can_be_guessed_without_end(client, personas):
    for _ in range(3 * LIMIT):
        assert login(client, personas.alice.email, "guess").status_code == 200
    response = login(client, personas.alice.email, "pw-" + personas.alice.email)
    assert response.status_code == 302  # the 31st guess, the right one, gets in


def test_a_guessed_password_locks_the_account_out_and_says_until_when(client, personas):
    alice = personas.alice
    org_c = organization_create(slug="org-c", name="Organization C", actor=SETUP)
    make_persona(org_c, alice.email, "viewer")  # alice belongs to two organizations
    for attempt in range(LIMIT):
        response = login(client, alice.email, f"guess-{attempt}")
    assert response.status_code == 429
    # The right password now gets the lockout too, from this address or another one.
    for ip in (ATTACKER, "198.51.100.7"):
        response = login(client, alice.email.upper(), "pw-" + alice.email, ip=ip)
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 60
        assert b"locked out; try again in 15 minutes" in response.content
        assert "_auth_user_id" not in client.session
    # Recorded once in each of alice's organizations, however often it was tried after.
    events = locked_out_events(alice.user)
    assert sorted(e.org.slug for e in events) == ["org-a", "org-c"]
    assert events[0].actor_kind == "system" and events[0].client_ip == ATTACKER
    assert events[0].after["via"] == "/login/" and events[0].after["email"] == alice.email
    # Bob, at another address, is not affected.
    assert login(client, personas.bob.email, "pw-" + personas.bob.email,
                 ip="198.51.100.8").status_code == 302


def test_an_admin_sees_the_lockout_and_lifting_it_lets_the_account_in(client, personas):
    for attempt in range(LIMIT):
        login(client, personas.alice.email, f"guess-{attempt}")
    root = User.objects.create_superuser("root@example.com", "root-password")
    client.force_login(root)
    page = client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and personas.alice.email.encode() in page.content
    attempt = AccessAttempt.objects.get(username=personas.alice.email)
    assert attempt.failures_since_start == LIMIT and attempt.ip_address == ATTACKER
    response = client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    client.logout()
    response = login(client, personas.alice.email, "pw-" + personas.alice.email)
    assert response.status_code == 302


@override_settings(AXES_ENABLED=False)
def test_without_the_defence_tokens_can_be_guessed_without_end(client, personas):
    for _ in range(3 * LIMIT):
        assert client.get(ME, **bearer(wrong_secret(personas.alice.raw_token)),
                          REMOTE_ADDR=ATTACKER).status_code == 401
    assert client.get(ME, **bearer(personas.alice.raw_token),
                      REMOTE_ADDR=ATTACKER).status_code == 200


@pytest.mark.parametrize("route", [ME, MLFLOW])
def test_guessed_tokens_lock_the_address_out_before_any_guess_is_judged(client, personas,
                                                                        route):
    unknown = "lfw_" + "x" * 40  # no such token: only the address counts
    for _ in range(LIMIT - 1):
        assert client.get(route, **bearer(unknown), REMOTE_ADDR=ATTACKER).status_code == 401
    response = client.get(route, **bearer(unknown), REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429
    # A right token from that address is not judged either; from elsewhere it works.
    response = client.get(route, **bearer(personas.alice.raw_token), REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429 and int(response["Retry-After"]) > 60
    if route == MLFLOW:
        assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert "locked out" in response.json()["message"]
    else:
        assert response.json()["code"] == "throttled"
    assert client.get(route, **bearer(personas.alice.raw_token),
                      REMOTE_ADDR="198.51.100.7").status_code == 200
    assert not AuditEvent.objects.filter(action="user.locked_out").exists()  # no account named


def test_guesses_at_one_account_from_many_addresses_lock_that_account_out(client, personas):
    alice = personas.alice
    for n in range(LIMIT):
        response = client.get(ME, **bearer(wrong_secret(alice.raw_token)),
                              REMOTE_ADDR=f"198.51.100.{n + 1}")
    assert response.status_code == 429
    # Alice's real token from a fresh address: locked out; Bob's: fine.
    assert client.get(ME, **bearer(alice.raw_token), REMOTE_ADDR="192.0.2.1").status_code == 429
    assert client.get(ME, **bearer(personas.bob.raw_token),
                      REMOTE_ADDR="192.0.2.1").status_code == 200
    assert login(client, alice.email, "pw-" + alice.email, ip="192.0.2.2").status_code == 429
    [event] = locked_out_events(alice.user)
    assert event.org == personas.org_a and event.after["via"] == ME


def test_a_revoked_token_is_no_guess_and_locks_nobody_out(client, personas, api):
    response = api(personas.alice).delete(f"/api/v1/tokens/{personas.bob.token.id}/")
    assert response.status_code == 200 and response.json()["revoked_at"]
    for _ in range(2 * LIMIT):
        response = client.get(ME, **bearer(personas.bob.raw_token), REMOTE_ADDR=ATTACKER)
        assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert client.get(ME, **bearer(personas.alice.raw_token),
                      REMOTE_ADDR=ATTACKER).status_code == 200
    assert not AccessAttempt.objects.exists()


@pytest.mark.parametrize("rate", [0, 5])
def test_a_flood_of_calls_is_throttled_per_token(client, personas, rate):
    with override_settings(LEDGERFLOW_API_RATE=rate):
        statuses = [client.get(route, **bearer(personas.alice.raw_token)).status_code
                    for route in [ME, MLFLOW] * 4]
        if rate == 0:  # the defence off: nothing stops the flood
            assert statuses == [200] * 8
            return
        assert statuses == [200] * 5 + [429] * 3
        response = client.get(MLFLOW, **bearer(personas.alice.raw_token))
        assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert "LEDGERFLOW_API_RATE" in response.json()["message"]
        assert 1 <= int(response["Retry-After"]) <= 61
        response = client.get(ME, **bearer(personas.alice.raw_token))
        assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 61
        # Another token of the same organization has its own count.
        assert client.get(ME, **bearer(personas.bob.raw_token)).status_code == 200


def test_a_throttled_write_writes_nothing(client, personas):
    body = '{"name": "flooded"}'
    with override_settings(LEDGERFLOW_API_RATE=1):
        first = client.post("/api/2.0/mlflow/experiments/create", body,
                            content_type="application/json", **bearer(personas.alice.raw_token))
        events = AuditEvent.objects.count()
        second = client.post("/api/2.0/mlflow/experiments/create", '{"name": "flooded-2"}',
                             content_type="application/json", **bearer(personas.alice.raw_token))
    assert first.status_code == 200 and second.status_code == 429
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("trusted", [[], ["10.0.0.0/24"]])
def test_behind_the_tls_proxy_each_client_is_judged_by_its_own_address(client, personas,
                                                                       trusted):
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    unknown = bearer("lfw_" + "x" * 40)
    with override_settings(LEDGERFLOW_TRUSTED_PROXIES=trusted):
        for _ in range(LIMIT):
            client.get(ME, **unknown, **proxy, HTTP_X_FORWARDED_FOR=f"{ATTACKER}, 10.0.0.1")
        colleague = client.get(ME, **bearer(personas.alice.raw_token), **proxy,
                               HTTP_X_FORWARDED_FOR="198.51.100.7")
        # A client that is no proxy cannot pick its address by the header.
        spoofer = client.get(ME, **bearer(personas.alice.raw_token), REMOTE_ADDR=ATTACKER,
                             HTTP_X_FORWARDED_FOR="198.51.100.50")
    if not trusted:  # the proxy's address is everyone's: one guesser locks all out
        assert colleague.status_code == 429
        assert AccessAttempt.objects.get().ip_address == "10.0.0.2"
    else:
        assert colleague.status_code == 200
        assert spoofer.status_code == 429
        assert AccessAttempt.objects.get().ip_address == ATTACKER
