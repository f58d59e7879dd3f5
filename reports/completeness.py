"""What a disclosure needs before it may be requested or generated (docs/disclosures.md).

A disclosure states every Art. 15 item; an empty one is itself a defect. So a request (and each
new version of one) is refused while the organization's compliance profile lacks a text the
document prints, in the document's language, or while the feature catalogue lacks a feature the
subject's decisions used (or its plain-language name, meaning, category or source in that
language). The same check runs again when a worker starts generating, since the profile or the
catalogue may have changed since the request; there it fails the version with the same reason.
"""

import json
from collections.abc import Iterable

from config.exceptions import ApplicationError
from models_registry.models import Decision, ModelVersion
from reports.models import (
    CATALOGUE_TEXTS,
    NEUTRAL_FIELDS,
    PROFILE_TEXTS,
    ComplianceProfile,
    FeatureDescription,
)

LANGUAGE_NAMES = {"de": "German", "en": "English"}


def profile_missing(profile: ComplianceProfile | None, language: str) -> list[str]:
    """The profile's fields a disclosure in `language` needs and does not have: the
    language-neutral ones and every text the document prints, section 4 (Art. 15(1)(a)-(g),
    (2)) and section 5 (Art. 15(1)(h), 22(3))."""
    needed = [*NEUTRAL_FIELDS, *(f"{name}_{language}" for name in PROFILE_TEXTS)]
    if profile is None:
        return needed
    return [name for name in needed if not str(getattr(profile, name) or "").strip()]


def model_features(version: ModelVersion) -> list[str]:
    """The model's inputs, from its signature (MLflow keeps the schema as a JSON string)."""
    signature = version.manifest.get("mlmodel", {}).get("signature") or {}
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    if isinstance(inputs, str):
        inputs = json.loads(inputs)
    return [str(column["name"]) for column in inputs or []
            if isinstance(column, dict) and "name" in column]


def decision_features(decision: Decision) -> list[str]:
    """Every feature name a disclosure of the decision shows, in the model's order: the
    model's signature and weights (the table of how the model works), the decision's inputs
    and contributions."""
    version = decision.model_version
    explain = version.manifest.get("verification", {}).get("explain") or {}
    weights = (explain.get("linear") or {}).get("coefficients") or \
        explain.get("feature_importances") or {}
    names = [*model_features(version), *weights, *decision.inputs,
             *(decision.contributions or {})]
    return list(dict.fromkeys(str(name) for name in names))


def catalogue_missing(decisions: Iterable[Decision], language: str) -> list[str]:
    """"<model>: <feature> (...)" for each feature the decisions use that the catalogue does not
    describe, or describes without one of its texts in `language`."""
    used: dict[int, tuple[str, list[str]]] = {}
    for decision in decisions:
        model = decision.model_version.registered_model
        features = used.setdefault(model.pk, (model.name, []))[1]
        features.extend(f for f in decision_features(decision) if f not in features)
    described = {(d.registered_model_id, d.feature): d
                 for d in FeatureDescription.objects.filter(registered_model_id__in=used)}
    missing = []
    for model_id, (name, features) in sorted(used.items(), key=lambda item: item[1][0]):
        for feature in features:
            entry = described.get((model_id, feature))
            if entry is None:
                missing.append(f"{name}: {feature} (not in the feature catalogue)")
                continue
            empty = [f"{text}_{language}" for text in CATALOGUE_TEXTS
                     if not entry.text(text, language).strip()]
            if empty:
                missing.append(f"{name}: {feature} ({', '.join(empty)} empty)")
    return missing


def subject_decisions(org, subject_ref: str) -> list[Decision]:
    """The subject's decision records, newest first, with what a disclosure reads of them."""
    return list(Decision.objects.filter(org=org, subject_ref=subject_ref)
                .select_related("model_version__registered_model", "model_version__run")
                .order_by("-created_at", "-pk"))


def disclosure_check(*, profile: ComplianceProfile | None, decisions: list[Decision],
                     language: str) -> None:
    """Refuse (409, naming what is missing) a disclosure in `language` that would leave a
    section empty or show a feature under its raw column name."""
    fields = {}
    if missing := profile_missing(profile, language):
        fields["compliance_profile"] = missing
    if missing := catalogue_missing(decisions, language):
        fields["feature_catalogue"] = missing
    if not fields:
        return
    said = LANGUAGE_NAMES.get(language, language)
    parts = []
    if profile is None:
        parts.append("the organization has no compliance profile yet (the page "
                     "/compliance/profile/, PATCH /api/v1/compliance/profile/ or the admin)")
    elif "compliance_profile" in fields:
        parts.append("the compliance profile lacks " + ", ".join(fields["compliance_profile"]))
    if "feature_catalogue" in fields:
        parts.append("the feature catalogue lacks " + "; ".join(fields["feature_catalogue"])
                     + " (the page /compliance/models/<model>/features/, PUT "
                     "/api/v1/models/<model>/features/<feature> or the admin)")
    raise ApplicationError(f"A disclosure in {said} cannot be complete: " + "; ".join(parts)
                           + ".", kind="conflict", fields=fields)
