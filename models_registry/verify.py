"""Load a model directory as python_function and score its input example, in a process of its
own: `python -m models_registry.verify MODEL_DIR`. Prints one JSON object on stdout.

The packaging worker runs this as a child, so a model that crashes, hangs or leaks on load
cannot take the worker down with it. No Django here.
"""

import json
import math
import sys


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


LOGISTIC = frozenset({"LogisticRegression", "LogisticRegressionCV"})


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
    importances = getattr(raw, "feature_importances_", None)
    if importances is not None and len(importances) == len(names):
        info["feature_importances"] = dict(zip(names, importances.tolist(), strict=True))
    if hasattr(raw, "classes_"):
        info["classes"] = _jsonable(list(raw.classes_))
    if hasattr(raw, "get_params"):
        info["hyperparameters"] = _jsonable(raw.get_params(deep=False))
    return _jsonable(info)


def verify(model_dir: str) -> dict:
    import mlflow.pyfunc
    from mlflow.models import Model

    meta = Model.load(model_dir)
    model = mlflow.pyfunc.load_model(model_dir)
    result = {"loaded": True, "flavors": sorted(meta.flavors)}
    example = meta.load_input_example(model_dir) if meta.saved_input_example_info else None
    if example is None:
        result["scored_example"] = False
        return result
    prediction = model.predict(example)
    result["scored_example"] = True
    result["example_rows"] = len(example) if hasattr(example, "__len__") else 1
    result["example_prediction"] = _jsonable(prediction)[:5] if hasattr(prediction, "__len__") \
        else _jsonable(prediction)
    if hasattr(example, "columns"):
        columns = [str(c) for c in example.columns]
        numeric = example.select_dtypes("number")
        result["reference"] = _jsonable({str(c): float(numeric[c].mean()) for c in numeric})
        try:
            raw = model.get_raw_model()
        except Exception:  # not every flavor exposes one
            raw = None
        if raw is not None:
            result["explain"] = describe(raw, columns)
    return result


def main() -> int:
    try:
        result = verify(sys.argv[1])
    except Exception as exc:  # reported to the parent as the reason
        print(json.dumps({"loaded": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
