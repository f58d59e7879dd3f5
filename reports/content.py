"""What a disclosure says (reports/CONTENT.md): gathered from the organization's profile, the
subject's decision records, the model versions behind them, their training runs and packages,
and the feature catalogue; plus a counterfactual per decision computed with the real model."""

import datetime
import re

from django.utils import timezone

from models_registry.models import Decision, ModelVersion
from reports.completeness import disclosure_check, model_features, subject_decisions
from reports.counterfactual import counterfactual
from reports.models import PROFILE_TEXTS, ComplianceProfile, Disclosure, FeatureDescription
from reports.texts import TEXTS
from tracking.models import Param

FORMAT = "ledgerflow.disclosure/1"
MODEL_TYPES = {  # estimator class -> what a customer reads
    "LogisticRegression": ("Logistische Regression", "Logistic regression"),
    "LogisticRegressionCV": ("Logistische Regression", "Logistic regression"),
    "LinearRegression": ("Lineare Regression", "Linear regression"),
    "DecisionTreeClassifier": ("Entscheidungsbaum", "Decision tree"),
    "RandomForestClassifier": ("Random Forest (viele Entscheidungsbäume)",
                               "Random forest (many decision trees)"),
    "GradientBoostingClassifier": ("Gradient Boosting (Folge von Entscheidungsbäumen)",
                                   "Gradient boosting (a sequence of decision trees)"),
}
WITHHELD = {
    "de": [{"what": "Die Trainingsdaten des Modells und die vollständige Modelldatei.",
            "why": "Sie enthalten Daten anderer Personen und Geschäftsgeheimnisse des "
                   "Verantwortlichen (Art. 15 Abs. 4 DSGVO). Die Logik des Modells, seine "
                   "Gewichte und die Wirkung Ihrer Daten sind oben erläutert."}],
    "en": [{"what": "The model's training data and the complete model file.",
            "why": "They contain other persons' data and the controller's trade secrets "
                   "(Art. 15(4) GDPR). The model's logic, its weights and the effect of your "
                   "data are explained above."}],
}


def disclosure_content(disclosure: Disclosure) -> dict:
    request, language = disclosure.request, disclosure.language
    profile = ComplianceProfile.objects.filter(org=request.org).first()
    decisions = subject_decisions(request.org, request.subject_ref)
    # Checked when the version was asked for; checked again here, as the profile or the
    # catalogue may have changed since: the version then fails with the reason, never prints
    # an empty section.
    disclosure_check(profile=profile, decisions=decisions, language=language)
    catalogue = _catalogue(decisions, language)
    described = [_decision(d, catalogue, profile, language) for d in decisions]
    categories = sorted({i["category"] for d in described for i in d["inputs"]})
    return {
        "format": FORMAT, "language": language, "version": disclosure.version,
        "generated_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "request": {
            "id": str(request.uuid), "subject_name": request.subject_name,
            "subject_ref": request.subject_ref, "received_on": request.received_on.isoformat(),
            "due_on": request.due_on.isoformat(),
            "extended_until": request.extended_until.isoformat()
            if request.extended_until else None,
            "extension_reason": request.extension_reason,
            "identity_verification": request.identity_verification,
        },
        "controller": {"name": profile.controller_name, "address": profile.controller_address,
                       "dpo_contact": profile.dpo_contact},
        "supervisory_authority": {"name": profile.authority_name,
                                  "address": profile.authority_address},
        "processing": {**{name: profile.text(name, language) for name in PROFILE_TEXTS},
                       "categories": categories},
        "processes_personal_data": bool(described),
        "decisions": described,
        "withheld": WITHHELD[language],
    }


def _catalogue(decisions: list[Decision], language: str) -> dict:
    """(registered model id, feature) -> its description in the language (complete: checked
    by disclosure_check)."""
    models = {d.model_version.registered_model_id for d in decisions}
    return {(item.registered_model_id, item.feature): {
        "label": item.text("label", language), "meaning": item.text("meaning", language),
        "category": item.text("category", language), "source": item.text("source", language),
        "is_address_data": item.is_address_data}
        for item in FeatureDescription.objects.filter(registered_model_id__in=models)}


def _decision(decision: Decision, catalogue: dict, profile: ComplianceProfile,
              language: str) -> dict:
    version = decision.model_version
    model_id = version.registered_model_id
    provenance = decision.provenance or {}
    # in the model's order (PostgreSQL's jsonb keeps keys shortest first), others after them
    order = {name: n for n, name in enumerate(model_features(version))}
    inputs = []
    for feature, value in sorted(decision.inputs.items(), key=lambda i: order.get(i[0], len(order))):
        about = catalogue[(model_id, feature)]
        given = provenance.get(feature)
        given = given if isinstance(given, dict) else {"source": given} if given else {}
        inputs.append({"feature": feature, **about, "value": value,
                       "source": str(given.get("source") or about["source"]),
                       "collected_at": str(given.get("collected_at")
                                           or decision.created_at.date().isoformat())})
    contributions = sorted(
        ({"feature": f, "label": catalogue[(model_id, f)]["label"],
          "value": decision.inputs.get(f), "contribution": c,
          "direction": "raised" if c > 0 else "lowered" if c < 0 else "none"}
         for f, c in (decision.contributions or {}).items()),
        key=lambda c: -abs(c["contribution"]))
    found, note = counterfactual(decision, language)
    if found is not None:
        found["label"] = catalogue[(model_id, found["feature"])]["label"]
    explain = version.manifest.get("verification", {}).get("explain") or {}
    return {
        "id": str(decision.decision_id),
        "made_at": decision.created_at.isoformat().replace("+00:00", "Z"),
        "purpose": decision.purpose,
        **_legal(decision, profile, language),
        "solely_automated": not decision.reviewer,
        "review": {"reviewer": decision.reviewer, "action": decision.review_action,
                   "at": decision.reviewed_at.isoformat() if decision.reviewed_at else None}
        if decision.reviewer else None,
        "model": _model(version, explain, catalogue, language),
        "inputs": inputs,
        "address_data_used": any(i["is_address_data"] for i in inputs),
        "score": decision.raw_score, "cut_off": decision.threshold, "outcome": decision.outcome,
        "score_scale": "probability" if "classes" in explain else "score",
        "contribution_method": decision.contribution_method,
        "contribution_scale": decision.contribution_scale, "base_value": decision.base_value,
        "contributions": contributions,
        "counterfactual": found, "counterfactual_note": note,
    }


def _legal(decision: Decision, profile: ComplianceProfile, language: str) -> dict:
    """Legal basis, Art. 22(2) ground and recipients: the decision record's where it has them,
    else the organization's profile; `origin` says which ("decision" | "profile"), `recorded`
    keeps what the record holds, as it holds it."""
    recorded = {"legal_basis": decision.legal_basis.strip(),
                "art22_ground": decision.art22_ground.strip(),
                "recipients": [str(r).strip() for r in _listed(decision.recipients)
                               if str(r).strip()]}
    values = {"legal_basis": cited(recorded["legal_basis"], language),
              "art22_ground": art22_ground(recorded["art22_ground"], language),
              "recipients": recorded["recipients"]}
    fallback = {"legal_basis": profile.text("legal_basis", language),
                "art22_ground": profile.text("art22_ground", language),
                "recipients": [profile.text("recipients", language)]}
    origin = {name: "decision" if value else "profile" for name, value in values.items()}
    return {**{name: value or fallback[name] for name, value in values.items()},
            "origin": origin, "recorded": recorded}


def _listed(value) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    return [value] if value else []


# "Art. 22(2)(a) GDPR", "Art. 22 (2) a", "Art. 22 Abs. 2 lit. a DSGVO", "Art. 22 Abs. 2 Buchst. a"
_GROUND = re.compile(r"(?<!\d)22\s*\(\s*2\s*\)\s*\(?\s*([abc])\b"
                     r"|(?<!\d)22\s*Abs\.?\s*2\s*(?:S\.\s*1\s*)?(?:lit\.?|Buchst(?:abe|\.)?)\s*([abc])\b",
                     re.IGNORECASE)


def art22_ground(recorded: str, language: str) -> str:
    """A recorded Art. 22(2) ground in the customer's language: one of the three grounds the
    law knows, named by its letter, as the law's own words; any other text as recorded
    ("" stays "", for the profile's to take its place)."""
    letters = {(a or b).lower() for a, b in _GROUND.findall(recorded)}
    if len(letters) == 1:
        return TEXTS[language]["art22_grounds"][letters.pop()]
    return cited(recorded, language)


_CITATIONS = {
    "de": [(re.compile(r"Art\.?\s*(\d+)\s*\((\d+)\)\s*\(([a-z])\)\s*GDPR"),
            r"Art. \1 Abs. \2 lit. \3 DSGVO"),
           (re.compile(r"Art\.?\s*(\d+)\s*\((\d+)\)\s*GDPR"), r"Art. \1 Abs. \2 DSGVO"),
           (re.compile(r"Art\.?\s*(\d+)\s*GDPR"), r"Art. \1 DSGVO")],
    "en": [(re.compile(r"Art\.?\s*(\d+)\s*Abs\.?\s*(\d+)\s*(?:S\.\s*\d+\s*)?lit\.?\s*([a-z])"
                       r"\s*DSGVO"), r"Art. \1(\2)(\3) GDPR"),
           (re.compile(r"Art\.?\s*(\d+)\s*Abs\.?\s*(\d+)\s*DSGVO"), r"Art. \1(\2) GDPR"),
           (re.compile(r"Art\.?\s*(\d+)\s*DSGVO"), r"Art. \1 GDPR")],
}


def cited(text: str, language: str) -> str:
    """GDPR citations of a recorded text in the language's form ("Art. 6(1)(b) GDPR" reads
    "Art. 6 Abs. 1 lit. b DSGVO" in German); the rest of the text stays as recorded."""
    for pattern, replacement in _CITATIONS[language]:
        text = pattern.sub(replacement, text)
    return text


def _model(version: ModelVersion, explain: dict, catalogue: dict, language: str) -> dict:
    estimator = str(explain.get("estimator") or "")
    short = estimator.rsplit(".", 1)[-1]
    names = MODEL_TYPES.get(short)
    kind = f"{names[0 if language == 'de' else 1]} ({estimator})" if names else estimator
    linear, importances = explain.get("linear"), explain.get("feature_importances")
    weights = None
    if linear:
        weights = {"kind": "coefficients", "values": linear["coefficients"],
                   "intercept": linear["intercept"]}
    elif importances:
        weights = {"kind": "importances", "values": importances, "intercept": None}
    params = dict(Param.objects.filter(run_id=version.run_id).values_list("key", "value")) \
        if version.run_id else {}
    features = model_features(version)
    shown = dict.fromkeys([*features, *((weights or {}).get("values") or {})])
    return {
        "name": version.registered_model.name, "version": version.version,
        "registered_at": datetime.datetime.fromtimestamp(
            version.creation_timestamp / 1000, tz=datetime.UTC).isoformat().replace(
            "+00:00", "Z"),
        "package_digest": version.package_digest, "type": kind or "unknown",
        "features": features, "training_parameters": dict(sorted(params.items())),
        "weights": weights,
        # the plain-language name of every feature the table of weights shows
        "labels": {f: catalogue[(version.registered_model_id, f)]["label"] for f in shown},
    }
