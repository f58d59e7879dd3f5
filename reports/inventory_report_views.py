"""`GET /api/v1/inventory/report.pdf[?as_of=YYYY-MM-DD]` and the inventory page's link to the
same report (`/inventory/report.pdf`): the model risk inventory as a signed PDF
(reports/inventory_report.py). Who may: as the inventory's other routes, every member who reads
the registry (models_registry/inventory_apis.py). Each report is audited as an export."""

from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema

from models_registry.inventory_apis import AsOfSerializer, items_for
from models_registry.inventory_views import download
from reports.inventory_report import inventory_report_pdf, pdf_response
from tenancy.api import OrgApi
from tenancy.web import actor, org_page


class InventoryReportApi(OrgApi):
    @extend_schema(parameters=[AsOfSerializer], responses={(200, "application/pdf"): bytes},
                   summary="The inventory as a signed PDF report (PDF/A-3b, inventory.json "
                           "attached), now or as of a past date; audited")
    def get(self, request):
        items, as_of = items_for(self.org, request.query_params)
        return pdf_response(inventory_report_pdf(org=self.org, items=items, as_of=as_of,
                                                 actor=self.actor()), self.org, as_of)


@require_GET
@org_page
def inventory_report_page(request):
    org = request.access.org
    return download(request, lambda items, as_of: pdf_response(inventory_report_pdf(
        org=org, items=items, as_of=as_of, actor=actor(request)), org, as_of))
