"""What a disclosure says (reports/CONTENT.md): gathered from the organization's profile, the
subject's decision records, the model versions behind them, their training runs and packages,
and the feature catalogue; plus a counterfactual per decision computed with the real model."""

import datetime
import json

from django.utils import timezone

from config.exceptions import ApplicationError
from models_registry.models import Decision, ModelVersion
from reports.counterfactual import counterfactual
from reports.models import PROFILE_TEXTS, ComplianceProfile, Disclosure, FeatureDescription
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
    if profile is None:
        raise ApplicationError("The organization has no compliance profile yet: a disclosure "
                               "needs the controller, the authority and the processing "
                               "texts.", kind="conflict")
    decisions = list(Decision.objects.filter(org=request.org, subject_ref=request.subject_ref)
                     .select_related("model_version__registered_model", "model_version__run")
                     .order_by("-created_at", "-pk"))
    catalogue = _catalogue(decisions, language)
    described = [_decision(d, catalogue, language) for d in decisions]
    categories = sorted({i["category"] for d in described for i in d["inputs"] if i["category"]})
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
    """(registered model id, feature) -> its description in the language (English, then the
    bare feature name, where a text is missing)."""
    models = {d.model_version.registered_model_id for d in decisions}
    found = {}
    for item in FeatureDescription.objects.filter(registered_model_id__in=models):
        def text(name, item=item):
            return item.text(name, language) or item.text(name, "en")
        found[(item.registered_model_id, item.feature)] = {
            "label": text("label") or item.feature, "meaning": text("meaning"),
            "category": text("category"), "source": text("source"),
            "is_address_data": item.is_address_data}
    return found


def _described(catalogue: dict, model_id: int, feature: str) -> dict:
    return catalogue.get((model_id, feature)) or {
        "label": feature, "meaning": "", "category": "", "source": "", "is_address_data": False}


def _decision(decision: Decision, catalogue: dict, language: str) -> dict:
    version = decision.model_version
    model_id = version.registered_model_id
    provenance = decision.provenance or {}
    inputs = []
    for feature, value in decision.inputs.items():
        about = _described(catalogue, model_id, feature)
        given = provenance.get(feature)
        given = given if isinstance(given, dict) else {"source": given} if given else {}
        inputs.append({"feature": feature, **about, "value": value,
                       "source": str(given.get("source") or about["source"]),
                       "collected_at": str(given.get("collected_at")
                                           or decision.created_at.date().isoformat())})
    contributions = sorted(
        ({"feature": f, "label": _described(catalogue, model_id, f)["label"],
          "value": decision.inputs.get(f), "contribution": c,
          "direction": "raised" if c > 0 else "lowered" if c < 0 else "none"}
         for f, c in (decision.contributions or {}).items()),
        key=lambda c: -abs(c["contribution"]))
    found, note = counterfactual(decision, language)
    if found is not None:
        found["label"] = _described(catalogue, model_id, found["feature"])["label"]
    explain = version.manifest.get("verification", {}).get("explain") or {}
    return {
        "id": str(decision.decision_id),
        "made_at": decision.created_at.isoformat().replace("+00:00", "Z"),
        "purpose": decision.purpose, "legal_basis": decision.legal_basis,
        "art22_ground": decision.art22_ground,
        "solely_automated": not decision.reviewer,
        "review": {"reviewer": decision.reviewer, "action": decision.review_action,
                   "at": decision.reviewed_at.isoformat() if decision.reviewed_at else None}
        if decision.reviewer else None,
        "recipients": list(decision.recipients or []),
        "model": _model(version, explain, language),
        "inputs": inputs,
        "address_data_used": any(i["is_address_data"] for i in inputs),
        "score": decision.raw_score, "cut_off": decision.threshold, "outcome": decision.outcome,
        "score_scale": "probability" if "classes" in explain else "score",
        "contribution_method": decision.contribution_method,
        "contribution_scale": decision.contribution_scale, "base_value": decision.base_value,
        "contributions": contributions,
        "counterfactual": found, "counterfactual_note": note,
    }


def _model(version: ModelVersion, explain: dict, language: str) -> dict:
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
    return {
        "name": version.registered_model.name, "version": version.version,
        "registered_at": datetime.datetime.fromtimestamp(
            version.creation_timestamp / 1000, tz=datetime.UTC).isoformat().replace(
            "+00:00", "Z"),
        "package_digest": version.package_digest, "type": kind or "unknown",
        "features": _features(version), "training_parameters": dict(sorted(params.items())),
        "weights": weights,
    }


def _features(version: ModelVersion) -> list[str]:
    """The model's inputs, from its signature (MLflow keeps the schema as a JSON string)."""
    signature = version.manifest.get("mlmodel", {}).get("signature") or {}
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    if isinstance(inputs, str):
        inputs = json.loads(inputs)
    return [str(column["name"]) for column in inputs or [] if "name" in column]
