"""Browser pages of the audit trail (see tenancy/web.py for the access rules)."""

from django.urls import path

from audit import views

urlpatterns = [
    path("audit/", views.audit_page, name="audit-page"),
    path("audit/events/<int:seq>/", views.audit_event, name="audit-event"),
    path("audit/verify/", views.audit_verify, name="audit-verify-now"),
]
