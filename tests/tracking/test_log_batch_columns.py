"""log-batch's column-at-a-time check (tracking.mlflow_api.runs._plain_points) takes only what
the point-by-point check would accept unchanged; everything else goes the point-by-point way,
whose errors name the point as MLflow does."""

import math

import pytest

from tracking.mlflow_api.runs import _metric, _plain_points

T = 1_700_000_000_000


def plain(count: int = 4) -> list[dict]:
    return [{"key": f"k{i % 2}", "value": i if i % 2 else i + 0.5, "timestamp": T + i,
             "step": i} for i in range(count)]


def test_a_plain_batch_becomes_the_same_columns_the_point_by_point_path_makes():
    raw = [*plain(), {"key": "no_step", "value": 1, "timestamp": T}]
    points = _plain_points(raw)
    one_by_one = [_metric(m, f"metrics[{i}]", set()) for i, m in enumerate(raw)]
    assert points is not None and len(points) == 5
    for name in ("key", "value", "timestamp", "step"):
        assert points.columns[name] == [m[name] for m in one_by_one]
    assert all(type(v) is float for v in points.columns["value"])
    assert points.columns["is_nan"] == [False] * 5
    assert _plain_points([]) is not None


@pytest.mark.parametrize("odd", [
    {"value": "NaN"}, {"value": "1.5"}, {"value": True}, {"value": None},
    {"timestamp": -1}, {"timestamp": "1700000000000"}, {"timestamp": 1.0}, {"timestamp": None},
    {"step": "3"}, {"step": 2.0}, {"key": "a/../b"}, {"key": 7}, {"key": None},
    {"key": "x" * 251}, {"model_id": "m-1"}, {"dataset_name": "d"},
])
def test_anything_else_takes_the_point_by_point_path(odd):
    raw = plain()
    raw[2] = {**raw[2], **odd}
    assert _plain_points(raw) is None
    assert _plain_points([*plain(), "not an object"]) is None


def test_nan_from_the_point_by_point_path_is_stored_as_zero_with_its_flag():
    from tracking.services.runs import MetricPoints

    points = MetricPoints.from_dicts([_metric({"key": "k", "value": "NaN", "timestamp": T},
                                              "metrics[0]")])
    assert points.columns["value"] == [0.0] and points.columns["is_nan"] == [True]
    assert not math.isnan(points.columns["value"][0])
