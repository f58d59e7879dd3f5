"""Browser pages of the registry: models, one model, one version (its package), approvals.

Reads go through the registry's selectors, scoped to the session's organization (another
organization's model is a 404, like a missing one); the one write here, deciding an approval,
goes through services.approval_decide, which records its audit event."""

import datetime
import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.shortcuts import redirect, render

from config.exceptions import ApplicationError
from models_registry import selectors, services
from models_registry.models import (
    AliasApproval,
    ApprovalStatus,
    ModelAlias,
    ModelVersion,
    ProtectedAlias,
    RegisteredModel,
    VersionStatus,
)
from tenancy.roles import Capability
from tenancy.web import actor, found, org_page

PAGE_SIZE = 50


def from_ms(ms: int | None) -> datetime.datetime | None:
    """MLflow keeps registry times as epoch milliseconds; pages show dates."""
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC) if ms else None


def _models(org, query: str):
    latest = ModelVersion.objects.filter(registered_model=OuterRef("pk"), deleted=False) \
        .order_by("-version")
    models = RegisteredModel.objects.filter(org=org, deleted=False).annotate(
        latest_version=Subquery(latest.values("version")[:1]),
        latest_status=Subquery(latest.values("status")[:1]),
        latest_message=Subquery(latest.values("status_message")[:1]),
        version_count=Count("versions", filter=Q(versions__deleted=False)),
    ).prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects
                                .select_related("model_version").order_by("alias")))
    if query:
        models = models.filter(name__icontains=query)
    return models.order_by("name")


@org_page
def model_list(request):
    org, query = request.access.org, request.GET.get("q", "").strip()
    page = Paginator(_models(org, query), PAGE_SIZE).get_page(request.GET.get("page"))
    for model in page:
        model.updated = from_ms(model.last_updated_timestamp)
    pending = AliasApproval.objects.filter(org=org, status=ApprovalStatus.PENDING).count()
    return render(request, "models_registry/model_list.html", {
        "page": page, "query": query, "pending_approvals": pending,
        "in_progress": any(m.latest_status == VersionStatus.PENDING_REGISTRATION for m in page)})


@org_page
def model_detail(request, name: str):
    org = request.access.org
    model = found(selectors.registered_model_get, org=org, name=name)
    versions = selectors.with_details(model.versions.filter(deleted=False)).order_by("-version")
    page = Paginator(versions, PAGE_SIZE).get_page(request.GET.get("page"))
    for version in page:
        version.created = from_ms(version.creation_timestamp)
    protected = set(ProtectedAlias.objects.filter(org=org).values_list("alias", flat=True))
    aliases = list(model.aliases.select_related("model_version").order_by("alias"))
    for alias in aliases:
        alias.protected = alias.alias in protected
    approvals = model.approvals.filter(status=ApprovalStatus.PENDING) \
        .select_related("model_version", "requested_by").order_by("-requested_at")
    return render(request, "models_registry/model_detail.html", {
        "model": model, "page": page, "aliases": aliases, "tags": model.tags.order_by("key"),
        "approvals": approvals, "created": from_ms(model.creation_timestamp),
        "updated": from_ms(model.last_updated_timestamp),
        "in_progress": any(v.status == VersionStatus.PENDING_REGISTRATION for v in page)})


@org_page
def model_version(request, name: str, version: str):
    org = request.access.org
    found_version = found(selectors.model_version_get, org=org, name=name, version=version)
    manifest = found_version.manifest or {}
    mlmodel = manifest.get("mlmodel") or {}
    return render(request, "models_registry/model_version.html", {
        "version": found_version, "model": found_version.registered_model,
        **selectors.version_origin(org=org, version=found_version),
        "tags": found_version.tags.order_by("key"),
        "aliases": found_version.aliases.order_by("alias"),
        "files": manifest.get("files", []), "verification": manifest.get("verification") or {},
        "mlmodel": mlmodel, "signature": _signature(mlmodel.get("signature")),
        "created": from_ms(found_version.creation_timestamp),
        "in_progress": found_version.status == VersionStatus.PENDING_REGISTRATION})


def _signature(signature: dict | None) -> dict:
    """MLflow stores a signature's inputs and outputs as JSON text; the page lists them."""
    if not signature:
        return {}
    parsed = {}
    for part in ("inputs", "outputs"):
        try:
            parsed[part] = json.loads(signature.get(part) or "[]")
        except (TypeError, ValueError):
            parsed[part] = []
    return parsed


def _approvals(org):
    related = ("registered_model", "model_version", "requested_by", "decided_by")
    approvals = AliasApproval.objects.filter(org=org).select_related(*related)
    return (approvals.filter(status=ApprovalStatus.PENDING).order_by("-requested_at", "-pk"),
            approvals.exclude(status=ApprovalStatus.PENDING).order_by("-decided_at", "-pk")[:20])


@org_page(post_capability=Capability.APPROVE)
def approval_list(request):
    """Pending requests to move a protected alias; a POST approves or rejects one. The
    service refuses the member who asked; its message is shown and nothing is written."""
    org, error = request.access.org, None
    if request.method == "POST":
        error = _decide(request, found(selectors.approval_get, org=org,
                                       approval_id=request.POST.get("approval", "")))
        if error is None:
            return redirect("approvals-page")
    pending, decided = _approvals(org)
    return render(request, "models_registry/approval_list.html", {
        "pending": pending, "decided": decided, "error": error},
        status=400 if error else 200)


def _decide(request, approval: AliasApproval) -> str | None:
    """Approve or reject through the service; its refusal as the message (None: done)."""
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        return "Choose to approve or to reject the request."
    try:
        services.approval_decide(approval=approval, approve=decision == "approve",
                                 actor=actor(request),
                                 comment=request.POST.get("comment", "").strip()[:2000])
    except ApplicationError as exc:
        return exc.message
    messages.success(request, f"Request #{approval.pk} {decision}d.")
    return None
