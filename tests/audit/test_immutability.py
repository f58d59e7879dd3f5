"""The database itself keeps the audit trail append-only (DESIGN.md invariants 1 and 2).

Raw SQL stands in for a stray ORM call, a console session or a buggy migration: whatever the
application does, the triggers of migration 0002 (and on PostgreSQL the tenant-table guards of
audit.guards) must refuse it.
"""

import contextlib

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.chain import event_hash, timestamp
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.services import audit_record, checkpoint_create
from tenancy.models import Membership, Organization, User
from tenancy.services import membership_add, membership_remove, organization_update
from tests.conftest import as_table_owner

ACTOR = Actor.command("test-immutability")


def _refused(sql: str, params=()) -> None:
    """The statement fails with a database error, from the service's role and from the tables'
    owner (on PostgreSQL, a database administrator: the triggers bind them too); the savepoint
    keeps the test usable."""
    for role in (contextlib.nullcontext(), as_table_owner()):
        with role, pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)


def _events(org) -> list[tuple]:
    return list(AuditEvent.objects.filter(org=org).order_by("seq")
                .values_list("seq", "actor_label", "before", "after", "prev_hash", "hash"))


@pytest.fixture
def org_a(personas):
    checkpoint_create(org=personas.org_a)
    return personas.org_a


@pytest.mark.parametrize("assignment", ["actor_label = 'mallory'", "seq = seq + 100",
                                        "hash = prev_hash", "after = NULL"])
def test_raw_update_of_audit_events_is_refused(org_a, assignment):
    before = _events(org_a)
    _refused(f"UPDATE audit_auditevent SET {assignment} WHERE org_id = %s", [org_a.pk])
    assert _events(org_a) == before


def test_raw_delete_of_audit_events_is_refused(org_a):
    before = _events(org_a)
    _refused("DELETE FROM audit_auditevent WHERE org_id = %s AND seq = %s",
             [org_a.pk, before[-1][0]])
    _refused("DELETE FROM audit_auditevent")
    assert _events(org_a) == before


def test_raw_update_and_delete_of_checkpoints_are_refused(org_a):
    checkpoint = AuditCheckpoint.objects.get(org=org_a)
    _refused("UPDATE audit_auditcheckpoint SET root_hash = %s WHERE id = %s", ["0" * 64, checkpoint.pk])
    _refused("UPDATE audit_auditcheckpoint SET note = 'forged' WHERE id = %s", [checkpoint.pk])
    _refused("DELETE FROM audit_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    assert AuditCheckpoint.objects.get(pk=checkpoint.pk).note == checkpoint.note


@pytest.mark.postgres_only
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_auditcheckpoint",
                                   "audit_auditchainhead"])
def test_truncate_of_audit_tables_is_refused(org_a, table):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        (count,) = cursor.fetchone()
    _refused(f"TRUNCATE {table}")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        assert cursor.fetchone() == (count,) and count > 0


def test_deleting_the_chain_head_is_refused(org_a):
    _refused("DELETE FROM audit_auditchainhead WHERE org_id = %s", [org_a.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditChainHead.objects.filter(org=org_a).delete()
    assert AuditChainHead.objects.filter(org=org_a).exists()


def test_moving_the_chain_head_back_is_refused(org_a):
    head = AuditChainHead.objects.get(org=org_a)
    _refused("UPDATE audit_auditchainhead SET seq = seq - 1 WHERE org_id = %s", [org_a.pk])
    _refused("UPDATE audit_auditchainhead SET seq = 0, hash = %s WHERE org_id = %s",
             ["0" * 64, org_a.pk])
    assert AuditChainHead.objects.get(org=org_a).seq == head.seq


def _event_fields(org, seq: int, prev_hash: str) -> dict:
    now = timezone.now()
    fields = {"org": org.slug, "seq": seq, "created_at": timestamp(now), "actor_kind": "command",
              "actor_label": "manage.py forge", "action": "organization.updated",
              "target_type": "organization", "target_id": str(org.pk), "target_label": org.slug,
              "before": None, "after": {"name": "forged"}, "request_id": "", "client_ip": None}
    return {**fields, "org": org, "created_at": now, "prev_hash": prev_hash,
            "hash": event_hash(prev_hash, fields)}


def test_inserting_an_event_that_does_not_extend_the_chain_is_refused(org_a):
    head = AuditChainHead.objects.get(org=org_a)
    skipping = _event_fields(org_a, head.seq + 2, head.hash)
    wrong_link = _event_fields(org_a, head.seq + 1, "f" * 64)
    restarting = _event_fields(org_a, 1, "0" * 64)  # a second genesis (the unique key agrees)
    for fields in (skipping, wrong_link, restarting):
        with pytest.raises(IntegrityError), transaction.atomic():
            AuditEvent.objects.create(**fields)
    assert AuditEvent.objects.filter(org=org_a).count() == head.seq
    # The same insert with the right seq and link is accepted: the refusals are about the chain.
    AuditEvent.objects.create(**_event_fields(org_a, head.seq + 1, head.hash))


@pytest.mark.postgres_only
def test_raw_tenant_update_without_an_audit_event_fails_at_commit_but_the_service_commits(
        transactional_db, personas):
    org = personas.org_a
    events = AuditEvent.objects.filter(org=org).count()
    reached_commit = False
    with pytest.raises(DatabaseError, match="without an audit event"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("UPDATE tenancy_organization SET name = 'Renamed' WHERE id = %s", [org.pk])
        reached_commit = True  # the statement itself passed; COMMIT is what fails
    assert reached_commit
    with pytest.raises(DatabaseError, match="without an audit event"), connection.cursor() as cursor:
        cursor.execute("UPDATE tenancy_organization SET name = 'Renamed' WHERE id = %s", [org.pk])
    assert Organization.objects.get(pk=org.pk).name == "Organization A"

    organization_update(org=org, name="Renamed", actor=ACTOR)
    assert Organization.objects.get(pk=org.pk).name == "Renamed"
    assert AuditEvent.objects.filter(org=org).count() == events + 1
    assert AuditEvent.objects.filter(org=org).latest("seq").action == "organization.updated"


@pytest.mark.postgres_only
def test_the_guard_queues_one_check_per_transaction_and_a_rolled_back_savepoint_takes_it_back(
        transactional_db, personas):
    """The check is queued by the transaction's first guarded row only (audit/guards.py): if
    that row's savepoint rolls back, the next raw write must queue its own."""
    org = personas.org_a
    with pytest.raises(DatabaseError, match="without an audit event"), transaction.atomic(), \
            connection.cursor() as cursor:
        with contextlib.suppress(RuntimeError), transaction.atomic():
            cursor.execute("UPDATE tenancy_organization SET name = 'First' WHERE id = %s", [org.pk])
            raise RuntimeError("roll the savepoint back")
        cursor.execute("UPDATE tenancy_organization SET name = 'Second' WHERE id = %s", [org.pk])
    assert Organization.objects.get(pk=org.pk).name == "Organization A"

    # Many rows of several tables with one event: one check, and it passes.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE tenancy_organization SET name = 'Third' WHERE id = %s", [org.pk])
        cursor.execute("UPDATE tenancy_membership SET role = role WHERE org_id = %s", [org.pk])
        audit_record(org=org, actor=ACTOR, action="organization.updated", target=org,
                     target_label=org.slug)
    assert Organization.objects.get(pk=org.pk).name == "Third"


@pytest.mark.postgres_only
def test_raw_membership_insert_without_an_audit_event_fails_at_commit_but_the_service_commits(
        transactional_db, personas):
    org = personas.org_a
    user = User.objects.create_user("dave@a.example")
    with pytest.raises(DatabaseError, match="without an audit event"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("INSERT INTO tenancy_membership (org_id, user_id, role, created_at) "
                       "VALUES (%s, %s, 'admin', now())", [org.pk, user.pk])
    assert not Membership.objects.filter(org=org, user=user).exists()

    membership_add(org=org, email=user.email, role="admin", actor=ACTOR)
    assert Membership.objects.get(org=org, user=user).role == "admin"
    assert AuditEvent.objects.filter(org=org).latest("seq").action == "membership.created"


def test_a_service_that_fails_after_recording_leaves_no_event_and_no_change(personas, monkeypatch):
    org, bob = personas.org_a, personas.bob
    before = _events(org)

    def broken_delete(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Membership, "delete", broken_delete)
    with pytest.raises(RuntimeError, match="disk full"):
        membership_remove(membership=bob.membership, actor=ACTOR)
    assert _events(org) == before
    assert AuditChainHead.objects.get(org=org).seq == before[-1][0]
    bob.token.refresh_from_db()
    assert bob.token.revoked_at is None  # the revocation rolled back with the event


def test_a_rolled_back_transaction_around_a_service_body_leaves_no_event(personas):
    org = personas.org_a
    before = _events(org)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        organization_update.__wrapped__(org=org, name="Never", actor=ACTOR)
        assert AuditEvent.objects.filter(org=org).count() == len(before) + 1
        1 / 0  # noqa: B018
    assert _events(org) == before
    assert Organization.objects.get(pk=org.pk).name == "Organization A"


def test_a_service_refuses_to_join_a_callers_transaction(personas):
    """Services are durable: a caller cannot wrap them in a transaction that rolls back later."""
    org = personas.org_a
    before = _events(org)
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        organization_update(org=org, name="Nested", actor=ACTOR)
    assert _events(org) == before


def test_audit_record_outside_a_transaction_raises():
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        audit_record(org=Organization(slug="nowhere"), actor=ACTOR, action="x.y",
                     target=("thing", 1))


@pytest.mark.postgres_only
def test_audit_record_in_autocommit_mode_raises_and_writes_nothing(transactional_db, personas):
    org = personas.org_a
    count = AuditEvent.objects.filter(org=org).count()
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        audit_record(org=org, actor=ACTOR, action="organization.updated", target=org)
    assert AuditEvent.objects.filter(org=org).count() == count


@pytest.mark.postgres_only
def test_a_transaction_writing_two_organizations_needs_an_event_of_each(transactional_db,
                                                                        personas):
    """An event marks its own organization only: one event of A does not cover a raw write to
    B's data in the same transaction."""
    a, b = personas.org_a, personas.org_b
    rename = "UPDATE tenancy_organization SET name = %s WHERE id = %s"

    def write_b_with_an_event_of_a(cover_b: bool) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(rename, ["Renamed B", b.pk])
            audit_record(org=a, actor=ACTOR, action="organization.updated", target=a,
                         target_label=a.slug)
            if cover_b:  # what a per-transaction marker did: A's event counted for B too
                cursor.execute("SELECT set_config(%s, txid_current()::text, true)",
                               [f"ledgerflow.audited_{b.pk}"])

    write_b_with_an_event_of_a(cover_b=True)  # the defence off: it commits
    assert Organization.objects.get(pk=b.pk).name == "Renamed B"

    events = AuditEvent.objects.filter(org=b).count()
    with pytest.raises(DatabaseError, match=f"organization {b.pk}.*without an audit event"):
        write_b_with_an_event_of_a(cover_b=False)
    assert Organization.objects.get(pk=b.pk).name == "Renamed B"  # not "Renamed B" again: same
    with connection.cursor() as cursor, transaction.atomic():
        cursor.execute(rename, ["Renamed A", a.pk])
        cursor.execute(rename, ["Renamed B twice", b.pk])
        for org in (a, b):
            audit_record(org=org, actor=ACTOR, action="organization.updated", target=org,
                         target_label=org.slug)
    assert Organization.objects.get(pk=b.pk).name == "Renamed B twice"
    assert AuditEvent.objects.filter(org=b).count() == events + 1
