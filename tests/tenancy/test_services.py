"""tenancy.services: ownership rules, conflicts, and exactly one audit event per change."""

from datetime import UTC, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.actors import Actor
from audit.chain import event_hash
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from config.exceptions import ApplicationError
from tenancy.models import ApiToken, Membership
from tenancy.roles import Role
from tenancy.services import (
    membership_add,
    membership_remove,
    membership_update,
    organization_create,
    organization_update,
    token_create,
    token_revoke,
    user_password_set,
)

ACTOR = Actor.command("test")


@pytest.fixture
def dave(personas):
    """An admin (not owner) of org A, with a token."""
    membership = membership_add(org=personas.org_a, email="dave@a.example", role=Role.ADMIN,
                                actor=ACTOR)
    _token, raw = token_create(org=personas.org_a, user=membership.user, name="dave", actor=ACTOR)
    return membership, raw


def refused(kind: str, service, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        service(actor=ACTOR, **kwargs)
    assert caught.value.kind == kind, caught.value.message
    return caught.value


def events(org) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(org=org).order_by("seq"))


# --- owners -------------------------------------------------------------------------------

def test_the_last_owner_cannot_be_removed(personas):
    error = refused("conflict", membership_remove, membership=personas.alice.membership)
    assert ApplicationError.STATUS[error.kind] == 409
    assert Membership.objects.filter(pk=personas.alice.membership.pk).exists()


def test_the_last_owner_cannot_be_demoted(personas):
    refused("conflict", membership_update, membership=personas.alice.membership, role=Role.ADMIN)
    personas.alice.membership.refresh_from_db()
    assert personas.alice.membership.role == Role.OWNER


def test_the_api_answers_409_when_the_last_owner_leaves_or_steps_down(personas, api):
    path = f"/api/v1/members/{personas.alice.membership.id}/"
    assert api(personas.alice).delete(path).status_code == 409
    response = api(personas.alice).patch(path, {"role": "viewer"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict" and "owner" in response.json()["detail"]


def test_an_owner_can_step_down_once_there_is_another_owner(personas):
    membership_update(membership=personas.bob.membership, role=Role.OWNER, actor=ACTOR,
                      actor_membership=personas.alice.membership)
    membership_update(membership=personas.alice.membership, role=Role.VIEWER, actor=ACTOR,
                      actor_membership=personas.alice.membership)
    assert Membership.objects.get(pk=personas.alice.membership.pk).role == Role.VIEWER


@pytest.mark.parametrize("attempt", ["grant_on_add", "promote", "demote_owner", "remove_owner"])
def test_an_admin_cannot_grant_or_take_away_the_owner_role(personas, dave, attempt):
    admin, alice = dave[0], personas.alice.membership
    membership_update(membership=personas.bob.membership, role=Role.OWNER, actor=ACTOR)  # 2 owners
    calls = {
        "grant_on_add": (membership_add, {"org": personas.org_a, "email": "eve@a.example",
                                          "role": Role.OWNER}),
        "promote": (membership_update, {"membership": admin, "role": Role.OWNER}),
        "demote_owner": (membership_update, {"membership": alice, "role": Role.VIEWER}),
        "remove_owner": (membership_remove, {"membership": alice}),
    }
    service, kwargs = calls[attempt]
    before = AuditEvent.objects.count()
    error = refused("permission_denied", service, actor_membership=admin, **kwargs)
    assert ApplicationError.STATUS[error.kind] == 403
    assert AuditEvent.objects.count() == before
    assert Membership.objects.get(pk=alice.pk).role == Role.OWNER


def test_the_api_answers_403_when_an_admin_grants_ownership(personas, dave, api):
    response = api(dave[1]).patch(f"/api/v1/members/{personas.bob.membership.id}/",
                                  {"role": "owner"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_an_admin_manages_non_owner_roles(personas, dave):
    membership_update(membership=personas.bob.membership, role=Role.DATA_SCIENTIST, actor=ACTOR,
                      actor_membership=dave[0])
    membership_remove(membership=personas.bob.membership, actor=ACTOR, actor_membership=dave[0])
    assert not Membership.objects.filter(pk=personas.bob.membership.pk).exists()


def test_an_owner_can_grant_and_remove_the_owner_role(personas):
    alice = personas.alice.membership
    new = membership_add(org=personas.org_a, email="eve@a.example", role=Role.OWNER, actor=ACTOR,
                         actor_membership=alice)
    membership_update(membership=personas.bob.membership, role=Role.OWNER, actor=ACTOR,
                      actor_membership=alice)
    membership_remove(membership=new, actor=ACTOR, actor_membership=alice)
    assert set(Membership.objects.filter(org=personas.org_a, role=Role.OWNER)
               .values_list("user__email", flat=True)) == {"alice@a.example", "bob@a.example"}


# --- conflicts and bad input --------------------------------------------------------------

def test_adding_an_existing_member_again_is_a_conflict(personas, api):
    error = refused("already_exists", membership_add, org=personas.org_a, email="BOB@a.example",
                    role=Role.ADMIN)
    assert ApplicationError.STATUS[error.kind] == 409
    response = api(personas.alice).post("/api/v1/members/",
                                        {"email": "bob@a.example", "role": "admin"}, format="json")
    assert response.status_code == 409
    assert Membership.objects.get(pk=personas.bob.membership.pk).role == Role.VIEWER


def test_a_token_for_a_non_member_is_refused(personas):
    refused("invalid", token_create, org=personas.org_a, user=personas.charlie.user, name="x")


def test_an_unknown_role_is_refused(personas):
    refused("invalid", membership_add, org=personas.org_a, email="eve@a.example", role="emperor")
    refused("invalid", membership_update, membership=personas.bob.membership, role="emperor")


# --- one audit event per change -----------------------------------------------------------

def _create_org(p):
    return organization_create(slug="org-c", name="C", actor=ACTOR)


SUCCESSES = {
    "organization.created": _create_org,
    "organization.updated": lambda p: organization_update(org=p.org_a, name="A2", actor=ACTOR),
    "membership.created": lambda p: membership_add(org=p.org_a, email="eve@a.example",
                                                   role=Role.AUDITOR, actor=ACTOR),
    "membership.role_changed": lambda p: membership_update(membership=p.bob.membership,
                                                           role=Role.ADMIN, actor=ACTOR),
    "membership.removed": lambda p: membership_remove(membership=p.bob.membership, actor=ACTOR),
    "api_token.created": lambda p: token_create(org=p.org_a, user=p.bob.user, name="n",
                                                actor=ACTOR),
    "api_token.revoked": lambda p: token_revoke(token=p.bob.token, actor=ACTOR),
}


@pytest.mark.parametrize("action", sorted(SUCCESSES))
def test_each_successful_service_call_records_exactly_one_event(personas, action):
    seen = set(AuditEvent.objects.values_list("pk", flat=True))
    result = SUCCESSES[action](personas)
    new = list(AuditEvent.objects.exclude(pk__in=seen))
    assert len(new) == 1
    org = result if action == "organization.created" else personas.org_a
    assert (new[0].org_id, new[0].action) == (org.pk, action)
    assert (new[0].actor_kind, new[0].actor_label) == ("command", "manage.py test")


def test_removing_a_member_revokes_their_tokens_in_the_same_event(personas):
    membership_remove(membership=personas.bob.membership, actor=ACTOR)
    assert ApiToken.objects.get(pk=personas.bob.token.pk).revoked_at is not None
    assert events(personas.org_a)[-1].after == {"tokens_revoked": 1}


def test_changes_that_change_nothing_record_nothing(personas):
    before = AuditEvent.objects.count()
    membership_update(membership=personas.bob.membership, role=Role.VIEWER, actor=ACTOR)
    token_revoke(token=personas.bob.token, actor=ACTOR)
    token_revoke(token=personas.bob.token, actor=ACTOR)  # second time: nothing
    assert AuditEvent.objects.count() == before + 1


FAILURES = {
    "duplicate org": lambda p: organization_create(slug="org-a", name="again", actor=ACTOR),
    "bad slug": lambda p: organization_create(slug="Not A Slug", name="x", actor=ACTOR),
    "duplicate member": lambda p: membership_add(org=p.org_a, email="bob@a.example",
                                                 role=Role.VIEWER, actor=ACTOR),
    "bad email": lambda p: membership_add(org=p.org_a, email="not-an-email", role=Role.VIEWER,
                                          actor=ACTOR),
    "last owner": lambda p: membership_remove(membership=p.alice.membership, actor=ACTOR),
    "past expiry": lambda p: token_create(org=p.org_a, user=p.bob.user, name="n", actor=ACTOR,
                                          expires_at=timezone.now() - timedelta(seconds=1)),
    "long name": lambda p: token_create(org=p.org_a, user=p.bob.user, name="n" * 101, actor=ACTOR),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_failing_service_call_records_no_event_and_changes_nothing(personas, case):
    def snapshot():
        return [model.objects.count() for model in (AuditEvent, Membership, ApiToken)] + [
            list(AuditChainHead.objects.order_by("org").values_list("seq", "hash"))]

    before = snapshot()
    with pytest.raises((ApplicationError, ValidationError)):
        FAILURES[case](personas)
    assert snapshot() == before


# --- the chain ----------------------------------------------------------------------------

def exported(event: AuditEvent) -> dict:
    return {
        "org": event.org.slug, "seq": event.seq,
        "created_at": event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_kind": event.actor_kind, "actor_label": event.actor_label, "action": event.action,
        "target_type": event.target_type, "target_id": event.target_id,
        "target_label": event.target_label, "before": event.before, "after": event.after,
        "request_id": event.request_id, "client_ip": event.client_ip,
    }


def test_each_orgs_chain_is_gap_free_and_linked_by_hashes(personas, api):
    for call in ("membership.created", "membership.role_changed", "api_token.created",
                 "api_token.revoked", "organization.updated"):
        SUCCESSES[call](personas)
    api(personas.alice).post("/api/v1/tokens/", {"name": "via api"}, format="json")

    for org in (personas.org_a, personas.org_b):
        chain = events(org)
        assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
        assert chain[0].action == "organization.created"
        prev = GENESIS_HASH
        for event in chain:
            assert event.prev_hash == prev
            assert event.hash == event_hash(prev, exported(event))
            prev = event.hash
        head = AuditChainHead.objects.get(org=org)
        assert (head.seq, head.hash) == (chain[-1].seq, chain[-1].hash)
    assert len(events(personas.org_a)) > len(events(personas.org_b))


def test_a_password_set_is_checked_audited_and_never_recorded(personas):
    alice = personas.alice.user
    before = AuditEvent.objects.filter(org=personas.org_a).count()
    for weak in ("123", "password", "alice"):
        error = refused("invalid", user_password_set, org=personas.org_a, user=alice,
                        password=weak)
        assert "password" in error.fields
    error = refused("invalid", user_password_set, org=personas.org_b, user=alice,
                    password="a-long-unusual-phrase")
    assert "not a member" in error.message
    alice.refresh_from_db()
    assert not alice.check_password("a-long-unusual-phrase")
    assert AuditEvent.objects.filter(org=personas.org_a).count() == before

    user_password_set(org=personas.org_a, user=alice, password="a-long-unusual-phrase",
                      actor=ACTOR)
    alice.refresh_from_db()
    assert alice.check_password("a-long-unusual-phrase")
    event = AuditEvent.objects.filter(org=personas.org_a).latest("seq")
    assert (event.action, event.after) == ("user.password_set", {"email": alice.email})
    assert "a-long-unusual-phrase" not in str(event.after) + str(event.before)
