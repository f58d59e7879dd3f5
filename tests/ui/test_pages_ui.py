"""The registry, projects, audit and compliance pages in a real browser: switching organization
hides the other one's models, a viewer gets no write buttons (and a forged POST is refused), an
approval followed into the audit trail, a project run's output followed live from a real
worker, and a compliance officer's disclosure from request to downloaded PDF (a real worker).
Each main page is saved as a screenshot."""

import re

import pytest
from playwright.sync_api import expect

from audit.actors import Actor
from audit.models import AuditEvent
from models_registry import services as registry
from projects import services as projects
from projects.models import ProjectRun
from tenancy.roles import Role
from tenancy.services import membership_add
from tests.conftest import SETUP, make_persona
from tests.models_registry.conftest import make_version, saved_models  # noqa: F401
from tests.projects.conftest import (  # noqa: F401
    example_repo,
    projects_worker,
    start_projects_worker,
)
from tests.reports.conftest import profiles, reports_worker, roles  # noqa: F401
from tests.ui.conftest import login, shot
from tracking.selectors import experiment_get

pytestmark = pytest.mark.postgres_only
SLOW = 90_000  # ms: a worker's whole job (start-up included)


def as_actor(persona) -> Actor:
    return Actor(kind="user", label=persona.email, user=persona.user)


def test_switching_organization_hides_the_other_organizations_models(page, personas,
                                                                       make_version):  # noqa: F811
    membership_add(org=personas.org_b, email=personas.alice.email, role=Role.VIEWER,
                   actor=SETUP)
    version = make_version(personas.org_a, "credit-risk")  # packaged for real, in this process
    make_version(personas.org_b, "beta-scorer", ready=False)  # no worker: stays pending
    login(page, personas.alice, "org-a")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    expect(page.get_by_role("link", name="credit-risk")).to_be_visible()
    expect(page.get_by_text("beta-scorer")).to_have_count(0)
    shot(page, "models")

    page.get_by_role("link", name="credit-risk").click()
    expect(page.get_by_role("heading", name="credit-risk")).to_be_visible()
    shot(page, "model-detail")
    page.get_by_role("link", name="Version 1", exact=True).first.click()
    expect(page.get_by_text(version.package_digest)).to_be_visible()
    shot(page, "model-version")
    with page.expect_download() as download:  # the native API, with the browser's session
        page.get_by_role("link", name="Download package (.tar.gz)").click()
    assert download.value.suggested_filename == "credit-risk-v1.tar.gz"
    assert download.value.path().read_bytes()[:2] == b"\x1f\x8b"  # gzip

    page.get_by_role("link", name="Switch organization").click()
    page.locator("form:has(input[value='org-b']) button").click()
    page.wait_for_load_state()
    page.goto("/models/")
    expect(page.get_by_role("link", name="beta-scorer")).to_be_visible()
    expect(page.get_by_text("Packaging…")).to_be_visible()
    expect(page.get_by_text("credit-risk")).to_have_count(0)
    shot(page, "models-org-b")
    assert page.goto("/models/credit-risk/").status == 404


def test_a_viewer_sees_no_write_buttons_and_a_forged_post_is_refused(page, personas):
    experiment = experiment_get(org=personas.org_a, experiment_id="0")
    run = projects.project_run_submit(experiment=experiment, actor=as_actor(personas.alice),
                                      git_url="https://github.com/example/credit.git")
    login(page, personas.bob)
    page.goto("/projects/")
    expect(page.get_by_role("link", name=str(run.uuid)[:8])).to_be_visible()
    expect(page.get_by_role("button", name="Submit run")).to_have_count(0)
    page.goto(f"/projects/runs/{run.uuid}/")
    expect(page.get_by_text("Queued…")).to_be_visible()
    expect(page.get_by_role("button")).to_have_text(["Log out"])  # the only button
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Audit")).to_have_count(0)
    events = AuditEvent.objects.count()
    statuses = page.evaluate("""async (url) => {
        const token = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1];
        const withToken = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token}});
        const forged = await fetch(url, {method: "POST"});
        return [withToken.status, forged.status];
    }""", f"/projects/runs/{run.uuid}/")
    assert statuses == [403, 403]  # the role may not; without a token nobody may
    assert AuditEvent.objects.count() == events
    assert ProjectRun.objects.get(pk=run.pk).status == "QUEUED"


def test_an_approval_is_decided_and_found_in_the_verified_audit_trail(page, personas,
                                                                       make_version):  # noqa: F811
    scientist = make_persona(personas.org_a, "dana@a.example", Role.DATA_SCIENTIST)
    version = make_version(personas.org_a, "credit-risk")
    registry.protected_alias_add(org=personas.org_a, alias="production", actor=SETUP)
    with pytest.raises(registry.ApprovalRequired):
        registry.alias_set(version=version, alias="production", actor=as_actor(scientist),
                           reason="AUC 0.91 on the October holdout")
    login(page, personas.alice)
    page.goto("/approvals/")
    expect(page.get_by_text("dana@a.example")).to_be_visible()
    shot(page, "approvals")
    page.get_by_label("Comment").fill("Holdout checked")
    page.get_by_role("button", name=re.compile("^Approve request")).click()
    expect(page.get_by_role("status")).to_contain_text("approved")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    page.get_by_label("Action").select_option("approval.approved")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    shot(page, "audit")
    page.locator("tbody tr th a").click()
    expect(page.get_by_text("recomputed: matches")).to_be_visible()
    expect(page.locator("#proof-h + p .badge")).to_have_text("verified")
    expect(page.get_by_text('"comment": "Holdout checked"')).to_be_visible()
    shot(page, "audit-event")
    page.goto("/audit/")
    page.get_by_role("button", name="Verify now").click()
    expect(page.get_by_role("status")).to_contain_text("intact")
    shot(page, "audit-verified")


def test_a_project_run_shows_its_output_live_and_ends_finished(
        page, personas, example_repo, projects_worker):  # noqa: F811
    url, head = example_repo
    login(page, personas.alice)
    page.goto("/projects/")
    page.get_by_label("Git URL").fill("ftp://git.example/credit.git")
    page.get_by_label("Parameters").fill("alpha=0.25\nrows")
    page.get_by_role("button", name="Submit run").click()
    expect(page.get_by_text("Line 2: expected name=value")).to_be_visible()
    expect(page.get_by_label("Parameters")).to_have_attribute("aria-invalid", "true")
    shot(page, "projects-refused")
    page.get_by_label("Git URL").fill(url)
    page.get_by_label("Version").fill("main")
    page.get_by_label("Parameters").fill("alpha=0.25\nrows=40")
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_url(re.compile(r"/projects/runs/"))
    expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
    expect(page.get_by_text("Finished")).to_be_visible(timeout=SLOW)  # refreshed by live.js
    expect(page.get_by_role("log", name="stdout")).to_contain_text("trained in run")
    expect(page.get_by_text(head)).to_be_visible()
    expect(page.get_by_text("--alpha 0.25 --rows 40")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    shot(page, "project-run")
    page.get_by_role("link", name="Projects").first.click()
    expect(page.locator("#runs .badge.good")).to_have_text(["Finished"])
    shot(page, "projects")


def test_a_compliance_officer_records_generates_and_downloads_a_disclosure(
        page, personas, roles, profiles, reports_worker, tmp_path):  # noqa: F811
    officer = roles[Role.COMPLIANCE_OFFICER]
    login(page, officer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Compliance").click()
    page.get_by_label("Customer identifier").fill("C-1001")
    page.get_by_label("Customer name").fill("Erika Mustermann")
    page.get_by_label("Identity verification").fill("ID card checked at branch 12")
    page.get_by_label("Language").select_option("en")
    page.get_by_role("button", name="Record request").click()
    expect(page.get_by_role("heading", name="Disclosure request: Erika Mustermann")) \
        .to_be_visible()
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 is being generated")
    download_link = page.get_by_role("link", name="Download PDF version 1")
    expect(download_link).to_be_visible(timeout=SLOW)  # the version turned READY: live.js
    shot(page, "compliance-request")
    with page.expect_download() as download:
        download_link.click()
    saved = tmp_path / "disclosure.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="disclosure.downloaded",
                                     actor_label=officer.email).count() == 1
    page.get_by_role("link", name="← Disclosure requests").click()
    # generated is not answered: a second member reviews it, then it is delivered
    # (tests/reports/test_request_lifecycle.py)
    expect(page.locator("#requests .badge")).to_have_text(
        [re.compile(r"^open, \d+ days left$"), "Generated"])
    shot(page, "compliance")
