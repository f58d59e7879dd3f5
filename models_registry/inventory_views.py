"""Browser pages of the model risk inventory: the inventory now or as of a date
(`?as_of=YYYY-MM-DD`, rebuilt from the audit trail), overdue reviews marked, and its CSV.
Read-only: changes go through the API (models_registry/inventory_apis.py)."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from models_registry.inventory_apis import AsOfSerializer, csv_response, items_for
from tenancy.web import org_page


@require_GET
@org_page
def inventory_page(request):
    form = AsOfSerializer(data=request.GET)
    if not form.is_valid():
        return render(request, "models_registry/inventory.html", {
            "error": "; ".join(str(e) for e in form.errors.get("as_of", ["invalid date"])),
            "items": [], "as_of": None}, status=400)
    items, as_of = items_for(request.access.org, request.GET)
    return render(request, "models_registry/inventory.html", {
        "items": items, "as_of": as_of, "past": "as_of" in form.validated_data,
        "overdue": sum(item.overdue for item in items)})


def download(request, respond):
    """A download of the inventory as of the page's date (the CSV, the signed PDF report):
    `respond(items, as_of)`, or the page again, 400, for a bad date."""
    if not AsOfSerializer(data=request.GET).is_valid():
        return render(request, "models_registry/inventory.html", {
            "error": "Give the date as YYYY-MM-DD, not in the future.", "items": [],
            "as_of": None}, status=400)
    return respond(*items_for(request.access.org, request.GET))


@require_GET
@org_page
def inventory_csv(request):
    return download(request, lambda items, as_of: csv_response(items, as_of,
                                                               request.access.org.slug))
