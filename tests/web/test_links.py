"""The links the mlflow client prints (`/#/experiments/<id>/runs/<run>`, ...) in a real browser:
each of MLflow's hash routes opens the matching page, logged in and through the login (the
fragment never reaches the server); and what users notice at once: a refused page that says why
and which role would do, the favicon, a runs table as wide as the window, an archive run's
source instead of "not fetched yet". Pages are saved with `shot` (test-artifacts/screenshots/)."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.loader import render_to_string
from django.test import RequestFactory
from playwright.sync_api import expect

from audit.actors import Actor
from projects import services as projects
from projects.models import ProjectRunStatus
from tenancy.authentication import Access
from tenancy.models import Membership
from tenancy.roles import ROLE_CAPABILITIES, Capability, Role
from tenancy.services import membership_add
from tenancy.web import require
from tests.conftest import SETUP
from tests.models_registry.conftest import make_version, saved_models  # noqa: F401
from tests.tracking.test_web import T0, artifact_root, tracked  # noqa: F401  (fixtures)
from tests.ui.conftest import ARGS, CHROMIUM, login, shot
from tracking.selectors import experiment_get
from tracking.services.experiments import experiment_create
from tracking.services.logged_models import logged_model_create
from tracking.services.runs import run_create, run_log_batch, run_update

pytestmark = pytest.mark.postgres_only


@pytest.fixture(scope="module")
def chromium():
    """Chromium, driven from a thread of its own: tests/ui/conftest.py's session browser may
    be running in this process (pytest-xdist gives one process tests of both directories), and
    a second sync Playwright cannot start in a thread that runs one (one per thread, as
    Playwright's docs say)."""
    from playwright.sync_api import sync_playwright

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")

    def start():
        playwright = sync_playwright().start()
        return playwright, playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                      args=ARGS)

    playwright, launched = pool.submit(start).result()
    yield pool, launched
    pool.submit(lambda: (launched.close(), playwright.stop())).result()
    pool.shutdown()


@pytest.fixture
def in_browser(chromium, live_server):
    """`in_browser(steps, width=1280)`: `steps(page)` in a fresh browser context on the live
    server, in the browser's thread (the database work belongs before it, in the test's
    thread); a JavaScript error on a page fails the test."""
    pool, launched = chromium

    def run(steps, width: int = 1280, height: int = 900) -> None:
        def body():
            context = launched.new_context(base_url=live_server.url,
                                           viewport={"width": width, "height": height})
            context.set_default_timeout(20_000)
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            try:
                steps(page)
            finally:
                context.close()
            assert not errors, f"JavaScript errors on the page: {errors}"

        pool.submit(body).result()

    return run


# MLflow's hash route -> the Ledgerflow page it opens (the table in mlflow-links.js, row by row)
MAPPING = [
    ("#/experiments/7", "/experiments/7/"),
    ("#/experiments/0", "/experiments/0/"),
    ("#/experiments/7/runs", "/experiments/7/"),
    ("#/experiments/7/models", "/experiments/7/"),
    ("#/experiments/7/traces", "/experiments/7/"),
    ("#/experiments/7/s?searchFilter=metrics.m0%3E1", "/experiments/7/"),
    ("#/experiments/7/runs/ab12", "/runs/ab12/"),
    ("#/experiments/7/runs/ab12?workspace=org-a", "/runs/ab12/"),
    ("#/experiments/7/runs/ab12/overview", "/runs/ab12/"),
    ("#/experiments/7/runs/ab12/model-metrics", "/runs/ab12/"),
    ("#/experiments/7/runs/ab12/artifacts", "/runs/ab12/"),
    ("#/experiments/7/runs/ab12/artifacts/data/head.csv", "/runs/ab12/?path=data%2Fhead.csv#artifacts"),
    ("#/experiments/7/runs/ab12/artifactPath/model/MLmodel",
     "/runs/ab12/?path=model%2FMLmodel#artifacts"),
    ("#/runs/ab12", "/runs/ab12/"),
    ("#/experiments/7/models/m-0f3a", "/logged-models/m-0f3a/"),
    ("#/experiments/7/models/m-0f3a/artifacts", "/logged-models/m-0f3a/"),
    ("#/experiments", "/experiments/"),
    ("#/compare-experiments/s?experiments=%5B%221%22%2C%222%22%5D", "/experiments/"),
    ('#/compare-runs?runs=["r1","r2"]&experiments=["7"]', "/compare/?runs=r1,r2"),
    ("#/compare-runs?runs=%5B%22r1%22%2C%22r2%22%2C%22r3%22%5D", "/compare/?runs=r1,r2,r3"),
    ("#/compare-runs?runs=r1,r2", "/compare/?runs=r1,r2"),
    ('#/compare-runs?runs=["r1"]', "/runs/r1/"),
    ("#/compare-runs", "/experiments/"),
    ('#/metric/loss?runs=["r1","r2"]&experiments=["7"]&plot_metric_keys=["loss"]',
     "/compare/?runs=r1,r2"),
    ('#/metric/loss?runs=["r1"]', "/runs/r1/"),
    ("#/models", "/models/"),
    ("#/models/credit-risk", "/models/credit-risk/"),
    ("#/models/credit%20risk", "/models/credit%20risk/"),
    ("#/models/credit-risk/versions/3", "/models/credit-risk/versions/3/"),
    ("#/models/credit-risk/versions/3/metrics", "/models/credit-risk/versions/3/"),
    ("#/models/credit-risk/compare-model-versions?runs=%5B%5D", "/models/credit-risk/"),
    # not MLflow routes, or ones Ledgerflow has no page for: the home page stays
    ("#/", None),
    ("#/prompts", None),
    ("#/gateway", None),
    ("#artifacts", None),
    ("", None),
]


def as_actor(persona) -> Actor:
    return Actor(kind="user", label=persona.email, user=persona.user)


def path_of(url: str) -> str:
    """A URL below the server (path, query, fragment)."""
    return re.sub(r"^https?://[^/]+", "", url)


# --- the mapping, row by row -----------------------------------------------------------------

def test_every_mlflow_route_in_the_table_maps_to_its_page(in_browser, personas):
    hashes = [hash_ for hash_, _ in MAPPING]
    expected = {hash_: None if want is None else want.removeprefix("/") for hash_, want in MAPPING}

    def steps(page):
        page.goto("/login/")  # every page loads mlflow-links.js
        got = page.evaluate("(hashes) => hashes.map((h) => window.ledgerflowMlflowTarget(h))",
                            hashes)
        assert dict(zip(hashes, got, strict=True)) == expected

    in_browser(steps)


# --- the links open their pages --------------------------------------------------------------

def test_the_links_the_client_prints_open_their_pages_when_logged_in(in_browser, personas,
                                                                     tracked,  # noqa: F811
                                                                     make_version):  # noqa: F811
    version = make_version(personas.org_a, "credit-risk", ready=False)
    experiment, (alpha, beta, _) = tracked.experiment, tracked.runs
    eid = experiment.public_id
    logged = logged_model_create(experiment=experiment, actor=as_actor(personas.alice),
                                 name="scorecard", source_run=alpha)
    links = [
        (f"/#/experiments/{eid}/runs/{alpha.run_uuid}", f"/runs/{alpha.run_uuid}/",
         "heading", alpha.name),
        (f"/#/experiments/{eid}", f"/experiments/{eid}/", "heading", experiment.name),
        (f"/#/models/credit-risk/versions/{version.version}",
         f"/models/credit-risk/versions/{version.version}/", "heading",
         f"credit-risk · version {version.version}"),
        ("/#/models/credit-risk", "/models/credit-risk/", "heading", "credit-risk"),
        ("/#/models", "/models/", "heading", "Registered models"),
        ("/#/experiments", "/experiments/", "heading", "Experiments"),
        (f"/#/experiments/{eid}/runs/{alpha.run_uuid}/artifacts/data/head.csv",
         f"/runs/{alpha.run_uuid}/?path=data%2Fhead.csv#artifacts", "table",
         "First rows of head.csv"),
        (f"/#/compare-runs?runs={quote(json.dumps([alpha.run_uuid, beta.run_uuid]))}"
         f"&experiments={json.dumps([eid])}", f"/compare/?runs={alpha.run_uuid},{beta.run_uuid}",
         "heading", "Comparing 2 runs"),
        # "View logged model at": its block on the page of the run that logged it
        (f"/#/experiments/{eid}/models/{logged.model_id}",
         f"/runs/{alpha.run_uuid}/#model-{logged.model_id}", "heading", "scorecard"),
    ]

    def steps(page):
        login(page, personas.alice)
        for link, landing, role, name in links:
            page.goto(link)
            page.wait_for_url(lambda url, want=landing: path_of(url) == want)
            expect(page.get_by_role(role, name=name).first).to_be_visible()
            if link == links[0][0]:
                shot(page, "links-run-from-hash")
        # Back returns to where the user was, not to the home page that forwarded
        page.go_back()
        page.wait_for_load_state()
        assert path_of(page.url).startswith("/compare/"), page.url

    in_browser(steps)


def test_a_link_pasted_into_a_tab_showing_the_home_page_opens_its_page(in_browser, personas,
                                                                       tracked):  # noqa: F811
    run = tracked.runs[2]

    def steps(page):
        login(page, personas.alice)
        assert path_of(page.url) == "/"
        page.goto(f"/#/experiments/{tracked.experiment.public_id}/runs/{run.run_uuid}")
        page.wait_for_url(re.compile(rf"/runs/{run.run_uuid}/$"))  # only the fragment changed
        expect(page.get_by_role("heading", name=run.name)).to_be_visible()

    in_browser(steps)


def test_a_route_ledgerflow_has_no_page_for_stays_home_and_says_so(in_browser, personas):
    def steps(page):
        login(page, personas.alice)
        page.goto("/#/prompts")
        expect(page.get_by_role("status")).to_contain_text(
            "This link points to MLflow's page \"#/prompts\", which Ledgerflow does not have")
        assert path_of(page.url) == "/#/prompts"
        expect(page.get_by_role("heading", name="Organization A")).to_be_visible()
        shot(page, "links-unknown-route")

    in_browser(steps)


def test_a_link_opened_logged_out_opens_its_page_after_the_login(in_browser, personas,
                                                                 tracked):  # noqa: F811
    run, eid = tracked.runs[1], tracked.experiment.public_id

    def steps(page):
        page.goto(f"/#/experiments/{eid}/runs/{run.run_uuid}")
        # the server sent the browser to the login page; the browser kept the fragment
        page.wait_for_url(re.compile(r"/login/"))
        assert path_of(page.url) == f"/login/?next=/#/experiments/{eid}/runs/{run.run_uuid}"
        expect(page.locator("input[name=next]")).to_have_value(
            f"/#/experiments/{eid}/runs/{run.run_uuid}")
        shot(page, "links-login-keeps-fragment")
        page.get_by_label("Email").fill(personas.alice.email)
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("didn't match")).to_be_visible()
        page.get_by_label("Password").fill(f"pw-{personas.alice.email}")  # the 2nd try too
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(rf"/runs/{run.run_uuid}/$"))
        expect(page.get_by_role("heading", name=run.name)).to_be_visible()

    in_browser(steps)


def test_after_choosing_an_organization_the_link_still_opens_its_page(in_browser, personas,
                                                                      make_version):  # noqa: F811
    version = make_version(personas.org_a, "credit-risk", ready=False)
    membership_add(org=personas.org_b, email=personas.alice.email, role=Role.VIEWER,
                   actor=SETUP)

    def steps(page):
        page.goto(f"/#/models/credit-risk/versions/{version.version}")
        page.get_by_label("Email").fill(personas.alice.email)
        page.get_by_label("Password").fill(f"pw-{personas.alice.email}")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/org/select/"))
        page.locator("form:has(input[value='org-a']) button").click()
        page.wait_for_url(re.compile(rf"/models/credit-risk/versions/{version.version}/$"))
        expect(page.get_by_role("heading", name=f"credit-risk · version {version.version}")) \
            .to_be_visible()

    in_browser(steps)


def test_a_run_of_another_organization_is_not_found(in_browser, personas, tracked):  # noqa: F811
    run = tracked.runs[0]

    def steps(page):
        login(page, personas.charlie)
        with page.expect_response(re.compile(rf"/runs/{run.run_uuid}/$")) as answer:
            page.goto(f"/#/experiments/{tracked.experiment.public_id}/runs/{run.run_uuid}")
        assert answer.value.status == 404

    in_browser(steps)


# --- a refused page --------------------------------------------------------------------------

def test_a_refused_page_says_why_and_which_role_would_do(in_browser, personas):
    def steps(page):
        login(page, personas.bob)  # a viewer
        response = page.goto("/audit/")
        assert response.status == 403
        card = page.get_by_role("alert")
        expect(card).to_contain_text("You may not open this page")
        expect(card).to_contain_text("with the role Viewer in Organization A")
        expect(card).to_contain_text("Reading the audit trail needs the role Auditor, "
                                     "Compliance officer, Admin or Owner.")
        expect(card.get_by_role("link", name="switch organization")).to_be_visible()
        assert "403 Forbidden" not in page.content()
        shot(page, "refused-audit-viewer")
        assert page.goto("/compliance/").status == 403
        expect(page.get_by_role("alert")).to_contain_text("Compliance officer, Admin or Owner")

    in_browser(steps)


ROLE_LABELS = dict(Role.choices)


@pytest.mark.parametrize("capability", [c for c in Capability if not all(
    c in caps for caps in ROLE_CAPABILITIES.values())])
def test_the_refused_page_names_exactly_the_roles_that_have_the_capability(capability):
    lacking = next(role for role, caps in ROLE_CAPABILITIES.items() if capability not in caps)
    access = Access(org=None, membership=Membership(role=lacking))
    with pytest.raises(PermissionDenied) as refused:
        require(access, capability)
    html = render_to_string("403.html", {"exception": str(refused.value)},
                            request=RequestFactory().get("/"))
    sentence = re.search(r"<p>([^<]*(?:<strong>[^<]*</strong>[^<]*)+)</p>", html)
    assert sentence is not None, html
    named = set(re.findall(r"<strong>([^<]*)</strong>", sentence.group(1)))
    assert named == {ROLE_LABELS[role] for role, caps in ROLE_CAPABILITIES.items()
                     if capability in caps}


# --- favicon ---------------------------------------------------------------------------------

def test_the_favicon_is_served_and_linked(in_browser, personas):
    def steps(page):
        answer = page.request.get("/favicon.ico")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("image/svg+xml")
        assert answer.body().startswith(b"<svg")
        page.goto("/login/")
        icon = page.locator("link[rel=icon]").get_attribute("href")
        linked = page.request.get(icon)
        assert linked.status == 200 and linked.body() == answer.body()
        redirect = page.request.get("/favicon.ico", max_redirects=0)
        assert redirect.status == 302 and redirect.headers["location"] == icon

    in_browser(steps)


# --- the runs table at 1920 px ---------------------------------------------------------------

METRICS = ["validation_roc_auc", "train_log_loss", "precision_at_10_percent", "recall"]
PARAMS = ["max_depth", "learning_rate", "n_estimators", "feature_set"]


@pytest.fixture
def wide_experiment(personas):
    """Runs with the long keys and values real models log (8 columns chosen)."""
    experiment = experiment_create(org=personas.org_a, name="credit-scoring-gbm", actor=SETUP)
    for i in range(6):
        start = T0 + 60_000 * i
        run = run_create(experiment=experiment, actor=SETUP, run_name=f"gbm-depth-{3 + i}",
                         start_time=start, user_id="data.scientist@a.example")
        metrics = [{"key": key, "value": 0.7 + i / 100 + j / 1000, "timestamp": start,
                    "step": 0} for j, key in enumerate(METRICS)]
        params = [{"key": "max_depth", "value": str(3 + i)},
                  {"key": "learning_rate", "value": "0.05"},
                  {"key": "n_estimators", "value": "400"},
                  {"key": "feature_set", "value": "income,debt,age,late_payments,tenure"}]
        run_log_batch(run=run, actor=SETUP, metrics=metrics, params=params, tags=[], payload={})
        run_update(run=run, actor=SETUP, status="FINISHED", end_time=start + 95_000)
    return experiment


def test_the_runs_table_shows_every_chosen_column_at_1920px(in_browser, personas,
                                                           wide_experiment):
    cols = ",".join([*(f"metrics.{k}" for k in METRICS), *(f"params.{k}" for k in PARAMS)])

    def steps(page):
        login(page, personas.alice)
        page.goto(f"/experiments/{wide_experiment.public_id}/?cols={cols}")
        expect(page.get_by_text("Choose columns (8 shown)")).to_be_visible()
        headers = page.locator("table.runs thead th a[data-column^='metrics.'], "
                               "table.runs thead th a[data-column^='params.']")
        assert headers.count() == 8
        sizes = page.evaluate("""() => {
            const box = document.querySelector('table.runs').closest('.scroll');
            return {scroll: box.scrollWidth, client: box.clientWidth,
                    page: document.documentElement.scrollWidth, window: window.innerWidth,
                    right: Math.max(...[...document.querySelectorAll('table.runs th')]
                                    .map((th) => th.getBoundingClientRect().right))};
        }""")
        assert sizes["scroll"] <= sizes["client"], sizes  # nothing to scroll sideways
        assert sizes["page"] <= sizes["window"] and sizes["right"] <= sizes["window"], sizes
        assert sizes["client"] > 1500, sizes  # the window's width, not a 1240 px column
        for header in headers.all():
            expect(header).to_be_in_viewport()
        shot(page, "runs-table-1920")

    in_browser(steps, width=1920, height=1080)


# --- an archive run's source -----------------------------------------------------------------

def test_a_finished_archive_run_shows_its_archive_digest(in_browser, personas):
    digest = "sha256:" + "5e" * 32
    submitted = projects.project_run_submit(
        experiment=experiment_get(org=personas.org_a, experiment_id="0"),
        actor=as_actor(personas.alice), archive_name=f"{personas.org_a.pk}/example.archive")
    with transaction.atomic():
        projects.project_run_claim_within(pk=submitted.pk, attempt=1, actor=SETUP)
    projects.project_run_resolved(pk=submitted.pk, attempt=1, commit="", digest=digest,
                                  command="python train.py", safe_to_retry=False, actor=SETUP)
    projects.project_run_finish(pk=submitted.pk, attempt=1, status=ProjectRunStatus.FINISHED,
                                actor=SETUP, exit_code=0)

    def steps(page):
        login(page, personas.alice)
        page.goto(f"/projects/runs/{submitted.uuid}/")
        expect(page.locator("tr:has(th:text-is('Commit')) td")).to_have_text(
            f"archive {digest}")
        expect(page.locator("#run-summary")).not_to_contain_text("not fetched")
        shot(page, "project-archive-run")

    in_browser(steps)


def test_a_logged_models_page_is_its_runs_block_and_another_organizations_is_404(
        client, personas, tracked):  # noqa: F811
    alpha = tracked.runs[0]
    logged = logged_model_create(experiment=tracked.experiment, actor=as_actor(personas.alice),
                                 name="scorecard", source_run=alpha)
    client.force_login(personas.alice.user)
    answer = client.get(f"/logged-models/{logged.model_id}/")
    assert (answer.status_code, answer["Location"]) == \
        (302, f"/runs/{alpha.run_uuid}/#model-{logged.model_id}")
    assert client.get("/logged-models/m-0000/").status_code == 404
    client.force_login(personas.charlie.user)
    assert client.get(f"/logged-models/{logged.model_id}/").status_code == 404
