"""The compliance profile and a model's feature catalogue in a real browser (headless
Chromium): a compliance officer finds both from the compliance page, sees what a disclosure
in each language lacks highlighted, fixes it through the forms, and a refused save shows its
reason under the field. Every page answers with the strict Content-Security-Policy and
Chromium reports no violation. Screenshots: test-artifacts/screenshots/compliance-*.png."""

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from reports import services
from reports.models import ComplianceProfile
from tenancy.roles import Role
from tests.models_registry.conftest import make_version, saved_models  # noqa: F401
from tests.reports.conftest import SETUP, catalogue_set, profiles, roles  # noqa: F401
from tests.ui.conftest import login, shot
from tests.ui.test_csp import Watcher
from tests.web.test_links import chromium, in_browser  # noqa: F401  (fixtures)

pytestmark = pytest.mark.postgres_only
HIGHLIGHT = "rgb(255, 244, 204)"  # --hl in app.css


def background(page, selector: str) -> str:
    return page.locator(selector).evaluate("(e) => getComputedStyle(e).backgroundColor")


def test_an_officer_completes_the_profile_and_the_catalogue_in_the_browser(
        in_browser, personas, roles, profiles, make_version):  # noqa: F811
    officer = roles[Role.COMPLIANCE_OFFICER]
    services.compliance_profile_set(org=personas.org_a, actor=SETUP, data={"retention_de": ""})
    model = make_version(personas.org_a, "credit-risk").registered_model  # packaged for real
    catalogue_set(model, skip=("age", "late_payments"), blank=("debt.meaning_de",))

    def profile(page, watcher):
        watcher.check(page.goto("/compliance/"))
        expect(page.locator("#setup")).to_contain_text("German 1 missing, English complete")
        shot(page, "compliance-requests")
        page.get_by_role("link", name="Compliance profile").click()
        expect(page.get_by_role("heading", name="Compliance profile", exact=True)) \
            .to_be_visible()
        expect(page.locator("#gaps")).to_contain_text("German: 1 missing for a disclosure")
        assert background(page, "#id_retention_de") == HIGHLIGHT
        assert background(page, "#id_retention_en") == "rgb(255, 255, 255)"
        shot(page, "compliance-profile")
        page.locator("#id_retention_de").fill("Zehn Jahre nach Vertragsende (§ 257 HGB).")
        page.get_by_role("button", name="Save profile").click()
        expect(page.get_by_text("Compliance profile saved.")).to_be_visible()
        expect(page.locator("#gaps .badge.good")).to_have_count(2)
        page.locator("#id_controller_name").fill("")
        page.get_by_role("button", name="Save profile").click()
        expect(page.locator("#id_controller_name_error")).to_have_text(
            "This field is required.")
        shot(page, "compliance-profile-refused")

    def catalogue(page, watcher):
        watcher.check(page.goto("/compliance/"))
        page.locator("#setup").get_by_role("link", name="credit-risk").click()
        expect(page.get_by_role("heading", name="Feature catalogue: credit-risk")) \
            .to_be_visible()
        expect(page.locator("#undescribed li")).to_have_text(
            ["age missing Describe age", "late_payments missing Describe late_payments"])
        assert background(page, "td.missing") == HIGHLIGHT
        shot(page, "compliance-features")
        page.get_by_role("link", name="Describe age").click()
        expect(page.locator("#id_feature")).to_have_value("age")
        for field, text in (("label_de", "Alter"), ("label_en", "Age"),
                            ("meaning_de", "Ihr Alter in Jahren"),
                            ("meaning_en", "Your age in years"),
                            ("category_de", "Persönliche Angaben"),
                            ("category_en", "Personal details"),
                            ("source_de", "Ausweis"), ("source_en", "Identity document")):
            page.locator(f"#id_{field}").fill(text)
        page.get_by_role("button", name="Save feature").click()
        expect(page.get_by_text("Feature 'age' saved.")).to_be_visible()
        expect(page.locator("#undescribed li")).to_have_text(
            ["late_payments missing Describe late_payments"])
        shot(page, "compliance-features-saved")

    def steps(page):
        watcher = Watcher(page)
        login(page, officer)
        profile(page, watcher)
        catalogue(page, watcher)
        watcher.assert_clean()

    in_browser(steps)
    assert ComplianceProfile.objects.get(org=personas.org_a).retention_de == \
        "Zehn Jahre nach Vertragsende (§ 257 HGB)."
    assert model.features.get(feature="age").label_de == "Alter"
    mine = AuditEvent.objects.filter(actor_label=officer.email, action__in=(
        "compliance_profile.changed", "feature_description.set")).order_by("seq")
    assert [(e.action, e.after) for e in mine] == [
        ("compliance_profile.changed",
         {"retention_de": "Zehn Jahre nach Vertragsende (§ 257 HGB)."}),
        ("feature_description.set",
         {"feature": "age", "label_de": "Alter", "label_en": "Age",
          "meaning_de": "Ihr Alter in Jahren", "meaning_en": "Your age in years",
          "category_de": "Persönliche Angaben", "category_en": "Personal details",
          "source_de": "Ausweis", "source_en": "Identity document"})]
