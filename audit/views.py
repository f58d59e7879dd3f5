"""Browser pages of the audit trail (capability `audit`): the filtered event list, newest first
and paged by sequence number; one event with its hash, its link and its Merkle inclusion proof;
verifying the whole chain on demand. Reading and verifying write nothing."""

import datetime
import json
from urllib.parse import urlencode

from django import forms
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit import selectors
from audit.chain import event_hash
from audit.merkle import verify_inclusion
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_verify_org
from tenancy.roles import Capability
from tenancy.web import org_page

PAGE_SIZE = 50
FILTERS = ("action", "actor", "target_type", "since", "until")


class FilterForm(forms.Form):
    action = forms.ChoiceField(label="Action", required=False)
    actor = forms.CharField(label="Actor contains", required=False, max_length=300)
    target_type = forms.ChoiceField(label="Target type", required=False)
    since = forms.DateField(label="From", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (inclusive)", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        # Both lists are one index scan each over (org, action) / (org, target_type, ...).
        events = AuditEvent.objects.filter(org=org).order_by()
        for name in ("action", "target_type"):
            values = events.values_list(name, flat=True).distinct().order_by(name)
            self.fields[name].choices = [("", "any"), *((v, v) for v in values)]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("'From' must not be after 'To'.")
        return data


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _filtered(org, data: dict):
    until = data.get("until")
    return selectors.event_list(
        org=org, action=data.get("action") or None, actor=data.get("actor") or None,
        target_type=data.get("target_type") or None,
        since=_day_start(data["since"]) if data.get("since") else None,
        until=_day_start(until + datetime.timedelta(days=1)) if until else None)


def _page(events, data: dict) -> tuple[list, bool, bool]:
    """One page, newest first, from a keyset (`before`/`after` a sequence number); whether
    there are newer and older events beyond it."""
    if data.get("after") is not None:
        rows = list(events.filter(seq__gt=data["after"]).order_by("seq")[:PAGE_SIZE])[::-1]
    else:
        older = events.filter(seq__lt=data["before"]) if data.get("before") else events
        rows = list(older.order_by("-seq")[:PAGE_SIZE])
    if not rows:
        return rows, False, False
    return (rows, events.filter(seq__gt=rows[0].seq).exists(),
            events.filter(seq__lt=rows[-1].seq).exists())


@org_page(capability=Capability.AUDIT)
def audit_page(request):
    org = request.access.org
    form = FilterForm(request.GET or None, org=org)
    if request.GET and not form.is_valid():
        return render(request, "audit/event_list.html", {"form": form, "rows": []}, status=400)
    data = form.cleaned_data if request.GET else {}
    rows, newer, older = _page(_filtered(org, data), data)
    kept = {k: request.GET[k] for k in FILTERS if request.GET.get(k)}
    return render(request, "audit/event_list.html", {
        "form": form, "rows": rows, "newer": newer, "older": older,
        "newest_seq": rows[0].seq if rows else None, "oldest_seq": rows[-1].seq if rows else None,
        "query": urlencode(kept),
        "checkpoint": AuditCheckpoint.objects.filter(org=org).order_by("-tree_size").first()})


def _pretty(value) -> str:
    return "" if value is None else json.dumps(value, indent=2, sort_keys=True,
                                                ensure_ascii=False)


def _proof(org, event: AuditEvent) -> dict:
    """The inclusion proof the API gives, and whether it leads to its root from this event."""
    proof = selectors.event_inclusion_proof(org=org, seq=event.seq)
    proof["verified"] = verify_inclusion(
        proof["leaf_index"], proof["tree_size"], bytes.fromhex(event.hash),
        [bytes.fromhex(node) for node in proof["path"]], bytes.fromhex(proof["root_hash"]))
    return proof


@org_page(capability=Capability.AUDIT)
def audit_event(request, seq: int):
    org = request.access.org
    event = AuditEvent.objects.filter(org=org, seq=seq).first()
    if event is None:
        raise Http404("No such event.")
    previous = AuditEvent.objects.filter(org=org, seq=seq - 1).values_list("hash", flat=True) \
        .first()
    return render(request, "audit/event_detail.html", {
        "event": event, "before": _pretty(event.before), "after": _pretty(event.after),
        "hash_ok": event_hash(event.prev_hash, event.as_record(org.slug)) == event.hash,
        "links_ok": (previous or "0" * 64) == event.prev_hash,
        "proof": _proof(org, event),
        "has_next": AuditEvent.objects.filter(org=org, seq=seq + 1).exists()})


@require_POST
@org_page(capability=Capability.AUDIT)
def audit_verify(request):
    """Recompute the whole chain and check every signed checkpoint, now."""
    verdict = audit_verify_org(request.access.org)
    return render(request, "audit/verify.html", {"verdict": verdict})
