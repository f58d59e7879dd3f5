"""The audit trail API (/api/v1/audit/), its roles and organization scoping, and the beat task."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from audit.actors import Actor
from audit.merkle import tree_root, verify_consistency, verify_inclusion
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.notes import load_public_key, open_note
from audit.services import audit_record, audit_verify_org, checkpoint_create
from audit.tasks import audit_checkpoint_all, audit_checkpoint_org
from tenancy.roles import Role
from tenancy.services import token_create, token_revoke
from tests.conftest import make_persona

BASE = "/api/v1/audit/"
ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor.command("test-audit-api")


@pytest.fixture
def team(personas):
    """Org A's audit-capable and audit-less roles beside alice (owner) and bob (viewer)."""
    org = personas.org_a
    return {
        "data_scientist": make_persona(org, "dana@a.example", Role.DATA_SCIENTIST),
        "compliance_officer": make_persona(org, "olga@a.example", Role.COMPLIANCE_OFFICER),
        "auditor": make_persona(org, "avery@a.example", Role.AUDITOR),
    }


def _hashes(org) -> list[bytes]:
    return [bytes.fromhex(h) for h in
            AuditEvent.objects.filter(org=org).order_by("seq").values_list("hash", flat=True)]


def _size(org) -> int:
    return AuditChainHead.objects.get(org=org).seq


def _written() -> tuple[int, int]:
    return AuditEvent.objects.count(), AuditCheckpoint.objects.count()


def _public_key():
    body = APIClient().get(f"{BASE}public-key/").json()
    return body["key_name"], load_public_key(body["public_key_pem"].encode())


def test_public_key_needs_no_authentication(db):
    response = APIClient().get(f"{BASE}public-key/")
    assert response.status_code == 200
    body = response.json()
    assert body["algorithm"] == "Ed25519" and body["public_key_pem"].startswith("-----BEGIN PUBLIC KEY")
    assert body["verifier_key"].startswith(body["key_name"] + "+")


def test_event_list_pages_oldest_first_with_after_seq_and_limit(personas, team, api):
    client, seen, after = api(team["auditor"]), [], 0
    while after is not None:
        page = client.get(f"{BASE}events/", {"limit": 3, "after_seq": after}).json()
        assert len(page["results"]) <= 3
        seen += [event["seq"] for event in page["results"]]
        after = page["next_after_seq"]
    assert seen == list(range(1, _size(personas.org_a) + 1))
    last = client.get(f"{BASE}events/", {"after_seq": len(seen) - 2}).json()
    assert [e["seq"] for e in last["results"]] == seen[-2:] and last["next_after_seq"] is None


def test_event_list_filters_by_action_actor_target_and_time(personas, team, api):
    org, client = personas.org_a, api(team["compliance_officer"])
    token, _ = token_create(org=org, user=personas.alice.user, name="filtered", actor=ACTOR)
    token_revoke(token=token, actor=ACTOR)
    events = list(AuditEvent.objects.filter(org=org).order_by("seq"))

    def seqs(**query):
        response = client.get(f"{BASE}events/", {"limit": 1000, **query})
        assert response.status_code == 200, response.json()
        return [event["seq"] for event in response.json()["results"]]

    assert seqs(action="api_token.revoked") == [e.seq for e in events if e.action == "api_token.revoked"]
    assert seqs(actor="test-audit-api") == [events[-2].seq, events[-1].seq]
    assert seqs(actor="TEST-SETUP") == [e.seq for e in events if e.actor_label == "manage.py test-setup"]
    assert seqs(target_type="apitoken", target_id=str(token.pk)) == [events[-2].seq, events[-1].seq]
    assert seqs(target_type="organization") == [1]
    middle = events[len(events) // 2].created_at
    assert seqs(since=middle.isoformat()) == [e.seq for e in events if e.created_at >= middle]
    assert seqs(until=middle.isoformat()) == [e.seq for e in events if e.created_at < middle]
    assert seqs(action="no.such.action") == []


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": 0}, "limit"), ({"limit": "abc"}, "limit"), ({"limit": 1001}, "limit"),
    ({"since": "notadate"}, "since"), ({"until": "yesterday"}, "until"),
    ({"after_seq": -1}, "after_seq"),
])
def test_event_list_rejects_bad_filters_naming_the_field(personas, api, query, field):
    written = _written()
    response = api(personas.alice).get(f"{BASE}events/", query)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["fields"]
    assert _written() == written


def test_inclusion_proof_verifies_against_the_current_root_then_the_signed_checkpoint(personas, api):
    org, client = personas.org_a, api(personas.alice)
    size = _size(org)
    for seq in range(1, size + 1):
        body = client.get(f"{BASE}events/{seq}/").json()
        proof, event = body["inclusion_proof"], body["event"]
        assert event["seq"] == seq and proof["leaf"] == event["hash"] and proof["checkpoint"] is None
        assert (proof["leaf_index"], proof["tree_size"]) == (seq - 1, size)
        assert bytes.fromhex(proof["root_hash"]) == tree_root(_hashes(org))
        path = [bytes.fromhex(node) for node in proof["path"]]
        assert verify_inclusion(seq - 1, size, bytes.fromhex(event["hash"]), path,
                                bytes.fromhex(proof["root_hash"]))
        assert not verify_inclusion(seq - 1, size, bytes.fromhex(event["prev_hash"]), path,
                                    bytes.fromhex(proof["root_hash"]))

    assert client.post(f"{BASE}checkpoints/").status_code == 201
    token_create(org=org, user=personas.alice.user, name="after the checkpoint", actor=ACTOR)
    name, key = _public_key()
    for seq in (1, size):
        proof = client.get(f"{BASE}events/{seq}/").json()["inclusion_proof"]
        signed = open_note(proof["checkpoint"], name, key)
        assert (signed.size, signed.root.hex()) == (proof["tree_size"], proof["root_hash"]) == \
            (size, tree_root(_hashes(org)[:size]).hex())
        assert verify_inclusion(seq - 1, signed.size, bytes.fromhex(proof["leaf"]),
                                [bytes.fromhex(node) for node in proof["path"]], signed.root)
    assert client.get(f"{BASE}events/{size + 1}/").json()["inclusion_proof"]["checkpoint"] is None
    assert client.get(f"{BASE}events/{size + 2}/").status_code == 404
    assert client.get(f"{BASE}events/0/").status_code == 404


def test_verify_reports_an_intact_chain_on_get_and_post(personas, api):
    client = api(personas.alice)
    for method in (client.get, client.post):
        response = method(f"{BASE}verify/")
        assert response.status_code == 200
        assert response.json() == {"ok": True, "events": _size(personas.org_a), "checkpoints": 0,
                                   "first_bad_seq": None, "reason": ""}


def test_checkpoint_post_is_idempotent_for_the_same_size(personas, api):
    client = api(personas.alice)
    first = client.post(f"{BASE}checkpoints/")
    assert first.status_code == 201 and first.json()["tree_size"] == _size(personas.org_a)
    again = client.post(f"{BASE}checkpoints/")
    assert again.status_code in (200, 201) and again.json() == first.json()
    assert AuditCheckpoint.objects.filter(org=personas.org_a).count() == 1
    token_create(org=personas.org_a, user=personas.alice.user, name="grow", actor=ACTOR)
    assert client.post(f"{BASE}checkpoints/").json()["tree_size"] == first.json()["tree_size"] + 1
    listed = client.get(f"{BASE}checkpoints/").json()
    assert [c["tree_size"] for c in listed] == [first.json()["tree_size"] + 1, first.json()["tree_size"]]
    detail = client.get(f"{BASE}checkpoints/{first.json()['tree_size']}/")
    assert detail.status_code == 200 and detail.json() == first.json()


def test_checkpoint_note_downloads_as_a_text_attachment_that_opens_with_the_public_key(personas, api):
    client = api(personas.alice)
    size = client.post(f"{BASE}checkpoints/").json()["tree_size"]
    response = client.get(f"{BASE}checkpoints/{size}/", {"format": "note"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Disposition"] == f'attachment; filename="org-a-checkpoint-{size}.txt"'
    signed = open_note(response.content.decode(), *_public_key())
    assert signed.size == size and signed.root == tree_root(_hashes(personas.org_a))
    assert signed.origin.endswith("/org-a")
    assert client.get(f"{BASE}checkpoints/{size + 1}/", {"format": "note"}).status_code == 404


def test_consistency_proof_between_two_sizes_verifies(personas, api):
    org, client = personas.org_a, api(personas.alice)
    old = client.post(f"{BASE}checkpoints/").json()["tree_size"]
    for number in range(4):
        token_create(org=org, user=personas.alice.user, name=f"grow {number}", actor=ACTOR)
    new = client.post(f"{BASE}checkpoints/").json()["tree_size"]
    name, key = _public_key()
    for old_size in range(1, new + 1):
        body = client.get(f"{BASE}consistency/", {"old_size": old_size, "new_size": new}).json()
        path = [bytes.fromhex(node) for node in body["path"]]
        old_root, new_root = bytes.fromhex(body["old_root"]), bytes.fromhex(body["new_root"])
        assert old_root == tree_root(_hashes(org)[:old_size]) and new_root == tree_root(_hashes(org))
        assert verify_consistency(old_size, new, old_root, new_root, path), old_size
    body = client.get(f"{BASE}consistency/", {"old_size": old, "new_size": new}).json()
    old_note = open_note(body["old_checkpoint"], name, key)
    new_note = open_note(body["new_checkpoint"], name, key)
    assert verify_consistency(old, new, old_note.root, new_note.root,
                              [bytes.fromhex(node) for node in body["path"]])


@pytest.mark.parametrize(("query", "field"), [
    ({"old_size": 3, "new_size": 2}, "old_size"), ({"old_size": 1, "new_size": 999}, "new_size"),
    ({"old_size": 0, "new_size": 2}, "old_size"), ({"old_size": "abc", "new_size": 2}, "old_size"),
    ({"new_size": 2}, "old_size"), ({"old_size": 1}, "new_size"),
])
def test_consistency_rejects_bad_sizes_naming_the_field(personas, api, query, field):
    written = _written()
    response = api(personas.alice).get(f"{BASE}consistency/", query)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert _written() == written


def _offline(path: Path, key_pem: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    pem = tmp_path / "key.pem"
    pem.write_text(key_pem)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run([sys.executable, "-m", "audit.offline", str(path), "--public-key", str(pem),
                           *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_after_a_key_rotation_old_checkpoints_verify_with_the_retired_key(personas, api, settings,
                                                                          tmp_path):
    checkpoint_create(org=personas.org_a)
    old = APIClient().get(f"{BASE}public-key/").json()
    settings.LEDGERFLOW_SIGNING_KEY_FILE = str(tmp_path / "new-key.pem")  # made on first use
    settings.LEDGERFLOW_AUDIT_KEY_NAME = "ledgerflow-audit-2027"
    audit_record(org=personas.org_a, actor=Actor.command("test"), action="test.after_rotation",
                 target=personas.org_a)
    checkpoint_create(org=personas.org_a)
    client = api(personas.alice)
    # without the retired key, the first checkpoint cannot be checked, and the verdict says so
    refused = client.get(f"{BASE}verify/").json()
    assert refused["ok"] is False and old["key_name"] in refused["reason"]

    settings.LEDGERFLOW_AUDIT_RETIRED_KEYS = [old["verifier_key"]]
    assert client.get(f"{BASE}verify/").json()["ok"] is True
    current = APIClient().get(f"{BASE}public-key/").json()
    assert current["key_name"] == "ledgerflow-audit-2027"
    assert current["retired_verifier_keys"] == [old["verifier_key"]]

    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(client.get(f"{BASE}export/").streaming_content))
    alone = _offline(path, current["public_key_pem"], tmp_path)
    assert alone.returncode == 1 and old["key_name"] in alone.stderr
    both = _offline(path, current["public_key_pem"], tmp_path, "--verifier-key", old["verifier_key"])
    assert both.returncode == 0, both.stderr
    assert "2 signed checkpoints verified" in both.stdout


def test_export_streams_json_lines_that_the_offline_verifier_accepts(personas, api, tmp_path):
    checkpoint_create(org=personas.org_a)
    response = api(personas.alice).get(f"{BASE}export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    assert 'filename="org-a-audit.jsonl"' in response["Content-Disposition"]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    key_pem = APIClient().get(f"{BASE}public-key/").json()["public_key_pem"]
    result = _offline(path, key_pem, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"OK: {_size(personas.org_a)} events, 1 signed checkpoint verified" in result.stdout


def _endpoints(size: int) -> list[tuple[str, str]]:
    return [("get", "events/"), ("get", "events/1/"), ("get", "verify/"), ("post", "verify/"),
            ("get", "checkpoints/"), ("post", "checkpoints/"), ("get", f"checkpoints/{size}/"),
            ("get", f"checkpoints/{size}/?format=note"), ("get", "consistency/?old_size=1&new_size=2"),
            ("get", "export/")]


@pytest.mark.parametrize("role", ["viewer", "data_scientist", "unauthenticated"])
def test_roles_without_the_audit_capability_are_refused_everywhere(personas, team, api, role):
    size = checkpoint_create(org=personas.org_a).tree_size
    client = {"viewer": api(personas.bob), "data_scientist": api(team["data_scientist"]),
              "unauthenticated": APIClient()}[role]
    written = _written()
    for method, url in _endpoints(size):
        response = getattr(client, method)(BASE + url)
        assert response.status_code == (401 if role == "unauthenticated" else 403), (method, url)
        if role != "unauthenticated":
            assert "audit" in response.json()["detail"]
    assert _written() == written


@pytest.mark.parametrize("role", ["compliance_officer", "auditor"])
def test_compliance_officers_and_auditors_may_use_every_endpoint(personas, team, api, role):
    size = checkpoint_create(org=personas.org_a).tree_size
    client = api(team[role])
    for method, url in _endpoints(size):
        response = getattr(client, method)(BASE + url)
        assert response.status_code in (200, 201), (method, url, response.status_code)


def test_another_organization_sees_only_its_own_trail(personas, api):
    org_a, org_b, client = personas.org_a, personas.org_b, api(personas.charlie)
    a_size = checkpoint_create(org=org_a).tree_size
    b_size = _size(org_b)
    assert a_size > b_size + 1
    listed = client.get(f"{BASE}events/", {"limit": 1000}).json()["results"]
    assert [bytes.fromhex(e["hash"]) for e in listed] == _hashes(org_b)
    assert not any("org-a" in e["target_label"] or "@a.example" in str(e["after"]) for e in listed)
    for url in (f"events/{a_size}/", f"checkpoints/{a_size}/", f"checkpoints/{a_size}/?format=note"):
        assert client.get(BASE + url).status_code == 404, url
    assert client.get(f"{BASE}checkpoints/").json() == []
    response = client.get(f"{BASE}consistency/", {"old_size": 1, "new_size": a_size})
    assert response.status_code == 400 and "new_size" in response.json()["fields"]
    assert client.get(f"{BASE}verify/").json()["events"] == b_size
    export = b"".join(client.get(f"{BASE}export/").streaming_content).decode()
    assert '"org": "org-b"' in export and "org-a" not in export and "a.example" not in export


def test_beat_task_signs_one_checkpoint_per_grown_log_and_none_when_nothing_changed(personas):
    orgs = (personas.org_a, personas.org_b)
    assert audit_checkpoint_all() == 2
    assert {(c.org_id, c.tree_size) for c in AuditCheckpoint.objects.all()} == \
        {(org.pk, _size(org)) for org in orgs}
    assert audit_checkpoint_all() == 0
    assert AuditCheckpoint.objects.count() == 2
    token_create(org=personas.org_b, user=personas.charlie.user, name="grow", actor=ACTOR)
    assert audit_checkpoint_all() == 1
    assert list(AuditCheckpoint.objects.filter(org=personas.org_b).values_list("tree_size", flat=True)) \
        == [_size(personas.org_b) - 1, _size(personas.org_b)]
    assert AuditCheckpoint.objects.filter(org=personas.org_a).count() == 1
    assert all(audit_verify_org(org).ok for org in orgs)


@pytest.mark.slow
def test_a_real_worker_signs_a_checkpoint_delivered_through_redis(live_worker, personas, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    org = personas.org_a
    size = audit_checkpoint_org.delay(org.pk).get(timeout=120)
    assert size == _size(org)
    checkpoint = AuditCheckpoint.objects.get(org=org, tree_size=size)
    signed = open_note(checkpoint.note, *_public_key())
    assert signed.root == tree_root(_hashes(org))
    assert audit_verify_org(org).ok
    assert audit_checkpoint_org.delay(10**9).get(timeout=60) is None
    assert live_worker.poll() is None
