"""Browser pages of project runs: the list with a submit form, one run (status, command, live
log tail, cancel) and one workflow. Submitting and cancelling go through projects.services,
which record their audit events; everything is looked up in the session's organization."""

import datetime

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.shortcuts import redirect, render

from config.exceptions import ApplicationError
from projects import services
from projects.models import DONE, EnvManager, ProjectRun, Workflow
from tenancy.roles import Capability
from tenancy.scoping import org_get
from tenancy.web import actor, found, org_page
from tracking import selectors as tracking_selectors
from tracking.models import Experiment, LifecycleStage

PAGE_SIZE = 50


def parse_parameters(text: str) -> dict[str, str]:
    """`name=value` lines (blank lines skipped) into the parameters the service takes."""
    parameters = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"Line {number}: expected name=value, got {line!r}.")
        parameters[key.strip()] = value.strip()
    return parameters


class SubmitForm(forms.Form):
    uri = forms.CharField(label="Git URL", max_length=1000,
                          help_text="https:// or ssh:// of a repository with an MLproject file")
    version = forms.CharField(label="Version", max_length=250, required=False,
                              help_text="branch, tag or commit; empty for the default branch")
    entry_point = forms.CharField(label="Entry point", max_length=250, initial="main")
    parameters = forms.CharField(label="Parameters", required=False,
                                 widget=forms.Textarea(attrs={"rows": 3,
                                                              "placeholder": "alpha=0.5"}),
                                 help_text="one name=value per line")
    env_manager = forms.ChoiceField(label="Environment", choices=EnvManager.choices,
                                    initial=EnvManager.LOCAL)
    experiment = forms.ChoiceField(label="Experiment")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        experiments = Experiment.objects.filter(org=org, lifecycle_stage=LifecycleStage.ACTIVE) \
            .order_by("-is_default", "name")
        self.fields["experiment"].choices = [(e.public_id, e.name) for e in experiments] \
            or [("0", "Default")]

    def clean_parameters(self) -> dict[str, str]:
        return parse_parameters(self.cleaned_data["parameters"])


def _submit(request, form: SubmitForm) -> ProjectRun:
    data, org = form.cleaned_data, request.access.org
    experiment = tracking_selectors.experiment_get(org=org, experiment_id=data["experiment"])
    return services.project_run_submit(
        experiment=experiment, actor=actor(request), entry_point=data["entry_point"],
        parameters=data["parameters"], git_url=data["uri"].strip(),
        git_ref=data["version"].strip(), env_manager=data["env_manager"])


@org_page(post_capability=Capability.WRITE)
def project_list(request):
    """Project runs and workflows, newest first; a POST submits a run from Git."""
    org, error = request.access.org, None
    form = SubmitForm(request.POST or None, org=org)
    if request.method == "POST" and form.is_valid():
        try:
            submitted = _submit(request, form)
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(request, "Submitted: a worker will pick it up shortly.")
            return redirect("project-run", run_uuid=submitted.uuid)
    runs = ProjectRun.objects.filter(org=org, workflow__isnull=True) \
        .select_related("run__experiment", "submitted_by").order_by("-created_at")
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    steps = Prefetch("steps", queryset=ProjectRun.objects.order_by("step_index"))
    workflows = Workflow.objects.filter(org=org).select_related("submitted_by") \
        .prefetch_related(steps).order_by("-created_at")[:PAGE_SIZE]
    invalid = request.method == "POST"  # a POST still here was refused
    return render(request, "projects/project_list.html", {
        "page": page, "workflows": workflows, "form": form, "error": error,
        "in_progress": any(r.status not in DONE for r in page)
        or any(w.status not in DONE for w in workflows)}, status=400 if invalid else 200)


def _cancel(request, cancel, label: str):
    try:
        cancel()
    except ApplicationError as exc:
        return exc.message
    messages.success(request, f"Cancel sent: {label} stops (a running step is killed).")
    return None


@org_page(post_capability=Capability.WRITE)
def project_run(request, run_uuid):
    project_run = found(org_get, ProjectRun.objects.select_related(
        "run__experiment", "submitted_by", "workflow"), org=request.access.org, uuid=run_uuid)
    error = None
    if request.method == "POST":
        error = _cancel(request, lambda: services.project_run_cancel(
            project_run=project_run, actor=actor(request)), "the run")
        if error is None:
            return redirect("project-run", run_uuid=run_uuid)
    return render(request, "projects/project_run.html", {
        "pr": project_run, "error": error, "in_progress": project_run.status not in DONE,
        "duration": _duration(project_run)}, status=400 if error else 200)


def _duration(project_run: ProjectRun) -> datetime.timedelta | None:
    """How long it ran, to the second (a page has no use for microseconds)."""
    if project_run.started_at and project_run.ended_at:
        ran = project_run.ended_at - project_run.started_at
        return datetime.timedelta(seconds=round(ran.total_seconds()))
    return None


@org_page(post_capability=Capability.WRITE)
def project_workflow(request, workflow_uuid):
    workflow = found(org_get, Workflow.objects.select_related("run__experiment", "submitted_by"),
                     org=request.access.org, uuid=workflow_uuid)
    error = None
    if request.method == "POST":
        error = _cancel(request, lambda: services.workflow_cancel(
            workflow=workflow, actor=actor(request)), "the workflow")
        if error is None:
            return redirect("project-workflow", workflow_uuid=workflow_uuid)
    steps = workflow.steps.select_related("run").order_by("step_index")
    return render(request, "projects/workflow.html", {
        "workflow": workflow, "steps": steps, "error": error,
        "in_progress": workflow.status not in DONE}, status=400 if error else 200)
