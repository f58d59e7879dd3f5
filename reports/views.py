"""Browser pages of compliance (capability `compliance`): customers' access requests with their
deadlines and state, one request with its versions on their way out (generated, reviewed,
delivered), and the PDF download. Every write goes through reports.services, which records
its audit event; a download is recorded too."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone

from config.exceptions import ApplicationError
from reports import services
from reports.models import (
    LANGUAGES,
    DeliveryChannel,
    Disclosure,
    DisclosureRequest,
    DisclosureStatus,
)
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


class StepForm(PageForm):
    """A version's next step; each version's fields get ids of their own on the page."""

    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, data=None, *, version, **kwargs):
        super().__init__(data, auto_id=f"id_v{version}_%s", initial={"version": version},
                         **kwargs)


class ReviewForm(StepForm):
    note = forms.CharField(label="Note", max_length=2000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="what you checked (optional)")


class DeliverForm(StepForm):
    channel = forms.ChoiceField(label="Channel", choices=DeliveryChannel.choices)
    delivered_at = forms.DateTimeField(
        label="Sent at (UTC)", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="empty: now")
    reference = forms.CharField(label="Reference", max_length=300, required=False,
                                help_text="e.g. the letter's tracking number")
    sha256 = forms.CharField(label="SHA-256 of the file sent", max_length=200, required=False,
                             help_text="optional: checked against the stored file, whose "
                                       "SHA-256 is recorded either way")


FORMS = {"generate": GenerateForm, "extend": ExtendForm, "review": ReviewForm,
         "deliver": DeliverForm}


def _annotate(request: DisclosureRequest) -> DisclosureRequest:
    """The latest version and whether any is still being made, from the prefetched versions
    (state, overdue and days left are the request's own, as in the API)."""
    request.latest = request.versions[0] if request.versions else None
    request.in_progress = any(v.status in IN_PROGRESS for v in request.versions)
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
        .with_versions().order_by("-received_on", "-pk")
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    rows = [_annotate(r) for r in page]
    return render(request, "reports/pages/request_list.html", {
        "page": page, "rows": rows, "form": form, "error": error, "today": today,
        "in_progress": any(r.in_progress for r in rows)},
        status=400 if request.method == "POST" else 200)


def _request_of(request, request_uuid) -> DisclosureRequest:
    found = DisclosureRequest.objects.filter(org=request.access.org, uuid=request_uuid) \
        .select_related("created_by").with_versions().first()
    if found is None:
        raise Http404("No such disclosure request.")
    return found


def _version_of(found: DisclosureRequest, number: int) -> Disclosure:
    version = next((v for v in found.versions if v.version == number), None)
    if version is None:
        raise ApplicationError(f"This request has no version {number}.", kind="not_found")
    return version


def _done(request, found: DisclosureRequest, action: str, data: dict) -> str:
    """Do the posted action through its service; what the page then says."""
    who = actor(request)
    if action == "generate":
        version = services.disclosure_generate(request=found, actor=who, **data)
        return f"Version {version.version} is being generated."
    if action == "extend":
        services.disclosure_request_extend(request=found, actor=who, **data)
        return "Deadline extended."
    disclosure = _version_of(found, data.pop("version"))
    if action == "review":
        services.disclosure_review(disclosure=disclosure, actor=who, **data)
        return f"Version {disclosure.version} is marked reviewed."
    services.disclosure_deliver(disclosure=disclosure, actor=who, **data)
    return f"Delivery of version {disclosure.version} recorded: the request is answered."


def _act(request, found: DisclosureRequest):
    """A POST on the request's page: generate a version, extend the deadline, review or
    deliver a version. Returns the posted form, bound, and the refusal's message (None: it
    was done)."""
    action = request.POST.get("action")
    if action not in FORMS:
        return None, "Unknown action."
    kind = FORMS[action]
    form = kind(request.POST, version=request.POST.get("version", "")) \
        if issubclass(kind, StepForm) else kind(request.POST)
    if not form.is_valid():
        return form, "Please correct the fields below."
    try:
        messages.success(request, _done(request, found, action, dict(form.cleaned_data)))
    except ApplicationError as exc:
        return form, exc.message
    return form, None


def _steps(request, found: DisclosureRequest, posted) -> list[dict]:
    """Each version's next step on its way out (review, then delivery) with its form, the
    one just posted bound; `own`: the user asked for this version, so may not review it."""
    steps = []
    for version in found.versions:
        step = version.next_step
        if step is None:
            continue
        form = posted if isinstance(posted, FORMS[step]) and \
            str(posted["version"].value()) == str(version.version) else \
            FORMS[step](version=version.version)
        steps.append({"version": version, "step": step, "form": form,
                      "own": step == "review" and version.requested_by_id == request.user.pk})
    return steps


@org_page(capability=Capability.COMPLIANCE)
def compliance_request(request, request_uuid):
    found, error, posted = _request_of(request, request_uuid), None, None
    if request.method == "POST":
        posted, error = _act(request, found)
        if error is None:
            return redirect("compliance-request", request_uuid=request_uuid)
    generate = posted if isinstance(posted, GenerateForm) else \
        GenerateForm(initial={"language": found.language})
    versions = found.versions
    return render(request, "reports/pages/request_detail.html", {
        "req": found, "versions": versions, "generate": generate,
        "extend": posted if isinstance(posted, ExtendForm) else ExtendForm(),
        "steps": _steps(request, found, posted), "error": error,
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
