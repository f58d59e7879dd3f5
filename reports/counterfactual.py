"""A counterfactual for one decision: the smallest change of a single input that would have
moved the score across the cut-off, found and then confirmed with the real model loaded from
its package ("had X been Y, the outcome would have been Z").

The search tries, for every numeric input, changes of up to twice the size of the value (or of
the feature's training mean, or 1) in both directions, in one batch scored by the model; an
input that is not negative stays so, and a whole number (a count, an age) stays whole. The chosen change is
scored again on its own before it is stated, so what the disclosure claims is what the model
returns.
"""

import logging
import math

from config.exceptions import ApplicationError
from models_registry.models import Decision

logger = logging.getLogger(__name__)

STEPS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0)
NOTES = {
    "no_cut_off": ("Für diese Entscheidung wurde keine Schwelle angewendet; es gibt daher kein "
                   "Ergebnis, das sich durch eine andere Angabe geändert hätte.",
                   "No cut-off was applied to this decision, so there is no outcome that a "
                   "different input would have changed."),
    "not_found": ("Keine Änderung einer einzelnen Angabe um bis zum Doppelten ihres Wertes "
                  "hätte das Ergebnis geändert.",
                  "No change of a single input by up to twice its value would have changed "
                  "the outcome."),
    "no_model": ("Das Modell konnte für diese Berechnung nicht geladen werden: {reason}",
                 "The model could not be loaded for this calculation: {reason}"),
}
SIDES = {"de": ("unterhalb der Schwelle", "auf oder über der Schwelle"),
         "en": ("below the cut-off", "at or above the cut-off")}


def _note(key: str, language: str, **values) -> str:
    return NOTES[key][0 if language == "de" else 1].format(**values)


def counterfactual(decision: Decision, language: str) -> tuple[dict | None, str]:
    """(the counterfactual, "") or (None, why there is none)."""
    if decision.threshold is None or decision.raw_score is None:
        return None, _note("no_cut_off", language)
    from models_registry.scoring import score_rows

    candidates = _candidates(decision)
    if not candidates:
        return None, _note("not_found", language)
    version = decision.model_version
    try:
        scores = score_rows(version, [{**decision.inputs, feature: value}
                                      for feature, value, _ in candidates])
    except ApplicationError as exc:
        return None, _note("no_model", language, reason=exc.message)
    above = decision.raw_score >= decision.threshold
    crossing = [(size, feature, value, score)
                for (feature, value, size), score in zip(candidates, scores, strict=True)
                if (score >= decision.threshold) != above]
    if not crossing:
        return None, _note("not_found", language)
    _, feature, value, _ = min(crossing, key=lambda c: (c[0], c[1]))
    try:  # stated only as the model returns it alone
        score = score_rows(version, [{**decision.inputs, feature: value}])[0]
    except ApplicationError as exc:
        return None, _note("no_model", language, reason=exc.message)
    return {"feature": feature, "label": feature, "from": decision.inputs[feature],
            "to": _plain(value), "score": score,
            "outcome": _outcome(decision, score, language),
            "verified": (score >= decision.threshold) != above}, ""


def _outcome(decision: Decision, score: float, language: str) -> str:
    side = 1 if score >= decision.threshold else 0
    labels = decision.outcome_labels or []
    return str(labels[side]) if len(labels) == 2 else SIDES[language][side]


def _candidates(decision: Decision) -> list[tuple[str, object, float]]:
    """(feature, changed value, relative size) for every numeric input of the subject."""
    from models_registry.scoring import column_types, reference_of

    inputs, types = decision.inputs, column_types(decision.model_version)
    reference = reference_of(decision.model_version)
    columns = [c for c in (list(reference) or list(inputs)) if c in inputs]
    columns += [c for c in inputs if c not in columns]
    candidates = []
    for feature in columns:
        value = inputs[feature]
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            continue
        # counts and other whole inputs (2 late payments) change by whole steps
        whole = types.get(feature) in ("integer", "long") or float(value).is_integer()
        scale = max(abs(value), abs(reference.get(feature, 0.0)), 1.0)
        for step in STEPS:
            for sign in (1, -1):
                changed = value + sign * step * scale
                changed = round(changed) if whole else round(changed, _decimals(value))
                if changed == value or (value >= 0 and changed < 0):
                    continue
                candidates.append((feature, changed, abs(changed - value) / scale))
    return candidates


def _decimals(value: float) -> int:
    """As precise as the subject's own value (31.25: two places), at least two, at most six."""
    text = repr(float(value))
    places = len(text.partition(".")[2]) if "e" not in text else 6
    return min(max(places, 2), 6)


def _plain(value):
    return value.item() if hasattr(value, "item") else value  # numpy scalars as JSON numbers
