"""The model risk inventory as a signed PDF report (`GET /api/v1/inventory/report.pdf`, and
`/inventory/report.pdf` from the page; reports/inventory_report.py): a real WeasyPrint PDF/A-3b
read back with poppler as an auditor would. Every model row of the date asked for, the date,
the audit event and the signed checkpoint named on the cover; the attached inventory.json is
what the event's SHA-256 was computed over and what the inventory of that date is; the export is
audited; another organization's report holds none of this one's models; a bad date is a 400
with nothing written."""

import datetime
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from audit.keys import public_verifier_key
from audit.models import AuditCheckpoint, AuditEvent
from audit.notes import open_note, parse_verifier_key
from audit.services import tree_root_of
from models_registry import inventory
from tests.models_registry.test_inventory import (  # noqa: F401  (fixtures)
    as_actor,
    entry_of,
    on,
    team,
    two_models,
)

pytestmark = pytest.mark.postgres_only
URL = "/api/v1/inventory/report.pdf"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def tool(*args) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True,
                          timeout=60).stdout


class Report:
    """A downloaded report on disk, as poppler reads it."""

    def __init__(self, response, path: Path):
        assert response.status_code == 200, response.content[:500]
        assert response["Content-Type"] == "application/pdf"
        path.write_bytes(response.content)
        self.path, self.response = path, response

    def text(self) -> str:
        # one space for every run of whitespace: table cells and long values wrap
        return re.sub(r"\s+", " ", tool("pdftotext", "-enc", "UTF-8", str(self.path), "-"))

    def layout(self) -> str:
        """The text as laid out on the page: the first line of a table row holds the start
        of each of its cells."""
        return tool("pdftotext", "-layout", "-enc", "UTF-8", str(self.path), "-")

    def attachment(self) -> bytes:
        assert "inventory.json" in tool("pdfdetach", "-list", str(self.path))
        target = self.path.with_suffix(".json")
        tool("pdfdetach", "-save", "1", "-o", str(target), str(self.path))
        return target.read_bytes()


def exports(org) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(org=org, action="inventory.report_exported")
                .order_by("seq"))


@pytest.fixture
def history(personas, two_models):  # noqa: F811  (the imported fixture)
    """test_inventory's two models, and credit-risk's tier lowered on 2025-06-01."""
    with on("2025-06-01"):
        inventory.inventory_entry_update(entry=entry_of(two_models),
                                         actor=as_actor(personas.alice), risk_tier="low")
    return two_models


def test_the_report_of_a_date_lists_every_model_and_is_anchored_and_signed(api, personas,
                                                                          history, tmp_path):
    org = history
    report = Report(api(personas.bob).get(f"{URL}?as_of=2024-09-15"), tmp_path / "r.pdf")
    assert report.response["Content-Disposition"] == \
        'attachment; filename="inventory-org-a-2024-09-15.pdf"'
    text = report.text()

    # the date and every model row as the inventory stood then (credit-risk still "high")
    assert "Model risk inventory as of 2024-09-15" in text
    assert "Organization A · 2 models, 1 review overdue" in text
    rows = re.findall(r"^ *([\w-]+) +(high|medium|low) +(\S+@\S+)", report.layout(), re.M)
    assert rows == [("credit-risk", "high", "dana@a.example"),
                    ("fraud-screening", "medium", "dana@a.example")]
    for cell in ("Retail credit decisions up to EUR 50,000.", "Not for business customers.",
                 "every 12 months last never next 2025-03-01 none",
                 "Flags card payments for manual review. —",
                 "every 6 months last 2024-02-01 next 2024-08-01 (overdue)",
                 "not approved 2024-08-30 by olga@a.example 1 validation in all "
                 "protected aliases blocked"):
        assert cell in text, cell

    # the export's audit event holds the SHA-256 of exactly the attached inventory.json
    [event] = exports(org)
    attached = report.attachment()
    content = json.loads(attached)
    assert event.after == {"as_of": "2024-09-15",
                           "content_sha256": hashlib.sha256(attached).hexdigest(),
                           "models": [m["model_id"] for m in content["models"]]}
    assert (event.actor_label, event.target_type, event.target_id) == (
        "bob@a.example (token " + personas.bob.token.prefix + ")", "inventory", "2024-09-15")
    assert content["as_of"] == "2024-09-15" and content["format"] == "ledgerflow.inventory/1"
    assert content["models"] == [
        i.as_dict() for i in inventory.inventory_as_of(org, datetime.date(2024, 9, 15))]

    # the cover names the event and a signed checkpoint covering it, which verifies
    checkpoint = AuditCheckpoint.objects.get(org=org)
    assert checkpoint.tree_size >= event.seq
    for value in (event.after["content_sha256"], event.hash, checkpoint.root_hash,
                  checkpoint.chain_hash):
        assert value in text, value
    assert f"Audit trail entry (sequence number) {event.seq}" in text
    assert f"Signed checkpoint: number of entries {checkpoint.tree_size}" in text
    squeezed = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", checkpoint.note) in squeezed
    assert public_verifier_key() in squeezed
    opened = open_note(checkpoint.note, *parse_verifier_key(public_verifier_key()))
    assert (opened.size, opened.root) == (checkpoint.tree_size,
                                          tree_root_of(org, checkpoint.tree_size))

    meta = tool("pdfinfo", "-meta", str(report.path))
    assert re.search(r'pdfaid:part(="|>)3', meta) and re.search(r'pdfaid:conformance(="|>)B',
                                                                 meta)
    assert re.search(r"^Tagged:\s+yes$", tool("pdfinfo", str(report.path)), re.MULTILINE)
    SHOTS.mkdir(parents=True, exist_ok=True)  # for looking at: the cover and the table
    tool("pdftoppm", "-png", "-r", "60", str(report.path), str(SHOTS / "inventory-report"))


def test_a_changed_inventory_json_no_longer_matches_its_audit_event(api, personas, history,
                                                                    tmp_path):
    """What the anchor is for: an inventory.json edited after the export (a tier lowered)
    hashes to another value than the one the audit trail recorded."""
    report = Report(api(personas.alice).get(URL), tmp_path / "now.pdf")
    attached = report.attachment()
    [event] = exports(history)
    assert hashlib.sha256(attached).hexdigest() == event.after["content_sha256"]
    assert b'"risk_tier":"low"' in attached  # today credit-risk is "low"
    forged = attached.replace(b'"risk_tier":"medium"', b'"risk_tier":"low"', 1)
    assert forged != attached
    assert hashlib.sha256(forged).hexdigest() != event.after["content_sha256"]


def test_another_organizations_report_holds_none_of_these_models(api, personas, history,
                                                                 tmp_path):
    org_a_events = AuditEvent.objects.filter(org=history).count()
    report = Report(api(personas.charlie).get(f"{URL}?as_of=2024-09-15"), tmp_path / "b.pdf")
    text = report.text()
    assert "No model was in the inventory on 2024-09-15." in text
    for leaked in ("credit-risk", "fraud-screening", "dana@a.example", "Organization A"):
        assert leaked not in text, leaked
    assert json.loads(report.attachment())["models"] == []
    assert AuditEvent.objects.filter(org=history).count() == org_a_events
    [event] = exports(personas.org_b)
    assert event.after["models"] == []


@pytest.mark.parametrize("as_of", ["2024-13-01", "2024-02-30", "yesterday", "2999-01-01"])
def test_a_bad_date_is_a_400_naming_it_and_nothing_is_written(api, client, personas, history,
                                                              as_of):
    before = AuditEvent.objects.count()
    response = api(personas.alice).get(f"{URL}?as_of={as_of}")
    assert response.status_code == 400 and list(response.json()["fields"]) == ["as_of"]
    client.force_login(personas.alice.user)
    page = client.get(f"/inventory/report.pdf?as_of={as_of}")
    assert page.status_code == 400
    assert "Give the date as YYYY-MM-DD, not in the future." in page.content.decode()
    assert AuditEvent.objects.count() == before and AuditCheckpoint.objects.count() == 0


def test_the_inventory_page_links_the_report_of_its_date(client, personas, history, tmp_path):
    client.force_login(personas.bob.user)
    page = client.get("/inventory/?as_of=2024-09-15").content.decode()
    assert 'href="/inventory/report.pdf?as_of=2024-09-15" download>Signed PDF report' in page
    report = Report(client.get("/inventory/report.pdf?as_of=2024-09-15"), tmp_path / "p.pdf")
    assert "fraud-screening" in report.text()
    [event] = exports(history)
    assert (event.actor_label, event.after["as_of"]) == ("bob@a.example", "2024-09-15")


def test_without_a_session_or_token_there_is_no_report(client, personas, history):
    assert client.get(URL).status_code in (401, 403)
    assert client.get("/inventory/report.pdf").status_code == 302  # to the login
    assert exports(history) == []
