"""Browser pages of compliance (capability `compliance`): customers' access requests with their
deadlines, one request with its generated versions, and the PDF download. Every write goes
through reports.services, which records its audit event; a download is recorded too."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch, prefetch_related_objects
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone

from config.exceptions import ApplicationError
from reports import services
from reports.models import LANGUAGES, Disclosure, DisclosureRequest, DisclosureStatus
from tenancy.roles import Capability
from tenancy.web import actor, org_page

PAGE_SIZE = 50
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
IN_PROGRESS = (DisclosureStatus.QUEUED, DisclosureStatus.RUNNING)


class PageForm(forms.Form):
    """Labels as on every other page of the site: without Django's trailing colon."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)


class RequestForm(PageForm):
    subject = forms.CharField(label="Customer identifier", max_length=500,
                              help_text="as the decisions were recorded with; kept only as "
                                        "the organization's keyed hash of it")
    subject_name = forms.CharField(label="Customer name", max_length=300,
                                   help_text="for the cover letter")
    received_on = forms.DateField(label="Received on", widget=DATE, initial=timezone.localdate)
    identity_verification = forms.CharField(
        label="Identity verification", max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="how the customer's identity was checked")
    language = forms.ChoiceField(label="Language", choices=LANGUAGES)


class GenerateForm(PageForm):
    language = forms.ChoiceField(label="Language", choices=LANGUAGES)


class ExtendForm(PageForm):
    extended_until = forms.DateField(label="Extend until", widget=DATE)
    reason = forms.CharField(label="Reason", max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="the customer is told it within the first month")


def _annotate(request: DisclosureRequest) -> DisclosureRequest:
    """The latest version and whether any is still being made, from the prefetched versions
    (answered, overdue and days left are the request's own, as in the API)."""
    versions = sorted(request.disclosures.all(), key=lambda v: -v.version)
    request.latest = versions[0] if versions else None
    request.in_progress = any(v.status in IN_PROGRESS for v in versions)
    return request


@org_page(capability=Capability.COMPLIANCE)
def compliance_page(request):
    """Disclosure requests, newest first; a POST records a new one."""
    org, error = request.access.org, None
    form = RequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.disclosure_request_create(org=org, actor=actor(request),
                                                         **form.cleaned_data)
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(request, "Request recorded. Generate its disclosure below.")
            return redirect("compliance-request", request_uuid=created.uuid)
    found = DisclosureRequest.objects.filter(org=org).select_related("created_by") \
        .prefetch_related("disclosures").order_by("-received_on", "-pk")
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    rows = [_annotate(r) for r in page]
    return render(request, "reports/pages/request_list.html", {
        "page": page, "rows": rows, "form": form, "error": error, "today": today,
        "in_progress": any(r.in_progress for r in rows)},
        status=400 if request.method == "POST" else 200)


def _request_of(request, request_uuid) -> DisclosureRequest:
    found = DisclosureRequest.objects.filter(org=request.access.org, uuid=request_uuid) \
        .select_related("created_by").first()
    if found is None:
        raise Http404("No such disclosure request.")
    return found


def _act(request, found: DisclosureRequest):
    """A POST on the request's page: generate a version or extend the deadline. Returns the
    forms to show again and the refusal's message (None: it was done)."""
    action = request.POST.get("action")
    generate = GenerateForm(request.POST if action == "generate" else None)
    extend = ExtendForm(request.POST if action == "extend" else None)
    form = generate if action == "generate" else extend if action == "extend" else None
    if form is None:
        return generate, extend, "Unknown action."
    if not form.is_valid():
        return generate, extend, "Please correct the fields below."
    try:
        if form is generate:
            version = services.disclosure_generate(request=found, actor=actor(request),
                                                   **form.cleaned_data)
            messages.success(request, f"Version {version.version} is being generated.")
        else:
            services.disclosure_request_extend(request=found, actor=actor(request),
                                               **form.cleaned_data)
            messages.success(request, "Deadline extended.")
    except ApplicationError as exc:
        return generate, extend, exc.message
    return generate, extend, None


@org_page(capability=Capability.COMPLIANCE)
def compliance_request(request, request_uuid):
    found, error = _request_of(request, request_uuid), None
    generate = GenerateForm(initial={"language": found.language})
    extend = ExtendForm()
    if request.method == "POST":
        generate, extend, error = _act(request, found)
        if error is None:
            return redirect("compliance-request", request_uuid=request_uuid)
    prefetch_related_objects([found], Prefetch(  # one query serves the list and the flags
        "disclosures", queryset=Disclosure.objects.select_related("requested_by")
        .order_by("-version")))
    versions = list(found.disclosures.all())
    return render(request, "reports/pages/request_detail.html", {
        "req": found, "versions": versions, "generate": generate, "extend": extend,
        "error": error, "answered": found.answered, "overdue": found.overdue,
        "extendable": found.extendable, "days_left": found.days_left,
        "in_progress": any(v.status in IN_PROGRESS for v in versions)},
        status=400 if error else 200)


@org_page(capability=Capability.COMPLIANCE)
def compliance_pdf(request, request_uuid, version: int):
    """One READY version's PDF, streamed from storage once its download is recorded."""
    disclosure = Disclosure.objects.filter(
        org=request.access.org, request__uuid=request_uuid, version=version,
        status=DisclosureStatus.READY).select_related("request").first()
    if disclosure is None:
        raise Http404("No ready version of that number.")
    handle = services.disclosure_open(disclosure=disclosure, actor=actor(request))
    return FileResponse(handle, as_attachment=True,
                        content_type="application/pdf",
                        filename=f"disclosure-{request_uuid}-v{version}.pdf")
