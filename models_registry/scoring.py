"""Scoring a READY package, as the service sees it: the request goes to the model's sandboxed
scorer (models_registry/scorers.py), which parses MLflow's input formats, predicts and, when
decisions are recorded, returns a raw score per row and per-feature contributions with a
named method (`linear-exact` or `reference-substitution`: scorer_process.py says how each is
computed). Reference values are the means of the model's input example, fixed at packaging
time (the manifest) and recorded with every decision, so each can be replayed.
"""

import json
import math
from dataclasses import dataclass

from django.conf import settings

from models_registry import scorers
from models_registry.models import ModelVersion
from models_registry.packages import package_local_dir
from models_registry.scorer_process import INPUT_FORMATS


@dataclass
class Explanation:
    scores: list[float | None]
    contributions: list[dict]
    base_value: float | None
    method: str
    scale: str


@dataclass
class Scored:
    predictions: list
    rows: list                # the input rows as parsed (only when explained)
    explanation: Explanation | None


def reference_of(version: ModelVersion) -> dict:
    return (version.manifest.get("verification") or {}).get("reference") or {}


def _call(version: ModelVersion, request: dict) -> dict:
    return scorers.call(version.package_digest, package_local_dir(version), request)


def predict(version: ModelVersion, body: dict, *, params: dict | None = None,
            explain: bool = False) -> Scored:
    """Predictions for the rows in `body` (one of INPUT_FORMATS); with `explain`, also the
    parsed rows, scores and contributions. ApplicationError for input the model refuses or a
    model that cannot answer (scorers.call)."""
    request = {"op": "predict", "body": {k: body[k] for k in INPUT_FORMATS if k in body},
               "params": params, "max_rows": settings.LEDGERFLOW_SCORING_MAX_ROWS,
               "explain": None}
    if explain:
        described = (version.manifest.get("verification") or {}).get("explain") or {}
        request["explain"] = {"reference": reference_of(version),
                              "linear": described.get("linear")}
    reply = _call(version, request)
    explanation = None
    if explain:
        explanation = Explanation(reply["scores"], reply["contributions"],
                                  reply.get("base_value"), reply.get("method") or "",
                                  reply.get("scale") or "")
    return Scored(reply["predictions"], reply.get("rows") or [], explanation)


def score_rows(version: ModelVersion, records: list[dict]) -> list[float]:
    """The model's number for each row (the positive class's probability for a classifier):
    what a counterfactual compares with its threshold."""
    columns = list(reference_of(version)) or None
    return _call(version, {"op": "score", "records": records, "columns": columns})["scores"]


def column_types(version: ModelVersion) -> dict[str, str]:
    """Input column -> MLflow type ("long", "double", ...) from the package's signature."""
    signature = (version.manifest.get("mlmodel") or {}).get("signature") or {}
    try:
        inputs = json.loads(signature.get("inputs") or "[]")
    except (TypeError, ValueError):
        return {}
    return {c["name"]: c.get("type", "") for c in inputs if isinstance(c, dict) and "name" in c}


def finite(value):
    return value if value is None or math.isfinite(value) else None
