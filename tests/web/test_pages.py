"""The browser pages of the registry, projects, the audit trail and compliance, through Django's
test client: who may see and do what, another organization's ids answering 404, CSRF, bad
input refused with nothing written, and each write leaving its one audit event."""

import datetime
import hashlib
from dataclasses import dataclass

import pytest
from django.db import connection, transaction
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from audit.models import AuditEvent
from models_registry import services as registry
from models_registry.models import AliasApproval, ApprovalStatus
from projects import services as projects
from projects.models import ProjectRun, Workflow
from reports import services as reports
from reports.models import Disclosure, DisclosureRequest
from tenancy.roles import Role
from tests.conftest import SETUP
from tests.models_registry.conftest import make_version, saved_models  # noqa: F401
from tests.reports.conftest import profiles, roles, today  # noqa: F401
from tracking.selectors import experiment_get

GIT = "https://github.com/example/credit.git"


def as_actor(persona) -> Actor:
    return Actor(kind="user", label=persona.email, user=persona.user)


def browser(persona, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(persona.user)  # one organization each: the session acts in it
    return client


def last_event() -> int:
    return AuditEvent.objects.aggregate(last=Max("pk"))["last"] or 0


def actions_since(pk: int) -> list[str]:
    return list(AuditEvent.objects.filter(pk__gt=pk).order_by("pk")
                .values_list("action", flat=True))


@dataclass
class World:
    """Org A's registry, project runs, approvals and disclosures, as the pages show them."""

    personas: object
    roles: dict
    version: object
    approval: AliasApproval
    run: ProjectRun
    workflow: Workflow
    request: DisclosureRequest
    disclosure: Disclosure

    def pages(self) -> dict[str, str]:
        """Every page, by what it shows; the ones naming an object carry its id."""
        name, req = self.version.registered_model.name, self.request.uuid
        return {"models": "/models/", "model": f"/models/{name}/",
                "version": f"/models/{name}/versions/{self.version.version}/",
                "approvals": "/approvals/", "projects": "/projects/",
                "run": f"/projects/runs/{self.run.uuid}/",
                "workflow": f"/projects/workflows/{self.workflow.uuid}/",
                "audit": "/audit/", "event": f"/audit/events/{self.event_seq}/",
                "compliance": "/compliance/", "request": f"/compliance/requests/{req}/",
                "pdf": f"/compliance/requests/{req}/versions/{self.disclosure.version}/pdf"}

    @property
    def event_seq(self) -> int:
        """The newest event of org A: org B's log is much shorter, so it has none of that
        number."""
        return AuditEvent.objects.filter(org=self.personas.org_a).aggregate(m=Max("seq"))["m"]


def packaged(version, actor=SETUP):
    """READY through the services the packaging worker calls, with a manifest of one file:
    these tests are about the pages (tests/models_registry packages real models)."""
    attempt = 1
    with transaction.atomic():
        registry.packaging_claim_within(version_pk=version.pk, attempt=attempt, actor=actor)
    files = [{"path": "MLmodel", "size": 120, "sha256": "ab" * 32}]
    manifest = {"files": files, "package_digest": "sha256:" + "cd" * 32,
                "mlmodel": {"flavors": {"python_function": {}, "sklearn": {}}},
                "verification": {"loaded": True, "scored_example": True, "example_rows": 5,
                                 "example_prediction": [0, 1, 0, 0, 1]}}
    return registry.packaging_finish(version_pk=version.pk, attempt=attempt,
                                     package_path=f"test/{version.uuid}",
                                     digest=manifest["package_digest"], manifest=manifest,
                                     actor=actor)


def generated(disclosure) -> Disclosure:
    """READY through the services the reports worker calls, with a stand-in file (tests/reports
    and tests/ui render real PDFs)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    body = b"%PDF-1.4 stand-in\n%%EOF\n"
    attempt = 1
    with transaction.atomic():
        reports.disclosure_claim_within(pk=disclosure.pk, attempt=attempt, actor=SETUP)
    name = storages["reports"].save(f"test/{disclosure.uuid}.pdf", ContentFile(body))
    return reports.disclosure_finish(pk=disclosure.pk, attempt=attempt, file_name=name,
                                     sha256=hashlib.sha256(body).hexdigest(), size=len(body),
                                     checkpoint_size=0, actor=SETUP)


@pytest.fixture
def world(personas, roles, profiles, make_version) -> World:  # noqa: F811
    org = personas.org_a
    alice, officer = personas.alice, roles[Role.COMPLIANCE_OFFICER]
    version = packaged(make_version(org, "credit-risk", ready=False))
    registry.protected_alias_add(org=org, alias="production", actor=SETUP)
    with pytest.raises(registry.ApprovalRequired) as asked:
        registry.alias_set(version=version, alias="production", actor=as_actor(alice),
                           reason="better AUC")
    experiment = experiment_get(org=org, experiment_id="0")
    run = projects.project_run_submit(experiment=experiment, actor=as_actor(alice),
                                      git_url=GIT, git_ref="main", parameters={"alpha": "0.5"})
    workflow = projects.workflow_submit(
        experiment=experiment, actor=as_actor(alice), git_url=GIT, name="train-then-score",
        steps=[{"name": "train"}, {"name": "score", "entry_point": "score"}])
    request = reports.disclosure_request_create(
        org=org, actor=as_actor(officer), subject="C-1001", subject_name="Erika Mustermann",
        received_on=today(), identity_verification="ID card checked", language="en")
    disclosure = generated(reports.disclosure_generate(request=request, actor=as_actor(officer)))
    return World(personas, roles, version, asked.value.approval, run, workflow, request,
                 disclosure)


# --- reading ---------------------------------------------------------------------------------

def test_every_page_shows_for_the_owner_and_the_pdf_is_a_pdf(world):
    client = browser(world.personas.alice)
    for page, url in world.pages().items():
        response = client.get(url)
        assert response.status_code == 200, (page, url, response.status_code)
        if page == "pdf":
            assert b"".join(response.streaming_content).startswith(b"%PDF")
    version_page = client.get(world.pages()["version"]).content.decode()
    assert world.version.package_digest in version_page
    assert world.version.manifest["files"][0]["sha256"] in version_page
    assert f"/api/v1/models/credit-risk/versions/{world.version.version}/package" in version_page
    event_page = client.get(world.pages()["event"]).content.decode()
    assert "recomputed: matches" in event_page and "verified" in event_page
    # the links into the native API work with the browser's session
    assert 'href="/api/v1/audit/export/"' in client.get("/audit/").content.decode()
    export = client.get("/api/v1/audit/export/")
    assert export.status_code == 200 and b'"type": "header"' in b"".join(export.streaming_content)
    logs = client.get(f"/api/v1/projects/runs/{world.run.uuid}/logs?stream=stdout&offset=0")
    assert logs.status_code == 200 and logs.json() == {"text": "", "offset": 0, "done": False}


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.VIEWER, {"models", "model", "version", "approvals", "projects", "run", "workflow"}),
    (Role.DATA_SCIENTIST, {"models", "model", "version", "approvals", "projects", "run",
                           "workflow"}),
    (Role.AUDITOR, {"models", "model", "version", "approvals", "projects", "run", "workflow",
                    "audit", "event"}),
    (Role.COMPLIANCE_OFFICER, {"models", "model", "version", "approvals", "projects", "run",
                               "workflow", "audit", "event", "compliance", "request", "pdf"}),
])
def test_a_role_sees_the_pages_its_capabilities_allow_and_gets_403_elsewhere(world, role,
                                                                              allowed):
    persona = world.personas.bob if role == Role.VIEWER else world.roles[role]
    client = browser(persona)
    for page, url in world.pages().items():
        expected = 200 if page in allowed else 403
        assert client.get(url).status_code == expected, (role, page)


def test_another_organization_gets_404_for_every_id_and_writes_nothing(world):
    client, pages = browser(world.personas.charlie), world.pages()
    for page in ("model", "version", "run", "workflow", "event", "request", "pdf"):
        assert client.get(pages[page]).status_code == 404, page
    before = last_event()
    posts = [(pages["run"], {}), (pages["workflow"], {}),
             ("/approvals/", {"approval": world.approval.pk, "decision": "approve"}),
             (pages["request"], {"action": "generate", "language": "en"}),
             (pages["request"], {"action": "extend", "extended_until": "2099-01-01",
                                 "reason": "x"})]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert actions_since(before) == []
    assert "credit-risk" not in client.get("/models/").content.decode()


def test_a_viewer_sees_no_write_buttons_and_the_owner_does(world):
    pages, bob, alice = world.pages(), browser(world.personas.bob), browser(world.personas.alice)
    for page, marker in (("projects", "Submit run"), ("run", "Cancel run"),
                         ("workflow", "Cancel workflow"), ("approvals", 'value="approve"')):
        assert marker not in bob.get(pages[page]).content.decode(), page
        assert marker in alice.get(pages[page]).content.decode(), page


# --- refused writes --------------------------------------------------------------------------

def test_roles_without_the_capability_get_403_on_every_write(world):
    pages, before = world.pages(), last_event()
    refused = [
        (world.personas.bob, pages["projects"], {"uri": GIT, "entry_point": "main",
                                                 "env_manager": "local", "experiment": "0"}),
        (world.personas.bob, pages["run"], {}),
        (world.personas.bob, "/audit/verify/", {}),
        (world.roles[Role.COMPLIANCE_OFFICER], pages["run"], {}),  # approves, does not write
        (world.roles[Role.DATA_SCIENTIST], "/approvals/",
         {"approval": world.approval.pk, "decision": "approve"}),
        (world.roles[Role.AUDITOR], pages["request"], {"action": "generate", "language": "en"}),
    ]
    for persona, url, data in refused:
        assert browser(persona).post(url, data).status_code == 403, (persona.email, url)
    assert actions_since(before) == []


def test_a_forged_post_without_the_csrf_token_is_refused(world):
    client, before = browser(world.personas.alice, enforce_csrf_checks=True), last_event()
    for url, data in ((world.pages()["run"], {}),
                      ("/approvals/", {"approval": world.approval.pk, "decision": "reject"}),
                      (world.pages()["request"], {"action": "generate", "language": "de"})):
        assert client.post(url, data).status_code == 403, url
    assert actions_since(before) == []
    world.run.refresh_from_db()
    assert world.run.status == "QUEUED"


@pytest.mark.parametrize(("page", "data", "shown"), [
    ("projects", {"uri": "ftp://git.example/x.git", "entry_point": "main",
                  "env_manager": "local", "experiment": "0"}, "Unsupported Git URL"),
    ("projects", {"uri": GIT, "entry_point": "main", "env_manager": "local",
                  "experiment": "0", "parameters": "alpha=1\nrows"}, "Line 2: expected name=value"),
    ("projects", {"uri": GIT, "entry_point": "main", "env_manager": "local",
                  "experiment": "424242"}, "Select a valid choice"),
    ("compliance", {"subject": "C-7", "subject_name": "Max", "received_on": "2999-01-01",
                    "identity_verification": "ID", "language": "de"}, "in the future"),
    ("compliance", {"subject": "C-7", "subject_name": "", "received_on": "2024-01-01",
                    "identity_verification": "ID", "language": "de"}, "This field is required"),
    ("request", {"action": "extend", "extended_until": "2000-01-01", "reason": "busy"},
     "at most three months after receipt"),
    ("request", {"action": "extend", "extended_until": "2099-01-01", "reason": ""},
     "This field is required"),
    ("request", {"action": "generate", "language": "fr"}, "Select a valid choice"),
    ("request", {"action": "delete"}, "Unknown action"),
    ("approvals", {"approval": "self", "decision": "approve"}, "was made by you"),
    ("approvals", {"approval": "self", "decision": "maybe"}, "Choose to approve or to reject"),
])
def test_bad_input_answers_400_with_the_reason_and_writes_nothing(world, page, data, shown):
    if data.get("approval") == "self":
        data = {**data, "approval": world.approval.pk}  # alice asked: she may not decide it
    before = last_event()
    response = browser(world.personas.alice).post(world.pages()[page], data)
    assert response.status_code == 400
    assert shown in response.content.decode()
    assert actions_since(before) == []


def test_cancelling_a_run_that_has_ended_is_refused_with_the_reason(world):
    client, url = browser(world.personas.alice), world.pages()["run"]
    assert client.post(url).status_code == 302
    before = last_event()
    response = client.post(url)
    assert response.status_code == 400 and "KILLED already" in response.content.decode()
    assert actions_since(before) == []


def test_an_audit_filter_with_from_after_to_is_refused(world):
    response = browser(world.personas.alice).get("/audit/?since=2025-02-01&until=2025-01-01")
    assert response.status_code == 400 and "must not be after" in response.content.decode()


# --- writes ----------------------------------------------------------------------------------

def written(client, url, data, *actions) -> object:
    """POST (or GET for a download); exactly the new audit events `actions`, in order."""
    before = last_event()
    response = client.get(url) if data is None else client.post(url, data)
    assert response.status_code in (200, 302), (url, response.status_code)
    assert actions_since(before) == list(actions)
    return response


def test_each_write_leaves_exactly_one_audit_event_of_its_action(world):
    alice, pages = browser(world.personas.alice), world.pages()
    officer = browser(world.roles[Role.COMPLIANCE_OFFICER])
    response = written(alice, pages["projects"], {
        "uri": GIT, "version": "v1", "entry_point": "main", "env_manager": "local",
        "experiment": "0", "parameters": "alpha = 0.25\n\nrows=60\n"},
        "run.created", "project_run.submitted")  # the service's tracking run and its project run
    submitted = ProjectRun.objects.order_by("-pk").first()
    assert response.url == f"/projects/runs/{submitted.uuid}/"
    assert submitted.parameters == {"alpha": "0.25", "rows": "60"}
    assert submitted.git_ref == "v1" and submitted.submitted_by == world.personas.alice.user
    written(alice, f"/projects/runs/{submitted.uuid}/", {}, "project_run.ended")
    assert ProjectRun.objects.get(pk=submitted.pk).status == "KILLED"

    written(officer, "/approvals/", {"approval": world.approval.pk, "decision": "approve",
                                     "comment": "checked the metrics"}, "approval.approved")
    assert AliasApproval.objects.get(pk=world.approval.pk).status == ApprovalStatus.APPROVED
    assert world.version.aliases.filter(alias="production").exists()

    response = written(officer, pages["compliance"], {
        "subject": "C-2002", "subject_name": "Max Muster", "received_on": today().isoformat(),
        "identity_verification": "video call", "language": "de"}, "disclosure_request.created")
    created = DisclosureRequest.objects.get(subject_name="Max Muster")
    assert response.url == f"/compliance/requests/{created.uuid}/"
    url = response.url
    written(officer, url, {"action": "generate", "language": "en"}, "disclosure.requested")
    assert created.disclosures.get().language == "en"
    later = created.due_on + datetime.timedelta(days=20)
    written(officer, url, {"action": "extend", "reason": "many decisions to gather",
                           "extended_until": later.isoformat()}, "disclosure_request.extended")
    assert DisclosureRequest.objects.get(pk=created.pk).deadline == later
    written(officer, pages["pdf"], None, "disclosure.downloaded")


def test_rejecting_and_cancelling_a_workflow_go_through_their_services(world):
    officer, alice = browser(world.roles[Role.COMPLIANCE_OFFICER]), browser(world.personas.alice)
    written(officer, "/approvals/", {"approval": world.approval.pk, "decision": "reject"},
            "approval.rejected")
    assert not world.version.aliases.exists()
    before = last_event()
    assert alice.post(world.pages()["workflow"]).status_code == 302
    # the queued step is killed, the waiting one is not run, the workflow ends: the service's
    # own events, in its one transaction
    assert actions_since(before) == ["project_run.ended", "project_run.ended", "workflow.ended"]


def test_verifying_the_trail_shows_the_verdict_and_writes_nothing(world):
    client, before = browser(world.roles[Role.AUDITOR]), last_event()
    response = client.post("/audit/verify/")
    assert response.status_code == 200 and "intact" in response.content.decode()
    assert actions_since(before) == []
    assert client.get("/audit/verify/").status_code == 405


# --- the audit list ----------------------------------------------------------------------------

def test_the_audit_list_filters_and_pages_newest_first_by_sequence(world, monkeypatch):
    import audit.views

    client, org = browser(world.personas.alice), world.personas.org_a
    page = client.get("/audit/?action=project_run.submitted").context["rows"]
    assert [e.action for e in page] == ["project_run.submitted"] * 3
    assert [e.seq for e in page] == sorted((e.seq for e in page), reverse=True)
    assert client.get("/audit/?actor=nobody-like-this").context["rows"] == []
    monkeypatch.setattr(audit.views, "PAGE_SIZE", 5)
    first = client.get("/audit/").context
    second = client.get(f"/audit/?before={first['oldest_seq']}").context
    back = client.get(f"/audit/?after={second['newest_seq']}").context
    newest = AuditEvent.objects.filter(org=org).aggregate(m=Max("seq"))["m"]
    assert [e.seq for e in first["rows"]] == list(range(newest, newest - 5, -1))
    assert [e.seq for e in second["rows"]] == list(range(newest - 5, newest - 10, -1))
    assert [e.seq for e in back["rows"]] == [e.seq for e in first["rows"]]
    assert not first["newer"] and first["older"] and second["newer"]


# --- queries -------------------------------------------------------------------------------------

def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_list_pages_make_the_same_number_of_queries_for_more_rows(world, make_version):  # noqa: F811
    client, org = browser(world.personas.alice), world.personas.org_a
    alice = as_actor(world.personas.alice)  # a project run needs a member who submits it
    pages = ("/models/", "/models/credit-risk/", "/projects/", "/compliance/", "/audit/",
             "/approvals/")
    client.get("/")  # a session's first request notes when it started (tenancy.middleware)
    counts = {url: queries(client, url) for url in pages}
    for name in ("fraud", "churn"):
        make_version(org, name, ready=False)
    make_version(org, "credit-risk", ready=False)
    experiment = experiment_get(org=org, experiment_id="0")
    for _ in range(3):
        projects.project_run_submit(experiment=experiment, actor=alice, git_url=GIT)
        reports.disclosure_request_create(org=org, actor=SETUP, subject="C-3",
                                          subject_name="Someone", received_on=today(),
                                          identity_verification="ID", language="de")
    assert {url: queries(client, url) for url in pages} == counts
