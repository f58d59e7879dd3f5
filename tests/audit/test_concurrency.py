"""Concurrent writers in two organizations: every chain stays gap-free, linked and verifiable.

Real threads on real PostgreSQL connections, committing for real (transactional_db): the
chain head's row lock is what serializes the writers of one organization.
"""

import threading

import pytest
from django.db import connection

from audit.actors import Actor
from audit.chain import GENESIS_HASH
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.services import audit_verify_org, checkpoint_create
from tenancy.services import token_create, token_revoke

pytestmark = pytest.mark.postgres_only

THREADS_PER_ORG = 8
ROUNDS = 3  # per thread and round: one token_create and one token_revoke


def _run_threads(targets: list) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def run(target):
        try:
            barrier.wait(timeout=60)
            target()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection; give it back

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    return errors


def _writer(persona, number: int, calls: list[int]):
    actor = Actor.command(f"writer-{persona.org.slug}-{number}")

    def write():
        for round_ in range(ROUNDS):
            token, _ = token_create(org=persona.org, user=persona.user,
                                    name=f"w{number}-r{round_}", actor=actor)
            calls.append(persona.org.pk)
            token_revoke(token=token, actor=actor)
            calls.append(persona.org.pk)

    return write


def _assert_chain_intact(org, expected_events: int) -> None:
    events = list(AuditEvent.objects.filter(org=org).order_by("seq").values("seq", "prev_hash", "hash"))
    assert [e["seq"] for e in events] == list(range(1, expected_events + 1)), "gap or duplicate"
    previous = GENESIS_HASH
    for event in events:
        assert event["prev_hash"] == previous, f"#{event['seq']} does not link"
        previous = event["hash"]
    head = AuditChainHead.objects.get(org=org)
    assert (head.seq, head.hash) == (expected_events, previous)
    verdict = audit_verify_org(org)
    assert verdict.ok, verdict.reason
    assert verdict.events == expected_events


def test_concurrent_writers_in_two_orgs_keep_both_chains_gap_free_and_verifiable(
        transactional_db, personas):
    orgs = {personas.org_a.pk: personas.org_a, personas.org_b.pk: personas.org_b}
    baseline = {pk: AuditEvent.objects.filter(org_id=pk).count() for pk in orgs}
    calls: list[int] = []  # list.append is atomic under the GIL
    writers = [_writer(persona, number, calls)
               for persona in (personas.alice, personas.charlie)
               for number in range(THREADS_PER_ORG)]

    errors = _run_threads(writers)

    assert not errors, errors
    assert len(calls) == 2 * THREADS_PER_ORG * ROUNDS * 2
    for pk, org in orgs.items():
        made = calls.count(pk)
        assert made == THREADS_PER_ORG * ROUNDS * 2
        _assert_chain_intact(org, baseline[pk] + made)
        assert AuditEvent.objects.filter(org=org, action="api_token.created",
                                         actor_label__startswith="manage.py writer-").count() \
            == THREADS_PER_ORG * ROUNDS


def test_checkpoints_signed_while_writers_run_match_the_final_log(transactional_db, personas):
    org = personas.org_a
    baseline = AuditEvent.objects.filter(org=org).count()
    calls: list[int] = []
    done = threading.Event()

    def checkpointer():
        while not done.is_set():
            checkpoint_create(org=org)

    writers = [_writer(personas.alice, number, calls) for number in range(THREADS_PER_ORG)]

    finished: list[bool] = []

    def writers_then_stop(write):
        def run():
            try:
                write()
            finally:
                finished.append(True)
                if len(finished) == len(writers):
                    done.set()  # the last writer to finish stops the checkpointer
        return run

    errors = _run_threads([checkpointer, *(writers_then_stop(w) for w in writers)])
    done.set()

    assert not errors, errors
    _assert_chain_intact(org, baseline + len(calls))
    sizes = list(AuditCheckpoint.objects.filter(org=org).values_list("tree_size", flat=True))
    assert len(sizes) == len(set(sizes)) >= 1
    assert audit_verify_org(org).checkpoints == len(sizes)
