"""The offline verifier fed a wrong file: the error names that file (and its line or field),
not "event #1" of a trail that is fine."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from audit import keys
from audit.actors import Actor
from audit.models import AuditCheckpoint
from audit.offline import main as offline_main
from audit.services import checkpoint_create
from tenancy.services import token_create

ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor.command("test-offline-errors")


@pytest.fixture
def trail(personas, tmp_path):
    """Org A's export (with one checkpoint), the public key, and a genuine kept note."""
    org = personas.org_a
    checkpoint_create(org=org)
    token_create(org=org, user=personas.alice.user, name="more", actor=ACTOR)
    export = tmp_path / "org-a.jsonl"
    call_command("audit_export", "--org", org.slug, "--out", str(export), stdout=io.StringIO())
    pem = tmp_path / "audit-key.pem"
    pem.write_text(keys.public_key_pem())
    note = AuditCheckpoint.objects.filter(org=org).order_by("-tree_size").first().note
    return export, pem, note


def verify(capsys, export: Path, pem: Path, *args: str) -> tuple[int, dict, str]:
    code = offline_main([str(export), "--public-key", str(pem), *args])
    out = capsys.readouterr()
    return code, json.loads(out.out.splitlines()[0]), out.err


def assert_blames_the_file(code, verdict, err, name: str, *words: str) -> None:
    assert code == 1
    assert verdict["ok"] is False and verdict["first_bad_seq"] is None, verdict
    assert err.startswith(f"FAILED: {name}"), err  # the file first, no event number
    assert "#1" not in err, err
    for word in words:
        assert word in err, (word, err)


def _lines(note: str) -> list[str]:
    return note.split("\n")


def _edit(note: str, number: int, text: str) -> str:
    lines = _lines(note)
    lines[number - 1] = text
    return "\n".join(lines)


KEPT_CASES = {
    # what a 404 answer of the API looks like when saved as the checkpoint
    "the server's error body": (lambda note: '{"code": "not_found", "detail": "Not found."}',
                                ["the server's error answer (Not found.)", "?format=note"]),
    "the checkpoint's JSON form": (lambda note: json.dumps({"tree_size": 7, "note": note}),
                                   ["JSON form of a checkpoint", "?format=note"]),
    "an HTML page": (lambda note: "<!doctype html><title>Login</title>", ["HTML"]),
    "an empty file": (lambda note: "", ["empty"]),
    "no blank line before the signature": (lambda note: note.replace("\n\n", "\n"),
                                           ["not a signed note"]),
    "size not a number": (lambda note: _edit(note, 2, "twelve"),
                          ["line 2 (tree size)", "'twelve'"]),
    "root hash garbled": (lambda note: _edit(note, 3, "not-base64!"), ["line 3 (root hash)"]),
    "origin missing": (lambda note: "\n".join(_lines(note)[1:]), ["line 2 (tree size)"]),
    "signature line mangled": (lambda note: note.replace("\u2014 ", "-- ", 1),
                               ["line 7 is not a signature line"]),
    "signature not base64": (lambda note: note.rsplit(" ", 1)[0] + " %%%\n",
                             ["line 7: the signature by", "not base64"]),
    "edited size": (lambda note: _edit(note, 2, str(int(_lines(note)[1]) - 1)),
                    ["signature does not verify"]),
}


@pytest.mark.parametrize("case", KEPT_CASES)
def test_a_wrong_kept_checkpoint_is_blamed_by_file_and_line(trail, tmp_path, capsys, case):
    export, pem, note = trail
    make, words = KEPT_CASES[case]
    kept = tmp_path / "kept-checkpoint.txt"
    kept.write_text(make(note))
    code, verdict, err = verify(capsys, export, pem, "--checkpoint", str(kept))
    assert_blames_the_file(code, verdict, err, str(kept), *words)


def test_a_kept_checkpoint_of_another_organization_is_named(trail, personas, tmp_path, capsys):
    export, pem, _ = trail
    kept = tmp_path / "org-b-checkpoint.txt"
    kept.write_text(checkpoint_create(org=personas.org_b).note)
    code, verdict, err = verify(capsys, export, pem, "--checkpoint", str(kept))
    assert_blames_the_file(code, verdict, err, str(kept), "another log", "org-b")


def test_a_missing_kept_checkpoint_file_is_named(trail, tmp_path, capsys):
    export, pem, _ = trail
    missing = tmp_path / "nowhere.txt"
    code, verdict, err = verify(capsys, export, pem, "--checkpoint", str(missing))
    assert_blames_the_file(code, verdict, err, str(missing), "cannot read it")


def test_a_kept_note_with_windows_line_ends_or_a_trailing_blank_line_still_verifies(
        trail, tmp_path, capsys):
    export, pem, note = trail
    kept = tmp_path / "kept.txt"
    for text in (note.replace("\n", "\r\n"), note + "\n"):
        kept.write_bytes(text.encode())
        code, verdict, err = verify(capsys, export, pem, "--checkpoint", str(kept))
        assert code == 0 and verdict["ok"], err


def test_a_garbled_checkpoint_inside_the_export_is_named_by_its_line(trail, capsys):
    export, pem, _ = trail
    lines = export.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if '"type": "checkpoint"' in line)
    item = json.loads(lines[number - 1])
    item["note"] = _edit(item["note"], 3, "AAAA")
    lines[number - 1] = json.dumps(item)
    export.write_text("\n".join(lines) + "\n")
    code, verdict, err = verify(capsys, export, pem)
    assert_blames_the_file(code, verdict, err, f"{export}:{number}:", "checkpoint rejected",
                           "line 3 (root hash)")


@pytest.mark.parametrize(("damage", "words"), [
    (lambda lines: lines.insert(2, "{not json"), ["not JSON"]),
    (lambda lines: lines.insert(2, "[1, 2]"), ["not a JSON object"]),
    (lambda lines: lines.insert(2, '{"type": "evnt", "seq": 1}'), ["'evnt'", "not event"]),
    (lambda lines: lines.insert(2, lines[0].replace("org-a", "org-b")), ["'header'", "line 1"]),
    (lambda lines: lines.insert(2, '{"type": "checkpoint"}'), ['no "note" field']),
])
def test_a_malformed_export_line_is_named_by_its_number(trail, capsys, damage, words):
    export, pem, _ = trail
    lines = export.read_text().splitlines()
    damage(lines)
    export.write_text("\n".join(lines) + "\n")
    code, verdict, err = verify(capsys, export, pem)
    assert_blames_the_file(code, verdict, err, f"{export}:3:", *words)


def test_a_file_that_is_no_export_and_a_key_that_is_no_key_are_named(trail, tmp_path, capsys):
    export, pem, note = trail
    not_export = tmp_path / "checkpoint-given-as-export.txt"
    not_export.write_text('{"tree_size": 3}\n')
    code, verdict, err = verify(capsys, not_export, pem)
    assert_blames_the_file(code, verdict, err, str(not_export), "not a ledgerflow-audit-export/1")
    bad_pem = tmp_path / "key.pem"
    bad_pem.write_text(note)  # a note where the key should be
    code, verdict, err = verify(capsys, export, bad_pem)
    assert_blames_the_file(code, verdict, err, str(bad_pem), "not an Ed25519 public key")


def test_a_key_that_signed_nothing_here_is_named_as_the_likely_cause(trail, tmp_path, capsys):
    export, _, _ = trail
    other = tmp_path / "other-key.pem"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    code, verdict, err = verify(capsys, export, other)
    assert_blames_the_file(code, verdict, err, f"{export}:", "no signature by key",
                           f"does {other} hold the key that signed it?")


def test_a_tampered_event_is_still_blamed_by_number_with_its_line(trail, capsys):
    export, pem, _ = trail
    lines = export.read_text().splitlines()
    item = json.loads(lines[2])
    assert item["type"] == "event" and item["seq"] == 2
    item["actor_label"] = "mallory"
    lines[2] = json.dumps(item)
    export.write_text("\n".join(lines) + "\n")
    code, verdict, err = verify(capsys, export, pem)
    assert code == 1 and verdict["first_bad_seq"] == 2
    assert err.startswith("FAILED at #2: ") and f"[event at {export}:3]" in err, err


def test_a_kept_checkpoint_beyond_a_truncated_export_is_named(trail, personas, tmp_path, capsys):
    export, pem, _ = trail
    token_create(org=personas.org_a, user=personas.alice.user, name="later", actor=ACTOR)
    kept = tmp_path / "kept-later.txt"
    kept.write_text(checkpoint_create(org=personas.org_a).note)
    code, verdict, err = verify(capsys, export, pem, "--checkpoint", str(kept))
    assert code == 1 and verdict["first_bad_seq"] == verdict["events"] + 1, verdict
    assert "truncated" in err and f"checkpoint from {kept}" in err, err


def test_run_as_a_script_the_error_names_the_file(trail, tmp_path):
    """As the README runs it: `python -m audit.offline`, no Django settings."""
    export, pem, _ = trail
    kept = tmp_path / "checkpoint.txt"
    kept.write_text('{"code": "not_found", "detail": "Not found."}')
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "audit.offline", str(export), "--public-key", str(pem),
         "--checkpoint", str(kept)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"FAILED: {kept}: the server's error answer"), result.stderr
    assert "Traceback" not in result.stderr
