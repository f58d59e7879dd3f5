"""Typed access to an MLflow request's fields, with MLflow's error messages.

GET requests carry fields in the query string, POST/PATCH/DELETE as JSON; int64 fields may
arrive as strings (protobuf JSON), so the accessors coerce them.
"""

import contextlib
import math

import orjson

from tracking.mlflow_api.errors import MlflowError, missing

_MISSING = object()


class MlflowRequest:
    def __init__(self, django_request, path_args: dict | None = None):
        self.http = django_request
        self.path_args = path_args or {}
        if django_request.method == "GET":
            self.data = {k: (v if len(v) > 1 else v[0])
                         for k, v in django_request.GET.lists()}
        else:
            self.data = self._json(django_request.body)
        self.data.update(self.path_args)

    @staticmethod
    def _json(body: bytes) -> dict:
        if not body:
            return {}
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MlflowError(f"Malformed JSON in request body: {exc}", "BAD_REQUEST") from None
        if not isinstance(data, dict):
            raise MlflowError("The request body must be a JSON object.", "BAD_REQUEST")
        return data

    def has(self, name: str) -> bool:
        return self.data.get(name) not in (None, "")

    def str(self, name: str, default=_MISSING, *, max_length: int | None = None) -> str:
        value = self.data.get(name)
        if value is None or value == "":
            if default is _MISSING:
                raise missing(name)
            return default
        if not isinstance(value, str):
            raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: "
                              "expected a string.")
        if max_length is not None and len(value) > max_length:
            raise MlflowError(f"'{name}' exceeds the maximum length of {max_length} characters.")
        return value

    def int(self, name: str, default=_MISSING) -> int:
        value = self.data.get(name)
        if value is None or value == "":
            if default is _MISSING:
                raise missing(name)
            return default
        return as_int(value, name)

    def float(self, name: str, default=_MISSING) -> float:
        value = self.data.get(name)
        if value is None:
            if default is _MISSING:
                raise missing(name)
            return default
        return as_float(value, name)

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}': expected a boolean.")

    def key_values(self, name: str) -> list[tuple[str, str]]:
        """An optional list of `{"key": ..., "value": ...}` (params, tags), values as text."""
        pairs = []
        for index, item in enumerate(self.list(name, [])):
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise MlflowError(f"Missing value for required parameter '{name}[{index}].key'.")
            value = item.get("value", "")
            pairs.append((item["key"], value if isinstance(value, str) else str(value)))
        return pairs

    def list(self, name: str, default=_MISSING) -> list:
        value = self.data.get(name)
        if value is None:
            if default is _MISSING:
                raise missing(name)
            return default
        if isinstance(value, str):
            return [value]  # a single repeated query parameter
        if not isinstance(value, list):
            raise MlflowError(f"Invalid value {value!r} for parameter '{name}': expected a list.")
        return value


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # every integer in MLflow's protos is an int64


def as_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}': expected an integer.")
    number = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = int(value)
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        number = int(value)  # a JSON integer beyond int64 arrives as a float, rounded
    if number is None:
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: expected an "
                          "integer.")
    if not INT64_MIN <= number <= INT64_MAX:
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: out of range "
                          "for a 64-bit integer.")
    return number


def as_float(value, name: str) -> float:
    if isinstance(value, bool):
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}': expected a number.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        # protobuf JSON spells the special values as strings
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value in special:
            return special[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: expected a "
                      "number.")
