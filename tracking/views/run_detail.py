"""A run's page: what it is (status, times, user, source, parent), what was logged to it
(params, latest metrics, tags, datasets), its artifacts and one chart per metric."""

from django.shortcuts import render

from tenancy.web import org_page
from tracking.models import LatestMetric, Param, Run, RunInput, RunTag
from tracking.views.artifacts import browse
from tracking.views.common import duration, number, run_or_404, when

PARENT_TAG = "mlflow.parentRunId"
SOURCE_TAGS = {"mlflow.source.name": "Source", "mlflow.source.type": "Source type",
               "mlflow.source.git.commit": "Git commit", "mlflow.source.git.branch": "Git branch"}


def _datasets(run: Run) -> list[dict]:
    return [{"name": i.dataset.name, "digest": i.dataset.digest,
             "source_type": i.dataset.source_type, "source": i.dataset.source,
             "context": i.tags.get("mlflow.data.context", "")}
            for i in RunInput.objects.filter(run=run).select_related("dataset")
            .order_by("dataset__name")]


def _parent(org, tags: dict) -> Run | None:
    parent_id = tags.get(PARENT_TAG)
    if not parent_id:
        return None
    return Run.objects.filter(org=org, run_uuid=parent_id).only("run_uuid", "name").first()


def _info(run: Run, tags: dict) -> list[tuple[str, str]]:
    rows = [("Run ID", run.run_uuid), ("Started", when(run.start_time)), ("Ended", when(run.end_time)),
            ("Duration", duration(run.start_time, run.end_time)), ("User", run.user_id)]
    rows += [(label, tags[key]) for key, label in SOURCE_TAGS.items() if tags.get(key)]
    if run.lifecycle_stage != "active":
        rows.append(("Lifecycle", run.lifecycle_stage))
    return [(label, value) for label, value in rows if value]


@org_page
def run_detail(request, run_id: str):
    run = run_or_404(request, run_id)
    org = request.access.org
    tags = dict(RunTag.objects.filter(run=run).order_by("key").values_list("key", "value"))
    parent = _parent(org, tags)
    metrics = [{"key": m.key, "value": number(m.value, m.is_nan), "step": m.step,
                "time": when(m.timestamp)}
               for m in LatestMetric.objects.filter(run=run).order_by("key")]
    context = {
        "run": run, "experiment": run.experiment, "info": _info(run, tags),
        "parent": parent,
        "params": list(Param.objects.filter(run=run).order_by("key").values_list("key", "value")),
        "metrics": metrics,
        "tags": [(k, v) for k, v in tags.items() if not k.startswith("mlflow.")],
        "system_tags": [(k, v) for k, v in tags.items() if k.startswith("mlflow.")],
        "datasets": _datasets(run),
        "artifacts": browse(org, run, request.GET.get("path", "")),
        "chart_data": {"runs": [run.run_uuid], "keys": [m["key"] for m in metrics]},
    }
    return render(request, "tracking/run_detail.html", context)
