from django.urls import path

from reports import apis, inventory_report_views

urlpatterns = [
    path("inventory/report.pdf", inventory_report_views.InventoryReportApi.as_view(),
         name="inventory-report"),
    path("compliance/profile/", apis.ComplianceProfileApi.as_view(), name="compliance-profile"),
    path("models/<str:name>/features/", apis.FeatureListApi.as_view(), name="feature-list"),
    path("models/<str:name>/features/<str:feature>", apis.FeatureDetailApi.as_view(),
         name="feature-detail"),
    path("disclosures/", apis.DisclosureListApi.as_view(), name="disclosure-list"),
    path("disclosures/<uuid:request_uuid>/", apis.DisclosureDetailApi.as_view(),
         name="disclosure-detail"),
    path("disclosures/<uuid:request_uuid>/generate", apis.DisclosureGenerateApi.as_view(),
         name="disclosure-generate"),
    path("disclosures/<uuid:request_uuid>/extend", apis.DisclosureExtendApi.as_view(),
         name="disclosure-extend"),
    path("disclosures/<uuid:request_uuid>/pdf", apis.DisclosurePdfApi.as_view(),
         name="disclosure-pdf"),
    path("disclosures/<uuid:request_uuid>/versions/<int:version>/review",
         apis.DisclosureReviewApi.as_view(), name="disclosure-review"),
    path("disclosures/<uuid:request_uuid>/versions/<int:version>/deliver",
         apis.DisclosureDeliverApi.as_view(), name="disclosure-deliver"),
]
