"""API tokens: shown once, hashed at rest, Bearer or Basic, expiry, revocation, read-only."""

import base64
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.actors import Actor
from tenancy.models import ApiToken
from tenancy.services import token_create

ME = "/api/v1/me/"
TOKENS = "/api/v1/tokens/"
SETUP = Actor.command("test-setup")


def client_with(authorization: str, **extra) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization, **extra)
    return client


def basic(email: str, raw: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{raw}".encode()).decode()


def secret_of(raw: str) -> str:
    return raw.split("_", 1)[1][8:]  # after `<kind>_<8-char lookup>`


def assert_401(response, *phrases: str) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "authentication_failed"
    for phrase in phrases:
        assert phrase in body["detail"], body


def all_stored_text() -> list[str]:
    """Every value of every column of every table, as text (raw SQL, no ORM in between)."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    values.append(str(value))
    return values


# --- create -------------------------------------------------------------------------------

def test_it_returns_the_raw_token_once_on_create(personas, api):
    response = api(personas.alice).post(TOKENS, {"name": "ci"}, format="json")
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    assert raw.startswith("lfw_") and response.json()["prefix"] == raw[:12]
    token_id = response.json()["id"]

    for path in (TOKENS, f"{TOKENS}{token_id}/"):
        later = api(personas.alice).get(path)
        assert later.status_code == 200
        assert raw.encode() not in later.content
        assert secret_of(raw).encode() not in later.content
        assert "token" not in (later.json()[0] if isinstance(later.json(), list) else later.json())
    assert api(raw).get(ME).status_code == 200


def test_it_stores_neither_the_raw_token_nor_its_secret_in_any_column(personas, api):
    raw = api(personas.alice).post(TOKENS, {"name": "scan me"}, format="json").json()["token"]
    stored = all_stored_text()
    assert any(ApiToken.objects.get(name="scan me").secret_hash in v for v in stored)  # scan works
    for needle in (raw, secret_of(raw), personas.alice.raw_token, secret_of(personas.alice.raw_token)):
        assert not [v for v in stored if needle in v]


# --- use ----------------------------------------------------------------------------------

def test_it_authenticates_with_bearer(personas):
    response = client_with(f"Bearer {personas.alice.raw_token}").get(ME)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "alice@a.example"
    assert response.json()["organization"]["slug"] == "org-a"


def test_it_authenticates_with_basic_email_and_token(personas):
    response = client_with(basic("alice@a.example", personas.alice.raw_token)).get(ME)
    assert response.status_code == 200
    assert response.json()["token"] == personas.alice.token.prefix


def test_it_refuses_basic_with_another_users_email(personas):
    assert_401(client_with(basic("bob@a.example", personas.alice.raw_token)).get(ME), "Invalid token")


def test_it_refuses_basic_with_an_unknown_email(personas):
    response = client_with(basic("nobody@a.example", personas.alice.raw_token)).get(ME)
    assert_401(response, "Invalid token")


@pytest.mark.parametrize(
    ("authorization", "phrase"),
    [
        ("Token abcdef", "Malformed Authorization header"),
        ("Bearer", "Malformed Authorization header"),
        ("Bearer    ", "Malformed Authorization header"),
        ("Bearer garbage", "Malformed token"),
        ("Bearer lfx_" + "a" * 40, "Malformed token"),
        ("Bearer lfw_" + "a" * 39, "Malformed token"),
        ("Bearer lfw_" + "Ab1" * 13 + "Z", "Invalid token"),  # well-formed, matches no row
        ("Basic !!!not-base64!!!", "Malformed Basic credentials"),
        ("Basic " + base64.b64encode(b"no-colon-here").decode(), "Malformed Basic credentials"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Malformed Basic credentials"),
    ],
)
def test_it_answers_401_with_a_clear_message_for_bad_authorization(personas, authorization, phrase):
    assert_401(client_with(authorization).get(ME), phrase)


def test_it_refuses_a_well_formed_token_whose_secret_is_wrong(personas):
    raw = personas.alice.raw_token
    forged = raw[:12] + ("A" if raw[12] != "A" else "B") + raw[13:]
    assert_401(client_with(f"Bearer {forged}").get(ME), "Invalid token")


def test_it_answers_401_without_credentials(db):
    assert APIClient().get(ME).status_code == 401


# --- expiry and revocation ----------------------------------------------------------------

def test_it_stops_accepting_a_token_once_it_expires(personas):
    expires = timezone.now() + timedelta(seconds=1.5)
    _token, raw = token_create(org=personas.org_a, user=personas.alice.user, name="short",
                               actor=SETUP, expires_at=expires)
    assert client_with(f"Bearer {raw}").get(ME).status_code == 200
    time.sleep(max(0.0, (expires - timezone.now()).total_seconds()) + 0.2)
    assert_401(client_with(f"Bearer {raw}").get(ME), "expired")
    assert_401(client_with(basic("alice@a.example", raw)).get(ME), "expired")


def test_it_shows_an_expired_token_as_expired(personas, api):
    expires = timezone.now() + timedelta(seconds=1)
    token, _raw = token_create(org=personas.org_a, user=personas.alice.user, name="short",
                               actor=SETUP, expires_at=expires)
    time.sleep(max(0.0, (expires - timezone.now()).total_seconds()) + 0.1)
    assert api(personas.alice).get(f"{TOKENS}{token.id}/").json()["state"] == "expired"


def test_it_refuses_a_revoked_token(personas, api):
    created = api(personas.alice).post(TOKENS, {"name": "temp"}, format="json").json()
    assert api(created["token"]).get(ME).status_code == 200

    response = api(personas.alice).delete(f"{TOKENS}{created['id']}/")
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    assert_401(api(created["token"]).get(ME), "revoked")
    assert api(personas.alice).get(ME).status_code == 200  # the other token still works


def test_a_token_can_revoke_itself(personas, api):
    response = api(personas.bob).delete(f"{TOKENS}{personas.bob.token.id}/")
    assert response.status_code == 200
    assert_401(api(personas.bob).get(ME), "revoked")


def test_a_removed_members_tokens_stop_working(personas, api):
    assert api(personas.bob).get(ME).status_code == 200
    response = api(personas.alice).delete(f"/api/v1/members/{personas.bob.membership.id}/")
    assert response.status_code == 204
    assert_401(api(personas.bob).get(ME))
    assert_401(client_with(basic("bob@a.example", personas.bob.raw_token)).get(TOKENS))


# --- read-only tokens ---------------------------------------------------------------------

@pytest.fixture
def read_only(personas, api):
    response = api(personas.alice).post(TOKENS, {"name": "ro", "read_only": True}, format="json")
    assert response.status_code == 201
    assert response.json()["token"].startswith("lfr_")
    return response.json()["token"]


def test_a_read_only_token_can_read(personas, api, read_only):
    response = api(read_only).get(ME)
    assert response.status_code == 200
    assert response.json()["read_only"] is True
    assert "write" not in response.json()["capabilities"]
    assert api(read_only).get(TOKENS).status_code == 200


def test_a_read_only_token_cannot_mint_a_token(personas, api, read_only):
    before = ApiToken.objects.count()
    response = api(read_only).post(TOKENS, {"name": "escalate"}, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert ApiToken.objects.count() == before


@pytest.mark.parametrize("write", ["revoke_token", "add_member", "change_member", "remove_member"])
def test_a_read_only_token_is_refused_on_writes(personas, api, read_only, write):
    client, bob_member = api(read_only), f"/api/v1/members/{personas.bob.membership.id}/"
    response = {
        "revoke_token": lambda: client.delete(f"{TOKENS}{personas.alice.token.id}/"),
        "add_member": lambda: client.post("/api/v1/members/", {"email": "x@a.example",
                                                               "role": "viewer"}, format="json"),
        "change_member": lambda: client.patch(bob_member, {"role": "admin"}, format="json"),
        "remove_member": lambda: client.delete(bob_member),
    }[write]()
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    personas.alice.token.refresh_from_db()
    personas.bob.membership.refresh_from_db()
    assert personas.alice.token.revoked_at is None and personas.bob.membership.role == "viewer"


# --- X-MLFLOW-WORKSPACE -------------------------------------------------------------------

def test_the_workspace_header_naming_the_tokens_org_is_accepted(personas, api):
    response = api(personas.alice).get(ME, HTTP_X_MLFLOW_WORKSPACE="org-a")
    assert response.status_code == 200
    assert response.json()["organization"]["slug"] == "org-a"


@pytest.mark.parametrize("slug", ["org-b", "no-such-org"])
def test_the_workspace_header_naming_another_org_answers_404(personas, api, slug):
    for path in (ME, TOKENS, f"{TOKENS}{personas.alice.token.id}/"):
        response = api(personas.alice).get(path, HTTP_X_MLFLOW_WORKSPACE=slug)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_another_orgs_workspace_header_gives_the_same_404_as_an_unknown_one(personas, api):
    other = api(personas.alice).get(ME, HTTP_X_MLFLOW_WORKSPACE="org-b").json()
    unknown = api(personas.alice).get(ME, HTTP_X_MLFLOW_WORKSPACE="org-zz").json()
    assert other.keys() == unknown.keys()
    assert other["detail"].replace("org-b", "X") == unknown["detail"].replace("org-zz", "X")


def test_the_hand_written_lookup_loads_what_the_orm_loads(personas):
    """config/rows.py builds the token, its org and user from one join: every field as the
    ORM converts it (aware datetimes and booleans on SQLite too), related objects cached."""
    from django.test.utils import CaptureQueriesContext

    from tenancy.authentication import authenticate_token_header
    from tenancy.models import Organization, User

    token = ApiToken.objects.get(lookup=personas.alice.raw_token.split("_", 1)[1][:8])
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() + timedelta(days=3))
    with CaptureQueriesContext(connection) as queries:
        user, access = authenticate_token_header(f"Bearer {personas.alice.raw_token}")
        assert (access.token.org.slug, access.token.user.email) == ("org-a", "alice@a.example")
    assert len(queries) == 1
    for loaded, model in ((access.token, ApiToken), (access.org, Organization), (user, User)):
        expected = model.objects.get(pk=loaded.pk)
        for field in model._meta.concrete_fields:
            assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
            assert type(getattr(loaded, field.attname)) is type(getattr(expected, field.attname))
    assert access.token.expires_at.tzinfo is not None
    assert access.membership.role == "owner" and not access.membership._state.adding
