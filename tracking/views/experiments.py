"""The experiments page: search, run counts and last activity, and the writes a WRITE role may
make there (create, rename, delete, restore), each through its service and its audit event."""

from django.contrib import messages
from django.db.models import Count, Max, Q
from django.db.models.functions import Lower
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from config.exceptions import ApplicationError
from tenancy.roles import Capability
from tenancy.web import actor, org_page
from tracking import search
from tracking.models import Experiment, LifecycleStage
from tracking.services import experiments as services
from tracking.views.common import experiment_or_404, query, when

PAGE_SIZE = 100


def _searched(org, *, name: str, filter_string: str, show_deleted: bool):
    """Experiments matching the box, with counts and latest run times in the same query.
    The filter clauses are the search-experiments RPC's own (tracking.search), so the page
    accepts exactly what `mlflow.search_experiments(filter_string=...)` accepts."""
    stages = [LifecycleStage.ACTIVE, LifecycleStage.DELETED] if show_deleted \
        else [LifecycleStage.ACTIVE]
    experiments = Experiment.objects.filter(org=org, lifecycle_stage__in=stages)
    if name:
        experiments = experiments.filter(name__icontains=name)
    return search.filter_experiments(experiments, filter_string).annotate(
        run_count=Count("runs", filter=Q(runs__lifecycle_stage=LifecycleStage.ACTIVE)),
        last_start=Max("runs__start_time"), last_end=Max("runs__end_time"),
    ).order_by("-is_default", Lower("name"), "pk")


def _row(experiment: Experiment) -> dict:
    times = [t for t in (experiment.last_update_time, experiment.last_start,
                         experiment.last_end) if t is not None]
    return {"experiment": experiment, "id": experiment.public_id,
            "run_count": experiment.run_count, "last_activity": when(max(times))}


def _page(request) -> tuple[dict, str]:
    """The listing's context, and the search error to show (empty when the search is fine)."""
    params = request.GET
    name, filter_string = params.get("q", "").strip(), params.get("filter", "").strip()
    show_deleted = params.get("deleted") == "1"
    context = {"q": name, "filter": filter_string, "show_deleted": show_deleted, "rows": [],
               "next_query": "", "previous_query": ""}
    try:
        found = _searched(request.access.org, name=name, filter_string=filter_string,
                          show_deleted=show_deleted)
        page, token = search.paginate(found, page_token=params.get("page_token", ""),
                                      max_results=PAGE_SIZE)
        offset = search.decode_page_token(params.get("page_token", ""))
    except ApplicationError as exc:
        return context, exc.message
    context["rows"] = [_row(experiment) for experiment in page]
    context["next_query"] = query(params, page_token=token) if token else ""
    if offset:
        previous = search.encode_page_token(max(0, offset - PAGE_SIZE))
        context["previous_query"] = query(params, page_token=previous)
    return context, ""


def _show(request, *, status: int = 200, form_error: str = "", form: dict | None = None):
    context, search_error = _page(request)
    context.update(search_error=search_error, form_error=form_error, form=form or {})
    return render(request, "tracking/experiment_list.html", context,
                  status=400 if search_error and status == 200 else status)


def _change(request) -> str:
    """Apply the POSTed action through its service; the message to show afterwards."""
    action, who = request.POST.get("action", ""), actor(request)
    if action == "create":
        experiment = services.experiment_create(org=request.access.org,
                                                name=request.POST.get("name", ""), actor=who)
        return f"Created experiment “{experiment.name}”."
    if action not in ("rename", "delete", "restore"):
        raise ApplicationError(f"Unknown action '{action}'.")
    experiment = experiment_or_404(request, request.POST.get("experiment_id", ""))
    if action == "rename":
        old = experiment.name
        services.experiment_rename(experiment=experiment, new_name=request.POST.get("name", ""),
                                   actor=who)
        return f"Renamed “{old}” to “{experiment.name}”."
    stage = LifecycleStage.DELETED if action == "delete" else LifecycleStage.ACTIVE
    services.experiment_set_lifecycle(experiment=experiment, stage=stage, actor=who)
    return f"{'Deleted' if action == 'delete' else 'Restored'} experiment “{experiment.name}”."


@org_page(post_capability=Capability.WRITE)
@require_http_methods(["GET", "POST"])
def experiment_list(request):
    if request.method == "GET":
        return _show(request)
    try:
        done = _change(request)
    except ApplicationError as exc:
        if exc.kind == "not_found":
            raise Http404(exc.message) from None
        # Nothing was written (each service is one transaction); show why, keep the input.
        return _show(request, status=400, form_error=exc.message, form=request.POST.dict())
    messages.success(request, done)
    return redirect(request.get_full_path())
