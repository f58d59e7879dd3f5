"""Django admin: every add goes through the services (validated, audited); tokens shown once."""

import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import DELETION, LogEntry
from django.db import connection
from django.test import RequestFactory
from rest_framework.test import APIClient

from audit.actors import Actor
from audit.models import AuditEvent
from tenancy.models import ApiToken, Membership, Organization, User
from tenancy.roles import Role
from tenancy.services import service_account_add

ROOT = "root@example.com"
RAW_TOKEN = re.compile(r"lf[wr]_[A-Za-z0-9]{40}")


@pytest.fixture
def root(db):
    return User.objects.create_superuser(ROOT, "root-password")


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


def counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Organization, Membership, ApiToken, AuditEvent, User))


def new_events(since: set[int]) -> list[AuditEvent]:
    return list(AuditEvent.objects.exclude(pk__in=since).order_by("pk"))


def event_ids() -> set[int]:
    return set(AuditEvent.objects.values_list("pk", flat=True))


def assert_admin_event(event: AuditEvent, action: str, org: Organization) -> None:
    assert (event.action, event.org_id) == (action, org.pk)
    assert event.actor_kind == "user"
    assert event.actor_label == f"{ROOT} (admin)" and event.actor_label.endswith("(admin)")
    assert event.actor_user.email == ROOT


def authenticates(raw: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get("/api/v1/me/").status_code == 200


def stored_anywhere(needle: str) -> bool:
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            if any(needle in str(value) for row in cursor.fetchall() for value in row):
                return True
    return False


def add_token(admin_client, org, user, **fields):
    data = {"org": org.pk, "user": user.pk, "name": "from admin", "expires_at_0": "",
            "expires_at_1": "", **fields}
    return admin_client.post("/admin/tenancy/apitoken/add/", data)


# --- organizations and memberships --------------------------------------------------------

def test_adding_an_organization_in_the_admin_goes_through_the_service(admin_client):
    seen = event_ids()
    response = admin_client.post("/admin/tenancy/organization/add/",
                                 {"slug": "acme", "name": "Acme Bank"})
    assert response.status_code == 302, response.content.decode()[:2000]
    org = Organization.objects.get(slug="acme")
    [event] = new_events(seen)
    assert_admin_event(event, "organization.created", org)


def test_adding_a_duplicate_organization_shows_a_form_error(admin_client, personas):
    before = counts()
    response = admin_client.post("/admin/tenancy/organization/add/", {"slug": "org-a", "name": "x"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert counts() == before


def test_adding_a_membership_in_the_admin_goes_through_the_service(admin_client, personas):
    seen = event_ids()
    response = admin_client.post("/admin/tenancy/membership/add/",
                                 {"org": personas.org_a.pk, "user": personas.charlie.user.pk,
                                  "role": "auditor"})
    assert response.status_code == 302, response.content.decode()[:2000]
    membership = Membership.objects.get(org=personas.org_a, user=personas.charlie.user)
    assert membership.role == "auditor"
    [event] = new_events(seen)
    assert_admin_event(event, "membership.created", personas.org_a)


def test_adding_a_duplicate_membership_shows_a_form_error_and_writes_nothing(admin_client, personas):
    before = counts()
    response = admin_client.post("/admin/tenancy/membership/add/",
                                 {"org": personas.org_a.pk, "user": personas.bob.user.pk,
                                  "role": "admin"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert "already" in response.content.decode()
    assert counts() == before
    assert Membership.objects.get(pk=personas.bob.membership.pk).role == "viewer"


def test_changing_a_role_in_the_admin_is_audited(admin_client, personas):
    seen = event_ids()
    response = admin_client.post(f"/admin/tenancy/membership/{personas.bob.membership.pk}/change/",
                                 {"role": "data_scientist"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(pk=personas.bob.membership.pk).role == "data_scientist"
    [event] = new_events(seen)
    assert_admin_event(event, "membership.role_changed", personas.org_a)


# --- tokens -------------------------------------------------------------------------------

@pytest.fixture
def robot(personas):
    """A service account of org A: the one kind of member an admin makes tokens for."""
    return service_account_add(org=personas.org_a, name="nightly", role=Role.DATA_SCIENTIST,
                               actor=Actor.command("test")).user


def test_adding_a_token_in_the_admin_shows_the_raw_token_once(admin_client, personas, robot):
    seen = event_ids()
    response = add_token(admin_client, personas.org_a, robot, name="admin-made")
    assert response.status_code == 200, response.content.decode()[:2000]
    [raw] = RAW_TOKEN.findall(response.content.decode())
    token = ApiToken.objects.get(name="admin-made")
    assert raw.startswith("lfw_") and token.prefix == raw[:12] and token.user == robot
    assert authenticates(raw)
    assert not stored_anywhere(raw) and not stored_anywhere(raw[12:])
    [event] = new_events(seen)
    assert_admin_event(event, "api_token.created", personas.org_a)

    for page in (f"/admin/tenancy/apitoken/{token.pk}/change/", "/admin/tenancy/apitoken/"):
        later = admin_client.get(page)
        assert later.status_code == 200
        assert raw[12:] not in later.content.decode()


def test_adding_a_read_only_token_in_the_admin_gives_an_lfr_token(admin_client, personas,
                                                                   robot):
    response = add_token(admin_client, personas.org_a, robot, read_only="on")
    [raw] = RAW_TOKEN.findall(response.content.decode())
    assert raw.startswith("lfr_") and authenticates(raw)


def test_the_admin_makes_no_token_for_a_person(admin_client, personas):
    """Tokens are personal: a superuser who could make one for an owner could act as them."""
    before = counts()
    response = add_token(admin_client, personas.org_a, personas.alice.user)  # the owner
    assert response.status_code == 200
    assert "Tokens are personal" in response.content.decode()
    assert not RAW_TOKEN.search(response.content.decode())
    assert counts() == before


def test_adding_a_token_for_a_non_member_shows_a_form_error(admin_client, personas):
    before = counts()
    response = add_token(admin_client, personas.org_a, personas.charlie.user)
    assert response.status_code == 200
    assert "not a member" in response.content.decode()
    assert not RAW_TOKEN.search(response.content.decode())
    assert counts() == before


def test_tokens_cannot_be_deleted_in_the_admin(admin_client, personas):
    token = personas.bob.token
    assert admin_client.get(f"/admin/tenancy/apitoken/{token.pk}/delete/").status_code == 403
    assert admin_client.post(f"/admin/tenancy/apitoken/{token.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    request = RequestFactory().get("/admin/tenancy/apitoken/")
    request.user = User.objects.get(email=ROOT)
    model_admin = admin.site._registry[ApiToken]
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)
    assert ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).exists()


def test_the_revoke_tokens_action_revokes_and_audits(admin_client, personas):
    seen = event_ids()
    chosen = [personas.alice.token.pk, personas.bob.token.pk]
    response = admin_client.post("/admin/tenancy/apitoken/", {
        "action": "revoke_tokens", "_selected_action": chosen, "index": 0, "select_across": 0})
    assert response.status_code == 302
    assert ApiToken.objects.filter(pk__in=chosen, revoked_at__isnull=False).count() == 2
    assert not authenticates(personas.bob.raw_token)
    assert authenticates(personas.charlie.raw_token)
    events = new_events(seen)
    assert len(events) == 2
    for event in events:
        assert_admin_event(event, "api_token.revoked", personas.org_a)


def test_the_token_change_form_changes_nothing(admin_client, personas):
    token, seen = personas.bob.token, event_ids()
    response = admin_client.post(f"/admin/tenancy/apitoken/{token.pk}/change/",
                                 {"name": "renamed", "read_only": "on"})
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.name, token.read_only) == ("bob@a.example token", False)
    assert new_events(seen) == []


# --- the audit trail ----------------------------------------------------------------------

def test_the_audit_admin_is_read_only_even_for_a_superuser(admin_client, personas):
    event = AuditEvent.objects.filter(org=personas.org_a).order_by("seq").first()
    before = counts()
    assert admin_client.get("/admin/audit/auditevent/").status_code == 200
    assert admin_client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200
    assert admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert admin_client.post("/admin/audit/auditevent/add/", {"action": "x"}).status_code == 403
    assert admin_client.post(f"/admin/audit/auditevent/{event.pk}/change/",
                             {"action": "tampered"}).status_code == 403
    assert admin_client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert admin_client.post(f"/admin/audit/auditevent/{event.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    response = admin_client.post("/admin/audit/auditevent/", {
        "action": "delete_selected", "_selected_action": [event.pk], "index": 0, "post": "yes"})
    assert response.status_code in (200, 302)
    assert counts() == before
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.hash) == (event.action, event.hash)


def test_removing_a_membership_in_the_admin_goes_through_the_service(admin_client, personas):
    seen = event_ids()
    response = admin_client.post(f"/admin/tenancy/membership/{personas.bob.membership.pk}/delete/",
                                 {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=personas.bob.membership.pk).exists()
    assert not authenticates(personas.bob.raw_token)  # the service revoked bob's tokens
    [event] = new_events(seen)
    assert_admin_event(event, "membership.removed", personas.org_a)


def test_removing_the_last_owner_in_the_admin_is_refused_without_claiming_success(admin_client,
                                                                                   personas):
    before = counts()
    response = admin_client.post(f"/admin/tenancy/membership/{personas.alice.membership.pk}/delete/",
                                 {"post": "yes"}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert shown == ["An organization must keep at least one owner."]
    assert counts() == before
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()
    assert authenticates(personas.alice.raw_token)


def test_demoting_the_last_owner_in_the_admin_shows_a_form_error(admin_client, personas):
    before = counts()
    response = admin_client.post(f"/admin/tenancy/membership/{personas.alice.membership.pk}/change/",
                                 {"role": "viewer"})
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    assert counts() == before
    assert Membership.objects.get(pk=personas.alice.membership.pk).role == "owner"


def test_adding_a_token_that_expired_already_shows_a_form_error(admin_client, personas, robot):
    before = counts()
    response = add_token(admin_client, personas.org_a, robot,
                         expires_at_0="2001-01-01", expires_at_1="10:00:00")
    assert response.status_code == 200
    assert "must lie in the future" in response.content.decode()
    assert not RAW_TOKEN.search(response.content.decode())
    assert counts() == before
