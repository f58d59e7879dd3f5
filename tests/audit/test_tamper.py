"""Tampering by someone who can switch the triggers off (a database superuser): the database
verifiers and the offline verifier on an export name the first bad seq; org B still verifies."""

import io
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from audit import keys
from audit.actors import Actor
from audit.chain import GENESIS_HASH, event_hash
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.notes import Checkpoint, sign
from audit.services import audit_record, audit_records, audit_verify_org, checkpoint_create
from audit.verifier import verify_chain
from tenancy.services import token_create, token_revoke
from tests.conftest import as_table_owner

ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor.command("test-tamper")
APPEND_ONLY = import_module("audit.migrations.0002_append_only")
N = 10  # events in org A's history: 5 from the personas, 5 token changes


@contextmanager
def triggers_off():
    """PostgreSQL: replica mode skips user triggers. SQLite: drop them, then re-create them
    with migration 0002's own SQL."""
    pg = connection.vendor == "postgresql"
    off = ["SET session_replication_role = replica"] if pg else \
        [f"DROP TRIGGER {name}" for name in sorted(APPEND_ONLY.SQLITE_TRIGGERS)]
    on = ["SET session_replication_role = DEFAULT"] if pg else APPEND_ONLY.SQLITE_FORWARD
    with as_table_owner():  # the service's role may not change the trail, triggers or not
        with connection.cursor() as cursor:
            for statement in off:
                cursor.execute(statement)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                for statement in on:
                    cursor.execute(statement)


def _history(personas, *, checkpoints: bool):
    """Org A: events 1-5 (personas), [checkpoint 5], events 6-10 (tokens), [checkpoint 10]."""
    org, alice = personas.org_a, personas.alice.user
    if checkpoints:
        checkpoint_create(org=org)
    t1, _ = token_create(org=org, user=alice, name="t1", actor=ACTOR)  # 6
    t2, _ = token_create(org=org, user=alice, name="t2", actor=ACTOR)  # 7
    token_revoke(token=t1, actor=ACTOR)  # 8
    token_create(org=org, user=alice, name="t3", actor=ACTOR)  # 9
    token_revoke(token=t2, actor=ACTOR)  # 10
    if checkpoints:
        checkpoint_create(org=org)
    assert AuditChainHead.objects.get(org=org).seq == N
    return org


@pytest.fixture
def org_a(personas):
    return _history(personas, checkpoints=True)


def _flip(payload: dict) -> dict:
    """Flip the lowest bit of one character in the payload's first string value."""
    key = next(k for k in sorted(payload) if isinstance(payload[k], str) and payload[k])
    value = payload[key]
    return {**payload, key: chr(ord(value[0]) ^ 1) + value[1:]}


def forge(records: list[dict], k: int) -> None:
    """Rewrite event k and re-chain every later event so that all links and hashes match."""
    prev = records[k - 2]["hash"] if k > 1 else GENESIS_HASH
    for record in records[k - 1:]:
        if record["seq"] == k:
            record["after"] = {**record["after"], "read_only": True}
        record["prev_hash"], record["hash"] = prev, event_hash(prev, record)
        prev = record["hash"]


# --- tampering in the database -----------------------------------------------------------------

def _event(org, seq):
    return AuditEvent.objects.filter(org=org, seq=seq)


def _flip_field(org, seq, field):
    _event(org, seq).update(**{field: _flip(getattr(_event(org, seq).get(), field))})


def db_swap(org):
    _event(org, 6).update(seq=-6)
    _event(org, 7).update(seq=6)
    _event(org, -6).update(seq=7)


def db_truncate(org, rewind_head=False):
    AuditEvent.objects.filter(org=org, seq__gt=8).delete()
    if rewind_head:
        AuditChainHead.objects.filter(org=org).update(seq=8, hash=_event(org, 8).get().hash)


def db_forge(org):
    records = list(audit_records(org))
    forge(records, 6)
    for record in records[5:]:
        _event(org, record["seq"]).update(after=record["after"], prev_hash=record["prev_hash"],
                                          hash=record["hash"])
    AuditChainHead.objects.filter(org=org).update(hash=records[-1]["hash"])


DB_CASES = {
    "bit flip in after": (lambda org: _flip_field(org, 6, "after"), 6),
    "bit flip in before": (lambda org: _flip_field(org, 8, "before"), 8),
    "changed actor_label": (lambda org: _event(org, 7).update(actor_label="mallory@evil.example"), 7),
    "number no canonical JSON holds": (lambda org: _event(org, 7).update(after={"n": 10**20 + 1}), 7),
    "deleted row": (lambda org: _event(org, 7).delete(), 7),
    "swapped order": (db_swap, 6),
    "truncated tail": (db_truncate, 9),
    "truncated tail with the head rewound": (lambda org: db_truncate(org, rewind_head=True), 9),
    "forged re-chained tail": (db_forge, 6),
}


def _audit_verify_command(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_an_untampered_trail_verifies_in_the_database(org_a, personas):
    assert audit_verify_org(personas.org_b).ok
    assert audit_verify_org(org_a).as_dict() == {"ok": True, "events": N, "checkpoints": 2,
                                                 "first_bad_seq": None, "reason": ""}
    code, out = _audit_verify_command()
    assert code == 0 and out.splitlines()[-1] == "OK"


@pytest.mark.parametrize("case", DB_CASES)
def test_database_verifiers_name_the_first_bad_event(org_a, personas, case):
    tamper, first_bad = DB_CASES[case]
    with triggers_off():
        tamper(org_a)
    verdict = audit_verify_org(org_a)
    assert not verdict.ok
    assert verdict.first_bad_seq == first_bad, verdict.reason
    code, out = _audit_verify_command()
    assert code == 1
    assert f"org-a: FAILED at #{first_bad}:" in out
    assert "org-b: OK (3 events" in out
    assert audit_verify_org(personas.org_b).ok


def test_forged_tail_passes_the_chain_check_and_only_a_signed_checkpoint_catches_it(org_a):
    with triggers_off():
        db_forge(org_a)
    head = AuditChainHead.objects.get(org=org_a)
    assert verify_chain(audit_records(org_a), expected_size=head.seq).ok  # links and hashes fine
    verdict = audit_verify_org(org_a)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 6)
    assert "checkpoint of size 10" in verdict.reason


def test_forged_tail_without_any_checkpoint_goes_undetected(personas):
    org = _history(personas, checkpoints=False)
    with triggers_off():
        db_forge(org)
    assert audit_verify_org(org).ok  # the limitation checkpoints exist for
    assert _audit_verify_command()[0] == 0


def test_a_stored_checkpoint_signed_by_another_key_is_rejected(org_a):
    root = bytes.fromhex(AuditCheckpoint.objects.get(org=org_a, tree_size=N).root_hash)
    genuine_body = Checkpoint(origin=keys.log_origin(org_a), size=N, root=root)
    note = sign(genuine_body, keys.key_name(), Ed25519PrivateKey.generate())
    AuditCheckpoint.objects.create(org=org_a, tree_size=N + 100, root_hash=root.hex(),
                                   chain_hash="0" * 64, created_at=org_a.created_at,
                                   key_name=keys.key_name(), note=note)
    verdict = audit_verify_org(org_a)
    assert not verdict.ok and "checkpoint is invalid" in verdict.reason


# --- tampering in an export, checked offline -----------------------------------------------------

def _export(tmp_path, org, *extra) -> Path:
    out = tmp_path / f"{org.slug}.jsonl"
    call_command("audit_export", "--org", org.slug, "--out", str(out), *extra, stdout=io.StringIO())
    return out


def _items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rewrite(path: Path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


def _events_of(items):
    return [item for item in items if item["type"] == "event"]


@pytest.fixture
def public_key_file(tmp_path) -> Path:
    """The key as an organization would fetch it once, not from the file it checks."""
    path = tmp_path / "audit-key.pem"
    path.write_text(keys.public_key_pem())
    return path


def _python(*args) -> subprocess.CompletedProcess:
    """Run Python from the repository root as a user would: no Django settings around."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def offline(path: Path, key: Path) -> subprocess.CompletedProcess:
    return _python("-m", "audit.offline", str(path), "--public-key", str(key))


def file_flip(items, seq, field):
    _events_of(items)[seq - 1][field] = _flip(_events_of(items)[seq - 1][field])


def file_swap(items):
    first = items.index(_events_of(items)[5])
    items[first], items[first + 1] = items[first + 1], items[first]


FILE_CASES = {
    "bit flip in after": (lambda items: file_flip(items, 6, "after"), 6),
    "bit flip in before": (lambda items: file_flip(items, 8, "before"), 8),
    "changed actor_label": (lambda items: _events_of(items)[6].update(actor_label="mallory"), 7),
    "removed field": (lambda items: _events_of(items)[6].pop("target_label"), 7),
    "removed hash": (lambda items: _events_of(items)[6].pop("hash"), 7),
    "number no canonical JSON holds": (lambda items: _events_of(items)[6].update(after={"n": 1e400}), 7),
    "deleted row": (lambda items: items.remove(_events_of(items)[6]), 7),
    "swapped order": (file_swap, 6),
    "truncated tail": (lambda items: [items.remove(e) for e in _events_of(items)[8:]], 9),
    "forged re-chained tail": (lambda items: forge(_events_of(items), 6), 6),
}


def test_offline_verifier_imports_no_django():
    result = _python("-c", "import sys, audit.offline; "
                           "assert not any(m.startswith('django') for m in sys.modules)")
    assert result.returncode == 0, result.stderr


def test_an_intact_export_verifies_offline(org_a, tmp_path, public_key_file):
    result = offline(_export(tmp_path, org_a), public_key_file)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0]) == {
        "ok": True, "events": N, "checkpoints": 2, "first_bad_seq": None, "reason": ""}


def test_payload_numbers_survive_the_database_round_trip_and_verify(personas, tmp_path,
                                                                     public_key_file):
    """jsonb returns 1e16 as 10000000000000000; the verifiers must still see the float."""
    org = personas.org_b
    numbers = {"loss": 1e16, "huge": -1.5e300, "edge": 2.0**53, "tiny": 5e-324, "frac": 0.1,
               "int": 2**53 - 1, "list": [1e20, 3.0, True, None]}
    with transaction.atomic():
        audit_record(org=org, actor=ACTOR, action="numbers.logged", target=org, after=numbers)
    assert audit_verify_org(org).ok, audit_verify_org(org).reason
    checkpoint_create(org=org)
    assert offline(_export(tmp_path, org), public_key_file).returncode == 0


@pytest.mark.parametrize("case", FILE_CASES)
def test_offline_verifier_names_the_first_bad_event_of_a_tampered_export(
        org_a, personas, tmp_path, public_key_file, case):
    tamper, first_bad = FILE_CASES[case]
    path = _export(tmp_path, org_a)
    items = _items(path)
    tamper(items)
    _rewrite(path, items)
    result = offline(path, public_key_file)
    assert result.returncode == 1, result.stdout
    assert f"FAILED at #{first_bad}:" in result.stderr
    assert offline(_export(tmp_path, personas.org_b), public_key_file).returncode == 0


def test_offline_forged_tail_is_caught_only_by_its_checkpoints(org_a, tmp_path, public_key_file):
    path = _export(tmp_path, org_a, "--no-checkpoint")
    items = _items(path)
    forge(_events_of(items), 6)
    _rewrite(path, items)
    assert "FAILED at #6:" in offline(path, public_key_file).stderr
    _rewrite(path, [item for item in items if item["type"] != "checkpoint"])
    result = offline(path, public_key_file)
    assert result.returncode == 0, result.stderr
    assert "no signed checkpoint" in result.stdout


def test_offline_verifier_rejects_a_checkpoint_signed_by_another_key_or_edited(
        org_a, tmp_path, public_key_file):
    root = bytes.fromhex(AuditCheckpoint.objects.get(org=org_a, tree_size=N).root_hash)
    foreign = sign(Checkpoint(keys.log_origin(org_a), N, root), keys.key_name(),
                   Ed25519PrivateKey.generate())
    for note, message in ((foreign, "checkpoint rejected: no signature by key"),
                          (None, "checkpoint rejected: the checkpoint's signature does not verify")):
        path = _export(tmp_path, org_a)
        items = _items(path)
        assert items[-1]["type"] == "checkpoint"
        items[-1]["note"] = note or items[-1]["note"].replace(f"\n{N}\n", f"\n{N - 2}\n", 1)
        _rewrite(path, items)
        result = offline(path, public_key_file)
        assert result.returncode == 1 and message in result.stderr, result.stderr

    other_key = public_key_file.with_name("other.pem")
    other_key.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = offline(_export(tmp_path, org_a), other_key)
    assert result.returncode == 1 and "no signature by key" in result.stderr


def test_a_checkpoint_kept_outside_the_export_catches_a_forged_file_without_checkpoints(
        org_a, tmp_path, public_key_file):
    kept = tmp_path / "kept-checkpoint.txt"
    kept.write_text(AuditCheckpoint.objects.get(org=org_a, tree_size=N).note)
    path = _export(tmp_path, org_a, "--no-checkpoint")
    items = [item for item in _items(path) if item["type"] != "checkpoint"]
    forge(_events_of(items), 6)
    _rewrite(path, items)
    assert offline(path, public_key_file).returncode == 0  # the file alone cannot tell
    result = _python("-m", "audit.offline", str(path), "--public-key", str(public_key_file),
                     "--checkpoint", str(kept))
    assert result.returncode == 1 and "rewritten history" in result.stderr, result.stderr


def test_an_export_of_another_organization_cannot_pass_as_this_one(org_a, personas, tmp_path,
                                                                     public_key_file):
    path = _export(tmp_path, personas.org_b)
    items = _items(path)
    items[0]["org"] = org_a.slug  # relabel B's complete, valid export as A's
    _rewrite(path, items)
    result = offline(path, public_key_file)
    assert result.returncode == 1 and "another log" in result.stderr, result.stderr
