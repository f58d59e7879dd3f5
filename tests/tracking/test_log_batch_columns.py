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
    one_by_one = [_metric(m, f"metrics[{i}]") for i, m in enumerate(raw)]
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


def test_keys_needing_escapes_and_non_finite_values_are_stored_as_sent(personas):
    """On PostgreSQL the five columns go as binary arrays (config.pgarrays): quotes,
    backslashes, braces and infinities need no spelling; every batch reads back the same."""
    from audit.actors import Actor
    from tracking.models import LatestMetric, Metric
    from tracking.services.experiments import experiment_create
    from tracking.services.runs import run_create, run_log_batch

    actor = Actor.command("test-columns")
    experiment = experiment_create(org=personas.org_a, name="columns", actor=actor)
    batches = {
        "plain": [("loss", 0.1 + 0.2), ("loss", 1e-300), ("acc", -0.0), ("acc", 5e20)],
        "quoted": [('say "hi"', 1.0), ("back\\slash", 2.0), ("{brace, comma}", 3.0)],
        "infinite": [("up", math.inf), ("down", -math.inf), ("nan", math.nan)],
    }
    for name, points in batches.items():
        run = run_create(experiment=experiment, actor=actor, run_name=name)
        run_log_batch(run=run, actor=actor, params=[], tags=[], payload={}, metrics=[
            {"key": key, "value": value, "timestamp": T + step, "step": step}
            for step, (key, value) in enumerate(points)])
        stored = list(Metric.objects.filter(run=run).order_by("step")
                      .values_list("key", "value", "is_nan", "timestamp", "step"))
        assert stored == [(key, 0.0 if value != value else value, value != value, T + step, step)
                          for step, (key, value) in enumerate(points)], name
        assert LatestMetric.objects.filter(run=run).count() == len({key for key, _ in points})
