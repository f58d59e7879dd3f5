"""Scoring a READY package: the model loaded once per process (a small LRU cache), MLflow's
scoring input formats, a raw score per row, and per-feature contributions with a named method.

Contributions:
- `linear-exact`: models with one row of coefficients (linear and logistic regression):
  coefficient x (value - reference value); with the base value (the model at the reference)
  they sum exactly to the model's margin — the score itself for a linear model, the log-odds
  of the positive class for a logistic one (`contribution_scale` says which).
- `reference-substitution`: any other model: the score minus the score with that one feature
  set to its reference value. Model-agnostic; contributions need not sum to the score.
Reference values are the means of the model's input example, fixed at packaging time and
recorded with every decision, so each can be replayed.
"""

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings
from mlflow.exceptions import MlflowException

from config.exceptions import ApplicationError
from models_registry.models import ModelVersion
from models_registry.packages import package_local_dir

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid")


@dataclass
class Loaded:
    digest: str
    pyfunc: object
    raw: object | None
    explain: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)

    @property
    def input_schema(self):
        return self.pyfunc.metadata.get_input_schema()


class ModelCache:
    """Loaded models by package digest; the least recently used goes when full."""

    def __init__(self):
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()  # guards the two dicts, never held while loading
        self._loading: dict[str, threading.Lock] = {}

    def _cached(self, digest: str) -> Loaded | None:
        with self._lock:
            if digest in self._models:
                self._models.move_to_end(digest)
                return self._models[digest]
            return None

    def get(self, version: ModelVersion) -> Loaded:
        digest = version.package_digest
        loaded = self._cached(digest)
        if loaded is not None:
            return loaded
        with self._lock:
            gate = self._loading.setdefault(digest, threading.Lock())
        with gate:  # one load per model; requests for other models go on meanwhile
            loaded = self._cached(digest)
            if loaded is None:
                loaded = self._load(version)
                with self._lock:
                    self._models[digest] = loaded
                    while len(self._models) > max(1, settings.LEDGERFLOW_SCORING_CACHE_SIZE):
                        self._models.popitem(last=False)
                    self._loading.pop(digest, None)
        return loaded

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    @staticmethod
    def _load(version: ModelVersion) -> Loaded:
        import mlflow.pyfunc

        unsafe = version.manifest.get("mlmodel", {}).get("runs_uploaded_code")
        if unsafe and not settings.LEDGERFLOW_ALLOW_UNSAFE_MODELS:
            raise ApplicationError(f"{version.label} cannot be loaded by this server: {unsafe} "
                                   "(LEDGERFLOW_ALLOW_UNSAFE_MODELS is off).", kind="conflict")

        model = mlflow.pyfunc.load_model(str(package_local_dir(version)))
        try:
            raw = model.get_raw_model()
        except Exception:  # not every flavor exposes one
            raw = None
        verification = version.manifest.get("verification", {})
        return Loaded(version.package_digest, model, raw, verification.get("explain") or {},
                      verification.get("reference") or {})


CACHE = ModelCache()


def parse_input(loaded: Loaded, body: dict):
    """The request's data in one of MLflow's formats, parsed as `mlflow models serve` does."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    present = [k for k in INPUT_FORMATS if k in body]
    if len(present) != 1:
        raise invalid(f"Send exactly one of {', '.join(INPUT_FORMATS)} (got "
                      f"{', '.join(present) or 'none'}).")
    try:
        data = infer_and_parse_data({present[0]: body[present[0]]}, loaded.input_schema)
    except MlflowException as exc:
        raise invalid(f"Invalid {present[0]} input: {exc.message}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise invalid(f"Invalid {present[0]} input: {exc}") from None
    rows = len(data) if hasattr(data, "__len__") else 1
    if rows > settings.LEDGERFLOW_SCORING_MAX_ROWS:
        raise invalid(f"At most {settings.LEDGERFLOW_SCORING_MAX_ROWS} rows per request.")
    if rows == 0:
        raise invalid("The input has no rows.")
    return data


def _jsonable(values):
    if hasattr(values, "to_dict") and hasattr(values, "columns"):
        return values.to_dict(orient="records")
    if hasattr(values, "tolist"):
        values = values.tolist()
    return values


def predict(loaded: Loaded, data, params: dict | None = None) -> list:
    from mlflow.exceptions import MlflowException

    try:
        output = loaded.pyfunc.predict(data, params=params) if params else \
            loaded.pyfunc.predict(data)
    except MlflowException as exc:  # schema enforcement: missing columns, wrong types
        raise invalid(f"The input does not fit the model's signature: {exc.message}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise invalid(f"The model could not score the input: {exc}") from None
    output = _jsonable(output)
    return output if isinstance(output, list) else [output]


def _frame(loaded: Loaded, data):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    columns = list(loaded.reference) or None
    try:
        return pd.DataFrame(data, columns=columns)
    except ValueError:
        return None


def _score_function(loaded: Loaded):
    """Rows -> one number per row: the positive class's probability for classifiers, else
    the prediction itself when it is a number."""
    raw = loaded.raw
    if raw is not None and hasattr(raw, "predict_proba"):
        order = list(getattr(raw, "feature_names_in_", []))

        def probability(frame):
            # the estimator's own column order (a request may list the columns differently)
            frame = frame[order] if order and set(order) <= set(frame.columns) else frame
            return [float(p[-1]) for p in raw.predict_proba(frame)]

        return probability

    def numeric(frame):
        values = _jsonable(loaded.pyfunc.predict(frame))
        return [float(v[0] if isinstance(v, list) else v) for v in values]

    return numeric


def score_frame(loaded: Loaded, frame) -> list[float]:
    """The model's number for each row of a DataFrame (see _score_function)."""
    return _score_function(loaded)(frame)


@dataclass
class Explanation:
    scores: list[float | None]
    contributions: list[dict]
    base_value: float | None
    method: str
    scale: str


def explain(loaded: Loaded, data) -> Explanation:
    """Scores and per-feature contributions for every row."""
    frame = _frame(loaded, data)
    if frame is None:
        return Explanation([None] * len(data), [{} for _ in range(len(data))], None, "", "")
    try:
        scores = _score_function(loaded)(frame)
    except (MlflowException, ValueError, TypeError):
        scores = [None] * len(frame)
    linear = loaded.explain.get("linear")
    reference = {k: v for k, v in loaded.reference.items() if k in frame.columns}
    if linear and set(linear["coefficients"]) <= set(reference):
        return _linear(linear, reference, frame, scores)
    if reference and scores and scores[0] is not None:
        try:
            return _substitution(loaded, reference, frame, scores)
        except (MlflowException, ValueError, TypeError):
            logger.warning("reference substitution failed for %s", loaded.digest, exc_info=True)
    return Explanation(scores, [{} for _ in scores], None, "", "")


def _linear(linear: dict, reference: dict, frame, scores) -> Explanation:
    coef, intercept = linear["coefficients"], linear["intercept"]
    base = intercept + sum(c * reference[k] for k, c in coef.items())
    contributions = []
    for row in frame[list(coef)].itertuples(index=False):
        contributions.append({k: c * (float(v) - reference[k])
                              for (k, c), v in zip(coef.items(), row, strict=True)})
    scale = "log-odds" if linear["link"] == "logit" else "score"
    return Explanation(scores, contributions, base, "linear-exact", scale)


def _substitution(loaded: Loaded, reference: dict, frame, scores) -> Explanation:
    import pandas as pd

    score = _score_function(loaded)
    features = list(reference)
    variants = []
    # an integer column gets its reference rounded, so the model's schema still holds
    values = {f: round(reference[f]) if frame[f].dtype.kind in "iu" else reference[f]
              for f in features}
    for feature in features:
        variant = frame.copy()
        variant[feature] = values[feature]
        variants.append(variant)
    base_row = frame.iloc[:1].copy()
    for feature in features:
        base_row[feature] = values[feature]
    moved = score(pd.concat([*variants, base_row], ignore_index=True))
    n = len(frame)
    contributions = [{f: scores[i] - moved[j * n + i] for j, f in enumerate(features)}
                     for i in range(n)]
    return Explanation(scores, contributions, moved[-1], "reference-substitution", "score")


def finite(value):
    return value if value is None or math.isfinite(value) else None
