"""The model risk inventory (models_registry/inventory.py): changes audited with their whole
state, another organization's models answer 404, bad input writes nothing, the inventory of a
past date rebuilt from the audit trail stays what it was, a "not approved" validation blocks a
protected alias, overdue reviews, the CSV export, and the page in a real browser."""

import csv
import datetime
import io
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEvent
from models_registry import inventory
from models_registry import services as registry
from models_registry.models import (
    AliasApproval,
    InventoryEntry,
    ModelAlias,
    ModelValidation,
    RegisteredModel,
)
from tenancy.roles import Role
from tests.conftest import SETUP, make_persona
from tests.ui.conftest import login, page, shot  # noqa: F401  (page: the browser fixture)
from tracking.selectors import experiment_get
from tracking.services import runs as run_services

pytestmark = pytest.mark.postgres_only

ENTRY = {"model": "credit-risk", "owner": "dana@a.example", "risk_tier": "high",
         "intended_use": "Retail credit decisions up to EUR 50,000.",
         "limitations": "Not for business customers.", "review_frequency_months": 12}


def as_actor(persona) -> Actor:
    return Actor(kind="user", label=persona.email, user=persona.user)


def upload(org, path: str, data: bytes) -> None:
    from tracking.artifacts import artifact_upload

    artifact_upload(org=org, path=path, stream=io.BytesIO(data), length=len(data), actor=SETUP)


def ready_version(org, name: str = "credit-risk"):
    """A READY version through the services the packaging worker calls (no real package: the
    inventory needs a version an alias can name, not a model to score)."""
    run = run_services.run_create(experiment=experiment_get(org=org, experiment_id="0"),
                                  actor=SETUP, run_name="train")
    upload(org, f"0/{run.run_uuid}/artifacts/model/MLmodel", b"flavors: {}\n")
    model = RegisteredModel.objects.filter(org=org, name=name, deleted=False).first() or \
        registry.registered_model_create(org=org, name=name, actor=SETUP)
    version = registry.model_version_create(model=model, actor=SETUP,
                                            source=f"runs:/{run.run_uuid}/model")
    with transaction.atomic():
        registry.packaging_claim_within(version_pk=version.pk, attempt=1, actor=SETUP)
    digest = "sha256:" + "cd" * 32
    return registry.packaging_finish(version_pk=version.pk, attempt=1, digest=digest,
                                     package_path=f"test/{version.uuid}", actor=SETUP,
                                     manifest={"files": [], "package_digest": digest})


@pytest.fixture
def team(personas):
    """Org A's model owner (a data scientist) and a compliance officer, and its model."""
    dana = make_persona(personas.org_a, "dana@a.example", Role.DATA_SCIENTIST)
    olga = make_persona(personas.org_a, "olga@a.example", Role.COMPLIANCE_OFFICER)
    version = ready_version(personas.org_a)
    return dana, olga, version


def events(org) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(org=org).order_by("seq"))


@contextmanager
def on(day: str):
    """Changes made on `day` (noon, server time): the audit trail's clock is the service's."""
    moment = timezone.make_aware(datetime.datetime.fromisoformat(f"{day}T12:00:00"))
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def entry_of(org, name="credit-risk") -> InventoryEntry:
    return InventoryEntry.objects.get(org=org, registered_model__name=name)


# --- services: audited ------------------------------------------------------------------------

def test_each_inventory_change_is_one_audit_event_carrying_the_whole_state(api, personas, team):
    dana, olga, _ = team
    org, before = personas.org_a, len(events(personas.org_a))

    created = api(dana).post("/api/v1/inventory/", ENTRY, format="json")
    assert created.status_code == 201, created.content
    entry = entry_of(org)
    [event] = events(org)[before:]
    assert event.action == "inventory.entry_created"
    assert event.after == inventory.entry_state(entry)
    assert event.actor_label.startswith("dana@a.example")

    changed = api(dana).patch("/api/v1/inventory/credit-risk/", {"risk_tier": "medium"},
                              format="json")
    assert changed.status_code == 200 and changed.json()["risk_tier"] == "medium"
    last = events(org)[-1]
    assert (last.action, last.before["risk_tier"], last.after["risk_tier"]) == \
        ("inventory.entry_updated", "high", "medium")
    assert last.after == inventory.entry_state(entry_of(org))

    count = len(events(org))  # the same value again changes nothing and records nothing
    assert api(dana).patch("/api/v1/inventory/credit-risk/", {"risk_tier": "medium"},
                           format="json").status_code == 200
    assert len(events(org)) == count

    today = timezone.localdate().isoformat()
    assert api(dana).post("/api/v1/inventory/credit-risk/reviews", {"reviewed_on": today},
                          format="json").status_code == 200
    assert events(org)[-1].action == "inventory.review_recorded"
    assert events(org)[-1].after["last_reviewed_on"] == today

    validated = api(olga).post("/api/v1/inventory/credit-risk/validations/", {
        "validated_on": today, "scope": "Discrimination, stability, back-testing 2024",
        "findings": "Gini 0.61; stable.", "outcome": "approved"}, format="json")
    assert validated.status_code == 201, validated.content
    last = events(org)[-1]
    assert last.action == "inventory.validation_recorded"
    assert last.after == inventory.validation_state(ModelValidation.objects.get())
    assert len(events(org)) == count + 2


def test_the_database_refuses_an_inventory_write_without_its_audit_event(db):
    """The audit guard (audit/guards.py) is installed on both new tables."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                       "WHERE t.tgname = 'ledgerflow_audited' AND c.relname IN (%s, %s)",
                       [InventoryEntry._meta.db_table, ModelValidation._meta.db_table])
        assert sorted(r[0] for r in cursor.fetchall()) == sorted(
            [InventoryEntry._meta.db_table, ModelValidation._meta.db_table])


# --- tenancy ------------------------------------------------------------------------------------

def test_another_organization_gets_404_on_every_inventory_endpoint(api, personas, team):
    dana, olga, _ = team
    assert api(dana).post("/api/v1/inventory/", ENTRY, format="json").status_code == 201
    today = timezone.localdate().isoformat()
    assert api(olga).post("/api/v1/inventory/credit-risk/validations/", {
        "validated_on": today, "scope": "full", "outcome": "approved"},
        format="json").status_code == 201
    charlie, org = api(personas.charlie), personas.org_a
    state = (len(events(org)), list(InventoryEntry.objects.values()),
             list(ModelValidation.objects.values()))

    for method, url, body in [
        ("get", "/api/v1/inventory/credit-risk/", None),
        ("patch", "/api/v1/inventory/credit-risk/", {"risk_tier": "low"}),
        ("post", "/api/v1/inventory/credit-risk/reviews", {"reviewed_on": today}),
        ("get", "/api/v1/inventory/credit-risk/validations/", None),
        ("post", "/api/v1/inventory/credit-risk/validations/",
         {"validated_on": today, "scope": "b", "outcome": "not_approved"}),
        ("post", "/api/v1/inventory/", {**ENTRY, "owner": "charlie@b.example"}),
    ]:
        response = getattr(charlie, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert "dana@" not in response.content.decode()
    listing = charlie.get("/api/v1/inventory/")
    assert listing.status_code == 200 and listing.json() == []
    exported = charlie.get("/api/v1/inventory/export.csv").content.decode()
    assert "credit-risk" not in exported and exported.startswith("model,owner")
    assert charlie.get(f"/api/v1/inventory/?as_of={today}").json() == []
    assert state == (len(events(org)), list(InventoryEntry.objects.values()),
                     list(ModelValidation.objects.values()))


# --- bad input ----------------------------------------------------------------------------------

def test_bad_input_gets_a_clear_4xx_and_nothing_is_written(api, personas, team):
    dana, olga, _ = team
    org = personas.org_a
    tomorrow = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
    today = timezone.localdate().isoformat()
    upload(org, "0/notarun/artifacts/x.txt", b"x")  # an artifact outside any run is fine too

    def refused(who, method, url, body, status, names):
        count = len(events(org))
        rows = (InventoryEntry.objects.count(), ModelValidation.objects.count())
        response = getattr(api(who), method)(url, body, format="json")
        assert response.status_code == status, (body, response.content)
        assert names in response.content.decode(), (names, response.content)
        assert (len(events(org)), InventoryEntry.objects.count(),
                ModelValidation.objects.count()) == (count, *rows)

    entries = "/api/v1/inventory/"
    refused(dana, "post", entries, {**ENTRY, "risk_tier": "extreme"}, 400, "risk_tier")
    refused(dana, "post", entries, {**ENTRY, "owner": "charlie@b.example"}, 400,
            "not a person who is a member")
    refused(dana, "post", entries, {**ENTRY, "review_frequency_months": 0}, 400,
            "review_frequency_months")
    refused(dana, "post", entries, {**ENTRY, "intended_use": ""}, 400, "intended_use")
    refused(dana, "post", entries, {**ENTRY, "last_reviewed_on": tomorrow}, 400,
            "cannot be in the future")
    refused(dana, "post", entries, {**ENTRY, "model": "no-such-model"}, 404, "not found")
    refused(personas.bob, "post", entries, ENTRY, 403, "does not allow")  # a viewer
    refused(dana, "get", f"{entries}?as_of=2024-13-01", None, 400, "as_of")
    refused(dana, "get", f"{entries}?as_of={tomorrow}", None, 400, "future date")

    assert api(dana).post(entries, ENTRY, format="json").status_code == 201
    refused(dana, "post", entries, ENTRY, 409, "already in the inventory")
    refused(dana, "patch", f"{entries}credit-risk/", {}, 400, "Nothing to change")
    refused(dana, "post", f"{entries}credit-risk/reviews", {"reviewed_on": tomorrow}, 400,
            "future")

    validations = f"{entries}credit-risk/validations/"
    good = {"validated_on": today, "scope": "full", "outcome": "approved"}
    refused(dana, "post", validations, good, 403, "approve needed")  # first line: no
    refused(olga, "post", validations, {**good, "outcome": "fine"}, 400, "outcome")
    refused(olga, "post", validations, {**good, "scope": ""}, 400, "scope")
    refused(olga, "post", validations, {**good, "validated_by": "dana@a.example"}, 400,
            "independent of its owner")
    refused(olga, "post", validations, {**good, "evidence": ["runs:/nosuchrun/report.pdf"]},
            400, "no such run")
    refused(olga, "post", validations, {**good, "evidence": ["0/../../etc/passwd"]}, 400,
            "'..' segments")
    refused(olga, "post", validations, {**good, "evidence": ["0/notarun/artifacts/y.txt"]},
            400, "No such artifact")


def test_evidence_is_a_run_artifact_recorded_with_its_hash(api, personas, team):
    import hashlib

    dana, olga, version = team
    report = b"%PDF-1.4 validation report\n"
    upload(personas.org_a, f"0/{version.run.run_uuid}/artifacts/validation/report.pdf", report)
    assert api(dana).post("/api/v1/inventory/", ENTRY, format="json").status_code == 201
    response = api(olga).post("/api/v1/inventory/credit-risk/validations/", {
        "validated_on": timezone.localdate().isoformat(), "scope": "full",
        "outcome": "approved_with_conditions", "findings": "Recalibrate by Q3.",
        "evidence": [f"runs:/{version.run.run_uuid}/validation/report.pdf"]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["evidence"] == [{
        "path": f"0/{version.run.run_uuid}/artifacts/validation/report.pdf",
        "sha256": hashlib.sha256(report).hexdigest(), "size": len(report)}]
    assert events(personas.org_a)[-1].after["evidence"] == response.json()["evidence"]


# --- point in time ------------------------------------------------------------------------------

def test_the_inventory_of_a_past_date_stays_what_was_true_then(api, personas, team):
    dana, olga, _ = team
    org, alice = personas.org_a, as_actor(personas.alice)
    model = RegisteredModel.objects.get(org=org, name="credit-risk")
    with on("2024-03-01"):
        inventory.inventory_entry_create(model=model, actor=as_actor(dana), **{
            k: v for k, v in ENTRY.items() if k != "model"})
    with on("2024-04-10"):
        inventory.validation_record(model=model, actor=as_actor(olga), scope="full",
                                    validated_on=datetime.date(2024, 4, 9), outcome="approved")
    march = [i.as_dict() for i in inventory.inventory_as_of(org, datetime.date(2024, 3, 15))]
    april = [i.as_dict() for i in inventory.inventory_as_of(org, datetime.date(2024, 4, 30))]
    assert [(i["model"], i["risk_tier"], i["owner"], i["latest_validation"]) for i in march] \
        == [("credit-risk", "high", "dana@a.example", None)]
    assert march[0]["next_review_due"] == "2025-03-01" and not march[0]["overdue"]
    assert april[0]["latest_validation"]["outcome"] == "approved"
    assert inventory.inventory_as_of(org, datetime.date(2024, 2, 29)) == []  # not yet in it

    # the inventory changes afterwards: tier, owner, a failed validation, a new name
    with on("2024-06-01"):
        make_persona(org, "erik@a.example", Role.DATA_SCIENTIST)
        inventory.inventory_entry_update(entry=entry_of(org), actor=alice, risk_tier="medium",
                                         owner="erik@a.example", limitations="")
        inventory.validation_record(model=model, actor=as_actor(olga), scope="annual",
                                    validated_on=datetime.date(2024, 6, 1),
                                    outcome="not_approved")
        registry.registered_model_rename(model=model, new_name="credit-risk-v2", actor=alice)

    again = [i.as_dict() for i in inventory.inventory_as_of(org, datetime.date(2024, 3, 15))]
    assert again == march
    assert [i.as_dict() for i in inventory.inventory_as_of(org, datetime.date(2024, 4, 30))] \
        == april
    june = inventory.inventory_as_of(org, datetime.date(2024, 6, 1))[0].as_dict()
    assert (june["model"], june["risk_tier"], june["owner"], june["limitations"]) == \
        ("credit-risk-v2", "medium", "erik@a.example", "")
    assert june["latest_validation"]["outcome"] == "not_approved"
    assert june["protected_aliases_blocked"] and june["validations"] == 2
    # the trail gives what the tables hold now
    now = [i.as_dict() for i in inventory.inventory_as_of(org, timezone.now())]
    assert now == [i.as_dict() for i in inventory.inventory_current(org)]
    # and the API serves the same past date
    response = api(dana).get("/api/v1/inventory/?as_of=2024-03-15")
    assert response.status_code == 200 and response.json() == march


def test_a_deleted_model_leaves_the_inventory_from_its_deletion_on(personas, team):
    dana, _, version = team
    org = personas.org_a
    model = version.registered_model
    with on("2024-03-01"):
        inventory.inventory_entry_create(model=model, actor=as_actor(dana), **{
            k: v for k, v in ENTRY.items() if k != "model"})
    with on("2024-05-01"):
        registry.model_version_delete(version=version, actor=SETUP)
        registry.registered_model_delete(model=model, actor=SETUP)
    assert len(inventory.inventory_as_of(org, datetime.date(2024, 4, 1))) == 1
    assert inventory.inventory_as_of(org, datetime.date(2024, 5, 2)) == []
    assert inventory.inventory_current(org) == []


# --- protected aliases --------------------------------------------------------------------------

def set_champion(api, who, version: int):
    """The MLflow protocol's set-alias, as the mlflow client sends it."""
    return api(who).post("/api/2.0/mlflow/registered-models/alias",
                         {"name": "credit-risk", "alias": "champion", "version": str(version)},
                         format="json")


def test_a_not_approved_validation_blocks_the_champion_alias(api, personas, team):
    dana, olga, version = team
    second = ready_version(personas.org_a)
    alice = personas.alice
    assert api(alice).post("/api/v1/protected-aliases/", {"alias": "champion"},
                           format="json").status_code == 201
    assert api(dana).post("/api/v1/inventory/", ENTRY, format="json").status_code == 201

    # without a failed validation: a request is made, and approved, as for any protected alias
    asked = set_champion(api, alice, 1)
    assert asked.status_code == 403 and asked.json()["error_code"] == "PERMISSION_DENIED"
    assert "approval request" in asked.json()["message"]
    approval = AliasApproval.objects.get(status="pending")
    assert api(olga).post(f"/api/v1/approvals/{approval.pk}/approve", {},
                          format="json").status_code == 200
    assert ModelAlias.objects.get(alias="champion").model_version == version

    # a request for version 2 is pending when the model fails its validation
    set_champion(api, alice, second.version)
    pending = AliasApproval.objects.get(status="pending")
    failed = api(olga).post("/api/v1/inventory/credit-risk/validations/", {
        "validated_on": timezone.localdate().isoformat(), "scope": "annual",
        "findings": "Unstable on 2024 applicants.", "outcome": "not_approved"}, format="json")
    assert failed.status_code == 201
    refused = api(olga).post(f"/api/v1/approvals/{pending.pk}/approve", {}, format="json")
    assert refused.status_code == 409 and "not approved by its latest validation" in \
        refused.json()["detail"]
    assert ModelAlias.objects.get(alias="champion").model_version == version

    count = AliasApproval.objects.count()
    blocked = set_champion(api, alice, second.version)
    assert blocked.status_code == 403
    assert blocked.json()["error_code"] == "PERMISSION_DENIED"
    assert "not approved by its latest validation" in blocked.json()["message"]
    assert AliasApproval.objects.count() == count  # nothing requested
    # an unprotected alias is not the inventory's business
    assert api(alice).post("/api/2.0/mlflow/registered-models/alias", {
        "name": "credit-risk", "alias": "challenger", "version": "2"},
        format="json").status_code == 200
    # taking the champion away stays possible (by approval)
    away = api(alice).delete("/api/2.0/mlflow/registered-models/alias",
                             {"name": "credit-risk", "alias": "champion"}, format="json")
    assert "approval request" in away.json()["message"]

    # a new validation that approves the model lifts the block
    assert api(olga).post("/api/v1/inventory/credit-risk/validations/", {
        "validated_on": timezone.localdate().isoformat(), "scope": "re-validation",
        "outcome": "approved_with_conditions"}, format="json").status_code == 201
    again = set_champion(api, alice, second.version)
    assert "approval request" in again.json()["message"]


# --- overdue ------------------------------------------------------------------------------------

def test_add_months_keeps_to_the_end_of_a_short_month():
    assert inventory.add_months(datetime.date(2024, 1, 31), 1) == datetime.date(2024, 2, 29)
    assert inventory.add_months(datetime.date(2024, 11, 30), 3) == datetime.date(2025, 2, 28)
    assert inventory.add_months(datetime.date(2024, 3, 1), 12) == datetime.date(2025, 3, 1)


def test_a_review_past_its_due_date_is_overdue_until_recorded(api, personas, team):
    dana, _, _ = team
    org, today = personas.org_a, timezone.localdate()
    with on("2024-01-15"):
        inventory.inventory_entry_create(
            model=RegisteredModel.objects.get(org=org, name="credit-risk"), actor=as_actor(dana),
            **{**{k: v for k, v in ENTRY.items() if k != "model"},
               "last_reviewed_on": datetime.date(2024, 1, 10)})
    # due on 2025-01-10: not overdue that day, overdue the day after, and now
    assert not inventory.inventory_as_of(org, datetime.date(2025, 1, 10))[0].overdue
    assert inventory.inventory_as_of(org, datetime.date(2025, 1, 11))[0].overdue
    body = api(dana).get("/api/v1/inventory/credit-risk/").json()
    assert (body["next_review_due"], body["overdue"]) == ("2025-01-10", True)
    last = datetime.date(2024, 1, 10)

    longer = api(dana).patch("/api/v1/inventory/credit-risk/",
                              {"review_frequency_months": 60}, format="json").json()
    assert longer["overdue"] is False  # a longer cycle moves the due date
    assert longer["next_review_due"] == inventory.add_months(last, 60).isoformat()

    api(dana).patch("/api/v1/inventory/credit-risk/", {"review_frequency_months": 6},
                    format="json")
    reviewed = api(dana).post("/api/v1/inventory/credit-risk/reviews",
                              {"reviewed_on": today.isoformat()}, format="json").json()
    assert reviewed["overdue"] is False
    assert reviewed["next_review_due"] == inventory.add_months(today, 6).isoformat()


# --- CSV ----------------------------------------------------------------------------------------

def test_the_csv_export_lists_the_inventory_as_of_a_date(api, personas, team):
    dana, olga, _ = team
    org = personas.org_a
    model = RegisteredModel.objects.get(org=org, name="credit-risk")
    with on("2024-03-01"):
        inventory.inventory_entry_create(model=model, actor=as_actor(dana), **{
            **{k: v for k, v in ENTRY.items() if k != "model"},
            "intended_use": "=HYPERLINK(\"http://evil\")"})
        inventory.validation_record(model=model, actor=as_actor(olga), scope="full",
                                    validated_on=datetime.date(2024, 2, 20),
                                    outcome="approved_with_conditions")
    with on("2025-06-01"):
        inventory.inventory_entry_update(entry=entry_of(org), actor=as_actor(dana),
                                         risk_tier="low")

    response = api(personas.bob).get("/api/v1/inventory/export.csv?as_of=2025-04-01")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="inventory-org-a-2025-04-01.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows == [{
        "model": "credit-risk", "owner": "dana@a.example", "risk_tier": "high",
        "intended_use": "'=HYPERLINK(\"http://evil\")",  # never run as a formula
        "limitations": "Not for business customers.", "review_frequency_months": "12",
        "last_reviewed_on": "", "next_review_due": "2025-03-01", "overdue": "true",
        "validations": "1", "latest_validation_outcome": "approved_with_conditions",
        "latest_validation_on": "2024-02-20", "latest_validated_by": "olga@a.example",
        "protected_aliases_blocked": "false", "as_of": "2025-04-01"}]
    now = list(csv.DictReader(io.StringIO(
        api(personas.bob).get("/api/v1/inventory/export.csv").content.decode())))
    assert now[0]["risk_tier"] == "low"


# --- the page -----------------------------------------------------------------------------------

@pytest.fixture
def two_models(personas, team):
    """Org A's inventory since 2024-03-01: credit-risk (ENTRY) and fraud-screening (medium,
    reviewed every 6 months, last on 2024-02-01; not approved on 2024-08-30)."""
    dana, olga, _ = team
    org = personas.org_a
    scoring = ready_version(org, "fraud-screening").registered_model
    with on("2024-03-01"):
        inventory.inventory_entry_create(model=RegisteredModel.objects.get(
            org=org, name="credit-risk"), actor=as_actor(dana), **{
                k: v for k, v in ENTRY.items() if k != "model"})
        inventory.inventory_entry_create(
            model=scoring, actor=as_actor(dana), owner="dana@a.example", risk_tier="medium",
            intended_use="Flags card payments for manual review.", review_frequency_months=6,
            last_reviewed_on=datetime.date(2024, 2, 1))
    with on("2024-09-01"):
        inventory.validation_record(model=scoring, actor=as_actor(olga), scope="annual",
                                    validated_on=datetime.date(2024, 8, 30),
                                    outcome="not_approved", findings="Drift.")
    return org


def test_the_inventory_page_shows_a_past_date_and_marks_overdue_reviews(page, personas,  # noqa: F811
                                                                     two_models):
    from playwright.sync_api import expect

    login(page, personas.alice)
    page.goto("/models/")
    page.get_by_role("link", name="Risk inventory").click()
    expect(page.get_by_role("heading", name="Model risk inventory")).to_be_visible()
    page.get_by_label("As of").fill("2024-06-15")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Model risk inventory as of 2024-06-15")) \
        .to_be_visible()
    rows = page.locator("#inventory tbody tr")
    expect(rows).to_have_count(2)
    # on 2024-06-15 the fraud model's review (due 2024-08-01) was not overdue yet
    expect(page.locator("tr.overdue")).to_have_count(0)
    expect(page.get_by_text("not approved")).to_have_count(0)

    page.get_by_label("As of").fill("2024-09-15")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr.overdue")).to_have_count(1)
    expect(page.locator("tr.overdue th")).to_have_text("fraud-screening")
    expect(page.locator("tr.overdue .badge.overdue")).to_be_visible()
    expect(page.get_by_text("protected aliases blocked")).to_be_visible()
    background = page.locator("tr.overdue td").first.evaluate(
        "e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(253, 236, 234)"  # the stylesheet's highlight, not inline
    shot(page, "inventory")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "inventory-org-a-2024-09-15.csv"
    assert "fraud-screening" in download.value.path().read_text()
