"""A disclosure request's way to the customer (issue 24, "request handling"): a READY version
is reviewed by a second member (four eyes) and then delivered, with the SHA-256 of the stored
file checked; only the delivery answers the request (state, overdue, the list's filter, the
metrics). Through the API, the services and the pages; real PostgreSQL, a real reports worker
and real PDFs where the file matters, and the page in headless Chromium."""

import datetime
import hashlib
import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEvent
from config.exceptions import ApplicationError
from reports import services
from reports.models import Disclosure, DisclosureRequest
from tenancy.models import MemberKind, Membership
from tenancy.roles import Role
from tests.conftest import make_persona
from tests.reports.conftest import SETUP, today
from tests.reports.test_disclosures import URL, request_body, wait_ready
from tests.ui.conftest import login, page, shot  # noqa: F401  (page: the browser fixture)
from tests.web.test_pages import browser, generated

OFFICER = Role.COMPLIANCE_OFFICER
NOTE = "Checked the decisions of Erika Mustermann against the records"
REFERENCE = "RR123456785DE"


def person(persona) -> Actor:
    return Actor(kind="user", label=persona.email, user=persona.user)


def recorded(api, persona, *, days_ago: int = 0) -> str:
    """A request received `days_ago`, recorded by `persona` without a version; its id."""
    received = today() - datetime.timedelta(days=days_ago)
    response = api(persona).post(URL, request_body(received_on=received.isoformat(),
                                                   generate=False), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def ready_version(api, persona, request_id: str) -> Disclosure:
    """A version asked for by `persona`, made READY with a stand-in file through the services
    the worker calls (the tests below that need a real PDF run the worker)."""
    response = api(persona).post(f"{URL}{request_id}/generate", {}, format="json")
    assert response.status_code == 202, response.content
    return generated(Disclosure.objects.get(uuid=response.json()["id"]))


def step(api, persona, request_id: str, version: int, action: str, body: dict):
    return api(persona).post(f"{URL}{request_id}/versions/{version}/{action}", body,
                             format="json")


def counts() -> tuple:
    """What a refused step must leave as it was."""
    return (AuditEvent.objects.count(),
            list(Disclosure.objects.order_by("pk").values_list(
                "reviewed_at", "reviewed_by", "review_note", "delivered_at", "delivered_by",
                "delivery_channel", "delivered_sha256", "delivery_reference")),
            DisclosureRequest.objects.count())


@pytest.fixture
def officers(personas, roles):
    """Org A's compliance officer (who asks for the versions) and a second one."""
    return roles[OFFICER], make_persona(personas.org_a, "second-officer@a.example", OFFICER)


# --- the whole way, with a real PDF --------------------------------------------------------

@pytest.mark.postgres_only
def test_a_real_pdf_is_generated_reviewed_by_a_second_member_and_delivered_with_its_hash(
        api, personas, roles, profiles, reports_worker):
    officer, owner = api(roles[OFFICER]), api(personas.alice)
    created = officer.post(URL, request_body(language="en"), format="json").json()
    url = f"{URL}{created['id']}/"
    assert (created["state"], created["delivered_version"]) == ("open", None)
    body = wait_ready(officer, created["id"])
    assert body["versions"][0]["status"] == "READY", body["versions"][0]
    assert (body["state"], body["overdue"], body["delivered_version"]) == ("generated", False,
                                                                           None)
    pdf = b"".join(officer.get(f"{url}pdf").streaming_content)
    sent = hashlib.sha256(pdf).hexdigest()

    # four eyes: the officer asked for the version, the owner reviews it
    before = counts()
    own = officer.post(f"{url}versions/1/review", {"note": "mine"}, format="json")
    assert own.status_code == 403 and "four eyes" in own.json()["detail"]
    early = officer.post(f"{url}versions/1/deliver", {"channel": "post"}, format="json")
    assert early.status_code == 409 and "not reviewed yet" in early.json()["detail"]
    assert counts() == before
    reviewed = owner.post(f"{url}versions/1/review", {"note": NOTE}, format="json")
    assert reviewed.status_code == 200, reviewed.content
    version = reviewed.json()["versions"][0]
    assert (reviewed.json()["state"], version["reviewed_by"], version["review_note"]) == \
        ("reviewed", personas.alice.email, NOTE)

    delivered = officer.post(f"{url}versions/1/deliver", {
        "channel": "post", "sha256": sent.upper(), "reference": REFERENCE}, format="json")
    assert delivered.status_code == 200, delivered.content
    body = delivered.json()
    version = body["versions"][0]
    assert (body["state"], body["delivered_version"], body["overdue"]) == ("delivered", 1, False)
    assert (version["delivery_channel"], version["delivered_sha256"], version["sha256"],
            version["delivery_reference"], version["delivered_by"]) == \
        ("post", sent, sent, REFERENCE, roles[OFFICER].email)

    # each step is one event, with ids and hashes only: no note, no reference, no customer
    disclosure = Disclosure.objects.get(uuid=version["id"])
    events = {e.action: e for e in AuditEvent.objects.filter(
        target_type="disclosure", target_id=str(disclosure.pk),
        action__in=("disclosure.reviewed", "disclosure.delivered"))}
    assert events["disclosure.reviewed"].after == {
        "request": created["id"], "version": 1,
        "note_sha256": hashlib.sha256(NOTE.encode()).hexdigest()}
    assert events["disclosure.reviewed"].actor_label.startswith(personas.alice.email)
    assert events["disclosure.delivered"].after == {
        "request": created["id"], "version": 1, "channel": "post",
        "delivered_at": json.loads(json.dumps(disclosure.delivered_at, cls=DjangoJSONEncoder)),
        "sha256": sent, "reference_sha256": hashlib.sha256(REFERENCE.encode()).hexdigest()}
    for event in AuditEvent.objects.all():
        trail = json.dumps([event.before, event.after, event.target_label])
        for secret in ("Mustermann", "C-1001", REFERENCE, "Checked the decisions"):
            assert secret not in trail, (event.action, secret)


# --- state, overdue and the list follow delivery -------------------------------------------

def test_only_a_delivery_answers_a_request_and_ends_its_being_overdue(api, personas, officers,
                                                                      profiles):
    officer, second = officers
    late = recorded(api, officer, days_ago=45)
    fresh = recorded(api, officer)
    client = api(officer)

    def listed(overdue: str) -> list[str]:
        return [r["id"] for r in client.get(f"{URL}?overdue={overdue}").json()]

    def shown(request_id: str) -> tuple:
        body = client.get(f"{URL}{request_id}/").json()
        return body["state"], body["overdue"], body["delivered_version"]

    assert shown(late) == ("open", True, None)
    version = ready_version(api, officer, late)
    # before this issue a READY version answered the request: it stays overdue now
    assert shown(late) == ("generated", True, None)
    assert (listed("true"), listed("false")) == ([late], [fresh])
    assert step(api, second, late, 1, "review", {}).status_code == 200
    assert shown(late) == ("reviewed", True, None)
    assert step(api, officer, late, 1, "deliver", {"channel": "email"}).status_code == 200
    assert shown(late) == ("delivered", False, 1)
    assert (listed("true"), listed("false")) == ([], [fresh, late])
    request = DisclosureRequest.objects.with_versions().get(uuid=late)
    assert (request.answered, request.overdue, request.delivered.pk) == (True, False, version.pk)
    assert list(DisclosureRequest.objects.undelivered().values_list("uuid", flat=True)) == \
        [DisclosureRequest.objects.get(uuid=fresh).uuid]


def test_a_newer_version_does_not_undo_the_delivery_that_answered_the_request(
        api, personas, officers, profiles):
    officer, second = officers
    request_id = recorded(api, officer)
    ready_version(api, officer, request_id)
    step(api, second, request_id, 1, "review", {})
    step(api, officer, request_id, 1, "deliver", {"channel": "portal"})
    ready_version(api, officer, request_id)  # a corrected version
    body = api(officer).get(f"{URL}{request_id}/").json()
    assert (body["state"], body["delivered_version"]) == ("delivered", 1)
    assert [(v["version"], v["reviewed_at"] is None, v["delivered_at"] is None)
            for v in body["versions"]] == [(2, True, True), (1, False, False)]
    step(api, second, request_id, 2, "review", {})
    resent = step(api, officer, request_id, 2, "deliver", {"channel": "post"})
    assert resent.status_code == 200
    assert (resent.json()["state"], resent.json()["delivered_version"]) == ("delivered", 1)


def test_an_extension_is_refused_once_the_request_is_delivered(api, personas, officers,
                                                               profiles):
    officer, second = officers
    request_id = recorded(api, officer, days_ago=3)
    ready_version(api, officer, request_id)
    step(api, second, request_id, 1, "review", {})
    step(api, officer, request_id, 1, "deliver", {"channel": "in_person"})
    due = DisclosureRequest.objects.get(uuid=request_id).due_on
    before = counts()
    response = api(officer).post(f"{URL}{request_id}/extend", {
        "extended_until": (due + datetime.timedelta(days=20)).isoformat(),
        "reason": "more systems"}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Version 1 was delivered on ")
    assert counts() == before
    assert DisclosureRequest.objects.get(uuid=request_id).extended_until is None


# --- the order of the steps ------------------------------------------------------------------

def test_a_queued_or_failed_version_cannot_be_reviewed_nor_delivered(api, personas, officers,
                                                                     profiles):
    officer, second = officers
    request_id = recorded(api, officer)
    queued = api(officer).post(f"{URL}{request_id}/generate", {}, format="json").json()
    failing = Disclosure.objects.get(uuid=queued["id"])
    before = counts()
    for action, body in (("review", {}), ("deliver", {"channel": "post"})):
        response = step(api, second, request_id, 1, action, body)
        assert response.status_code == 409, (action, response.content)
        assert "is QUEUED" in response.json()["detail"]
    with transaction.atomic():
        services.disclosure_claim_within(pk=failing.pk, attempt=1, actor=SETUP)
    services.disclosure_fail(pk=failing.pk, attempt=1, message="no profile", actor=SETUP)
    before = counts()
    response = step(api, second, request_id, 1, "review", {})
    assert response.status_code == 409 and "is FAILED" in response.json()["detail"]
    assert counts() == before
    assert api(officer).get(f"{URL}{request_id}/").json()["state"] == "open"


def test_each_step_happens_once(api, personas, officers, profiles):
    officer, second = officers
    request_id = recorded(api, officer)
    ready_version(api, officer, request_id)
    assert step(api, second, request_id, 1, "review", {}).status_code == 200
    before = counts()
    again = step(api, personas.alice, request_id, 1, "review", {})
    assert again.status_code == 409 and "reviewed already" in again.json()["detail"]
    assert counts() == before
    assert step(api, officer, request_id, 1, "deliver", {"channel": "post"}).status_code == 200
    before = counts()
    twice = step(api, officer, request_id, 1, "deliver", {"channel": "email"})
    assert twice.status_code == 409 and "delivered already" in twice.json()["detail"]
    assert counts() == before


# --- four eyes --------------------------------------------------------------------------------

def test_four_eyes_the_member_who_asked_for_a_version_cannot_review_it(
        api, personas, officers, profiles, monkeypatch):
    """The attack: the officer who generated a version passes it as reviewed on their own.
    With the four-eyes check off it works; with it on, it is refused and nothing written."""
    officer, second = officers
    first, other = recorded(api, officer), recorded(api, officer)
    ready_version(api, officer, first)
    ready_version(api, officer, other)

    with monkeypatch.context() as defence_off:
        defence_off.setattr(services, "_four_eyes", lambda disclosure, actor: None)
        assert step(api, officer, first, 1, "review", {}).status_code == 200
    assert api(officer).get(f"{URL}{first}/").json()["versions"][0]["reviewed_by"] == \
        officer.email

    before = counts()
    refused = step(api, officer, other, 1, "review", {"note": "looks fine"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("You asked for version 1's generation; another member "
                                        "with compliance rights must review it (four eyes).")
    assert counts() == before
    assert step(api, second, other, 1, "review", {}).status_code == 200


def test_a_service_account_or_a_command_reviews_nothing(api, personas, officers, profiles):
    officer, _ = officers
    request_id = recorded(api, officer)
    version = ready_version(api, officer, request_id)
    robot = make_persona(personas.org_a, "robot@a.example", OFFICER)
    Membership.objects.filter(pk=robot.membership.pk).update(kind=MemberKind.SERVICE)
    before = counts()
    response = step(api, robot, request_id, 1, "review", {})
    assert response.status_code == 403 and "service account" in response.json()["detail"]
    with pytest.raises(ApplicationError) as refused:
        services.disclosure_review(disclosure=version, actor=Actor.command("review"))
    assert refused.value.kind == "permission_denied"
    assert counts() == before


# --- the delivered file ----------------------------------------------------------------------

def test_a_delivery_records_the_stored_files_hash_never_a_tampered_files(
        api, personas, officers, profiles, monkeypatch):
    """The attack: the stored PDF is replaced after generation (or another file is sent) and
    recorded as delivered. Trusting the recorded hash, the delivery goes through; checked
    against storage, it is refused and nothing is written."""
    officer, second = officers
    trusted, checked = recorded(api, officer), recorded(api, officer)
    for request_id in (trusted, checked):
        version = ready_version(api, officer, request_id)
        step(api, second, request_id, 1, "review", {})
        storage = storages["reports"]
        storage.delete(version.file_name)
        assert storage.save(version.file_name, ContentFile(
            b"%PDF-1.4 someone else's data\n%%EOF\n")) == version.file_name

    with monkeypatch.context() as defence_off:
        defence_off.setattr(services, "_stored_sha256", lambda disclosure: disclosure.sha256)
        response = step(api, officer, trusted, 1, "deliver", {"channel": "email"})
        assert response.status_code == 200  # recorded as the generated file: it was not

    before = counts()
    refused = step(api, officer, checked, 1, "deliver", {"channel": "email"})
    assert refused.status_code == 409, refused.content
    tampered = hashlib.sha256(b"%PDF-1.4 someone else's data\n%%EOF\n").hexdigest()
    assert f"SHA-256 {tampered}" in refused.json()["detail"]
    assert counts() == before

    storages["reports"].delete(Disclosure.objects.get(request__uuid=checked).file_name)
    missing = step(api, officer, checked, 1, "deliver", {"channel": "email"})
    assert missing.status_code == 409 and "missing from storage" in missing.json()["detail"]
    assert counts() == before


@pytest.mark.parametrize(("body", "field"), [
    ({"channel": "pigeon"}, "channel"),
    ({}, "channel"),
    ({"channel": "post", "sha256": "not-a-hash"}, "sha256"),
    ({"channel": "post", "sha256": "ab" * 32}, "sha256"),  # well formed, another file's
    ({"channel": "post", "delivered_at": "2999-01-01T10:00:00Z"}, "delivered_at"),
    ({"channel": "post", "delivered_at": "2020-01-01T10:00:00Z"}, "delivered_at"),  # < review
    ({"channel": "post", "delivered_at": "yesterday"}, "delivered_at"),
    ({"channel": "post", "reference": "x" * 301}, "reference"),
])
def test_a_bad_delivery_is_refused_naming_the_field_and_nothing_is_written(
        api, personas, officers, profiles, body, field):
    officer, second = officers
    request_id = recorded(api, officer)
    ready_version(api, officer, request_id)
    step(api, second, request_id, 1, "review", {})
    before = counts()
    response = step(api, officer, request_id, 1, "deliver", body)
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == [field], response.json()
    assert counts() == before
    assert api(officer).get(f"{URL}{request_id}/").json()["state"] == "reviewed"


def test_a_bad_review_is_refused_naming_the_field_and_nothing_is_written(api, personas,
                                                                         officers, profiles):
    officer, second = officers
    request_id = recorded(api, officer)
    ready_version(api, officer, request_id)
    before = counts()
    response = step(api, second, request_id, 1, "review", {"note": "x" * 2001})
    assert response.status_code == 400 and list(response.json()["fields"]) == ["note"]
    assert counts() == before


# --- who reaches it -------------------------------------------------------------------------

def test_other_organizations_get_404_and_roles_without_compliance_rights_403(
        api, personas, roles, officers, profiles):
    officer, second = officers
    request_id = recorded(api, officer)
    ready_version(api, officer, request_id)
    read_only = make_persona(personas.org_a, "ro-owner@a.example", Role.OWNER, read_only=True)
    before = counts()
    for action, body in (("review", {}), ("deliver", {"channel": "post"})):
        path = f"{URL}{request_id}/versions/1/{action}"
        for persona in (roles[Role.DATA_SCIENTIST], roles[Role.AUDITOR], personas.bob):
            assert api(persona).post(path, body, format="json").status_code == 403, \
                (persona.email, action)
        assert api(personas.charlie).post(path, body, format="json").status_code == 404
        assert api(second).post(f"{URL}{request_id}/versions/7/{action}", body,
                                format="json").status_code == 404
    assert step(api, read_only, request_id, 1, "review", {}).status_code == 403
    assert counts() == before


# --- metrics --------------------------------------------------------------------------------

def gauges(client) -> dict:
    """The disclosure gauges of a real scrape of /metrics, by (name, organization)."""
    found = {}
    for line in client.get("/metrics").content.decode().splitlines():
        if line.startswith("ledgerflow_disclosure_requests_"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_metrics_count_open_and_overdue_requests_per_organization(client, api, personas,
                                                                  officers, profiles):
    officer, second = officers
    late = recorded(api, officer, days_ago=40)
    recorded(api, officer, days_ago=2)
    recorded(api, personas.charlie, days_ago=1)
    assert gauges(client) == {
        'ledgerflow_disclosure_requests_open{org="org-a"}': 2.0,
        'ledgerflow_disclosure_requests_open{org="org-b"}': 1.0,
        'ledgerflow_disclosure_requests_overdue{org="org-a"}': 1.0,
        'ledgerflow_disclosure_requests_overdue{org="org-b"}': 0.0}
    ready_version(api, officer, late)  # generated and reviewed: still open, still overdue
    step(api, second, late, 1, "review", {})
    assert gauges(client)['ledgerflow_disclosure_requests_overdue{org="org-a"}'] == 1.0
    step(api, officer, late, 1, "deliver", {"channel": "post"})
    assert gauges(client) == {
        'ledgerflow_disclosure_requests_open{org="org-a"}': 1.0,
        'ledgerflow_disclosure_requests_open{org="org-b"}': 1.0,
        'ledgerflow_disclosure_requests_overdue{org="org-a"}': 0.0,
        'ledgerflow_disclosure_requests_overdue{org="org-b"}': 0.0}


# --- the pages ------------------------------------------------------------------------------

def events_since(pk: int) -> list[str]:
    return list(AuditEvent.objects.filter(pk__gt=pk).order_by("pk")
                .values_list("action", flat=True))


def last_event() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_the_request_page_offers_each_step_to_whom_may_take_it(api, personas, officers,
                                                               profiles):
    officer, second = officers
    request_id = recorded(api, officer)
    ready_version(api, officer, request_id)
    page_url = f"/compliance/requests/{request_id}/"
    own = browser(officer).get(page_url).content.decode()
    assert "Mark reviewed" not in own and "You asked for this version" in own
    reviewer = browser(second)
    assert "Mark reviewed" in reviewer.get(page_url).content.decode()
    assert "Record delivery" not in reviewer.get(page_url).content.decode()

    before = last_event()
    response = reviewer.post(page_url, {"action": "review", "version": "1", "note": NOTE})
    assert (response.status_code, response.url) == (302, page_url)
    assert events_since(before) == ["disclosure.reviewed"]
    shown = browser(officer).get(page_url).content.decode()
    assert "Record delivery" in shown and "Mark reviewed" not in shown

    before = last_event()
    for data, status, said in (
            ({"action": "deliver", "version": "1", "channel": "pigeon"}, 400,
             "Select a valid choice"),
            ({"action": "deliver", "version": "9", "channel": "post"}, 400,
             "This request has no version 9."),
            ({"action": "review", "version": "1"}, 400, "reviewed already"),
            ({"action": "deliver", "version": "1", "channel": "post", "sha256": "ab" * 32}, 400,
             "not the SHA-256 of version 1")):
        refused = browser(officer).post(page_url, data)
        assert refused.status_code == status and said in refused.content.decode(), data
    assert events_since(before) == []
    response = browser(officer).post(page_url, {
        "action": "deliver", "version": "1", "channel": "post", "reference": REFERENCE})
    assert response.status_code == 302 and events_since(before) == ["disclosure.delivered"]
    done = browser(officer).get(page_url).content.decode()
    assert "Record delivery" not in done and "Delivered: the request is answered." in done
    assert browser(personas.charlie).get(page_url).status_code == 404
    assert browser(personas.charlie).post(page_url, {"action": "review", "version": "1"}) \
        .status_code == 404
    assert browser(personas.bob).get(page_url).status_code == 403


def test_a_forged_step_without_csrf_token_is_refused(api, personas, officers, profiles):
    officer, second = officers
    request_id = recorded(api, officer)
    ready_version(api, officer, request_id)
    before = last_event()
    forged = browser(second, enforce_csrf_checks=True).post(
        f"/compliance/requests/{request_id}/", {"action": "review", "version": "1"})
    assert forged.status_code == 403 and events_since(before) == []


def test_the_page_in_a_browser_through_review_and_delivery(page, api, personas, officers,  # noqa: F811
                                                           profiles):
    from playwright.sync_api import expect

    officer, second = officers
    late = recorded(api, officer, days_ago=40)
    ready_version(api, officer, late)
    login(page, officer)
    page.goto("/compliance/")
    row = page.locator("#requests tbody tr")
    expect(row).to_have_class("overdue")
    expect(row.locator(".badge.bad")).to_have_text("overdue")
    expect(row.locator("td").nth(3)).to_have_text("generated")
    background = row.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(253, 236, 234)"
    shot(page, "compliance-list-overdue")
    page.get_by_role("link", name="Erika Mustermann").click()
    expect(page.get_by_text("You asked for this version")).to_be_visible()
    expect(page.get_by_role("button", name="Mark reviewed")).to_have_count(0)
    shot(page, "compliance-request-generated")

    page.context.clear_cookies()
    login(page, second)
    page.goto(f"/compliance/requests/{late}/")
    page.get_by_label("Note").fill(NOTE)
    page.get_by_role("button", name="Mark reviewed").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 is marked reviewed.")
    expect(page.locator("#versions .badge.good")).to_have_text("Reviewed")
    shot(page, "compliance-request-reviewed")

    page.get_by_label("Channel").select_option("post")
    page.get_by_label("Reference").fill(REFERENCE)
    page.get_by_role("button", name="Record delivery").click()
    expect(page.get_by_role("status")).to_contain_text("the request is answered")
    expect(page.locator("#request-summary .badge.good")).to_have_text("answered")
    expect(page.locator("#versions .badge.good")).to_have_text("Delivered")
    expect(page.get_by_text(f"(reference {REFERENCE})")).to_be_visible()
    expect(page.get_by_role("button", name="Extend")).to_have_count(0)
    shot(page, "compliance-request-delivered")
    page.get_by_role("link", name="← Disclosure requests").click()
    expect(row).not_to_have_class("overdue")
    expect(row.locator(".badge.good")).to_have_text(["answered", "Delivered"])
    shot(page, "compliance-list-delivered")
    assert Disclosure.objects.get(request__uuid=late).delivered_at <= timezone.now()
