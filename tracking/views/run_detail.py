"""A run's page: what it is (status, times, user, source, parent), what was logged to it
(params, latest metrics, tags, datasets), the models it logged (MLflow 3 logged models: their
params, metrics and files, and the registered versions made from them), its artifacts and
one chart per metric."""

from django.shortcuts import redirect, render
from django.urls import reverse

from config.exceptions import ApplicationError
from models_registry import selectors as registry  # the page shows both; the registry's reads
from tenancy.web import found, org_page
from tracking import selectors
from tracking.models import LatestMetric, LoggedModel, Param, Run, RunInput, RunTag
from tracking.views.artifacts import browse, model_query
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


def _logged_models(org, run: Run) -> dict:
    """The models the run logged, each with its flavors, latest metrics and the versions made
    from it; the versions registered from the run's own artifacts (`runs:/<id>/<path>`)."""
    models = selectors.run_logged_models(org=org, run=run)
    more = len(models) > selectors.RUN_MODELS_SHOWN
    models = models[:selectors.RUN_MODELS_SHOWN]
    ids = [m.model_id for m in models]
    metrics = selectors.logged_model_latest_metrics(org=org, model_ids=ids)
    versions = registry.versions_of_run(org=org, run=run, model_ids=ids)
    shown = [{
        "model": model, "created": when(model.creation_timestamp),
        "status": model.status.removeprefix("LOGGED_MODEL_").replace("_", " ").lower(),
        "flavors": selectors.logged_model_flavors(org=org, model=model),
        "params": sorted(model.params.items()),
        "tags": sorted((k, v) for k, v in model.tags.items() if not k.startswith("mlflow.")),
        "metrics": [{"key": p.key, "value": number(p.value, p.is_nan), "step": p.step,
                     "dataset": p.dataset_name or ""} for p in metrics.get(model.model_id, [])],
        "versions": [v for v in versions if v.model_id == model.model_id],
        "files_query": model_query(model),
    } for model in models]
    prefix = f"runs:/{run.run_uuid}/"
    return {"logged_models": shown, "more_models": more, "versions": versions,
            "run_versions": [{"version": v, "path": v.source.removeprefix(prefix).strip("/")
                              if v.source.startswith(prefix) else None}
                             for v in versions if v.model_id not in ids]}


def _shown_model(org, run: Run, model_id: str) -> tuple[LoggedModel | None, str]:
    """The logged model whose files `?model=` asks for, or why there is none."""
    if not model_id:
        return None, ""
    try:
        return selectors.run_logged_model_get(org=org, run=run, model_id=model_id), ""
    except ApplicationError as exc:
        return None, exc.message


@org_page
def run_detail(request, run_id: str):
    run = run_or_404(request, run_id)
    org = request.access.org
    models = _logged_models(org, run)
    shown_model, model_error = _shown_model(org, run, request.GET.get("model", ""))
    artifacts = browse(org, run, request.GET.get("path", ""), shown_model)
    if model_error:
        artifacts = {**browse(org, run, ""), "error": model_error}
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
        "artifacts": artifacts,
        "chart_data": {"runs": [run.run_uuid], "keys": [m["key"] for m in metrics]},
        **models,
    }
    return render(request, "tracking/run_detail.html", context)


@org_page
def logged_model(request, model_id: str):
    """A logged model (MLflow 3) is shown on its source run's page, in its own block (and the
    link the mlflow client prints for it lands here, through mlflow-links.js); one without a
    run is listed on its experiment's page."""
    model = found(selectors.logged_model_get, org=request.access.org, model_id=model_id)
    if model.source_run is not None:
        return redirect(f"{reverse('run-detail', args=[model.source_run.run_uuid])}"
                        f"#model-{model.model_id}")
    return redirect("experiment-runs", experiment_id=model.experiment.public_id)
