"""The one process that loads a model: run in the sandbox, in the model's own environment,
never in the service. No Django here, and nothing of Ledgerflow's but this file (mounted
read-only at /opt/ledgerflow/scorer.py).

    python scorer.py verify MODEL_DIR          one JSON object on stdout, then exit
    python scorer.py serve MODEL_DIR SOCKET    load once, answer requests on a unix socket

`verify` (packaging) loads the model as python_function, scores its input example and
describes the estimator: the reference values (means of the example's numeric columns) and,
for a linear model, its coefficients. `serve` (scoring) answers length-prefixed JSON
requests, one at a time:

- `{"op": "predict", "body": {<one of MLflow's input formats>}, "params": {...},
  "max_rows": N, "explain": {"reference": {...}, "linear": {...}} | null}`:
  the predictions; with `explain`, also the rows as parsed, a score per row and per-feature
  contributions (see `explain`).
- `{"op": "score", "records": [...], "columns": [...]}`: the score of each row (what a
  counterfactual needs).

A reply is `{"ok": true, ...}` or `{"ok": false, "kind": "invalid", "message": ...}` for
input the model refuses. Contributions:
- `linear-exact`: models with one row of coefficients (linear and logistic regression):
  coefficient x (value - reference value); with the base value (the model at the reference)
  they sum exactly to the model's margin (the score for a linear model, the log-odds of the
  positive class for a logistic one: `scale` says which).
- `tree-shap`: gradient-boosted trees (LightGBM, XGBoost), and any tree model where the
  environment has SHAP: exact Shapley values by TreeSHAP, as the library itself computes them
  (LightGBM's and XGBoost's `pred_contrib`, SHAP's TreeExplainer). With the base value (the
  expected margin) they sum exactly to the model's margin: log-odds for a binary classifier.
- `reference-substitution`: any other model: the score minus the score with that one feature
  set to its reference value. Model-agnostic; contributions need not sum to the score.
"""

import json
import math
import os
import socket
import struct
import sys

try:  # in the runner environment and the service; a model's own may lack it
    import orjson
except ImportError:
    orjson = None

INPUT_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
LOGISTIC = frozenset({"LogisticRegression", "LogisticRegressionCV"})
HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 << 20


class Refused(Exception):
    """Input the model cannot score: the message goes back to the client as a 400."""


def jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return jsonable(value.to_dict(orient="records"))
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if hasattr(value, "item") and not isinstance(value, int | float | str | bool):
        return jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


# --- loading and describing --------------------------------------------------------------------

def load(model_dir: str):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_dir)
    try:
        raw = model.get_raw_model()
    except Exception:  # not every flavor exposes one
        raw = None
    return model, raw


def describe(raw, columns: list[str]) -> dict:
    """What a disclosure and the contribution method need to know about the estimator."""
    cls = type(raw)
    info = {"estimator": f"{cls.__module__}.{cls.__qualname__}"}
    names = [str(c) for c in getattr(raw, "feature_names_in_", columns)]
    coef, intercept = getattr(raw, "coef_", None), getattr(raw, "intercept_", None)
    # Exact contributions only where the margin is known to be linear in the inputs: a
    # regressor's prediction, or a logistic regression's log-odds. Other linear classifiers
    # (SVMs, perceptrons) score by a label, so they get the model-agnostic method.
    link = None
    if not hasattr(raw, "classes_"):
        link = "identity"
    elif cls.__name__ in LOGISTIC and len(getattr(raw, "classes_", [])) == 2:
        link = "logit"
    if coef is not None and intercept is not None and link is not None:
        rows = coef.tolist() if hasattr(coef, "tolist") else coef
        rows = rows if isinstance(rows[0], list) else [rows]
        if len(rows) == 1 and len(rows[0]) == len(names):
            icept = intercept.tolist() if hasattr(intercept, "tolist") else intercept
            info["linear"] = {"coefficients": dict(zip(names, rows[0], strict=True)),
                              "intercept": float(icept[0] if isinstance(icept, list) else icept),
                              "link": link}
    if cls.__module__.startswith(("lightgbm", "xgboost")):
        info["attribution"] = "tree-shap"  # the library's own exact TreeSHAP (see explain)
    importances = getattr(raw, "feature_importances_", None)
    if importances is not None and len(importances) == len(names):
        info["feature_importances"] = dict(zip(names, importances.tolist(), strict=True))
    if hasattr(raw, "classes_"):
        info["classes"] = jsonable(list(raw.classes_))
    if hasattr(raw, "get_params"):
        info["hyperparameters"] = jsonable(raw.get_params(deep=False))
    return jsonable(info)


def verify(model_dir: str) -> dict:
    from mlflow.models import Model

    meta = Model.load(model_dir)
    model, raw = load(model_dir)
    result = {"loaded": True, "flavors": sorted(meta.flavors)}
    example = meta.load_input_example(model_dir) if meta.saved_input_example_info else None
    if example is None:
        result["scored_example"] = False
        return result
    prediction = model.predict(example)
    result["scored_example"] = True
    result["example_rows"] = len(example) if hasattr(example, "__len__") else 1
    shown = jsonable(prediction)
    result["example_prediction"] = shown[:5] if isinstance(shown, list) else shown
    if hasattr(example, "columns"):
        columns = [str(c) for c in example.columns]
        numeric = example.select_dtypes("number")
        result["reference"] = jsonable({str(c): float(numeric[c].mean()) for c in numeric})
        if raw is not None:
            result["explain"] = describe(raw, columns)
    return result


# --- scoring -----------------------------------------------------------------------------------

class Scorer:
    def __init__(self, model_dir: str):
        self.model, self.raw = load(model_dir)
        self.schema = self.model.metadata.get_input_schema()

    def parse(self, body: dict, max_rows: int):
        """The request's data in one of MLflow's formats, parsed as `mlflow models serve`
        does."""
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc.scoring_server import infer_and_parse_data

        present = [k for k in INPUT_FORMATS if k in body]
        if len(present) != 1:
            raise Refused(f"Send exactly one of {', '.join(INPUT_FORMATS)} (got "
                          f"{', '.join(present) or 'none'}).")
        try:
            data = infer_and_parse_data({present[0]: body[present[0]]}, self.schema)
        except MlflowException as exc:
            raise Refused(f"Invalid {present[0]} input: {exc.message}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise Refused(f"Invalid {present[0]} input: {exc}") from None
        rows = len(data) if hasattr(data, "__len__") else 1
        if rows > max_rows:
            raise Refused(f"At most {max_rows} rows per request.")
        if rows == 0:
            raise Refused("The input has no rows.")
        return data

    def frame(self, records: list[dict], columns: list[str]):
        """Rows as the model reads them: `columns` first, the rest after, typed as the
        signature says."""
        import pandas as pd

        names = [c for c in columns if records and c in records[0]]
        names += [c for c in (records[0] if records else {}) if c not in names]
        frame = pd.DataFrame(records)[names] if records else pd.DataFrame()
        schema = self.schema
        if schema is not None and schema.has_input_names():
            frame = frame.astype({spec.name: spec.type.to_pandas() for spec in schema.inputs
                                  if spec.name in frame.columns
                                  and hasattr(spec.type, "to_pandas")}, errors="ignore")
        return frame

    def predict(self, data, params: dict | None) -> list:
        from mlflow.exceptions import MlflowException

        try:
            output = self.model.predict(data, params=params) if params else \
                self.model.predict(data)
        except MlflowException as exc:  # schema enforcement: missing columns, wrong types
            raise Refused(f"The input does not fit the model's signature: {exc.message}") \
                from None
        except (ValueError, TypeError, KeyError) as exc:
            raise Refused(f"The model could not score the input: {exc}") from None
        # arrays as lists (their numbers are made JSON by the wire encoder), anything else
        # converted here
        output = output.tolist() if type(output).__name__ == "ndarray" else jsonable(output)
        return output if isinstance(output, list) else [output]

    def score_rows(self, frame) -> list[float]:
        """One number per row: the positive class's probability for classifiers, else the
        prediction itself when it is a number."""
        raw = self.raw
        if raw is not None and hasattr(raw, "predict_proba"):
            # the estimator's own column order (a request may list the columns differently)
            order = list(getattr(raw, "feature_names_in_", []))
            frame = frame[order] if order and set(order) <= set(frame.columns) else frame
            return [float(p[-1]) for p in raw.predict_proba(frame)]
        values = jsonable(self.model.predict(frame))
        values = values if isinstance(values, list) else [values]
        return [float(v[0] if isinstance(v, list) else v) for v in values]

    def explain(self, data, reference: dict, linear: dict | None) -> dict:
        """Scores and per-feature contributions for every row (nothing for data that is not a
        table, or a model that gives no number)."""
        import pandas as pd

        n = len(data) if hasattr(data, "__len__") else 1
        nothing = {"scores": [None] * n, "contributions": [{} for _ in range(n)],
                   "base_value": None, "method": "", "scale": ""}
        frame = data if isinstance(data, pd.DataFrame) else None
        if frame is None:
            try:
                frame = pd.DataFrame(data, columns=list(reference) or None)
            except ValueError:
                return nothing
        try:
            scores = self.score_rows(frame)
        except Exception:  # no number to explain
            return nothing
        reference = {k: v for k, v in reference.items() if k in frame.columns}
        if linear and set(linear["coefficients"]) <= set(reference):
            return self._linear(linear, reference, frame, scores)
        try:
            exact = self._tree_shap(frame, scores)
        except Exception as exc:  # the model-agnostic method below still applies
            print(f"tree SHAP failed: {exc!r}", file=sys.stderr, flush=True)
            exact = None
        if exact is not None:
            return exact
        if reference:
            try:
                return self._substitution(reference, frame, scores)
            except Exception as exc:  # the scores stand without contributions
                print(f"reference substitution failed: {exc!r}", file=sys.stderr, flush=True)
        return {**nothing, "scores": scores}

    @staticmethod
    def _linear(linear: dict, reference: dict, frame, scores) -> dict:
        import numpy as np

        coef, intercept = linear["coefficients"], linear["intercept"]
        base = intercept + sum(c * reference[k] for k, c in coef.items())
        names = list(coef)
        # coefficient x (value - reference), every row at once
        values = (frame[names].to_numpy(dtype=float) - [reference[k] for k in names]) \
            * np.array([coef[k] for k in names])
        contributions = [dict(zip(names, row, strict=True)) for row in values.tolist()]
        return {"scores": scores, "contributions": contributions, "base_value": base,
                "method": "linear-exact",
                "scale": "log-odds" if linear["link"] == "logit" else "score"}

    def _tree_shap(self, frame, scores) -> dict | None:
        """Exact TreeSHAP attributions where the model's library (or SHAP) computes them; None
        for other models and for multi-class ones (one margin per class)."""
        raw, module = self.raw, type(self.raw).__module__
        classifier = hasattr(raw, "classes_")
        if module.startswith("lightgbm"):
            booster = getattr(raw, "booster_", raw)
            names = list(booster.feature_name())
            values = booster.predict(frame[names], pred_contrib=True)
        elif module.startswith("xgboost"):
            import xgboost

            booster = raw.get_booster() if hasattr(raw, "get_booster") else raw
            names = list(booster.feature_names or frame.columns)
            values = booster.predict(xgboost.DMatrix(frame[names]), pred_contribs=True)
        else:
            try:
                import shap
            except ImportError:
                return None
            try:
                explainer = shap.TreeExplainer(raw)
            except Exception:  # not a tree model SHAP knows
                return None
            names = list(getattr(raw, "feature_names_in_", frame.columns))
            shapley = explainer.shap_values(frame[names])
            if isinstance(shapley, list):  # one array per class
                if len(shapley) != 2:
                    return None
                shapley = shapley[1]
            if getattr(shapley, "ndim", 2) == 3:
                if shapley.shape[2] != 2:
                    return None
                shapley = shapley[:, :, 1]
            expected = explainer.expected_value
            expected = expected[-1] if hasattr(expected, "__len__") else expected
            values = [[*row, float(expected)] for row in shapley.tolist()]
            classifier = False  # TreeExplainer answers in the model's own output
        values = values.tolist() if hasattr(values, "tolist") else values
        if not values or len(values[0]) != len(names) + 1:
            return None
        contributions = [{n: float(v) for n, v in zip(names, row[:-1], strict=True)}
                         for row in values]
        return {"scores": scores, "contributions": contributions,
                "base_value": float(values[0][-1]), "method": "tree-shap",
                "scale": "log-odds" if classifier else "score"}

    def _substitution(self, reference: dict, frame, scores) -> dict:
        import pandas as pd

        features = list(reference)
        # an integer column gets its reference rounded, so the model's schema still holds
        values = {f: round(reference[f]) if frame[f].dtype.kind in "iu" else reference[f]
                  for f in features}
        variants = []
        for feature in features:
            variant = frame.copy()
            variant[feature] = values[feature]
            variants.append(variant)
        base_row = frame.iloc[:1].copy()
        for feature in features:
            base_row[feature] = values[feature]
        moved = self.score_rows(pd.concat([*variants, base_row], ignore_index=True))
        n = len(frame)
        contributions = [{f: scores[i] - moved[j * n + i] for j, f in enumerate(features)}
                         for i in range(n)]
        return {"scores": scores, "contributions": contributions, "base_value": moved[-1],
                "method": "reference-substitution", "scale": "score"}

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "predict":
            data = self.parse(request.get("body") or {}, int(request.get("max_rows") or 10000))
            reply = {"ok": True, "predictions": self.predict(data, request.get("params"))}
            explain = request.get("explain")
            if explain is not None:
                reply["rows"] = rows_of(data)
                reply.update(self.explain(data, explain.get("reference") or {},
                                          explain.get("linear")))
            return reply
        if op == "score":
            return {"ok": True, "scores": self.score_rows(
                self.frame(request["records"], request.get("columns") or []))}
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        return {"ok": False, "kind": "invalid", "message": f"unknown op {op!r}"}


def rows_of(data) -> list:
    """The parsed rows, one mapping or list each (made JSON-able with the whole reply)."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        return data.to_dict(orient="records")
    if isinstance(data, dict):  # named tensors: one row per index
        keys = list(data)
        return [{k: data[k][i] for k in keys} for i in range(len(data[keys[0]]))]
    return list(data.tolist() if hasattr(data, "tolist") else data)


# --- the wire ----------------------------------------------------------------------------------

def _read_exactly(conn, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("closed mid-message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _default(value):
    """What orjson cannot write itself: arrays, NumPy scalars, frames (as jsonable does)."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def encode(message: dict) -> bytes:
    """A message as JSON, non-finite numbers as null: with orjson in one pass in C where it
    is installed, else through jsonable and the standard library."""
    if orjson is not None:
        return orjson.dumps(message, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return json.dumps(jsonable(message), allow_nan=False).encode()


def receive(conn) -> dict:
    (size,) = HEADER.unpack(_read_exactly(conn, HEADER.size))
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes is too large")
    body = _read_exactly(conn, size)
    return orjson.loads(body) if orjson is not None else json.loads(body)


def send(conn, message: dict) -> None:
    body = encode(message)
    conn.sendall(HEADER.pack(len(body)) + body)


def serve(model_dir: str, path: str) -> int:
    scorer = Scorer(model_dir)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    os.rename(path + ".new", path)  # the socket appears only once the model is loaded
    listener.listen(16)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                request = receive(conn)
            except (ConnectionError, ValueError, OSError):
                continue
            try:
                reply = scorer.handle(request)
            except Refused as exc:
                reply = {"ok": False, "kind": "invalid", "message": str(exc)}
            except MemoryError:  # past its memory limit: the scorer ends, and says why
                print("MemoryError", file=sys.stderr, flush=True)
                os._exit(1)
            except Exception as exc:  # the model's own failure, reported
                reply = {"ok": False, "kind": "model",
                         "message": f"{type(exc).__name__}: {exc}"}
            try:
                try:
                    body = encode(reply)
                except (TypeError, ValueError) as exc:  # e.g. an integer beyond 64 bits
                    body = encode({"ok": False, "kind": "model",
                                   "message": f"the model's answer is not JSON: {exc}"})
                conn.sendall(HEADER.pack(len(body)) + body)
            except OSError as exc:
                print(f"could not answer: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "verify":
        try:
            result = verify(argv[1])
        except Exception as exc:  # reported to the parent as the reason
            print(json.dumps({"loaded": False, "error": f"{type(exc).__name__}: {exc}"}))
            return 1
        print(json.dumps(jsonable(result)))
        return 0
    if len(argv) >= 3 and argv[0] == "serve":
        return serve(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
