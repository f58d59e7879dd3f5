"""Browser pages that edit what a disclosure needs (docs/disclosures.md): the organization's
compliance profile and each model's feature catalogue, every text in German and English side
by side, with what a disclosure in each language still lacks highlighted.

Who may do what mirrors the API (reports/apis.py): the profile is read and changed with the
compliance capability (compliance officers, admins, owners); a model's catalogue is read by
every member who reads the registry and changed with the compliance capability. Another
organization's model is a 404, like a missing one. Every save goes through the service the API
and the admin call (reports.services), which checks it and records its audit event; a refused
save shows the reasons next to their fields, answers 400 and writes nothing."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from config.exceptions import ApplicationError
from models_registry import selectors as registry_selectors
from reports import services
from reports.completeness import (
    LANGUAGE_NAMES,
    model_features,
    profile_missing,
)
from reports.forms import CATALOGUE_TEXT_TITLES, PROFILE_TEXT_TITLES, FeatureForm, ProfileForm
from reports.models import (
    CATALOGUE_TEXTS,
    LANGUAGES,
    NEUTRAL_FIELDS,
    ComplianceProfile,
    FeatureDescription,
)
from tenancy.roles import Capability
from tenancy.web import actor, found, org_page


def _saved(form, save) -> bool:
    """`save(cleaned_data)` when the form parses; False, with the service's refusal on the
    form, when it does not or the service refuses."""
    if not form.is_valid():
        return False
    try:
        save(form.cleaned_data)
    except ApplicationError as exc:
        form.refused(exc)
        return False
    return True


def _pairs(form, titles: dict, missing: set[str]) -> list[dict]:
    """One row per text: its title and help, then its German and English field, each with
    whether a disclosure in that language lacks it."""
    return [{"name": name, "title": title, "help": help_text,
             "fields": [(form[f"{name}_{code}"], f"{name}_{code}" in missing)
                        for code, _ in LANGUAGES]}
            for name, (title, help_text) in titles.items()]


# --- the compliance profile --------------------------------------------------------------------

def _gaps(form, profile: ComplianceProfile | None) -> list[dict]:
    """Per language, the fields a disclosure in it still needs, by title (and field name, as
    a refused request names them)."""
    def title(field: str) -> str:
        text = PROFILE_TEXT_TITLES.get(field.rsplit("_", 1)[0])
        return text[0] if text else form.fields[field].label

    return [{"code": code, "language": language,
             "missing": [(field, title(field)) for field in profile_missing(profile, code)]}
            for code, language in LANGUAGE_NAMES.items()]


@org_page(capability=Capability.COMPLIANCE)
def profile_page(request):
    """The profile (created by the first save), with what each language still lacks."""
    org = request.access.org
    profile = ComplianceProfile.objects.filter(org=org).first()
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if _saved(form, lambda data: services.compliance_profile_set(
                org=org, actor=actor(request), data=data)):
            messages.success(request, "Compliance profile saved.")
            return redirect("compliance-profile-page")
    else:
        form = ProfileForm(instance=profile)
    gaps = _gaps(form, profile)
    missing = {field for gap in gaps for field, _ in gap["missing"]}
    return render(request, "reports/pages/profile.html", {
        "form": form, "profile": profile, "gaps": gaps,
        "neutral": [(form[field], field in missing) for field in NEUTRAL_FIELDS],
        "texts": _pairs(form, PROFILE_TEXT_TITLES, missing)},
        status=400 if form.errors else 200)


# --- a model's feature catalogue ---------------------------------------------------------------

def _used(model) -> list[str]:
    """The inputs of the model's versions (their signatures), in the versions' order."""
    names = {}
    for version in model.versions.filter(deleted=False).order_by("version"):
        names.update(dict.fromkeys(model_features(version)))
    return list(names)


def _empty(description: FeatureDescription) -> set[str]:
    """The texts of a described feature that a disclosure in one language would lack."""
    return {f"{text}_{code}" for text in CATALOGUE_TEXTS for code, _ in LANGUAGES
            if not description.text(text, code).strip()}


def _rows(descriptions: list[FeatureDescription]) -> list[dict]:
    """The catalogue as the table shows it: per feature, a line per language."""
    rows = []
    for description in descriptions:
        empty = _empty(description)
        rows.append({"description": description, "languages": [
            (language, [(description.text(text, code), f"{text}_{code}" in empty)
                        for text in CATALOGUE_TEXTS])
            for code, language in LANGUAGE_NAMES.items()]})
    return rows


def _feature_form(model, request) -> FeatureForm:
    """The edit form: for a POST its data; else the feature named by `?edit=` (described or
    not yet), or an empty one to add a feature."""
    if request.method == "POST":
        return FeatureForm(request.POST)
    name = request.GET.get("edit", "").strip()
    described = model.features.filter(feature=name).first() if name else None
    return FeatureForm(instance=described, initial=None if described else {"feature": name})


@org_page(post_capability=Capability.COMPLIANCE)
def features_page(request, name: str):
    """The model's catalogue, the inputs it lacks, and (for the compliance roles) its edit
    form."""
    model = found(registry_selectors.registered_model_get, org=request.access.org, name=name)
    form = _feature_form(model, request)
    if request.method == "POST" and _saved(form, lambda data: services.feature_description_set(
            registered_model=model, feature=data["feature"], actor=actor(request),
            data={k: v for k, v in data.items() if k != "feature"})):
        messages.success(request, f"Feature '{form.cleaned_data['feature']}' saved.")
        return redirect(reverse("compliance-features", args=[model.name]))
    descriptions = list(model.features.order_by("feature"))
    editing = form.instance if form.instance.pk else None  # as saved: a GET's ?edit=
    described = {d.feature for d in descriptions}
    return render(request, "reports/pages/features.html", {
        "model": model, "rows": _rows(descriptions), "form": form,
        "undescribed": [f for f in _used(model) if f not in described],
        "pairs": _pairs(form, CATALOGUE_TEXT_TITLES, _empty(editing) if editing else set())},
        status=400 if form.errors else 200)
