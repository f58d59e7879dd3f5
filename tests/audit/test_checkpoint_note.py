"""`GET /api/v1/audit/checkpoints/?format=note`, as the README prints it: the latest signed
checkpoint as a C2SP note, the file the offline verifier takes with --checkpoint."""

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit import keys
from audit.actors import Actor
from audit.models import AuditCheckpoint, AuditEvent
from audit.notes import load_public_key, open_note
from audit.offline import main as offline_main
from audit.services import checkpoint_create
from tenancy.roles import Role
from tenancy.services import token_create
from tests.conftest import make_persona

LIST = "/api/v1/audit/checkpoints/"

ACTOR = Actor.command("test-checkpoint-note")


def _written() -> tuple[int, int]:
    return AuditEvent.objects.count(), AuditCheckpoint.objects.count()


def _open(text: str):
    return open_note(text, keys.key_name(), load_public_key(keys.public_key_pem().encode()))


def test_format_note_on_the_list_serves_the_latest_checkpoint_as_a_signed_note(personas, api):
    org, client = personas.org_a, api(personas.alice)
    older = checkpoint_create(org=org)
    token_create(org=org, user=personas.alice.user, name="grows the log", actor=ACTOR)
    latest = checkpoint_create(org=org)
    assert latest.tree_size == older.tree_size + 1
    written = _written()

    response = client.get(LIST, {"format": "note"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == \
        f'attachment; filename="org-a-checkpoint-{latest.tree_size}.txt"'
    assert response.content.decode() == latest.note
    opened = _open(response.content.decode())
    assert (opened.size, opened.root.hex()) == (latest.tree_size, latest.root_hash)
    assert opened.origin.endswith("/org-a")
    assert _written() == written  # reading signs nothing


def test_json_stays_the_default_and_the_detail_note_still_downloads(personas, api):
    client = api(personas.alice)
    size = checkpoint_create(org=personas.org_a).tree_size
    for query in ({}, {"format": "json"}):
        listed = client.get(LIST, query)
        assert listed.status_code == 200 and listed["Content-Type"] == "application/json"
        assert [c["tree_size"] for c in listed.json()] == [size]
    detail = client.get(f"{LIST}{size}/", {"format": "note"})
    assert detail.status_code == 200 and _open(detail.content.decode()).size == size
    assert client.get(f"{LIST}{size}/", {"format": "json"}).json()["tree_size"] == size


def test_without_any_checkpoint_the_note_is_a_404_that_says_how_to_sign_one(personas, api):
    response = api(personas.alice).get(LIST, {"format": "note"})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "No checkpoint has been signed yet" in response.json()["detail"]


def test_another_organization_gets_404_then_only_its_own_note(personas, api):
    checkpoint_create(org=personas.org_a)
    charlie = api(personas.charlie)
    assert charlie.get(LIST, {"format": "note"}).status_code == 404
    own = checkpoint_create(org=personas.org_b)
    response = charlie.get(LIST, {"format": "note"})
    assert response.status_code == 200
    text = response.content.decode()
    assert text == own.note and "org-a" not in text
    assert _open(text).origin.endswith("/org-b")


@pytest.mark.parametrize("value", ["xml", "api", "NOTE", "note "])
def test_an_unknown_format_is_a_400_naming_the_parameter_and_writes_nothing(personas, api,
                                                                             value):
    client = api(personas.alice)
    size = checkpoint_create(org=personas.org_a).tree_size
    written = _written()
    for url in (LIST, f"{LIST}{size}/"):
        response = client.get(url, {"format": value})
        assert response.status_code == 400, (url, response.status_code, response.content)
        body = response.json()
        assert "format" in body["fields"] and "format=note" in body["detail"], body
    assert _written() == written


@pytest.mark.parametrize("who", ["viewer", "data_scientist", "unauthenticated"])
def test_roles_without_the_audit_capability_cannot_download_the_note(personas, api, who):
    checkpoint_create(org=personas.org_a)
    client = {"viewer": lambda: api(personas.bob),
              "data_scientist": lambda: api(make_persona(personas.org_a, "dana@a.example",
                                                         Role.DATA_SCIENTIST)),
              "unauthenticated": APIClient}[who]()
    for query in ({"format": "note"}, {"format": "xml"}):
        response = client.get(LIST, query)
        assert response.status_code == (401 if who == "unauthenticated" else 403), query


def test_the_downloaded_note_anchors_the_offline_check_of_an_export(personas, api, tmp_path,
                                                                     capsys):
    """The README's auditor path: export, public key, the note kept elsewhere, the verifier."""
    org, client = personas.org_a, api(personas.alice)
    client.post(LIST)
    kept = tmp_path / "kept.txt"
    kept.write_bytes(client.get(LIST, {"format": "note"}).content)
    export = tmp_path / "export.jsonl"
    call_command("audit_export", "--org", org.slug, "--out", str(export), "--no-checkpoint",
                 stdout=io.StringIO())
    pem = tmp_path / "audit-key.pem"
    pem.write_text(APIClient().get("/api/v1/audit/public-key/").json()["public_key_pem"])
    code = offline_main([str(export), "--public-key", str(pem), "--checkpoint", str(kept)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out.splitlines()[0])["checkpoints"] == 2  # the export's and the kept
    assert "2 signed checkpoints verified" in out.out
