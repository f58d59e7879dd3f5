"""`make run`'s demo accounts work only from the machine they run on (issue 23, item 4): their
passwords and tokens are printed in a banner and kept in a file; `make run HOST=0.0.0.0`
must not turn them into credentials for the network."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit.actors import Actor
from audit.models import AuditEvent
from tenancy.models import User
from tenancy.roles import Role
from tenancy.services import membership_add, token_create

FAR, NEAR = "203.0.113.9", "127.0.0.1"
PASSWORD = "a-demo-password-7"


@pytest.fixture
def demo(personas):
    """A demo account (as demo_seed makes them) and an ordinary one, each with a token."""
    made = {}
    for email, loopback_only in (("demo@a.example", True), ("plain@a.example", False)):
        member = membership_add(org=personas.org_a, email=email, role=Role.DATA_SCIENTIST,
                                password=PASSWORD, actor=Actor.command("test"),
                                loopback_only=loopback_only)
        _token, raw = token_create(org=personas.org_a, user=member.user, name="t",
                                   actor=Actor.command("test"))
        made[email] = raw
    return made


def call(raw: str, address: str, path: str = "/api/v1/me/"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get(path, REMOTE_ADDR=address)


def test_a_demo_token_works_only_from_the_machine(demo):
    # the attack, where the rule does not apply: an ordinary token works from anywhere
    assert call(demo["plain@a.example"], FAR).status_code == 200
    assert call(demo["demo@a.example"], NEAR).status_code == 200
    refused = call(demo["demo@a.example"], FAR)
    assert refused.status_code == 401
    assert "works only from the machine" in refused.json()["detail"]
    mlflow = call(demo["demo@a.example"], FAR,
                  "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default")
    assert mlflow.status_code == 401
    assert mlflow.json()["error_code"] == "UNAUTHENTICATED"


def test_a_demo_login_works_only_from_the_machine_and_says_why(client, demo):
    form = {"username": "plain@a.example", "password": PASSWORD}
    assert client.post("/login/", form, REMOTE_ADDR=FAR).status_code == 302
    client.logout()
    form["username"] = "demo@a.example"
    refused = client.post("/login/", form, REMOTE_ADDR=FAR)
    assert refused.status_code == 200
    assert "works only from the machine" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.post("/login/", form, REMOTE_ADDR=NEAR).status_code == 302
    # a session made on the machine is no key from elsewhere: it is ended
    assert client.get("/experiments/", REMOTE_ADDR=NEAR).status_code == 200
    away = client.get("/experiments/", REMOTE_ADDR=FAR)
    assert away.status_code == 302 and away["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session
    assert client.get("/experiments/", REMOTE_ADDR=NEAR).status_code == 302


def test_the_demo_seed_makes_its_personas_demo_accounts(transactional_db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    call_command("demo_seed", stdout=open("/dev/null", "w"))  # noqa: SIM115
    personas = User.objects.filter(email__endswith="@demo.example")
    assert personas.count() == 4 and all(user.loopback_only for user in personas)
    created = AuditEvent.objects.filter(action="membership.created", org__slug="demo")
    assert all(event.after.get("loopback_only") is True for event in created)


# --- every browser session: an idle timeout and an absolute lifetime (issue 23, item 3) --------

def test_a_session_ends_when_idle_or_too_old(client, demo, settings):
    from tenancy.middleware import SEEN, STARTED

    client.post("/login/", {"username": "plain@a.example", "password": PASSWORD})
    assert client.get("/experiments/").status_code == 200

    def age(started_ago: int, seen_ago: int) -> None:
        session = client.session
        now = int(__import__("time").time())
        session[STARTED], session[SEEN] = now - started_ago, now - seen_ago
        session.save()

    # the defence off (limits beyond the session's age): an old, idle session still works
    settings.LEDGERFLOW_SESSION_IDLE_SECONDS = settings.LEDGERFLOW_SESSION_MAX_SECONDS = 10**9
    age(9 * 3600, 3600)
    assert client.get("/experiments/").status_code == 200
    settings.LEDGERFLOW_SESSION_IDLE_SECONDS, settings.LEDGERFLOW_SESSION_MAX_SECONDS = \
        1800, 8 * 3600
    age(600, 60)
    assert client.get("/experiments/").status_code == 200  # active: kept
    age(3600, 1801)  # idle for more than 30 minutes
    assert client.get("/experiments/").status_code == 302
    client.post("/login/", {"username": "plain@a.example", "password": PASSWORD})
    age(8 * 3600 + 1, 10)  # busy, but logged in more than 8 hours ago
    assert client.get("/experiments/").status_code == 302
    assert "_auth_user_id" not in client.session
    client.post("/login/", {"username": "plain@a.example", "password": PASSWORD})
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 8 * 3600


def test_loopback_means_this_machine_in_every_spelling():
    from config.addresses import is_loopback

    for near in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(near), near
    for far in ("203.0.113.9", "::ffff:203.0.113.9", "10.0.0.1", "", None, "localhost",
                "fe80::1"):
        assert not is_loopback(far), far
