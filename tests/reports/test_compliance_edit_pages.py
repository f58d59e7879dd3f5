"""The compliance pages that edit the profile (`/compliance/profile/`) and a model's feature
catalogue (`/compliance/models/<name>/features/`), through Django's test client: both languages
side by side with what a disclosure in each lacks highlighted, saves through the API's services
with their audit events, bad input refused next to its field with nothing written, another
organization's model a 404, and who may read and edit exactly as the API allows."""

import re

import pytest

from audit.models import AuditEvent
from config.exceptions import ApplicationError
from models_registry import services as registry
from reports import services
from reports.forms import ProfileForm
from reports.models import PROFILE_TEXTS, ComplianceProfile, FeatureDescription
from tenancy.roles import Role
from tests.conftest import make_persona
from tests.reports.conftest import SETUP, catalogue_set, profile_data
from tests.web.test_pages import browser, last_event

PROFILE = "/compliance/profile/"
FEATURES = "/compliance/models/credit-risk/features/"
OFFICER = Role.COMPLIANCE_OFFICER


def events_since(pk: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=pk).order_by("pk"))


def highlighted(page: str) -> list[str]:
    """The fields a page marks as missing for a disclosure, by id."""
    return re.findall(r'<div class="missing">\s*<label for="id_(\w+)"', page)


def error_of(page: str, field: str) -> str:
    """The error list shown under `field`'s input."""
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error"><li>(.*?)</li>', page)
    return found.group(1) if found else ""


def profile_post(**changes) -> dict:
    return {**profile_data("Bank Alpha"), **changes}


# --- the profile --------------------------------------------------------------------------------

def test_the_profile_shows_both_languages_and_what_a_disclosure_in_each_lacks(personas, roles):
    services.compliance_profile_set(org=personas.org_a, actor=SETUP, data=profile_post(
        retention_de="", human_review_de=" ", transfers_en=""))
    response = browser(roles[OFFICER]).get(PROFILE)
    assert response.status_code == 200
    assert response.context["gaps"] == [
        {"code": "de", "language": "German", "missing": [
            ("retention_de", "Retention"), ("human_review_de", "Human review")]},
        {"code": "en", "language": "English", "missing": [
            ("transfers_en", "Transfers to third countries")]}]
    page = response.content.decode()
    assert highlighted(page) == ["transfers_en", "retention_de", "human_review_de"]
    # every text in both languages, side by side in one row, with its saved value
    for text in PROFILE_TEXTS:
        pair = re.search(rf'<fieldset class="pair" id="text-{text}">(.*?)</fieldset>', page,
                         re.S).group(1)
        assert re.findall(r'<label for="id_(\w+)">(\w+)</label>', pair) == [
            (f"{text}_de", "German"), (f"{text}_en", "English")]
    assert "purposes von Bank Alpha (de)</textarea>" in page
    assert "purposes of Bank Alpha (en)</textarea>" in page
    assert page.count("missing for German disclosures") == 2
    assert page.count("missing for English disclosures") == 1
    assert '<a href="#id_retention_de">Retention</a>' in page


def test_saving_the_profile_goes_through_the_service_and_is_audited(personas, roles,
                                                                   profiles):
    officer = roles[OFFICER]
    before = last_event()
    response = browser(officer).post(PROFILE, profile_post(retention_en="Ten years."))
    assert response.status_code == 302 and response["Location"] == PROFILE
    assert ComplianceProfile.objects.get(org=personas.org_a).retention_en == "Ten years."
    [event] = events_since(before)
    assert (event.action, event.org, event.actor_label, event.target_id) == (
        "compliance_profile.changed", personas.org_a, officer.email,
        str(profiles["org-a"].pk))
    assert event.before == {"retention_en": "retention of Bank Alpha (en)"}
    assert event.after == {"retention_en": "Ten years."}


def test_the_first_save_creates_the_profile(personas, roles):
    client = browser(roles[OFFICER])
    page = client.get(PROFILE).content.decode()
    assert "No profile yet" in page
    assert len(highlighted(page)) == 5 + 2 * len(PROFILE_TEXTS)  # everything is missing
    before = last_event()
    english = {k: v for k, v in profile_data("Bank Alpha").items() if not k.endswith("_de")}
    response = client.post(PROFILE, english, follow=True)
    assert response.status_code == 200 and "Compliance profile saved." in \
        response.content.decode()
    [event] = events_since(before)
    assert event.action == "compliance_profile.created" and event.before is None
    assert event.after == english
    assert response.context["gaps"][1]["missing"] == []  # English complete, German not
    assert [f for f, _ in response.context["gaps"][0]["missing"]] == \
        [f"{text}_de" for text in PROFILE_TEXTS]


@pytest.mark.parametrize(("changes", "field", "shown"), [
    ({"controller_name": ""}, "controller_name", "This field is required."),
    ({"dpo_contact": "   "}, "dpo_contact", "This field is required."),
    ({"authority_name": "x" * 301}, "authority_name",
     "Ensure this value has at most 300 characters (it has 301)."),
    ({"purposes_de": "Kredit\x00prüfung"}, "purposes_de", "Null characters are not allowed."),
])
def test_bad_input_is_refused_next_to_its_field_and_nothing_is_written(personas, roles,
                                                                      profiles, changes,
                                                                      field, shown):
    before, saved = last_event(), ComplianceProfile.objects.get(org=personas.org_a).updated_at
    response = browser(roles[OFFICER]).post(PROFILE, profile_post(retention_en="new", **changes))
    assert response.status_code == 400
    page = response.content.decode()
    assert error_of(page, field) == shown
    assert "The profile was not saved" in page
    assert events_since(before) == []
    profile = ComplianceProfile.objects.get(org=personas.org_a)
    assert (profile.retention_en, profile.updated_at) == ("retention of Bank Alpha (en)", saved)


def test_a_refusal_of_the_service_is_shown_next_to_its_field():
    """What the service refuses (the API's 400 `fields`) lands under the field it names, and a
    refusal naming no field above the form."""
    form = ProfileForm(data=profile_post())
    assert form.is_valid()
    form.refused(ApplicationError("controller_name: blank", kind="invalid",
                                  fields={"controller_name": ["This field cannot be blank."],
                                          "org": ["no organization"]}))
    assert form.errors == {"controller_name": ["This field cannot be blank."],
                           "__all__": ["no organization"]}
    form = ProfileForm(data=profile_post())
    assert form.is_valid()
    form.refused(ApplicationError("Someone else is saving it.", kind="conflict"))
    assert form.errors == {"__all__": ["Someone else is saving it."]}


def test_the_service_refuses_what_the_page_refuses(personas):
    """The page's checks are the service's: a profile without a controller is refused by
    compliance_profile_set itself, naming the same field."""
    with pytest.raises(ApplicationError) as refused:
        services.compliance_profile_set(org=personas.org_a, actor=SETUP,
                                        data=profile_post(controller_name=""))
    assert refused.value.fields == {"controller_name": ["This field cannot be blank."]}
    assert not ComplianceProfile.objects.exists()


def test_each_organization_edits_only_its_own_profile(personas, roles, profiles):
    charlie = browser(personas.charlie)
    page = charlie.get(PROFILE).content.decode()
    assert "Bank Beta" in page and "Bank Alpha" not in page
    response = charlie.post(PROFILE, profile_data("Bank Beta") | {"purposes_en": "Beta only"})
    assert response.status_code == 302
    assert ComplianceProfile.objects.get(org=personas.org_b).purposes_en == "Beta only"
    assert ComplianceProfile.objects.get(org=personas.org_a).purposes_en == \
        "purposes of Bank Alpha (en)"


# --- a model's feature catalogue ----------------------------------------------------------------

def described(personas, version):
    """`version`'s model with income and debt described, debt without its German meaning;
    org B gets a model of the same name."""
    catalogue_set(version.registered_model, skip=("age", "late_payments"),
                  blank=("debt.meaning_de",))
    registry.registered_model_create(org=personas.org_b, name="credit-risk", actor=SETUP)
    return version.registered_model


@pytest.fixture
def catalogue(personas, make_version):
    """credit-risk, registered but not packaged (no signature yet)."""
    return described(personas, make_version(personas.org_a, "credit-risk", ready=False))


@pytest.fixture
def packaged_catalogue(personas, make_version):
    """credit-risk packaged for real: its signature's inputs are income, debt, age and
    late_payments."""
    return described(personas, make_version(personas.org_a, "credit-risk"))


def test_the_catalogue_shows_each_feature_per_language_and_the_inputs_it_lacks(
        packaged_catalogue, roles):
    response = browser(roles[OFFICER]).get(FEATURES)
    assert response.status_code == 200
    assert response.context["undescribed"] == ["age", "late_payments"]
    rows = [(row["description"].feature, [(language, [missing for _, missing in texts])
                                          for language, texts in row["languages"]])
            for row in response.context["rows"]]
    assert rows == [("debt", [("German", [False, True, False, False]),
                              ("English", [False, False, False, False])]),
                    ("income", [("German", [False, False, False, False]),
                                ("English", [False, False, False, False])])]
    page = response.content.decode()
    for text in ("Monatliches Nettoeinkommen", "Monthly net income", "Ihre Gehaltsnachweise",
                 "Your payslips", "Verbindlichkeiten", "Liabilities"):
        assert text in page, text
    assert page.count('<td class="missing"><span class="badge warn">missing</span></td>') == 1
    assert '<a href="?edit=age#edit">Describe' in page
    assert '<a href="?edit=late_payments#edit">Describe' in page


def test_describing_a_missing_feature_saves_it_through_the_service_with_its_event(
        packaged_catalogue, roles):
    officer = roles[OFFICER]
    client = browser(officer)
    form = client.get(FEATURES + "?edit=age").context["form"]
    assert form["feature"].value() == "age" and form.instance.pk is None
    data = {"feature": "age", "label_de": "Alter", "label_en": "Age",
            "meaning_de": "Ihr Alter in Jahren", "meaning_en": "Your age in years",
            "category_de": "Persönliche Angaben", "category_en": "Personal details",
            "source_de": "Ausweis", "source_en": "Identity document"}
    before = last_event()
    response = client.post(FEATURES, data)
    assert response.status_code == 302 and response["Location"] == FEATURES
    saved = FeatureDescription.objects.get(registered_model=packaged_catalogue, feature="age")
    assert (saved.label_de, saved.source_en, saved.is_address_data) == (
        "Alter", "Identity document", False)
    [event] = events_since(before)
    assert (event.action, event.actor_label, event.target_label, event.before) == (
        "feature_description.set", officer.email, "credit-risk: age", None)
    assert event.after == data
    assert client.get(FEATURES).context["undescribed"] == ["late_payments"]


def test_changing_a_feature_records_only_what_changed(catalogue, roles):
    client = browser(roles[OFFICER])
    form = client.get(FEATURES + "?edit=debt").context["form"]
    assert form.instance.feature == "debt" and form["label_en"].value() == "Outstanding debt"
    assert highlighted(client.get(FEATURES + "?edit=debt").content.decode()) == ["meaning_de"]
    data = {**{name: form[name].value() for name in form.fields}, "is_address_data": "on",
            "meaning_de": "Was Sie noch schulden"}
    before = last_event()
    assert client.post(FEATURES, data).status_code == 302
    [event] = events_since(before)
    assert event.before == {"meaning_de": "", "is_address_data": False}
    assert event.after == {"feature": "debt", "meaning_de": "Was Sie noch schulden",
                           "is_address_data": True}
    debt = client.get(FEATURES).context["rows"][0]
    assert debt["languages"][0] == ("German", [
        ("Bestehende Verbindlichkeiten", False), ("Was Sie noch schulden", False),
        ("Verbindlichkeiten", False), ("Ihr Antragsformular und Ihre Kontoauszüge", False)])


@pytest.mark.parametrize(("changes", "field", "shown"), [
    ({"feature": ""}, "feature", "This field is required."),
    ({"feature": "f" * 251}, "feature",
     "Ensure this value has at most 250 characters (it has 251)."),
    ({"label_en": "L" * 301}, "label_en",
     "Ensure this value has at most 300 characters (it has 301)."),
    ({"category_de": "a\x00b"}, "category_de", "Null characters are not allowed."),
])
def test_a_bad_feature_is_refused_next_to_its_field_and_nothing_is_written(
        catalogue, roles, changes, field, shown):
    before, rows = last_event(), list(FeatureDescription.objects.values_list())
    response = browser(roles[OFFICER]).post(FEATURES, {"feature": "age", "label_en": "Age",
                                                       **changes})
    assert response.status_code == 400
    page = response.content.decode()
    assert error_of(page, field) == shown and "The feature was not saved" in page
    assert events_since(before) == []
    assert list(FeatureDescription.objects.values_list()) == rows


def test_another_organizations_model_is_a_404_and_nothing_is_written(catalogue, personas):
    charlie = browser(personas.charlie)  # org B has a credit-risk of its own, not described
    assert charlie.get(FEATURES).context["rows"] == []
    assert charlie.get("/compliance/models/no-such-model/features/").status_code == 404
    org_a_only = "/compliance/models/credit-risk-a/features/"
    registry.registered_model_create(org=personas.org_a, name="credit-risk-a", actor=SETUP)
    before, rows = last_event(), FeatureDescription.objects.count()
    assert charlie.get(org_a_only).status_code == 404
    assert charlie.post(org_a_only, {"feature": "age", "label_en": "Age"}).status_code == 404
    assert events_since(before) == [] and FeatureDescription.objects.count() == rows


# --- who may do what: as the API ----------------------------------------------------------------

def test_each_role_reads_and_edits_the_pages_exactly_as_the_api_lets_it(api, catalogue,
                                                                         personas, roles,
                                                                         profiles):
    """The services take any actor (as the admin's and the API's callers check roles first):
    a page's check is what stops a role, so each page is compared with its API route."""
    members = {Role.OWNER: personas.alice, Role.VIEWER: personas.bob, **roles,
               Role.ADMIN: make_persona(personas.org_a, "admin@a.example", Role.ADMIN)}
    api_features = "/api/v1/models/credit-risk/features/"
    for role, persona in members.items():
        client, rest = browser(persona), api(persona)
        pages = {PROFILE: "/api/v1/compliance/profile/", FEATURES: api_features}
        for page, endpoint in pages.items():
            assert client.get(page).status_code == rest.get(endpoint).status_code, (role, page)
        may_edit = rest.put(api_features + "income", {}, format="json").status_code == 200
        assert may_edit == (role in (Role.OWNER, Role.ADMIN, OFFICER)), role
        shown = client.get(FEATURES).content.decode()
        assert ("Save feature" in shown) == may_edit, role
        assert ('href="?edit=income#edit"' in shown) == may_edit, role
        before = last_event()
        posted = client.post(FEATURES, {"feature": f"age-{role}", "label_en": "Age"})
        assert posted.status_code == (302 if may_edit else 403), role
        assert [e.action for e in events_since(before)] == \
            (["feature_description.set"] if may_edit else []), role
        posted = client.post(PROFILE, profile_post())
        assert posted.status_code == (302 if may_edit else 403), role


def test_a_forged_post_without_the_csrf_token_is_refused(catalogue, personas, profiles):
    """The attack: another site's form posting into an owner's logged-in session. With the
    check off (Django's test client skips it unless told) it saves; with it, it is refused."""
    forged = {"feature": "age", "label_en": "Forged"}
    assert browser(personas.alice).post(FEATURES, forged).status_code == 302
    client, before = browser(personas.alice, enforce_csrf_checks=True), last_event()
    assert client.post(FEATURES, {**forged, "label_en": "Forged again"}).status_code == 403
    assert client.post(PROFILE, profile_post(purposes_en="forged")).status_code == 403
    assert events_since(before) == []
    assert catalogue.features.get(feature="age").label_en == "Forged"


def test_the_compliance_page_links_the_profile_and_every_models_catalogue(catalogue, roles,
                                                                         personas, profiles):
    registry.registered_model_create(org=catalogue.org, name="fraud-score", actor=SETUP)
    services.compliance_profile_set(org=personas.org_a, actor=SETUP, data={"retention_de": ""})
    page = browser(roles[OFFICER]).get("/compliance/").content.decode()
    setup = re.search(r'<section class="card" id="setup".*?</section>', page, re.S).group(0)
    assert re.findall(r'href="([^"]+)"', setup) == [
        PROFILE, FEATURES, "/compliance/models/fraud-score/features/"]
    assert re.findall(r'(German|English) <span class="badge (?:warn|good)">([^<]+)</span>',
                      setup) == [("German", "1 missing"), ("English", "complete")]
