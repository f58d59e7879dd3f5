"""The model risk inventory (models_registry/inventory.py) as a signed PDF report, anchored as
disclosures are (reports/generation.py): the report's content (`inventory.json`: every model's
entry as of the date, with its latest validation) has its SHA-256 recorded in the audit trail
by the export's own event, a signed checkpoint covers that event, the cover names both, and the
content is embedded byte for byte in a tagged PDF/A-3b.

It lives in reports, not beside the inventory, because the signing and rendering are here and
reports already depends on models_registry (never the other way round)."""

import datetime
import hashlib

from django.db import transaction
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone

from audit.actors import Actor
from audit.canonical import dumps as canonical_json
from audit.services import audit_record, checkpoint_create
from reports.formatting import format_date
from reports.generation import anchor_of
from reports.rendering import json_attachment, render_pdf

FORMAT = "ledgerflow.inventory/1"
ATTACHMENT = "inventory.json"


def inventory_content(org, items, as_of: datetime.date) -> dict:
    """What the report says, as its attachment carries it: one entry per model (as the API's
    inventory answers), the date they stand for, who they belong to."""
    return {"format": FORMAT, "organization": {"slug": org.slug, "name": org.name},
            "as_of": as_of.isoformat(),
            "generated_at": timezone.now().isoformat().replace("+00:00", "Z"),
            "models": [item.as_dict() for item in items]}


@transaction.atomic(durable=True)
def inventory_report_anchor(*, org, actor: Actor, content: dict, content_sha256: str):
    """The export, recorded with the content's SHA-256 before rendering: the event the cover
    names (an auditor recomputes the hash from the attached inventory.json)."""
    return audit_record(org=org, actor=actor, action="inventory.report_exported",
                        target=("inventory", content["as_of"]),
                        target_label=f"model risk inventory as of {content['as_of']}",
                        after={"as_of": content["as_of"], "content_sha256": content_sha256,
                               "models": [m["model_id"] for m in content["models"]]})


def inventory_report_pdf(*, org, items, as_of: datetime.date, actor: Actor) -> bytes:
    """The report of `items` (the inventory as of `as_of`): anchored, signed, rendered."""
    content = inventory_content(org, items, as_of)
    digest = hashlib.sha256(canonical_json(content)).hexdigest()
    event = inventory_report_anchor(org=org, actor=actor, content=content, content_sha256=digest)
    anchor = anchor_of(digest, event, checkpoint_create(org=org))
    html = render_to_string("reports/inventory_report.html", {
        "content": content, "anchor": anchor, "attachment": ATTACHMENT,
        "generated_at": format_date(content["generated_at"], "en"),
        "signed_at": format_date(anchor["checkpoint"]["signed_at"], "en"),
        "overdue": sum(m["overdue"] for m in content["models"])})
    return render_pdf(html, json_attachment(content, ATTACHMENT,
                                            "The model risk inventory of this report (JSON)"))


def pdf_response(pdf: bytes, org, as_of: datetime.date) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = \
        f'attachment; filename="inventory-{org.slug}-{as_of.isoformat()}.pdf"'
    return response
