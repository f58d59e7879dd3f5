"""`manage.py audit_verify` speaks English: "1 checkpoint", "2 checkpoints", "0 checkpoints"."""

import io

from django.core.management import call_command

from audit.actors import Actor
from audit.models import AuditChainHead
from audit.services import checkpoint_create
from tenancy.services import organization_create, token_create

ACTOR = Actor.command("test-audit-verify-command")


def _verify(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue().splitlines()


def test_it_counts_checkpoints_and_events_in_the_singular_and_the_plural(personas):
    org_a, org_b = personas.org_a, personas.org_b
    events_a = AuditChainHead.objects.get(org=org_a).seq
    events_b = AuditChainHead.objects.get(org=org_b).seq
    assert _verify("--org", "org-a") == [f"org-a: OK ({events_a} events, 0 checkpoints)", "OK"]

    checkpoint_create(org=org_a)
    assert _verify("--org", "org-a")[0] == f"org-a: OK ({events_a} events, 1 checkpoint)"

    token_create(org=org_a, user=personas.alice.user, name="grow", actor=ACTOR)
    checkpoint_create(org=org_a)
    assert _verify() == [f"org-a: OK ({events_a + 1} events, 2 checkpoints)",
                         f"org-b: OK ({events_b} events, 0 checkpoints)", "OK"]


def test_a_single_event_is_one_event(db):
    organization_create(slug="solo", name="Solo", actor=ACTOR)
    assert AuditChainHead.objects.get(org__slug="solo").seq == 1
    assert _verify("--org", "solo") == ["solo: OK (1 event, 0 checkpoints)", "OK"]
