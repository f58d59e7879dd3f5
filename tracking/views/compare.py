"""Comparing runs side by side (params with the differing rows marked, latest metrics, charts),
and the metric histories the charts of this page and of the run page draw."""

import math

from django.http import Http404, JsonResponse
from django.shortcuts import render

from tenancy.web import org_page
from tracking.models import LatestMetric, Metric, Param, Run
from tracking.views.common import MAX_COMPARED, number, run_ids_param

MAX_POINTS_LOADED = 500_000  # per chart request, so one huge history cannot exhaust memory
MAX_POINTS_DRAWN = 2_500  # per series; evenly spaced, first and last kept


def runs_or_404(request, ids: list[str]) -> list[Run]:
    """The runs, in the order asked; any id not of the session's organization is a 404."""
    found = {run.run_uuid: run for run in Run.objects.filter(
        org=request.access.org, run_uuid__in=ids).select_related("experiment")
        .only("run_uuid", "name", "status", "start_time", "experiment__name",
              "experiment__is_default")}
    if len(found) != len(ids):
        raise Http404("One of the runs does not exist.")
    return [found[run_id] for run_id in ids]


def _matrix(model, runs: list[Run]) -> dict[str, list]:
    """key -> one value per run (None where the run has none)."""
    position = {run.pk: index for index, run in enumerate(runs)}
    fields = ("run_id", "key", "value", "is_nan") if model is LatestMetric else \
        ("run_id", "key", "value")
    matrix: dict[str, list] = {}
    for run_id, key, value, *nan in model.objects.filter(run_id__in=position) \
            .values_list(*fields):
        matrix.setdefault(key, [None] * len(runs))[position[run_id]] = \
            None if nan and nan[0] else value
    return dict(sorted(matrix.items()))


def _rows(matrix: dict[str, list], show) -> list[dict]:
    """Table rows; a row differs when not every run has the same value (missing included)."""
    return [{"key": key, "values": ["—" if v is None else show(v) for v in values],
             "differs": len({repr(v) for v in values}) > 1}
            for key, values in matrix.items()]


@org_page
def run_compare(request):
    ids = run_ids_param(request)
    if not 2 <= len(ids) <= MAX_COMPARED:
        return render(request, "tracking/run_compare.html",
                      {"error": f"Choose between 2 and {MAX_COMPARED} runs to compare "
                                f"({len(ids)} chosen)."}, status=400)
    runs = runs_or_404(request, ids)
    params, metrics = _matrix(Param, runs), _matrix(LatestMetric, runs)
    context = {
        "runs": runs, "error": "",
        "param_rows": _rows(params, str), "metric_rows": _rows(metrics, number),
        "plot_data": {"runs": [{"id": r.run_uuid, "name": r.name or r.run_uuid} for r in runs],
                      "params": params, "metrics": metrics},
        "chart_data": {"runs": ids, "keys": list(metrics)},
    }
    return render(request, "tracking/run_compare.html", context)


def _thinned(points: list[tuple]) -> list[tuple]:
    if len(points) <= MAX_POINTS_DRAWN:
        return points
    stride = (len(points) - 1) / (MAX_POINTS_DRAWN - 1)
    return [points[round(i * stride)] for i in range(MAX_POINTS_DRAWN)]


def _series(run: Run, key: str, points: list[tuple]) -> dict:
    points = _thinned(points)
    return {"run_id": run.run_uuid, "run_name": run.name or run.run_uuid, "key": key,
            "start_time": run.start_time, "step": [p[0] for p in points],
            "timestamp": [p[1] for p in points],
            # JSON has no NaN or Infinity (the browser's JSON.parse refuses them): a gap
            "value": [p[2] if not p[3] and math.isfinite(p[2]) else None for p in points]}


@org_page
def metric_history(request):
    """`?runs=<id>,<id>&key=<k>&key=<k>`: every point of those metrics of those runs, in
    (run, key, step, time) order, which the metric table's unique index serves."""
    ids, keys = run_ids_param(request), request.GET.getlist("key")
    if not ids or len(ids) > MAX_COMPARED:
        return JsonResponse({"error": f"Name 1 to {MAX_COMPARED} runs."}, status=400)
    ordered = runs_or_404(request, ids)
    runs = {run.pk: run for run in ordered}
    rows = Metric.objects.filter(run_id__in=runs, key__in=keys) \
        .order_by("run_id", "key", "step", "timestamp") \
        .values_list("run_id", "key", "step", "timestamp", "value", "is_nan")
    # Series in the order the runs were named, so every chart (and the tables of the
    # compare page) gives a run the same place and colour.
    grouped: dict[tuple[int, str], list[tuple]] = {
        (run.pk, key): [] for run in ordered for key in keys}
    for run_id, key, *point in rows[:MAX_POINTS_LOADED]:
        grouped[run_id, key].append(tuple(point))
    return JsonResponse({"series": [_series(runs[run_id], key, points)
                                    for (run_id, key), points in grouped.items() if points]})
