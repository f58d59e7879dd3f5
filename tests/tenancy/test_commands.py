"""Management commands: org_create, user_add, token_create. The last stdout line is the value."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tenancy.models import ApiToken, Membership, Organization, User


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def last_event() -> AuditEvent:
    return AuditEvent.objects.order_by("-pk").first()


def assert_command_event(action: str, command: str, org_slug: str) -> None:
    event = last_event()
    assert (event.action, event.org.slug) == (action, org_slug)
    assert (event.actor_kind, event.actor_label) == ("command", f"manage.py {command}")
    assert event.actor_user is None


def me(raw: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get("/api/v1/me/")


@pytest.fixture
def acme(db):
    run("org_create", "acme", "--name", "Acme Bank")
    run("user_add", "acme", "Dana@Acme.example", "--role", "data_scientist")
    return Organization.objects.get(slug="acme")


# --- org_create ---------------------------------------------------------------------------

def test_org_create_creates_the_org_and_prints_its_slug(db):
    assert run("org_create", "acme", "--name", "Acme Bank")[-1] == "acme"
    assert Organization.objects.get(slug="acme").name == "Acme Bank"
    assert_command_event("organization.created", "org_create", "acme")


def test_org_create_refuses_a_duplicate_or_malformed_slug(db):
    run("org_create", "acme")
    before = AuditEvent.objects.count()
    for slug, message in (("acme", "already exists"), ("Not_A_Slug", "lowercase letters")):
        with pytest.raises(CommandError, match=message):
            run("org_create", slug)
    assert Organization.objects.count() == 1 and AuditEvent.objects.count() == before


# --- user_add -----------------------------------------------------------------------------

def test_user_add_adds_a_member_with_the_role_and_prints_the_email(db):
    run("org_create", "acme")
    lines = run("user_add", "acme", "Dana@Acme.example", "--role", "auditor", "--password", "s3cret-pw")
    assert lines[-1] == "dana@acme.example"
    membership = Membership.objects.get(org__slug="acme", user__email="dana@acme.example")
    assert membership.role == "auditor"
    assert membership.user.check_password("s3cret-pw")
    assert_command_event("membership.created", "user_add", "acme")


def test_user_add_without_a_password_makes_a_token_only_user(acme):
    assert not User.objects.get(email="dana@acme.example").has_usable_password()


@pytest.mark.parametrize(("args", "message"), [
    (("acme", "x@acme.example", "--role", "emperor"), "invalid choice: 'emperor'"),
    (("acme", "x@acme.example"), "--role"),  # required
    (("nowhere", "x@acme.example", "--role", "viewer"), "Organization 'nowhere' does not exist"),
    (("acme", "not-an-email", "--role", "viewer"), "valid email address"),
    (("acme", "dana@acme.example", "--role", "viewer"), "already a member"),
])
def test_user_add_refuses_bad_arguments_and_writes_nothing(acme, args, message):
    before = (User.objects.count(), Membership.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match=message):
        run("user_add", *args)
    assert (User.objects.count(), Membership.objects.count(), AuditEvent.objects.count()) == before


# --- token_create -------------------------------------------------------------------------

def test_token_create_prints_a_working_token_on_the_last_line(acme):
    lines = run("token_create", "acme", "DANA@acme.example", "--name", "ci")
    raw = lines[-1]
    assert raw.startswith("lfw_") and len(lines) > 1
    response = me(raw)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "dana@acme.example"
    assert response.json()["organization"]["slug"] == "acme"
    token = ApiToken.objects.get(name="ci")
    assert (token.read_only, token.expires_at, token.created_by) == (False, None, None)
    assert_command_event("api_token.created", "token_create", "acme")


def test_token_create_read_only_gives_an_lfr_token_that_cannot_write(acme):
    raw = run("token_create", "acme", "dana@acme.example", "--read-only")[-1]
    assert raw.startswith("lfr_")
    assert me(raw).json()["read_only"] is True
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.post("/api/v1/tokens/", {"name": "x"}, format="json").status_code == 403


def test_token_create_expires_days_sets_the_expiry(acme):
    start = timezone.now()
    raw = run("token_create", "acme", "dana@acme.example", "--expires-days", "7")[-1]
    token = ApiToken.objects.get()
    assert start + timedelta(days=7) <= token.expires_at <= timezone.now() + timedelta(days=7)
    assert me(raw).status_code == 200


@pytest.mark.parametrize(("args", "message"), [
    (("nowhere", "dana@acme.example"), "Organization 'nowhere' does not exist"),
    (("acme", "nobody@acme.example"), "User 'nobody@acme.example' does not exist"),
    (("acme", "dana@acme.example", "--expires-days", "0"), "future"),
    (("acme", "dana@acme.example", "--expires-days", "soon"), "invalid int value"),
])
def test_token_create_refuses_bad_arguments(acme, args, message):
    before = (ApiToken.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError, match=message):
        run("token_create", *args)
    assert (ApiToken.objects.count(), AuditEvent.objects.count()) == before


def test_token_create_refuses_a_user_of_another_org(acme):
    run("org_create", "other")
    run("user_add", "other", "olga@other.example", "--role", "owner")
    with pytest.raises(CommandError, match="not a member"):
        run("token_create", "acme", "olga@other.example")
    assert not ApiToken.objects.exists()


def test_the_raw_token_is_printed_but_not_stored(acme):
    raw = run("token_create", "acme", "dana@acme.example")[-1]
    secret = raw[12:]
    token = ApiToken.objects.get()
    stored = [str(v) for v in ApiToken.objects.values_list(*[f.attname for f in
                                                              ApiToken._meta.concrete_fields]).get()]
    assert not [v for v in stored if secret in v]
    assert not AuditEvent.objects.filter(after__icontains=secret).exists()
    assert token.prefix == raw[:12]
