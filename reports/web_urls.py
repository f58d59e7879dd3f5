"""Browser pages of compliance (see tenancy/web.py for the access rules)."""

from django.urls import path

from reports import inventory_report_views, profile_views, views

urlpatterns = [
    path("compliance/", views.compliance_page, name="compliance-page"),
    path("inventory/report.pdf", inventory_report_views.inventory_report_page,
         name="inventory-page-report"),
    path("compliance/profile/", profile_views.profile_page, name="compliance-profile-page"),
    path("compliance/models/<str:name>/features/", profile_views.features_page,
         name="compliance-features"),
    path("compliance/requests/<uuid:request_uuid>/", views.compliance_request,
         name="compliance-request"),
    path("compliance/requests/<uuid:request_uuid>/versions/<int:version>/pdf",
         views.compliance_pdf, name="compliance-pdf"),
]
