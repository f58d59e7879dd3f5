"""Content-Security-Policy (config/settings/fragments/csp.py) in a real browser: every page the
service renders (tracking, registry, projects, audit, compliance, login, error pages, Django
admin, the API docs) answers with the enforced policy, without 'unsafe-inline' or 'unsafe-eval'
(the compare page's one exception aside), with a fresh nonce where the page has inline code
(and 'self' alone where it has none), and Chromium reports no violation on any of them while
the pages work (Plotly draws its charts, Swagger UI renders, the admin's widgets open). First,
the attack the policy is for: markup injected into a page runs when the policy is off and is
refused when it is on."""

import re

import pytest
from playwright.sync_api import expect

from tenancy.models import User
from tests.models_registry.conftest import make_version, saved_models  # noqa: F401
from tests.reports.conftest import profiles, roles  # noqa: F401
from tests.tracking.test_web import artifact_root, tracked  # noqa: F401  (fixtures)
from tests.ui.conftest import login, shot
from tests.web.test_pages import world  # noqa: F401

pytestmark = pytest.mark.postgres_only

# Registered before any script of a page runs (init scripts are not subject to the policy);
# the binding reports to the test across navigations.
LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportCspViolation({page: location.pathname, directive: e.effectiveDirective,
                             blocked: e.blockedURI, sample: e.sample,
                             source: e.sourceFile + ":" + e.lineNumber});
}, true);
"""
UNSAFE = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'", "*",
          "data:", "blob:", "http:", "https:"}
RENDERED = "[data-rendered='true']"
SLOW = 60_000  # ms: Plotly's 4.8 MB bundle on a busy machine


class Watcher:
    """Collects what Chromium says about the policy while the test moves through pages."""

    def __init__(self, page):
        self.page = page
        self.violations: list[dict] = []
        self.console: list[str] = []
        self.nonces: dict[str, str] = {}
        page.expose_function("reportCspViolation", lambda violation: self.violations.append(
            violation))
        page.add_init_script(LISTENER)
        page.on("console", lambda message: self.console.append(
            f"{message.type}: {message.text} ({self.page.url})"))

    def visit(self, path: str, status: int = 200) -> str | None:
        """Open `path`, check its answer's policy and let its scripts run; the nonce."""
        response = self.page.goto(path, timeout=SLOW)
        assert response.status == status, (path, response.status)
        return self.check(response)

    def check(self, response) -> str | None:
        found = strict_policy(response)
        self.page.wait_for_load_state("networkidle", timeout=SLOW)
        # The policy names a nonce exactly when the page has inline code, which carries it.
        marked = self.page.evaluate(
            "Array.from(document.querySelectorAll('[nonce]')).map((e) => e.nonce)")
        assert set(marked) == ({found} if found else set()), (response.url, found, marked)
        if found:
            assert found not in self.nonces.values(), f"nonce reused on {response.url}"
            self.nonces[response.url] = found
        return found

    def assert_clean(self) -> None:
        assert not self.violations, f"CSP violations: {self.violations}"
        about_policy = [m for m in self.console
                        if re.search(r"Content Security Policy|CSP|Refused to", m)]
        assert not about_policy, about_policy


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers.get("content-security-policy")
    assert header, f"no enforced Content-Security-Policy on {response.url}"
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {words[0]: words[1:] for words in directives}


def strict_policy(response) -> str | None:
    """Assert the answer's policy is the strict one (and its other security headers); return
    the nonce it names, None for a page without inline code (its policy: 'self' alone)."""
    policy = policy_of(response)
    nonces = set()
    for directive in ("script-src", "style-src"):
        sources = policy[directive]
        assert "'self'" in sources, (response.url, directive, sources)
        assert not UNSAFE & set(sources), (response.url, directive, sources)
        nonces |= {s for s in sources if s.startswith("'nonce-")}
    assert not any(d.endswith(("-attr", "-elem")) for d in policy), policy  # nothing loosened
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("referrer-policy") == "same-origin"
    assert response.headers.get("x-content-type-options") == "nosniff"
    if not nonces:
        assert policy["script-src"] == policy["style-src"] == ["'self'"], policy
        return None
    assert len(nonces) == 1 and len(policy["script-src"]) == len(policy["style-src"]) == 2, \
        (response.url, policy)
    value = nonces.pop()[len("'nonce-"):-1]
    assert len(value) >= 22  # 128 random bits, base64
    return value


# --- the attack --------------------------------------------------------------------------------

INJECTED = (
    '<script>window.injected = "inline script ran";</script>'
    '<script nonce="guessed">window.guessed = "guessed nonce ran";</script>'
    '<img alt="" src="/static/ledgerflow/favicon.svg" onload="window.handler = \'handler ran\'">'
    '<p id="injected-style" style="color: rgb(255, 0, 0)">restyled</p>'
)
OUTCOME = """[window.injected || null, window.guessed || null, window.handler || null,
              getComputedStyle(document.getElementById("injected-style")).color]"""


def test_inline_script_runs_without_the_policy_and_is_blocked_with_it(page, personas,
                                                                     settings):
    """Markup as a stored XSS would put it into a page (an inline script, one with a guessed
    nonce, an event handler, a style attribute), spliced into the login page as this server
    sends it, headers and all."""
    def inject(route):
        answer = route.fetch()
        route.fulfill(response=answer,
                      body=answer.text().replace("</main>", INJECTED + "</main>"))
    page.route(re.compile(r".*/login/$"), inject)
    watcher = Watcher(page)

    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = None  # the defence off
    response = page.goto("/login/")
    assert "content-security-policy" not in response.headers
    page.wait_for_load_state("networkidle")
    assert page.evaluate(OUTCOME) == ["inline script ran", "guessed nonce ran", "handler ran",
                                      "rgb(255, 0, 0)"]
    assert not watcher.violations

    settings.CONTENT_SECURITY_POLICY = policy  # the defence on
    strict_policy(page.goto("/login/"))
    page.wait_for_load_state("networkidle")
    assert page.evaluate(OUTCOME) == [None, None, None, "rgb(29, 39, 51)"]  # app.css' --ink
    refused = {(v["directive"], v["blocked"]) for v in watcher.violations}
    assert refused == {("script-src-elem", "inline"), ("script-src-attr", "inline"),
                       ("style-src-attr", "inline")}, watcher.violations
    expect(page.get_by_role("button", name="Log in")).to_be_visible()  # the page still works


# --- every page --------------------------------------------------------------------------------

def test_logged_out_and_error_pages(page, personas):
    watcher = Watcher(page)
    watcher.visit("/login/")
    expect(page.get_by_role("heading", name="Log in to Ledgerflow")).to_be_visible()
    watcher.visit("/no-such-page/", status=404)
    watcher.visit("/admin/login/")
    # Swagger UI's inline start-up script runs by its nonce, a fresh one on every response
    first = watcher.visit("/api/v1/docs/")
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("Ledgerflow API")
    assert first and watcher.visit("/api/v1/docs/") not in (None, first)

    # a form posted without its CSRF cookie: Django's failure page (403_csrf.html)
    page.goto("/login/")
    page.context.clear_cookies()
    page.get_by_label("Email").fill(personas.alice.email)
    page.get_by_label("Password").fill(f"pw-{personas.alice.email}")
    with page.expect_response(re.compile(r"/login/$")) as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 403
    watcher.check(answer.value)
    expect(page.get_by_role("heading", name="The form could not be sent")).to_be_visible()
    shot(page, "csp-csrf-failure")

    login(page, personas.bob)  # a viewer: the audit trail is refused with the site's 403 page
    watcher.visit("/audit/", status=403)
    watcher.visit("/experiments/987654/", status=404)
    watcher.assert_clean()


def test_tracking_pages_and_their_plotly_charts(page, personas, tracked):  # noqa: F811
    watcher = Watcher(page)
    login(page, personas.alice)
    run = tracked.runs[0].run_uuid
    watcher.visit("/")
    watcher.visit("/org/select/")
    watcher.visit("/experiments/")
    watcher.visit(f"/experiments/{tracked.experiment.pk}/")
    watcher.visit(f"/runs/{run}/?path=data/head.csv#artifacts")
    watcher.visit(f"/runs/{run}/?path=plots/curve.png#artifacts")
    expect(page.get_by_role("img", name="Artifact image curve.png")).to_be_visible()

    assert watcher.visit(f"/runs/{run}/")  # the charts: the stylesheets Plotly fills
    for key in ("m0", "loss"):
        page.wait_for_selector(f"#plot-metric-{key}{RENDERED} svg.main-svg")
    # Plotly's own rules went into the page's nonce-bearing stylesheet, and apply: hovering a
    # chart shows its mode bar (an opacity rule of that sheet)
    assert page.evaluate(
        "document.getElementById('plotly.js-style-global').sheet.cssRules.length") > 10
    page.hover("#plot-metric-m0 .nsewdrag")
    expect(page.locator("#plot-metric-m0 .modebar-group").first).to_have_css("opacity", "1")
    page.get_by_label("Wall time").check()
    page.wait_for_function("document.getElementById('plot-metric-m0').layout.xaxis.type"
                           " === 'date'")
    shot(page, "csp-run")

    ids = ",".join(r.run_uuid for r in tracked.runs)
    assert watcher.visit(f"/compare/?runs={ids}")
    for plot in ("plot-metric-m0", "plot-parallel", "plot-scatter"):
        page.wait_for_selector(f"#{plot}{RENDERED} svg.main-svg")
    # the parallel coordinates are SVG lines, one per run (Plotly's WebGL parcoords would need
    # 'unsafe-eval')
    expect(page.locator("#plot-parallel g.scatterlayer path.js-line")).to_have_count(
        len(tracked.runs))
    page.get_by_label("Color lines by").select_option("loss")
    page.wait_for_function("document.getElementById('plot-parallel').layout.meta.colorBy"
                           " === 'loss'")
    page.hover("#plot-scatter .nsewdrag")
    shot(page, "csp-compare")
    watcher.assert_clean()


def test_registry_projects_audit_and_compliance_pages(page, world):  # noqa: F811
    watcher = Watcher(page)
    login(page, world.personas.alice)
    for name, path in world.pages().items():
        if name == "pdf":  # a download, not a page; it carries the policy all the same
            strict_policy(page.request.get(path))
            continue
        watcher.visit(path)
    page.goto("/audit/")
    with page.expect_response(re.compile(r"/audit/verify/$")) as answer:
        page.get_by_role("button", name="Verify now").click()
    watcher.check(answer.value)
    expect(page.get_by_text("intact")).to_be_visible()
    watcher.assert_clean()


def test_admin_and_api_docs_pages(page, personas):
    User.objects.filter(pk=personas.alice.user.pk).update(is_staff=True, is_superuser=True)
    watcher = Watcher(page)
    login(page, personas.alice)
    watcher.visit("/admin/")
    watcher.visit("/admin/tenancy/apitoken/")
    watcher.visit(f"/admin/tenancy/organization/{personas.org_a.pk}/change/")
    watcher.visit("/admin/audit/auditevent/")

    # the token form's widgets (select2 autocomplete, date and time shortcuts), then the page
    # that shows the new token once
    watcher.visit("/admin/tenancy/apitoken/add/")
    page.locator("#id_org").select_option(label=str(personas.org_a))
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill("alice")
    page.locator(".select2-results__option", has_text=personas.alice.email).click()
    page.locator("#id_name").fill("ci")
    page.get_by_role("link", name="Choose a Date").click()
    page.locator(".calendarbox").get_by_role("link", name="Tomorrow").click()
    page.get_by_role("link", name="Choose a Time").click()
    page.locator(".clockbox").get_by_role("link", name="Noon").click()
    with page.expect_response(re.compile(r"/admin/tenancy/apitoken/add/$")) as answer:
        page.locator("input[name=_save]").click()
    watcher.check(answer.value)
    expect(page.locator("#raw-token")).to_have_css("user-select", "all")
    shot(page, "csp-admin-token")

    assert watcher.visit("/api/v1/docs/")
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("Ledgerflow API")
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    shot(page, "csp-api-docs")
    watcher.assert_clean()
