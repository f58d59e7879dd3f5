"""Browser pages of compliance (see tenancy/web.py for the access rules)."""

from django.urls import path

from reports import views

urlpatterns = [
    path("compliance/", views.compliance_page, name="compliance-page"),
    path("compliance/requests/<uuid:request_uuid>/", views.compliance_request,
         name="compliance-request"),
    path("compliance/requests/<uuid:request_uuid>/versions/<int:version>/pdf",
         views.compliance_pdf, name="compliance-pdf"),
]
